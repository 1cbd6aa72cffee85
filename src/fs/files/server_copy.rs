//! `copy_file_range(2)` between two files of the mount, as a copy on the server.
//!
//! Design note: what `cp`, `shutil.copyfile` and others call to copy a file becomes one
//! `CopyObject` (or `UploadPartCopy` parts above 5 GiB) when the call covers the whole source
//! object and the destination holds nothing yet; see [`StagedFile::copy_from`]. Anything else
//! (a range, a destination with bytes in it, a source whose unsaved writes cannot be saved
//! first, a failed copy) answers `EOPNOTSUPP`, on which the kernel copies the bytes itself
//! through reads and writes of the mount (it would stop asking for good after `ENOSYS`). A
//! source with unsaved writes is saved first, so the copy has the bytes the caller sees.
//!
//! The kernel cuts a copy into calls of at most `MAX_RW_COUNT` bytes (2 GiB less a page):
//! a first call from offset 0 of exactly that length is taken as the whole file, and the
//! calls that follow find their bytes in place (see [`StagedFile::already_copied`]).

use tracing::debug;

use super::{Files, OpenFile};
use crate::data::upload::BaseVersion;
use crate::error::{FsError, FsResult};
use crate::fs::staged::StagedFile;

/// The longest `copy_file_range` the kernel passes on in one call (`MAX_RW_COUNT`).
const KERNEL_CHUNK: u64 = (i32::MAX as u64) & !4095;

/// The answer that makes the kernel copy through reads and writes instead.
fn fall_back(why: &str) -> FsError {
    FsError::new(
        libc::EOPNOTSUPP,
        format!("copied by the kernel instead: {why}"),
    )
}

impl Files {
    /// Copies `len` bytes at `off_in` of handle `fh_in` to `off_out` of handle `fh_out` on the
    /// server, or answers `EOPNOTSUPP` (see the module's note). Returns the bytes copied.
    pub async fn copy_file_range(
        &self,
        fh_in: u64,
        off_in: u64,
        fh_out: u64,
        off_out: u64,
        len: u64,
    ) -> FsResult<u32> {
        let input = self.file(fh_in)?;
        let output = self.file(fh_out)?;
        let OpenFile::Staged {
            state: dst,
            writable: true,
            ..
        } = &*output
        else {
            return Err(FsError::new(libc::EBADF, "not open for writing"));
        };
        let src_ino = match &*input {
            OpenFile::Read(handle) => handle.ino,
            OpenFile::Staged { state, .. } => state.lock().await.ino,
        };
        let dst_ino = dst.lock().await.ino;
        if src_ino == dst_ino {
            return Err(fall_back("a copy within one file"));
        }
        self.save_source(src_ino).await?;
        let node = self.ns.node(src_ino)?;
        let meta = self
            .store
            .head(&node.key)
            .await
            .map_err(|e| fall_back(&format!("the source's headers: {e}")))?;
        let src = BaseVersion {
            key: node.key.clone(),
            etag: meta.etag.clone(),
            size: meta.size,
        };
        let mut st = dst.lock().await;
        if let Some(n) = st.already_copied(&src, off_in, off_out, len) {
            debug!(key = %st.key, off_in, n, "bytes already copied on the server");
            return Ok(n as u32);
        }
        if !covers_whole(&src, off_in, off_out, len) || !st.takes_a_copy() || src.size == 0 {
            return Err(fall_back("not a whole object into an empty file"));
        }
        self.copy_into(&mut st, &src, meta.content_type).await?;
        Ok(len.min(src.size).min(u32::MAX as u64) as u32)
    }

    /// Saves unsaved writes of the source first, so the server has what the caller reads.
    async fn save_source(&self, ino: u64) -> FsResult<()> {
        let Some(state) = self.writes.get(ino) else {
            return Ok(());
        };
        let mut st = state.lock().await;
        if !st.is_dirty() {
            return Ok(());
        }
        if st.defers_flush() {
            return Err(fall_back("the source was truncated and not written yet"));
        }
        self.commit(&mut st)
            .await
            .map_err(|e| fall_back(&format!("the source could not be saved first: {e}")))
    }

    /// The copy itself, recorded in the inode table.
    async fn copy_into(
        &self,
        st: &mut StagedFile,
        src: &BaseVersion,
        content_type: Option<String>,
    ) -> FsResult<()> {
        match st.copy_from(src, content_type).await {
            Ok(meta) => {
                self.ns.record_commit(st.ino, &meta);
                Ok(())
            }
            Err(e) => Err(fall_back(&format!("the server-side copy failed: {e}"))),
        }
    }
}

/// Whether a call copies the whole of `src` to the start of the destination: the whole
/// length, or the kernel's first chunk of a larger file.
fn covers_whole(src: &BaseVersion, off_in: u64, off_out: u64, len: u64) -> bool {
    off_in == 0 && off_out == 0 && (len >= src.size || len == KERNEL_CHUNK)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::sync::Arc;

    use super::*;
    use crate::config::{FsConfig, WriteConfig};
    use crate::fs::inode::ROOT_INO;
    use crate::fs::test_fs::{test_fs, TestFs};
    use crate::storage::mem::MemStore;
    use crate::storage::{ObjectStore, PutOptions};

    fn fs_over(store: &Arc<MemStore>) -> TestFs {
        let config = FsConfig {
            write: WriteConfig {
                part_size: 5 << 20,
                ..WriteConfig::default()
            },
            ..FsConfig::default()
        };
        test_fs(store.clone() as Arc<dyn ObjectStore>, config)
    }

    /// The source opened for reading and a new file `name` created: their handles.
    async fn source_and_new(fs: &TestFs, name: &str) -> (u64, u64) {
        let src = fs.lookup(ROOT_INO, OsStr::new("src.bin")).await.unwrap();
        let (fh_in, _) = fs.open(src.ino.0, libc::O_RDONLY, 0).await.unwrap();
        let (_, fh_out) = fs
            .create(ROOT_INO, OsStr::new(name), 0o600, libc::O_WRONLY, 0)
            .await
            .unwrap();
        (fh_in, fh_out)
    }

    fn seeded() -> Arc<MemStore> {
        let store = Arc::new(MemStore::new());
        let opts = PutOptions {
            content_type: Some("application/x-test".into()),
            ..Default::default()
        };
        let tags = vec![("t".to_string(), "v".to_string())];
        store.insert_with("src.bin", vec![7u8; 3000], opts, tags);
        store
    }

    #[tokio::test]
    async fn a_whole_copy_into_a_new_file_is_one_copy_object_and_uploads_nothing_at_close() {
        let store = seeded();
        let fs = fs_over(&store);
        let (fh_in, fh_out) = source_and_new(&fs, "dst.bin").await;
        let n = fs
            .copy_file_range((fh_in, 0), (fh_out, 0), 1 << 30)
            .await
            .unwrap();
        assert_eq!(n, 3000);
        // The kernel's next call, at the end, and a repeat of the range: nothing more to do.
        let again = fs
            .copy_file_range((fh_in, 3000), (fh_out, 3000), 1 << 30)
            .await;
        assert_eq!(again.unwrap(), 0);
        fs.flush(fh_out, 0).await.unwrap();
        fs.release(fh_out).await;
        fs.release(fh_in).await;
        assert_eq!(store.body("dst.bin").unwrap(), vec![7u8; 3000]);
        assert_eq!(store.count("copy"), 1);
        assert_eq!((store.count("put"), store.count("upload_part")), (0, 0));
        let meta = store.head("dst.bin").await.unwrap();
        assert_eq!(meta.content_type.as_deref(), Some("application/x-test"));
        let mode: u32 = meta.metadata["mode"].parse().unwrap();
        assert_eq!(mode & 0o7777, 0o600, "the new file's own mode");
        assert!(meta.metadata.contains_key("mtime"));
        assert!(
            store.get_tags("dst.bin").await.unwrap().is_empty(),
            "no tags copied"
        );
    }

    #[tokio::test]
    async fn ranges_and_written_files_are_left_to_the_kernel() {
        let store = seeded();
        let fs = fs_over(&store);
        let (fh_in, fh_out) = source_and_new(&fs, "dst.bin").await;
        let fallback = |r: FsResult<u32>| r.unwrap_err().errno;
        let from_offset = fs.copy_file_range((fh_in, 10), (fh_out, 0), 100).await;
        assert_eq!(fallback(from_offset), libc::EOPNOTSUPP);
        let prefix = fs.copy_file_range((fh_in, 0), (fh_out, 0), 100).await;
        assert_eq!(fallback(prefix), libc::EOPNOTSUPP);
        fs.write(fh_out, 0, b"x").await.unwrap();
        let into_written = fs.copy_file_range((fh_in, 0), (fh_out, 0), 5000).await;
        assert_eq!(fallback(into_written), libc::EOPNOTSUPP);
        fs.release(fh_out).await;
        fs.release(fh_in).await;
        assert_eq!(store.count("copy"), 0);
        assert_eq!(store.body("dst.bin").unwrap(), &b"x"[..]);
    }

    #[tokio::test]
    async fn unsaved_writes_of_the_source_are_saved_before_the_copy() {
        let store = seeded();
        let fs = fs_over(&store);
        let src = fs.lookup(ROOT_INO, OsStr::new("src.bin")).await.unwrap();
        let (fh_in, _) = fs.open(src.ino.0, libc::O_RDWR, 0).await.unwrap();
        fs.write(fh_in, 0, b"NEW").await.unwrap();
        let (_, fh_out) = fs
            .create(ROOT_INO, OsStr::new("dst.bin"), 0o644, libc::O_WRONLY, 0)
            .await
            .unwrap();
        assert_eq!(
            fs.copy_file_range((fh_in, 0), (fh_out, 0), 3000)
                .await
                .unwrap(),
            3000
        );
        fs.release(fh_out).await;
        fs.release(fh_in).await;
        assert_eq!(&store.body("dst.bin").unwrap()[..4], b"NEW\x07");
        assert_eq!(store.count("copy"), 1);
    }

    fn src(size: u64) -> BaseVersion {
        BaseVersion {
            key: "k".into(),
            etag: "\"e\"".into(),
            size,
        }
    }

    #[test]
    fn only_whole_objects_from_the_start_are_copied_on_the_server() {
        assert!(covers_whole(&src(10), 0, 0, 10));
        assert!(covers_whole(&src(10), 0, 0, u64::MAX >> 1));
        assert!(!covers_whole(&src(10), 0, 0, 9), "a prefix");
        assert!(!covers_whole(&src(10), 1, 0, 9), "from an offset");
        assert!(!covers_whole(&src(10), 0, 1, 10), "to an offset");
        assert!(
            covers_whole(&src(5 << 30), 0, 0, KERNEL_CHUNK),
            "the kernel's first chunk"
        );
        assert!(!covers_whole(&src(5 << 30), 0, 0, 1 << 30));
    }
}
