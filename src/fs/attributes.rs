//! Attribute changes in one place: chmod, chown, utimes, truncate, and extended attributes.
//!
//! Design note: POSIX attributes are kept as s3fs keeps them (see [`super::attr`]). On a file
//! with unsaved writes a change rides along with the upload; otherwise it is applied by
//! copying the object onto itself with `MetadataDirective: REPLACE`, which keeps its content,
//! content type and tags. A directory keeps its attributes on its marker object, made if
//! missing. Tags use Get/PutObjectTagging. S3's 2 KB limit on user metadata is checked before
//! anything is sent (E2BIG), so a change is never half applied.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use fuser::FileAttr;
use tracing::debug;

use super::attr::{
    apply_change, check_metadata_size, put_options_of, stamp_change, type_bits, AttrChange,
};
use super::files::without_privileges;
use super::files::Files;
use super::inode::ROOT_INO;
use super::inode::{Inode, Kind, TagSet};
use super::namespace::Namespace;
use super::writes::Writes;
use super::xattr::{self, Target};
use super::Caller;
use crate::config::FsConfig;
use crate::error::{FsError, FsResult};
use crate::storage::{ErrorKind, ObjectMeta, ObjectStore, PutOptions};

/// The attribute component.
pub struct Attributes {
    store: Arc<dyn ObjectStore>,
    config: Arc<FsConfig>,
    ns: Arc<Namespace>,
    writes: Arc<Writes>,
    files: Arc<Files>,
}

impl Attributes {
    /// The attribute component over its collaborators.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        config: Arc<FsConfig>,
        ns: Arc<Namespace>,
        writes: Arc<Writes>,
        files: Arc<Files>,
    ) -> Self {
        Attributes {
            store,
            config,
            ns,
            writes,
            files,
        }
    }

    /// Applies `setattr`: a size change goes through the staged file; mode, owner and times
    /// are kept in s3fs's metadata.
    pub async fn setattr(&self, ino: u64, change: AttrChange) -> FsResult<FileAttr> {
        if let Some(size) = change.size {
            self.truncate(ino, size).await?;
        }
        if change.touches_metadata() {
            self.change_metadata(ino, &change).await?;
        }
        self.ns.attr(ino)
    }

    /// truncate(2): through the open staged file, or a short-lived one committed at once.
    async fn truncate(&self, ino: u64, size: u64) -> FsResult<()> {
        if self.ns.node(ino)?.is_dir() {
            return Err(FsError::new(libc::EISDIR, "is a directory"));
        }
        let (state, temporary) = match self.writes.get(ino) {
            Some(s) => (s, None),
            None => {
                let fh = self
                    .files
                    .open_for_write(ino, libc::O_WRONLY, Caller::default())
                    .await?;
                let state = self.writes.get(ino).expect("opened for writing");
                (state, Some(fh))
            }
        };
        let result = async {
            let mut st = state.lock().await;
            st.truncate(size).await?;
            self.ns.note_local_size(ino, size);
            if temporary.is_some() {
                self.files.commit(&mut st).await?;
            }
            Ok::<_, FsError>(())
        }
        .await;
        if let Some(fh) = temporary {
            self.files.release(fh).await;
        }
        result
    }

    async fn change_metadata(&self, ino: u64, change: &AttrChange) -> FsResult<()> {
        let node = self.ns.node(ino)?;
        let perm = self.ns.attr_of(&node).perm as u32;
        let file_type = type_bits(&node);
        let mut change = *change;
        if change.mode.is_none() && (change.uid.is_some() || change.gid.is_some()) && !node.is_dir()
        {
            // chown clears set-user-ID and set-group-ID, as on a local disk.
            let cleared = without_privileges(perm);
            change.mode = (cleared != perm).then_some(cleared);
        }
        let apply = |opts: &mut PutOptions| {
            apply_change(opts, &change, file_type, perm, &node.stat);
            Ok(())
        };
        if node.ino == ROOT_INO {
            return self.change_root(&change);
        }
        match node.is_dir() {
            true => self.edit_marker(&node, apply).await,
            false => self.rewrite_metadata(ino, apply).await,
        }
    }

    /// The bucket root has no marker object: its attributes live as long as the mount.
    fn change_root(&self, change: &AttrChange) -> FsResult<()> {
        let mut table = self.ns.table();
        let Some(root) = table.get_mut(ROOT_INO) else {
            return Ok(());
        };
        let st = &mut root.stat;
        if let Some(m) = change.mode {
            st.mode = Some(libc::S_IFDIR | (m & 0o7777));
        }
        st.uid = change.uid.or(st.uid);
        st.gid = change.gid.or(st.gid);
        st.mtime = change.mtime.unwrap_or(st.mtime);
        st.atime = change.atime.unwrap_or(st.atime);
        st.ctime = std::time::SystemTime::now();
        Ok(())
    }

    /// Edits the metadata of directory `node`'s marker object (made if missing).
    async fn edit_marker(
        &self,
        node: &Inode,
        edit: impl FnOnce(&mut PutOptions) -> FsResult<()>,
    ) -> FsResult<()> {
        let marker = node.key.clone();
        if marker.is_empty() {
            return Ok(()); // the bucket root has nowhere to keep them
        }
        let mut opts = match self.store.head(&marker).await {
            Ok(meta) => put_options_of(&meta),
            Err(e) if e.is_not_found() => PutOptions::default(),
            Err(e) => return Err(e.into()),
        };
        edit(&mut opts)?;
        stamp_change(&mut opts, &node.stat, SystemTime::now());
        check_metadata_size(&opts)?;
        self.store.put(&marker, Bytes::new(), &opts).await?;
        self.ns.note_attrs(node.ino, &opts);
        Ok(())
    }

    /// Changes the metadata (user metadata, content type) of file `ino` with `edit`: into the
    /// pending upload when the file has unsaved writes, else by copying the object onto
    /// itself with `MetadataDirective: REPLACE` (content, tags and the rest are kept).
    pub async fn rewrite_metadata(
        &self,
        ino: u64,
        edit: impl FnOnce(&mut PutOptions) -> FsResult<()>,
    ) -> FsResult<()> {
        let node = self.ns.node(ino)?;
        let now = SystemTime::now();
        if let Some(state) = self.writes.get(ino) {
            let mut st = state.lock().await;
            if st.is_dirty() {
                let mut opts = st.opts.clone();
                edit(&mut opts)?;
                stamp_change(&mut opts, &node.stat, now);
                check_metadata_size(&opts)?;
                self.ns.note_attrs(ino, &opts);
                st.set_opts(opts);
                return Ok(());
            }
        }
        let meta = self.store.head(&node.key).await?;
        let mut opts = put_options_of(&meta);
        edit(&mut opts)?;
        stamp_change(&mut opts, &node.stat, now);
        check_metadata_size(&opts)?;
        let etag = self.store.copy(&node.key, &node.key, Some(&opts)).await?;
        let meta = ObjectMeta {
            etag: etag.clone(),
            metadata: opts.metadata.clone(),
            content_type: opts.content_type.clone(),
            ..meta
        };
        self.ns.refresh(&node, Arc::new(meta));
        if let Some(state) = self.writes.get(ino) {
            let mut st = state.lock().await;
            st.opts = opts;
            if let Some(b) = &mut st.base {
                b.etag = etag;
            }
        }
        Ok(())
    }

    /// The `HeadObject` answer for `node`, from the inode if still valid.
    async fn meta_of(&self, node: &Inode) -> FsResult<Arc<ObjectMeta>> {
        if let Some(meta) = &node.meta {
            if node.valid_until > Instant::now() && Some(&meta.etag) == node.stat.etag.as_ref() {
                return Ok(meta.clone());
            }
        }
        let meta = Arc::new(self.store.head(&node.key).await?);
        if !self.writes.is_local(node.ino) {
            // A file being written keeps the size and ETag its writes made.
            self.ns.refresh(node, meta.clone());
        }
        Ok(meta)
    }

    /// The tag set of `node`, from the inode if read within the TTL.
    async fn tags_of(&self, node: &Inode) -> FsResult<TagSet> {
        if let Some((until, tags)) = &node.tags {
            if *until > Instant::now() {
                return Ok(tags.clone());
            }
        }
        let tags = match self.store.get_tags(&node.key).await {
            Ok(t) => Arc::new(t),
            Err(e) if e.kind() == ErrorKind::NotImplemented => {
                debug!("tagging not supported by the server: {}", e.message());
                Arc::new(Vec::new())
            }
            Err(e) => return Err(e.into()),
        };
        self.remember_tags(node.ino, tags.clone());
        Ok(tags)
    }

    fn remember_tags(&self, ino: u64, tags: TagSet) {
        let until = self.ns.valid_until();
        if let Some(n) = self.ns.table().get_mut(ino) {
            n.tags = Some((until, tags));
        }
    }

    /// The S3 facts, metadata and tags of `ino` as attributes; `None` for a file created
    /// here and not uploaded yet (it has no S3 attributes so far).
    async fn object_attrs(
        &self,
        ino: u64,
        with_tags: bool,
    ) -> FsResult<Option<Vec<(String, Vec<u8>)>>> {
        let node = self.ns.node(ino)?;
        if node.is_dir() {
            return Ok(None);
        }
        let meta = match self.meta_of(&node).await {
            Err(e) if e.errno == libc::ENOENT && self.writes.is_local(ino) => return Ok(None),
            other => other?,
        };
        let tags = match with_tags {
            true => self.tags_of(&node).await?,
            false => Arc::new(Vec::new()),
        };
        Ok(Some(xattr::all(&meta, &tags)))
    }

    /// The value of extended attribute `name` of `ino`.
    pub async fn getxattr(&self, ino: u64, name: &OsStr) -> FsResult<Vec<u8>> {
        let name = name.to_str().unwrap_or("");
        if !name.starts_with("user.s3.") {
            return Err(no_data());
        }
        let all = self.object_attrs(ino, xattr::needs_tags(name)).await?;
        all.into_iter()
            .flatten()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(no_data)
    }

    /// The NUL-separated list of extended attribute names of `ino`.
    pub async fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        let all = self.object_attrs(ino, true).await?.unwrap_or_default();
        Ok(xattr::name_list(all.iter().map(|(n, _)| n.as_str())))
    }

    /// The file (or symlink) `ino`, which can take S3 attributes.
    fn xattr_target(&self, ino: u64) -> FsResult<Inode> {
        if self.config.read_only {
            return Err(FsError::read_only());
        }
        let node = self.ns.node(ino)?;
        if node.kind() == Kind::Dir {
            return Err(FsError::new(
                libc::ENOTSUP,
                "directories have no S3 attributes",
            ));
        }
        Ok(node)
    }

    /// Sets extended attribute `name` of `ino` (see [`super::xattr`] for what can be set).
    pub async fn setxattr(&self, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> FsResult<()> {
        self.xattr_target(ino)?;
        let name = name.to_str().unwrap_or("");
        let target = xattr::target(name)?;
        let value = std::str::from_utf8(value)
            .map_err(|_| FsError::new(libc::EINVAL, "S3 tags and metadata are UTF-8 text"))?;
        match target {
            Target::Tag(k) => self.edit_tag(ino, k, Some(value), flags).await,
            Target::Meta(k) => {
                self.rewrite_metadata(ino, |opts| {
                    xattr::check_flags(opts.metadata.contains_key(&k), flags)?;
                    opts.metadata.insert(k, value.to_string());
                    Ok(())
                })
                .await
            }
            Target::ContentType => {
                self.rewrite_metadata(ino, |opts| {
                    xattr::check_flags(opts.content_type.is_some(), flags)?;
                    opts.content_type = Some(value.to_string());
                    Ok(())
                })
                .await
            }
        }
    }

    /// Removes extended attribute `name` of `ino`.
    pub async fn removexattr(&self, ino: u64, name: &OsStr) -> FsResult<()> {
        self.xattr_target(ino)?;
        let name = name.to_str().unwrap_or("");
        match xattr::target(name)? {
            Target::Tag(k) => self.edit_tag(ino, k, None, 0).await,
            Target::Meta(k) => {
                self.rewrite_metadata(ino, |opts| {
                    opts.metadata.remove(&k).map(|_| ()).ok_or_else(no_data)
                })
                .await
            }
            Target::ContentType => {
                self.rewrite_metadata(ino, |opts| {
                    opts.content_type.take().map(|_| ()).ok_or_else(no_data)
                })
                .await
            }
        }
    }

    /// Sets tag `key` (or removes it, with `value = None`) through Get/PutObjectTagging.
    async fn edit_tag(&self, ino: u64, key: &str, value: Option<&str>, flags: i32) -> FsResult<()> {
        self.files.commit_pending(ino).await?;
        let node = self.ns.node(ino)?;
        let mut tags = self.store.get_tags(&node.key).await?;
        xattr::edit_tags(&mut tags, key, value, flags)?;
        self.store.put_tags(&node.key, &tags).await?;
        if let Some(state) = self.writes.get(ino) {
            state.lock().await.set_tags(tags.clone());
        }
        self.remember_tags(ino, Arc::new(tags));
        Ok(())
    }
}

fn no_data() -> FsError {
    FsError::new(libc::ENODATA, "no such attribute")
}
