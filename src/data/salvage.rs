//! Failed uploads kept on disk: the staged bytes of a file whose upload failed, with a manifest
//! saying where they belong, until the user uploads them again (`crate::recovery`).
//!
//! Design note: s3mount stages every file being written in its staging directory
//! (`--cache-dir`, by default a persistent state directory: `/var/lib/s3mount` for root,
//! `$XDG_STATE_HOME/s3mount` or `~/.local/state/s3mount` otherwise). Staging there, rather
//! than in `/tmp` and moving only failures, was chosen because:
//! - nothing is lost at a reboot or a crash, even mid-write (`/tmp` is often a tmpfs);
//! - keeping a failed copy is then a `rename` within one file system, which cannot fail for
//!   lack of space or cost a copy of gigabytes at the moment the network is already failing
//!   (a copy is still the fallback when the rename crosses file systems);
//! - a tmpfs `/tmp` held staged files in memory anyway, so a disk costs little more.
//!
//! When a file is closed after an upload failed (the application was told, through
//! `close`/`fsync`), [`keep`] moves its staging file to `DIR/failed-uploads/ID/data` and writes
//! `DIR/failed-uploads/ID/manifest.json` ([`Manifest`]: bucket, full key, size, time, the
//! error, the endpoint, region and addressing used, and the content type, s3fs metadata and
//! tags the upload carried). The data is synced first and the manifest written last, through a
//! rename, so an entry with a manifest always has its data. The ID is the UTC time plus a
//! random suffix, so entries sort by age. JSON (serde_json) because users and scripts read the
//! manifest too (`jq`), and it holds arbitrary metadata strings that a hand format would have
//! to escape. Nothing here uploads: that is only ever done when the user asks
//! ([`crate::recovery`]), never behind the application's back.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::FsError;
use crate::storage::{ErrorKind, PutOptions, StoreError};

/// The directory under the staging directory that holds failed uploads.
pub const FAILED_UPLOADS: &str = "failed-uploads";
/// The name of the data file inside an entry.
pub const DATA_FILE: &str = "data";
/// The name of the manifest inside an entry.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The prefix of staging files (live ones sit directly in the staging directory).
pub const STAGING_PREFIX: &str = "s3mount-staged-";
/// The manifest format written by this version (2: `replaces` added).
const FORMAT: u32 = 2;

/// What the failed upload was to replace in the bucket, so that a retry can tell whether the
/// key has changed since (another save, another client) and not overwrite a newer object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "etag")]
pub enum Replaces {
    /// Not recorded (a manifest of format 1): a retry cannot check.
    #[default]
    Unknown,
    /// No object: the file was new.
    Nothing,
    /// The version with this ETag.
    Version(String),
}

/// What a mount knows about where its objects go: recorded in each manifest, so a retry
/// can default to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Bucket name.
    pub bucket: String,
    /// The mount's key prefix (keys in manifests are full keys; this is for the reader).
    pub prefix: String,
    /// `--endpoint-url`, if one was used.
    pub endpoint_url: Option<String>,
    /// The region requests were signed for.
    pub region: Option<String>,
    /// `--force-path-style`.
    pub force_path_style: bool,
    /// A mount of every bucket (`--all-buckets`): `bucket` is empty and each key begins with
    /// its bucket.
    pub all_buckets: bool,
}

/// The manifest of one failed upload (`manifest.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub format: u32,
    /// Bucket the object belongs to.
    pub bucket: String,
    /// The full key (the mount's prefix included).
    pub key: String,
    /// The mount's prefix, for information.
    #[serde(default)]
    pub prefix: String,
    /// Size of the data, in bytes.
    pub size: u64,
    /// When the copy was kept, RFC 3339 (UTC).
    pub time: String,
    /// Why the upload failed, one line.
    pub error: String,
    /// The endpoint URL the mount used (`None`: AWS's own).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// The region the mount used.
    #[serde(default)]
    pub region: Option<String>,
    /// Whether the mount used path-style addressing.
    #[serde(default)]
    pub force_path_style: bool,
    /// Content-Type the upload carried.
    #[serde(default)]
    pub content_type: Option<String>,
    /// User metadata the upload carried (s3fs's mode, uid, gid, mtime, ...).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Tags the upload carried.
    #[serde(default)]
    pub tags: Option<Vec<(String, String)>>,
    /// What the upload was to replace.
    #[serde(default)]
    pub replaces: Replaces,
}

impl Manifest {
    /// The manifest of `key` (`size` bytes, uploaded with `opts`) from a mount of `origin`,
    /// failed now with `error`.
    /// A mount of every bucket (`--all-buckets`) has the bucket as the key's first component:
    /// it is split off, and the region left to be discovered again (each bucket has its own).
    pub fn new(origin: &Origin, key: &str, size: u64, opts: &PutOptions, error: &str) -> Self {
        let (bucket, key, region) = match key.split_once('/') {
            Some((bucket, key)) if origin.all_buckets => (bucket.to_string(), key, None),
            _ => (origin.bucket.clone(), key, origin.region.clone()),
        };
        Manifest {
            format: FORMAT,
            bucket,
            key: key.to_string(),
            prefix: origin.prefix.clone(),
            size,
            time: rfc3339(SystemTime::now()),
            error: one_line(error),
            endpoint_url: origin.endpoint_url.clone(),
            region,
            force_path_style: origin.force_path_style,
            content_type: opts.content_type.clone(),
            metadata: opts.metadata.clone().into_iter().collect(),
            tags: opts.tags.clone(),
            replaces: Replaces::Unknown,
        }
    }

    /// With what the upload was to replace.
    pub fn replacing(mut self, replaces: Replaces) -> Self {
        self.replaces = replaces;
        self
    }

    /// The options to upload it with again.
    pub fn put_options(&self) -> PutOptions {
        PutOptions {
            content_type: self.content_type.clone(),
            metadata: self.metadata.clone().into_iter().collect(),
            tags: self.tags.clone(),
        }
    }
}

/// Why a failed upload could not be kept, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum SalvageError {
    /// A file system operation on `path` failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A manifest that is not valid JSON of the expected form.
    #[error("cannot read the manifest {}: {source}", .path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SalvageError {
    let path = path.to_path_buf();
    move |source| SalvageError::Io { what, path, source }
}

/// One kept failed upload.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its id (the name of its directory).
    pub id: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest, or why it cannot be read.
    pub manifest: Result<Manifest, String>,
}

impl Entry {
    /// The data file.
    pub fn data_path(&self) -> PathBuf {
        self.dir.join(DATA_FILE)
    }

    /// Deletes the entry (after a successful upload).
    pub fn remove(&self) -> Result<(), SalvageError> {
        fs::remove_dir_all(&self.dir).map_err(io_error("cannot remove", &self.dir))
    }
}

/// `DIR/failed-uploads`.
pub fn failed_dir(staging_dir: &Path) -> PathBuf {
    staging_dir.join(FAILED_UPLOADS)
}

/// Keeps the staging file `staged` as a failed upload described by `manifest`, under
/// `staging_dir`. Returns the entry's directory.
pub fn keep(
    staging_dir: &Path,
    staged: &Path,
    manifest: &Manifest,
) -> Result<PathBuf, SalvageError> {
    let parent = failed_dir(staging_dir);
    fs::create_dir_all(&parent).map_err(io_error("cannot create", &parent))?;
    let id_prefix = format!("{}-", compact_time(&manifest.time));
    let dir = tempfile::Builder::new()
        .prefix(&id_prefix)
        .rand_bytes(6)
        .tempdir_in(&parent)
        .map_err(io_error("cannot create an entry in", &parent))?
        .keep();
    // The manifest is written (under a temporary name) before the data moves, so that any
    // failure up to the move leaves the staging file where it was, for the caller to name;
    // after the move, the data is only ever in the entry.
    let part = dir.join("manifest.json.part");
    let written = serde_json::to_vec_pretty(manifest)
        .map_err(|source| SalvageError::Manifest {
            path: part.clone(),
            source,
        })
        .and_then(|text| write_synced(&part, &text))
        .and_then(|()| move_or_copy(staged, &dir.join(DATA_FILE)));
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&dir);
        return Err(e);
    }
    let final_path = dir.join(MANIFEST_FILE);
    if let Err(e) = fs::rename(&part, &final_path) {
        // The data is in the entry already: keep it there, listed as an unreadable manifest.
        tracing::warn!(entry = %dir.display(), "the manifest of a failed upload stays at {}: {e}", part.display());
    }
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(dir)
}

/// Moves `from` to `to` (a rename; a copy across file systems), with the data synced.
fn move_or_copy(from: &Path, to: &Path) -> Result<(), SalvageError> {
    if let Ok(f) = File::open(from) {
        let _ = f.sync_all();
    }
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            fs::copy(from, to).map_err(io_error("cannot copy the staged data to", to))?;
            File::open(to)
                .and_then(|f| f.sync_all())
                .map_err(io_error("cannot sync", to))?;
            fs::remove_file(from).map_err(io_error("cannot remove", from))
        }
        Err(e) => Err(io_error("cannot move the staged data to", to)(e)),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SalvageError> {
    let mut f = File::create(path).map_err(io_error("cannot create", path))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_error("cannot write", path))
}

/// The failed uploads kept under `staging_dir`, oldest first. A missing directory holds none.
pub fn list(staging_dir: &Path) -> Result<Vec<Entry>, SalvageError> {
    let parent = failed_dir(staging_dir);
    let read = match fs::read_dir(&parent) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("cannot read", &parent)(e)),
    };
    let mut entries = Vec::new();
    for item in read {
        let item = item.map_err(io_error("cannot read", &parent))?;
        if !item.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = item.path();
        let id = item.file_name().to_string_lossy().into_owned();
        let manifest = read_manifest(&dir).map_err(|e| e.to_string());
        entries.push(Entry { id, dir, manifest });
    }
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(entries)
}

fn read_manifest(dir: &Path) -> Result<Manifest, SalvageError> {
    let path = dir.join(MANIFEST_FILE);
    let text = fs::read(&path).map_err(io_error("cannot read", &path))?;
    serde_json::from_slice(&text).map_err(|source| SalvageError::Manifest { path, source })
}

/// The staging files directly in `staging_dir` (live ones, or left by a mount that was killed).
pub fn staging_files(staging_dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = fs::read_dir(staging_dir) else {
        return Vec::new();
    };
    read.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING_PREFIX))
        .map(|e| e.path())
        .collect()
}

/// The first line of `text`, for a manifest's error.
fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

/// Why an upload to `endpoint` (`None`: AWS's) failed, as a line for a person: from the
/// store error's kind when there is one, without the Rust debug dump that an SDK error's
/// text may end with.
pub fn readable_error(e: &FsError, endpoint: Option<&str>) -> String {
    let store = std::error::Error::source(e).and_then(|s| s.downcast_ref::<StoreError>());
    match store {
        Some(store) => readable_store_error(store, endpoint),
        None => one_line(&e.message),
    }
}

/// [`readable_error`] of a store error: the kind's phrase, and for a connection failure its
/// cause (refused, unknown host, TLS, ...).
pub fn readable_store_error(store: &StoreError, endpoint: Option<&str>) -> String {
    let endpoint = endpoint.unwrap_or("the AWS S3 endpoint");
    match store.kind() {
        ErrorKind::Connect => format!(
            "cannot connect to {endpoint}: {}",
            crate::storage::s3::Transport::of(store)
        ),
        ErrorKind::Timeout => format!("{endpoint} did not answer in time"),
        ErrorKind::NoSuchBucket => format!("the bucket does not exist at {endpoint}"),
        ErrorKind::AccessDenied => "access denied: the credentials in use may not write \
                                    this key"
            .to_string(),
        ErrorKind::BadCredentials => "the server rejected the credentials".to_string(),
        ErrorKind::NoCredentials => "no AWS credentials found".to_string(),
        _ => one_line(&store.to_string()),
    }
}

/// `t` as RFC 3339 in UTC, to the second: `2024-05-01T12:34:56Z`.
pub fn rfc3339(t: SystemTime) -> String {
    crate::fs::xattr::rfc3339(t)
}

/// `2024-05-01T12:34:56Z` → `20240501T123456Z` (for ids).
fn compact_time(rfc3339: &str) -> String {
    rfc3339.chars().filter(|c| *c != '-' && *c != ':').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            bucket: "b".into(),
            prefix: "p/".into(),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            region: Some("eu-west-1".into()),
            force_path_style: true,
            all_buckets: false,
        }
    }

    #[test]
    fn errors_read_as_one_line_naming_the_cause() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = FsError::from(StoreError::connect("PutObject k").with_source(refused));
        assert_eq!(
            readable_error(&e, Some("http://127.0.0.1:9")),
            "cannot connect to http://127.0.0.1:9: connection refused"
        );
        let e = FsError::from(StoreError::server(
            "PutObject k: InternalError\nsecond line",
        ));
        assert_eq!(
            readable_error(&e, None),
            "server error: PutObject k: InternalError"
        );
        let e = FsError::new(libc::EIO, "plain (with a note)");
        assert_eq!(readable_error(&e, None), "plain (with a note)");
    }

    #[test]
    fn formats_times_as_rfc3339() {
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_709_210_096); // a leap day
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
        assert_eq!(compact_time("2024-02-29T12:34:56Z"), "20240229T123456Z");
    }

    #[test]
    fn a_kept_upload_has_its_data_and_manifest_and_lists_back() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join(format!("{STAGING_PREFIX}x"));
        fs::write(&staged, b"the bytes").unwrap();
        let mut opts = PutOptions {
            content_type: Some("text/plain".into()),
            tags: Some(vec![("t".into(), "v \"q\"".into())]),
            ..Default::default()
        };
        opts.metadata.insert("mode".into(), "33188".into());
        let manifest = Manifest::new(&origin(), "p/f.txt", 9, &opts, "server error\nmore");
        let kept = keep(dir.path(), &staged, &manifest).unwrap();
        assert!(!staged.exists(), "moved, not copied");
        assert!(staging_files(dir.path()).is_empty());
        assert_eq!(fs::read(kept.join(DATA_FILE)).unwrap(), b"the bytes");

        let entries = list(dir.path()).unwrap();
        assert_eq!(entries.len(), 1);
        let back = entries[0].manifest.clone().unwrap();
        assert_eq!(back, manifest);
        assert_eq!(back.error, "server error");
        assert_eq!(back.put_options(), opts);
        assert_eq!(entries[0].dir, kept);
        let json = fs::read_to_string(kept.join(MANIFEST_FILE)).unwrap();
        assert!(json.contains("\"bucket\": \"b\"") && json.contains("\"key\": \"p/f.txt\""));

        entries[0].remove().unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn a_key_of_an_all_buckets_mount_names_its_bucket() {
        let all = Origin {
            bucket: String::new(),
            prefix: String::new(),
            all_buckets: true,
            ..origin()
        };
        let m = Manifest::new(&all, "photos/2024/a.jpg", 1, &PutOptions::default(), "x");
        assert_eq!(
            (m.bucket.as_str(), m.key.as_str()),
            ("photos", "2024/a.jpg")
        );
        assert_eq!(m.region, None, "each bucket's region is found again");
        let m = Manifest::new(&origin(), "p/f.txt", 1, &PutOptions::default(), "x");
        assert_eq!((m.bucket.as_str(), m.key.as_str()), ("b", "p/f.txt"));
        assert_eq!(m.region.as_deref(), Some("eu-west-1"));
    }

    /// A failure before the data moved leaves no entry behind (and the staging file, if
    /// any, where it was, for the caller to name).
    #[test]
    fn a_failed_keep_leaves_no_half_entry() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join(format!("{STAGING_PREFIX}gone"));
        let manifest = Manifest::new(&origin(), "p/f.txt", 1, &PutOptions::default(), "x");
        assert!(keep(dir.path(), &gone, &manifest).is_err());
        assert!(
            list(dir.path()).unwrap().is_empty(),
            "no entry without its data"
        );
    }

    #[test]
    fn a_missing_directory_holds_nothing_and_a_bad_manifest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(&dir.path().join("nope")).unwrap().is_empty());
        let bad = failed_dir(dir.path()).join("20240101T000000Z-abc");
        fs::create_dir_all(&bad).unwrap();
        fs::write(bad.join(MANIFEST_FILE), b"{not json").unwrap();
        let entries = list(dir.path()).unwrap();
        assert_eq!(entries[0].id, "20240101T000000Z-abc");
        let err = entries[0].manifest.clone().unwrap_err();
        assert!(err.contains("cannot read the manifest"), "{err}");
    }
}
