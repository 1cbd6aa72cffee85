//! For unit tests: a filesystem whose staging directory is a fresh temp dir of its own, removed
//! with it, so no test leaves staging files or failed uploads in /tmp.
//!
//! Dropping a [`TestFs`] drops the filesystem first (deleting the staging files of files still
//! open), then asserts that no staging file is left in the directory (an upload that failed
//! leaves its copy under `failed-uploads/`, by design, and the directory is removed anyway).

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use super::S3Fs;
use crate::config::FsConfig;
use crate::data::salvage;
use crate::storage::ObjectStore;

/// An [`S3Fs`] with a staging directory of its own; derefs to the filesystem.
pub struct TestFs {
    // Field order matters: the filesystem is dropped before its staging directory.
    fs: S3Fs,
    staging: StagingDir,
}

impl TestFs {
    /// The staging directory (`--cache-dir`).
    pub fn staging_dir(&self) -> &Path {
        self.staging.0.path()
    }
}

impl Deref for TestFs {
    type Target = S3Fs;
    fn deref(&self) -> &S3Fs {
        &self.fs
    }
}

/// A temp dir that checks, when dropped, that no staging file was left in it.
pub struct StagingDir(tempfile::TempDir);

impl StagingDir {
    /// A fresh directory under the system temp dir.
    pub fn new() -> Self {
        StagingDir(
            tempfile::Builder::new()
                .prefix("s3mount-unit-staging-")
                .tempdir()
                .expect("staging tempdir"),
        )
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let left = salvage::staging_files(self.0.path());
        if !std::thread::panicking() {
            assert!(left.is_empty(), "staging files left behind: {left:?}");
        }
    }
}

/// `S3Fs::new(store, config)` staging in a directory of its own.
pub fn test_fs(store: Arc<dyn ObjectStore>, mut config: FsConfig) -> TestFs {
    let staging = StagingDir::new();
    config.write.cache_dir = Some(staging.path().to_path_buf());
    TestFs {
        fs: S3Fs::new(store, config),
        staging,
    }
}
