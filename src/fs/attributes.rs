//! Attribute changes in one place: chmod, chown, utimes, truncate, and extended attributes.
//!
//! Design note: POSIX attributes are kept as s3fs keeps them (see [`super::attr`]). On a file
//! with unsaved writes a change rides along with the upload; otherwise it is applied by
//! copying the object onto itself with `MetadataDirective: REPLACE`, which keeps its content,
//! content type and tags. A directory keeps its attributes on its marker object, made if
//! missing. Tags use Get/PutObjectTagging. S3's 2 KB limit on user metadata is checked before
//! anything is sent (E2BIG), so a change is never half applied.

use std::collections::HashMap;
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
use super::inode::{AttrSource, Inode, TagSet};
use super::namespace::Namespace;
use super::s3fs_xattr::{self, Class, Xattrs};
use super::writes::Writes;
use super::xattr::{self, Target};
use super::Caller;
use crate::config::FsConfig;
use crate::error::{FsError, FsResult};
use crate::storage::{ErrorKind, ObjectMeta, ObjectStore, PutOptions};

mod s3_ops;

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
        let etag = self.store.put(&marker, Bytes::new(), &opts).await?;
        self.ns.note_attrs(node.ino, &opts);
        self.marker_written(node.ino, etag, &opts);
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
        self.ns.refresh_written(&node, Arc::new(meta));
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

    /// The headers `node`'s attributes are read from: a file's `HeadObject` answer, a
    /// directory's marker's (kept on the inode for the TTL). `None` when S3 has none: a file
    /// created here and not uploaded yet, a directory without a marker (or the bucket's root).
    async fn headers_of(&self, node: &Inode) -> FsResult<Option<Arc<ObjectMeta>>> {
        if !node.is_dir() {
            return match self.meta_of(node).await {
                Err(e) if e.errno == libc::ENOENT && self.writes.is_local(node.ino) => Ok(None),
                other => other.map(Some),
            };
        }
        super::inherit::dir_headers(&*self.store, &self.ns, node).await
    }

    /// After directory `ino`'s marker was written with `opts` (ETag `etag`): it has one, and
    /// its headers are those.
    fn marker_written(&self, ino: u64, etag: String, opts: &PutOptions) {
        if let Some(n) = self.ns.table().get_mut(ino) {
            n.source = AttrSource::Headers;
            n.stat.etag = Some(etag.clone());
            n.stat.modified = None;
            n.meta = Some(super::inherit::written_marker(
                etag,
                opts,
                SystemTime::now(),
            ));
        }
    }

    /// Whether `node` may answer ACL queries with "none" without asking S3 (`ls -l` asks of
    /// every entry): a file known only from a listing whose attributes the kernel takes as
    /// they are (`--listing-attributes`): its ACL, like its mode and owner, is then unknown.
    fn acl_unknown_is_none(&self, node: &Inode) -> bool {
        !node.is_dir() && node.is_partial() && self.ns.attr_known(node)
    }

    /// The `user.s3.*` attributes in `meta`: a file's facts, metadata and (`with_tags`) tags;
    /// a directory's marker's metadata.
    async fn scheme_attrs(
        &self,
        node: &Inode,
        meta: &ObjectMeta,
        with_tags: bool,
    ) -> FsResult<Vec<(String, Vec<u8>)>> {
        if node.is_dir() {
            return Ok(xattr::metadata_attrs(&meta.metadata));
        }
        let tags = match with_tags {
            true => self.tags_of(node).await?,
            false => Arc::new(Vec::new()),
        };
        Ok(xattr::all(meta, &tags))
    }

    /// The metadata the pending upload of file `ino` will carry, if it has unsaved writes.
    async fn pending_metadata(&self, ino: u64) -> Option<HashMap<String, String>> {
        let state = self.writes.get(ino)?;
        let st = state.lock().await;
        st.is_dirty().then(|| st.opts.metadata.clone())
    }

    /// The value of extended attribute `name` of `ino`.
    pub async fn getxattr(&self, ino: u64, name: &OsStr) -> FsResult<Vec<u8>> {
        let name = name.to_str().unwrap_or("");
        let node = self.ns.node(ino)?;
        if s3_ops::handles(name) {
            return self.s3_op_get(&node, name).await;
        }
        match s3fs_xattr::classify(name) {
            Class::Scheme => {
                let Some(meta) = self.headers_of(&node).await? else {
                    return Err(no_data());
                };
                let all = self
                    .scheme_attrs(&node, &meta, xattr::needs_tags(name))
                    .await?;
                all.into_iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v)
                    .ok_or_else(no_data)
            }
            Class::Stored if is_acl(name) && self.acl_unknown_is_none(&node) => Err(no_data()),
            Class::Stored => {
                let pending = self.pending_metadata(ino).await;
                let meta = match pending {
                    Some(_) => None,
                    None => self.headers_of(&node).await?,
                };
                stored_attrs(pending, meta.as_deref())
                    .remove(name)
                    .ok_or_else(no_data)
            }
            Class::Unsupported => Err(no_data()),
        }
    }

    /// The NUL-separated list of extended attribute names of `ino`: the `user.s3.*` ones,
    /// then those kept in `x-amz-meta-xattr`.
    pub async fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        let node = self.ns.node(ino)?;
        let meta = self.headers_of(&node).await?;
        let scheme = match &meta {
            Some(m) => self.scheme_attrs(&node, m, true).await?,
            None => Vec::new(),
        };
        let stored = stored_attrs(self.pending_metadata(ino).await, meta.as_deref());
        let names = scheme.iter().map(|(n, _)| n.as_str());
        Ok(xattr::name_list(
            names.chain(stored.keys().map(String::as_str)),
        ))
    }

    /// The node `ino`, which can take attributes: not on a read-only mount, nor the bucket's
    /// root (no marker object to keep them on).
    fn xattr_target(&self, ino: u64) -> FsResult<Inode> {
        self.config.check_writable()?;
        let node = self.ns.node(ino)?;
        if node.is_dir() && node.key.is_empty() {
            return Err(FsError::new(
                libc::ENOTSUP,
                "the bucket's root has no marker object to keep attributes on",
            ));
        }
        Ok(node)
    }

    /// Edits the user metadata of `node`: a directory's marker (made if missing), or a file
    /// (see [`Self::rewrite_metadata`]). `edit` gets the options and the node's `st_mode`.
    async fn edit_metadata(
        &self,
        node: &Inode,
        edit: impl FnOnce(&mut PutOptions, u32) -> FsResult<()>,
    ) -> FsResult<()> {
        let mode = type_bits(node) | self.ns.attr_of(node).perm as u32;
        if node.is_dir() {
            self.edit_marker(node, |opts| edit(opts, mode)).await
        } else {
            self.rewrite_metadata(node.ino, |opts| edit(opts, mode))
                .await
        }
    }

    /// Sets extended attribute `name` of `ino`: a `user.s3.*` one (see [`super::xattr`]), or
    /// any other `user.*` one or a POSIX ACL, kept in `x-amz-meta-xattr`.
    pub async fn setxattr(&self, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> FsResult<()> {
        if let Some(name) = name.to_str().filter(|n| s3_ops::handles(n)) {
            return self.s3_op_set(ino, name, value).await;
        }
        let node = self.xattr_target(ino)?;
        let name = name.to_str().unwrap_or("");
        if s3fs_xattr::classify(name) == Class::Stored {
            return self
                .edit_metadata(&node, |opts, mode| {
                    s3fs_xattr::set(opts, name, value, flags, mode)
                })
                .await;
        }
        let target = xattr::target(name)?;
        let value = std::str::from_utf8(value)
            .map_err(|_| FsError::new(libc::EINVAL, "S3 tags and metadata are UTF-8 text"))?;
        match target {
            Target::Tag(_) | Target::ContentType if node.is_dir() => Err(not_on_dirs()),
            Target::Tag(k) => self.edit_tag(ino, k, Some(value), flags).await,
            Target::Meta(k) => {
                self.edit_metadata(&node, |opts, _| {
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
        if let Some(name) = name.to_str().filter(|n| s3_ops::handles(n)) {
            return Err(FsError::new(
                libc::EPERM,
                format!("{name} cannot be removed"),
            ));
        }
        let node = self.xattr_target(ino)?;
        let name = name.to_str().unwrap_or("");
        if s3fs_xattr::classify(name) == Class::Stored {
            if node.is_dir() && self.headers_of(&node).await?.is_none() {
                return Err(no_data()); // no marker: nothing to remove, none to make
            }
            return self
                .edit_metadata(&node, |opts, _| s3fs_xattr::remove(opts, name))
                .await;
        }
        match xattr::target(name)? {
            Target::Tag(_) | Target::ContentType if node.is_dir() => Err(not_on_dirs()),
            Target::Tag(k) => self.edit_tag(ino, k, None, 0).await,
            Target::Meta(k) => {
                self.edit_metadata(&node, |opts, _| {
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

/// The attributes kept in `x-amz-meta-xattr`: in the `pending` upload's metadata when there
/// is one (a file with unsaved writes), else in the headers `meta` (if any).
fn stored_attrs(pending: Option<HashMap<String, String>>, meta: Option<&ObjectMeta>) -> Xattrs {
    match (pending, meta) {
        (Some(p), _) => s3fs_xattr::read(&p),
        (None, Some(m)) => s3fs_xattr::read(&m.metadata),
        (None, None) => Xattrs::new(),
    }
}

fn is_acl(name: &str) -> bool {
    name == s3fs_xattr::ACL_ACCESS || name == s3fs_xattr::ACL_DEFAULT
}

fn not_on_dirs() -> FsError {
    FsError::new(
        libc::ENOTSUP,
        "directories take metadata and extended attributes, not tags or a content type",
    )
}
