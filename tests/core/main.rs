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
use s3mount::fs::inode::ROOT_INO;
use s3mount::fs::S3Fs;
use s3mount::storage::{ObjectStore, StoreError};

/// S3's smallest part, the part size of these tests (multipart from 5 MiB on).
pub const PART: u64 = 5 << 20;

/// The core over `store` with a long metadata TTL (no revalidation during a test) and
/// 5 MiB parts.
pub fn fs_over(store: Arc<dyn ObjectStore>) -> S3Fs {
    let config = FsConfig {
        metadata_ttl: Duration::from_secs(60),
        write: WriteConfig {
            part_size: PART,
            ..WriteConfig::default()
        },
        ..FsConfig::default()
    };
    S3Fs::new(store, config)
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
