//! In-process tests of the filesystem core ([`S3Fs`]) through its public API, over
//! [`MemStore`] — fast enough to run hundreds of cases, with no mount and no server:
//!
//! * `faults`: the core over [`FaultStore`]`<MemStore>`: failed uploads reach `flush` with the
//!   previous object intact, a failing or broken GET reaches `read` as EIO, never as other
//!   bytes;
//! * `model`: proptest-generated operation sequences against a reference model, shrunk to a
//!   minimal failing sequence when one diverges (the mount-level model is tests/model.rs).

mod faults;
mod model;

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use s3mount::config::{FsConfig, WriteConfig};
use s3mount::data::salvage::staging_files;
use s3mount::fs::inode::ROOT_INO;
use s3mount::fs::S3Fs;
use s3mount::storage::{ObjectStore, StoreError};

/// S3's smallest part, the part size of these tests (multipart from 5 MiB on).
pub const PART: u64 = 5 << 20;

/// The core over `store` with a long metadata TTL (no revalidation during a test), 5 MiB
/// parts, and a staging directory of its own.
pub fn fs_over(store: Arc<dyn ObjectStore>) -> TestFs {
    let staging = StagingDir(
        tempfile::Builder::new()
            .prefix("s3mount-core-staging-")
            .tempdir()
            .expect("staging tempdir"),
    );
    let config = FsConfig {
        metadata_ttl: Duration::from_secs(60),
        write: WriteConfig {
            part_size: PART,
            cache_dir: Some(staging.0.path().to_path_buf()),
            ..WriteConfig::default()
        },
        ..FsConfig::default()
    };
    TestFs {
        fs: S3Fs::new(store, config),
        staging,
    }
}

/// The core with a staging directory of its own (`--cache-dir`), removed with it; derefs to
/// the core.
pub struct TestFs {
    // Field order matters: the core is dropped before its staging directory.
    pub fs: S3Fs,
    pub staging: StagingDir,
}

impl std::ops::Deref for TestFs {
    type Target = S3Fs;
    fn deref(&self) -> &S3Fs {
        &self.fs
    }
}

/// A temporary staging directory that, when dropped (after the core), asserts that no staging
/// file was left behind: each was uploaded and deleted, or kept under `failed-uploads/` with its
/// manifest.
pub struct StagingDir(pub tempfile::TempDir);

impl Drop for StagingDir {
    fn drop(&mut self) {
        let left = staging_files(self.0.path());
        if !std::thread::panicking() {
            assert!(left.is_empty(), "staging files left behind: {left:?}");
        }
    }
}

/// The error injected requests fail with: what a server failing after all retries gives.
pub fn injected() -> StoreError {
    StoreError::server("injected fault")
}

/// The inode of `name` in the root directory.
pub async fn lookup_root(fs: &S3Fs, name: &str) -> u64 {
    fs.lookup(ROOT_INO, OsStr::new(name)).await.unwrap().ino.0
}

/// Reads `len` bytes at `off` through `fh`, call by call (the kernel's 128 KiB at most each).
pub async fn read_all(fs: &S3Fs, fh: u64, len: usize) -> Result<Vec<u8>, i32> {
    let mut got = Vec::new();
    while got.len() < len {
        let want = (len - got.len()).min(128 << 10) as u32;
        let chunk = fs
            .read(fh, got.len() as u64, want)
            .await
            .map_err(|e| e.errno)?;
        if chunk.is_empty() {
            break;
        }
        got.extend_from_slice(&chunk);
    }
    Ok(got)
}

/// Deterministic bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ seed)
        .collect()
}
