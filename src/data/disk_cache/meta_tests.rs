use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn meta(etag: &str, secs: u64) -> ObjectMeta {
    let metadata: HashMap<String, String> = [("mode", "33261"), ("uid", "1000"), ("mtime", "17")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ObjectMeta {
        size: 42,
        last_modified: UNIX_EPOCH + Duration::from_secs(secs),
        etag: etag.into(),
        content_type: Some("text/plain".into()),
        storage_class: None,
        version_id: Some("v1".into()),
        metadata,
    }
}

/// Opens the store with plenty of free space (whatever the machine's).
fn open(dir: &Path, source: &str, max: u64) -> io::Result<Arc<MetaCache>> {
    MetaCache::open_with_probe(dir, source, max, Box::new(roomy))
}

fn roomy(_: &Path) -> io::Result<super::super::Space> {
    Ok(super::super::Space {
        total: 100,
        available: 50,
    })
}

/// Writes `m` for `key` and waits for the writer.
fn reopen_with(dir: &Path, key: &str, m: &ObjectMeta) -> Arc<MetaCache> {
    let c = open(dir, "src", 1 << 30).unwrap();
    c.put(key, m);
    c.flush_and_stop();
    drop(c);
    open(dir, "src", 1 << 30).unwrap()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir.join(META_DIR)).unwrap().flatten() {
        out.extend(
            std::fs::read_dir(sub.path())
                .unwrap()
                .flatten()
                .map(|f| f.path()),
        );
    }
    out
}

#[test]
fn a_file_round_trips_and_any_damage_is_caught() {
    let m = meta("\"e\"", 1000);
    let f = encode_file("src", "a/b", &m);
    assert_eq!(decode_file(&f).unwrap(), ("src".into(), "a/b".into(), m));
    for at in [0, 9, 13, HEADER_LEN + 3, f.len() - 1] {
        let mut bad = f.clone();
        bad[at] ^= 0x10;
        assert!(decode_file(&bad).is_err(), "flipped byte {at} accepted");
    }
    assert_eq!(
        decode_file(&f[..f.len() - 1]),
        Err(MetaFileError::WrongSize)
    );
}

#[test]
fn an_entry_is_served_only_for_its_version_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let lm = UNIX_EPOCH + Duration::from_millis(1_000_500);
    let m = meta("\"e\"", 1000);
    let c = reopen_with(dir.path(), "k", &m);
    assert_eq!(c.len(), 1);
    // A listing's Last-Modified has milliseconds; the HEAD's was whole seconds.
    assert_eq!(c.get("k", "\"e\"", lm), Some(m.clone()));
    assert_eq!(c.get("k", "\"f\"", lm), None, "another ETag");
    let later = UNIX_EPOCH + Duration::from_secs(1001);
    assert_eq!(
        c.get("k", "\"e\"", later),
        None,
        "metadata changed by a copy"
    );
    assert_eq!(c.get("other", "\"e\"", lm), None, "another key");
    assert_eq!(c.last_etag("k").as_deref(), Some("\"e\""));
    assert_eq!(c.counters().hits.load(Ordering::Relaxed), 1);
    // A newer version replaces the entry.
    c.put("k", &meta("\"g\"", 2000));
    c.flush_and_stop();
    assert_eq!(c.last_etag("k").as_deref(), Some("\"g\""));
    assert_eq!(c.get("k", "\"e\"", lm), None);
}

#[test]
fn another_source_never_sees_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let m = meta("\"e\"", 1000);
    drop(reopen_with(dir.path(), "k", &m));
    let other = open(dir.path(), "other-bucket", 1 << 30).unwrap();
    assert_eq!(other.get("k", "\"e\"", m.last_modified), None);
}

#[test]
fn damaged_or_truncated_files_are_dropped_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let m = meta("\"e\"", 1000);
    drop(reopen_with(dir.path(), "k", &m));
    let path = files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let c = open(dir.path(), "src", 1 << 30).unwrap();
    assert_eq!(c.get("k", "\"e\"", m.last_modified), None);
    assert!(!path.exists(), "the damaged file is deleted");
    assert!(c.is_empty());
    drop(c);
    let c = reopen_with(dir.path(), "k", &m);
    let path = files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_eq!(c.get("k", "\"e\"", m.last_modified), None);
    assert!(!path.exists());
}

#[test]
fn temporary_files_are_removed_and_the_bound_holds() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), "src", 10 * DISK_BLOCK).unwrap();
    for i in 0..30 {
        c.put(&format!("k{i}"), &meta("\"e\"", 1000));
    }
    c.flush_and_stop();
    assert!(c.len() <= 10, "{} entries", c.len());
    assert!(files(dir.path()).len() <= 10);
    assert!(c.last_etag("k29").is_some(), "the newest entry stays");
    drop(c);
    let stray = dir.path().join(META_DIR).join("00").join("0.tmp");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"half").unwrap();
    let _c = open(dir.path(), "src", 1 << 30).unwrap();
    assert!(!stray.exists());
    assert_eq!(meta_bound(1 << 20), 16 << 20);
    assert_eq!(meta_bound(1 << 40), 1 << 30);
}

#[test]
fn nothing_is_written_while_the_disk_is_nearly_full() {
    let dir = tempfile::tempdir().unwrap();
    let full = |_: &Path| {
        Ok(super::super::Space {
            total: 100,
            available: 4,
        })
    };
    let c = MetaCache::open_with_probe(dir.path(), "src", 1 << 30, Box::new(full)).unwrap();
    c.put("k", &meta("\"e\"", 1000));
    c.flush_and_stop();
    assert!(c.is_empty());
    assert_eq!(c.counters().dropped.load(Ordering::Relaxed), 1);
}
