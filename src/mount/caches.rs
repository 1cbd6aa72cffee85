//! The caches of a mount, opened, attached and stopped together: the `--cache` directory
//! (blocks and metadata), the `--cache-xz` shared bucket, in the order a read asks them.
//!
//! Design note: the local directory is opened (and locked) before connecting to S3, so a
//! directory in use fails the mount at once; the shared bucket is opened after the source
//! bucket's checks (`shared.rs`). At unmount, queued writes are flushed: the disk's and the
//! metadata's in full, the shared bucket's within [`SHARED_FLUSH_LIMIT`].

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;
use tracing::warn;

use crate::config::FsConfig;
use crate::data::disk_cache::meta::{meta_bound, MetaCache};
use crate::data::disk_cache::DiskCache;
use crate::data::shared_cache::SharedCache;
use crate::data::tier::BlockTier;
use crate::fs::S3Fs;
use crate::startup::StartupError;
use crate::storage::ObjectStore;

/// How long the blocks queued for the shared tier may take to be written at unmount.
const SHARED_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// The caches a mount was asked for; each is `None` when not.
#[derive(Default)]
pub(super) struct Caches {
    /// `--cache DIR`: blocks on local disk.
    disk: Option<Arc<DiskCache>>,
    /// Each key's last headers, in the same directory.
    meta: Option<Arc<MetaCache>>,
    /// `--cache-xz BUCKET`.
    pub(super) shared: Option<Arc<SharedCache>>,
}

impl Caches {
    /// Opens (and locks) the `--cache` directory, when there is one. A metadata store that
    /// cannot be opened is logged and left out: the mount works without it.
    pub(super) fn open_local(config: &FsConfig) -> Result<Caches, StartupError> {
        let Some(dc) = &config.read.disk_cache else {
            return Ok(Caches::default());
        };
        let disk = DiskCache::open(dc)?;
        let meta = MetaCache::open(&dc.dir, &dc.source, meta_bound(disk.max_bytes()))
            .inspect_err(|e| warn!(dir = %dc.dir.display(), "metadata cache unavailable: {e}"))
            .ok();
        Ok(Caches {
            disk: Some(disk),
            meta,
            shared: None,
        })
    }

    /// The block tiers in the order a read asks them: the local disk, then the shared bucket
    /// (the source comes after both).
    fn tiers(&self) -> Vec<Arc<dyn BlockTier>> {
        let disk = self.disk.iter().map(|d| d.clone() as Arc<dyn BlockTier>);
        let shared = self.shared.iter().map(|s| s.clone() as Arc<dyn BlockTier>);
        disk.chain(shared).collect()
    }

    /// The filesystem over `store`, with these caches attached.
    pub(super) fn filesystem(&self, store: Arc<dyn ObjectStore>, config: FsConfig) -> Arc<S3Fs> {
        let fs = Arc::new(S3Fs::with_tiers(store, config, self.tiers()));
        if let Some(meta) = &self.meta {
            fs.set_meta_cache(meta.clone());
        }
        fs
    }

    /// Writes out what is queued, at unmount.
    pub(super) fn flush_and_stop(&self, runtime: &Runtime) {
        if let Some(disk) = &self.disk {
            disk.flush_and_stop();
        }
        if let Some(meta) = &self.meta {
            meta.flush_and_stop();
        }
        if let Some(shared) = &self.shared {
            runtime.block_on(shared.flush_and_stop(SHARED_FLUSH_LIMIT));
        }
    }
}
