//! Failed uploads, from the user's side: where they are kept, the notice at mount, and the
//! commands `s3mount --list-failed-uploads` and `s3mount --retry-failed-uploads[=ID,...]`.
//!
//! Design note: the on-disk entries (data + `manifest.json`) are written by the mount
//! ([`crate::data::salvage`], which explains why staging happens in the same persistent
//! directory). This module only reads them, and uploads one again **only when the user runs the
//! retry command**: the application that wrote the file was told the upload failed, and
//! sending its bytes later behind its back could overwrite a newer version it wrote since.
//! A retry reuses the mount's own code: [`S3Store::connect`] for the client (the connection
//! flags on the command line win; the manifest's endpoint, region and addressing fill the gaps)
//! and [`upload_staged`] for the upload (one PutObject, or a multipart upload for a file larger
//! than one part), with the content type, s3fs metadata (mode, uid, gid, mtime) and tags the
//! failed upload carried. An entry is removed only after S3 confirmed the new object; a failure
//! keeps it and is reported as one line, and the command then exits 1.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::Args;
use crate::data::salvage::{self, Entry, Manifest, Origin, Replaces, SalvageError};
use crate::data::upload::{upload_staged, PartPlan, Staged};
use crate::error::FsError;
use crate::storage::s3::{S3Settings, S3Store};
use crate::storage::{BucketLocation, ObjectStore, StoreError};

/// Where staging files and failed uploads live when `--cache-dir` is not given:
/// `/var/lib/s3mount` for root, else `$XDG_STATE_HOME/s3mount`, else
/// `~/.local/state/s3mount` (the system temp dir only when there is no home either).
pub fn default_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/s3mount");
    }
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(state) = absolute(std::env::var_os("XDG_STATE_HOME")) {
        return state.join("s3mount");
    }
    if let Some(home) = absolute(std::env::var_os("HOME")) {
        return home.join(".local/state/s3mount");
    }
    std::env::temp_dir().join(format!("s3mount-{}", nix::unistd::geteuid()))
}

/// The staging directory `args` stand for: `--cache-dir`, else [`default_dir`].
pub fn dir_for(args: &Args) -> PathBuf {
    args.cache_dir.clone().unwrap_or_else(default_dir)
}

/// What a failed upload's manifest records about where the mount `args` describe was sending
/// it (the region: `--region`, else the environment's, else none: found again the same way).
pub fn origin(args: &Args, location: &BucketLocation) -> Origin {
    let env_region = || {
        ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .into_iter()
            .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
    };
    Origin {
        bucket: location.bucket.clone(),
        prefix: location.prefix.clone(),
        endpoint_url: args.endpoint_url.clone(),
        region: args.region.clone().or_else(env_region),
        force_path_style: args.force_path_style,
        all_buckets: args.all_buckets,
    }
}

/// Why a command on failed uploads failed (each `Display` is one line for the user).
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The directory or an entry could not be read or removed.
    #[error(transparent)]
    Salvage(#[from] SalvageError),
    /// An id given to `--retry-failed-uploads` that is not there.
    #[error("no failed upload '{id}' in {}: see 's3mount --list-failed-uploads'", .dir.display())]
    UnknownId { id: String, dir: PathBuf },
    /// An entry whose manifest cannot be read: it cannot be sent anywhere.
    #[error("{id}: not retried, {reason}; its data is in {}", .data.display())]
    Unreadable {
        id: String,
        reason: String,
        data: PathBuf,
    },
    /// The data file is missing or unreadable.
    #[error("{id}: cannot read {}: {source}", .path.display())]
    Data {
        id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The key changed since the upload failed (saved again, or changed by another client).
    #[error(
        "{id}: s3://{bucket}/{key} changed since the upload failed: not overwritten (give \
         --overwrite-changed to upload it anyway); it is kept"
    )]
    Changed {
        id: String,
        bucket: String,
        key: String,
    },
    /// The data file is not the size the manifest recorded.
    #[error(
        "{id}: not retried, the data file has {actual} bytes but the manifest says \
             {expected}"
    )]
    SizeMismatch {
        id: String,
        actual: u64,
        expected: u64,
    },
    /// No client for the bucket (credentials, region).
    #[error("{id}: not retried, no client for s3://{bucket} ({reason}); it is kept")]
    Connect {
        id: String,
        bucket: String,
        reason: String,
        #[source]
        source: Arc<StoreError>,
    },
    /// The upload failed; `reason` is [`salvage::readable_error`] of `source`.
    #[error("{id}: upload of s3://{bucket}/{key} failed again ({reason}); it is kept")]
    Upload {
        id: String,
        bucket: String,
        key: String,
        reason: String,
        #[source]
        source: Box<FsError>,
    },
    /// The tokio runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] io::Error),
}

/// The mount-time notice: how many failed uploads are waiting in `dir`, how many of them for
/// `bucket`, and the commands. `None` when there are none.
pub fn notice(dir: &Path, bucket: &str, default_dir: bool) -> Option<String> {
    let entries = salvage::list(dir).ok()?;
    if entries.is_empty() {
        return None;
    }
    let n = entries.len();
    let here = entries
        .iter()
        .filter(|e| e.manifest.as_ref().is_ok_and(|m| m.bucket == bucket))
        .count();
    let (uploads, are) = if n == 1 {
        ("upload", "is")
    } else {
        ("uploads", "are")
    };
    let flag = if default_dir {
        String::new()
    } else {
        format!(" --cache-dir {}", dir.display())
    };
    Some(format!(
        "{n} failed {uploads} ({here} for bucket '{bucket}') {are} waiting in {}: list them with \
         's3mount --list-failed-uploads{flag}', upload them again with \
         's3mount --retry-failed-uploads{flag}'",
        salvage::failed_dir(dir).display()
    ))
}

/// One line per failed upload kept in `dir`, or one saying there are none.
pub fn list_lines(dir: &Path) -> Result<Vec<String>, RecoveryError> {
    let entries = salvage::list(dir)?;
    if entries.is_empty() {
        return Ok(vec![format!(
            "no failed uploads in {}",
            salvage::failed_dir(dir).display()
        )]);
    }
    Ok(entries
        .iter()
        .map(|e| match &e.manifest {
            Ok(m) => format!(
                "{}  s3://{}/{}  {} bytes  {}  {}",
                e.id, m.bucket, m.key, m.size, m.time, m.error
            ),
            Err(reason) => format!("{}  (unreadable: {reason})", e.id),
        })
        .collect())
}

/// Runs `--list-failed-uploads` or `--retry-failed-uploads` as `args` say; prints what happened
/// (errors as `s3mount: error: ...` lines on stderr) and returns the exit status.
pub fn run_command(args: &Args) -> i32 {
    let dir = dir_for(args);
    if args.list_failed_uploads {
        return match list_lines(&dir) {
            Ok(lines) => {
                lines.iter().for_each(|l| println!("{l}"));
                0
            }
            Err(e) => report(&e),
        };
    }
    let ids = args.retry_failed_uploads.clone().unwrap_or_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&RecoveryError::Runtime(e)),
    };
    let plan = PartPlan {
        part_size: args.write_part_size.unwrap_or(args.part_size).max(5 << 20),
        max_in_flight: 4,
    };
    let base = args.s3_settings();
    let overwrite = args.overwrite_changed;
    let outcomes = runtime.block_on(retry(&dir, &ids, plan, overwrite, |m| {
        settings_for(&base, m)
    }));
    let mut status = 0;
    for outcome in outcomes {
        match outcome {
            Ok(line) => println!("{line}"),
            Err(e) => status = report(&e),
        }
    }
    status
}

fn report(e: &RecoveryError) -> i32 {
    eprintln!("s3mount: error: {e}");
    1
}

/// The command line's connection settings, with the manifest's where the command line says
/// nothing.
pub fn settings_for(command_line: &S3Settings, manifest: &Manifest) -> S3Settings {
    let mut s = command_line.clone();
    if s.endpoint_url.is_none() {
        s.endpoint_url = manifest.endpoint_url.clone();
    }
    if s.region.is_none() {
        s.region = manifest.region.clone();
    }
    s.force_path_style |= manifest.force_path_style;
    s
}

/// Uploads the failed uploads `ids` (all when empty) kept in `dir` again, each to the store
/// `settings` describe for it. Returns one outcome per entry (or unknown id), in order.
pub async fn retry(
    dir: &Path,
    ids: &[String],
    plan: PartPlan,
    overwrite_changed: bool,
    settings: impl Fn(&Manifest) -> S3Settings,
) -> Vec<Result<String, RecoveryError>> {
    let entries = match salvage::list(dir) {
        Ok(entries) => entries,
        Err(e) => return vec![Err(e.into())],
    };
    let mut outcomes = Vec::new();
    let mut chosen = Vec::new();
    if ids.is_empty() {
        chosen.extend(entries.iter());
        if chosen.is_empty() {
            outcomes.push(Ok(format!(
                "no failed uploads in {}",
                salvage::failed_dir(dir).display()
            )));
        }
    }
    for id in ids {
        match entries.iter().find(|e| &e.id == id) {
            Some(e) => chosen.push(e),
            None => outcomes.push(Err(RecoveryError::UnknownId {
                id: id.clone(),
                dir: salvage::failed_dir(dir),
            })),
        }
    }
    let mut stores: HashMap<String, Result<Arc<dyn ObjectStore>, Arc<StoreError>>> = HashMap::new();
    for entry in chosen {
        let manifest = match &entry.manifest {
            Ok(m) => m,
            Err(reason) => {
                outcomes.push(Err(RecoveryError::Unreadable {
                    id: entry.id.clone(),
                    reason: reason.clone(),
                    data: entry.data_path(),
                }));
                continue;
            }
        };
        let s = settings(manifest);
        let endpoint = s.endpoint_url.clone();
        let key = format!(
            "{}\n{:?}\n{:?}\n{}",
            manifest.bucket, s.endpoint_url, s.region, s.force_path_style
        );
        if !stores.contains_key(&key) {
            let location = BucketLocation {
                bucket: manifest.bucket.clone(),
                prefix: String::new(),
            };
            let store = S3Store::connect(&location, s)
                .await
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                .map_err(Arc::new);
            stores.insert(key.clone(), store);
        }
        let outcome = match &stores[&key] {
            Ok(store) => {
                let check = !overwrite_changed;
                retry_entry(store, entry, manifest, plan, check, endpoint.as_deref()).await
            }
            Err(e) => Err(RecoveryError::Connect {
                id: entry.id.clone(),
                bucket: manifest.bucket.clone(),
                reason: salvage::readable_store_error(e, endpoint.as_deref()),
                source: e.clone(),
            }),
        };
        outcomes.push(outcome);
    }
    outcomes
}

/// Uploads one entry to `store` and removes it once S3 has it; returns the line to print.
/// With `check`, an entry whose key no longer holds what the upload was to replace (see
/// [`Replaces`]) is not uploaded: it would overwrite a newer object.
pub async fn retry_entry(
    store: &Arc<dyn ObjectStore>,
    entry: &Entry,
    manifest: &Manifest,
    plan: PartPlan,
    check: bool,
    endpoint: Option<&str>,
) -> Result<String, RecoveryError> {
    if check {
        check_unchanged(store, entry, manifest, endpoint).await?;
    }
    let path = entry.data_path();
    let data_error = |source| RecoveryError::Data {
        id: entry.id.clone(),
        path: path.clone(),
        source,
    };
    let file = File::open(&path).map_err(data_error)?;
    let actual = file.metadata().map_err(data_error)?.len();
    if actual != manifest.size {
        return Err(RecoveryError::SizeMismatch {
            id: entry.id.clone(),
            actual,
            expected: manifest.size,
        });
    }
    let staged = Staged {
        file: &file,
        size: actual,
        base: None,
        dirty_parts: &BTreeSet::new(),
    };
    upload_staged(store, &manifest.key, staged, plan, &manifest.put_options())
        .await
        .map_err(|source| RecoveryError::Upload {
            id: entry.id.clone(),
            bucket: manifest.bucket.clone(),
            key: manifest.key.clone(),
            reason: salvage::readable_error(&source, endpoint),
            source: Box::new(source),
        })?;
    drop(file);
    entry.remove()?;
    Ok(format!(
        "uploaded s3://{}/{} ({} bytes) from {}",
        manifest.bucket, manifest.key, manifest.size, entry.id
    ))
}

/// Whether the key still holds what the failed upload was to replace; a
/// [`RecoveryError::Changed`] when it does not.
async fn check_unchanged(
    store: &Arc<dyn ObjectStore>,
    entry: &Entry,
    manifest: &Manifest,
    endpoint: Option<&str>,
) -> Result<(), RecoveryError> {
    if manifest.replaces == Replaces::Unknown {
        return Ok(());
    }
    let now = match store.head(&manifest.key).await {
        Ok(meta) => Replaces::Version(meta.etag),
        Err(e) if e.is_not_found() => Replaces::Nothing,
        Err(e) => {
            return Err(RecoveryError::Upload {
                id: entry.id.clone(),
                bucket: manifest.bucket.clone(),
                key: manifest.key.clone(),
                reason: salvage::readable_store_error(&e, endpoint),
                source: Box::new(FsError::from(e)),
            })
        }
    };
    match now == manifest.replaces {
        true => Ok(()),
        false => Err(RecoveryError::Changed {
            id: entry.id.clone(),
            bucket: manifest.bucket.clone(),
            key: manifest.key.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemStore;
    use crate::storage::PutOptions;

    const PLAN: PartPlan = PartPlan {
        part_size: 5 << 20,
        max_in_flight: 4,
    };

    /// Keeps `bytes` for `key` as a failed upload in `dir`.
    fn kept(dir: &Path, bucket: &str, key: &str, bytes: &[u8], opts: &PutOptions) -> Entry {
        kept_replacing(dir, bucket, key, bytes, opts, Replaces::Unknown)
    }

    fn kept_replacing(
        dir: &Path,
        bucket: &str,
        key: &str,
        bytes: &[u8],
        opts: &PutOptions,
        replaces: Replaces,
    ) -> Entry {
        let staged = dir.join(format!("{}t", salvage::STAGING_PREFIX));
        std::fs::write(&staged, bytes).unwrap();
        let origin = Origin {
            bucket: bucket.into(),
            ..Default::default()
        };
        let m = Manifest::new(&origin, key, bytes.len() as u64, opts, "connection refused")
            .replacing(replaces);
        let entry_dir = salvage::keep(dir, &staged, &m).unwrap();
        salvage::list(dir)
            .unwrap()
            .into_iter()
            .find(|e| e.dir == entry_dir)
            .unwrap()
    }

    /// A key saved again (or changed by another client) since the upload failed is not
    /// overwritten, unless asked; an unchanged one is.
    #[tokio::test]
    async fn a_retry_never_overwrites_a_newer_object_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemStore::new());
        store.insert("k", "old");
        let old = store.head("k").await.unwrap().etag;
        let opts = PutOptions::default();
        let entry = kept_replacing(dir.path(), "b", "k", b"mine", &opts, Replaces::Version(old));
        let m = entry.manifest.clone().unwrap();
        assert_eq!(m.format, 2);
        let dyn_store = store.clone() as Arc<dyn ObjectStore>;
        store.insert("k", "newer, saved since");
        let err = retry_entry(&dyn_store, &entry, &m, PLAN, true, None)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("s3://b/k changed since the upload failed: not overwritten"),
            "{err}"
        );
        assert_eq!(&store.body("k").unwrap()[..], b"newer, saved since");
        assert_eq!(salvage::list(dir.path()).unwrap().len(), 1, "kept");
        // Asked to: overwritten.
        retry_entry(&dyn_store, &entry, &m, PLAN, false, None)
            .await
            .unwrap();
        assert_eq!(&store.body("k").unwrap()[..], b"mine");

        // A new file whose key is still free goes up; one taken since is refused.
        let new = kept_replacing(dir.path(), "b", "n", b"new", &opts, Replaces::Nothing);
        let m = new.manifest.clone().unwrap();
        retry_entry(&dyn_store, &new, &m, PLAN, true, None)
            .await
            .unwrap();
        assert_eq!(&store.body("n").unwrap()[..], b"new");
    }

    #[tokio::test]
    async fn a_retry_uploads_the_bytes_and_metadata_then_removes_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemStore::new());
        store.insert("k", "old");
        let mut opts = PutOptions {
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        opts.metadata.insert("mode".into(), "33152".into());
        opts.metadata.insert("mtime".into(), "1700000000".into());
        // Larger than one part: a multipart upload.
        let big: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 251) as u8).collect();
        let entry = kept(dir.path(), "b", "k", &big, &opts);
        let m = entry.manifest.clone().unwrap();
        let dyn_store = store.clone() as Arc<dyn ObjectStore>;
        let line = retry_entry(&dyn_store, &entry, &m, PLAN, true, None)
            .await
            .unwrap();
        assert!(
            line.starts_with("uploaded s3://b/k (6291456 bytes) from "),
            "{line}"
        );
        assert_eq!(store.body("k").unwrap(), &big[..]);
        let meta = store.head("k").await.unwrap();
        assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
        assert_eq!(meta.metadata.get("mode").map(String::as_str), Some("33152"));
        assert!(salvage::list(dir.path()).unwrap().is_empty(), "removed");
    }

    #[tokio::test]
    async fn a_failed_retry_keeps_the_entry_and_says_so_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemStore::new());
        store.fail("put", true);
        let entry = kept(dir.path(), "b", "k", b"bytes", &PutOptions::default());
        let m = entry.manifest.clone().unwrap();
        let dyn_store = store.clone() as Arc<dyn ObjectStore>;
        let err = retry_entry(&dyn_store, &entry, &m, PLAN, true, None)
            .await
            .unwrap_err();
        let line = err.to_string();
        assert!(
            line.contains("upload of s3://b/k failed again") && !line.contains('\n'),
            "{line}"
        );
        assert!(!line.contains("FsError") && !line.contains("{"), "{line}");
        assert_eq!(salvage::list(dir.path()).unwrap().len(), 1, "kept");
        assert!(store.body("k").is_none());
    }

    #[tokio::test]
    async fn unknown_ids_and_unreadable_entries_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let bad = salvage::failed_dir(dir.path()).join("20240101T000000Z-bad");
        std::fs::create_dir_all(&bad).unwrap();
        let outcomes = retry(
            dir.path(),
            &["nope".into(), "20240101T000000Z-bad".into()],
            PLAN,
            false,
            |_| S3Settings::new(),
        )
        .await;
        let lines: Vec<String> = outcomes
            .into_iter()
            .map(|o| o.unwrap_err().to_string())
            .collect();
        assert!(lines[0].starts_with("no failed upload 'nope'"), "{lines:?}");
        assert!(
            lines[1].contains("not retried") && lines[1].contains("data"),
            "{lines:?}"
        );
        let empty = tempfile::tempdir().unwrap();
        let outcomes = retry(empty.path(), &[], PLAN, false, |_| S3Settings::new()).await;
        assert!(outcomes[0]
            .as_ref()
            .unwrap()
            .starts_with("no failed uploads in"));
    }

    #[test]
    fn the_notice_counts_all_and_names_this_buckets_share() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(notice(dir.path(), "b", true), None);
        assert_eq!(list_lines(dir.path()).unwrap().len(), 1);
        kept(dir.path(), "b", "x", b"1", &PutOptions::default());
        kept(dir.path(), "other", "y", b"22", &PutOptions::default());
        let note = notice(dir.path(), "b", false).unwrap();
        assert!(
            note.starts_with("2 failed uploads (1 for bucket 'b') are waiting in "),
            "{note}"
        );
        assert!(note.contains(&format!(
            "'s3mount --retry-failed-uploads --cache-dir {}'",
            dir.path().display()
        )));
        let lines = list_lines(dir.path()).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines
            .iter()
            .any(|l| l.contains("s3://other/y  2 bytes  ") && l.ends_with("connection refused")));
    }

    #[test]
    fn the_command_line_wins_over_the_manifest() {
        let origin = Origin {
            bucket: "b".into(),
            endpoint_url: Some("http://127.0.0.1:1".into()),
            region: Some("eu-west-1".into()),
            force_path_style: true,
            ..Default::default()
        };
        let m = Manifest::new(&origin, "k", 1, &PutOptions::default(), "e");
        let s = settings_for(&S3Settings::new(), &m);
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert!(s.force_path_style);
        let mine = S3Settings {
            endpoint_url: Some("http://127.0.0.1:2".into()),
            ..S3Settings::new()
        };
        let s = settings_for(&mine, &m);
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:2"));
    }
}
