//! Changing the namespace: unlink, mkdir, rmdir, symlink and rename.
//!
//! Design note: S3 has no directories and no rename, so these are built from object calls:
//! - `mkdir` writes a `dir/` marker (as the S3 console and s3fs do) so empty directories
//!   persist; `rmdir` refuses (ENOTEMPTY) while any key lies under the prefix, then deletes the
//!   marker and the object that stands for the directory in s3fs's older forms (`dir` with
//!   `application/x-directory`, `dir_$folder$`) — asked for only when neither a listing nor a
//!   lookup told and the directory has no marker;
//! - `symlink` writes an object whose body is the target and whose `x-amz-meta-mode` carries
//!   `S_IFLNK`, as s3fs does, so links made by either tool read back in the other;
//! - `rename` of a file is CopyObject (metadata and tags come along) then DeleteObject; of a
//!   directory, the same for every key under its prefix, all copies before any delete. It is
//!   not atomic: a crash in the middle leaves both names, never neither.
//!
//! A file still open when it is unlinked or renamed keeps its content: its staged file is
//! downloaded first.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use fuser::FileAttr;
use futures::stream::{self, StreamExt};
use tracing::{debug, info};

use super::attr::{
    check_metadata_size, guess_content_type, initial_metadata, kind_from_mode, put_options_of,
    stamp_change,
};
use super::files::{new_owner, setgid_dir, Files};
use super::inherit;
use super::inode::{Entry, Inode, Kind, Stat};
use super::names::{check_key, child_key, child_prefix};
use super::namespace::{is_dir_object, Namespace};
use super::writes::Writes;
use super::Caller;
use crate::config::FsConfig;
use crate::error::{FsError, FsResult};
use crate::storage::{ObjectStore, PutOptions};

/// Server-side copies run at once during a directory rename.
const RENAME_PARALLELISM: usize = 8;

/// `renameat2` flags.
const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;

/// The namespace-change component.
pub struct Changes {
    store: Arc<dyn ObjectStore>,
    config: Arc<FsConfig>,
    ns: Arc<Namespace>,
    writes: Arc<Writes>,
    files: Arc<Files>,
}

impl Changes {
    /// The namespace-change component over its collaborators.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        config: Arc<FsConfig>,
        ns: Arc<Namespace>,
        writes: Arc<Writes>,
        files: Arc<Files>,
    ) -> Self {
        Changes {
            store,
            config,
            ns,
            writes,
            files,
        }
    }

    /// The existing child `name` of `parent`, or ENOENT.
    async fn existing(&self, parent: u64, name: &str) -> FsResult<Inode> {
        let attr = self.ns.lookup(parent, name).await?;
        self.ns.node(attr.ino.0)
    }

    /// Removes file (or symlink) `name` from `parent`.
    pub async fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        let node = self.existing(parent, name).await?;
        if node.is_dir() {
            return Err(FsError::new(libc::EISDIR, "is a directory"));
        }
        // A file still open keeps its content after the unlink (POSIX): stage it first.
        self.stage_before_move(node.ino).await?;
        self.store.delete(&node.key).await?;
        self.forget_writes(node.ino).await;
        self.ns.mark_unlinked(node.ino);
        self.ns.record_absent(parent, &node.name);
        self.ns.touch_dir(parent);
        debug!(key = %node.key, "unlinked");
        Ok(())
    }

    /// Creates directory `name` (validated, known to be new) in `parent` as a marker object.
    pub async fn mkdir(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        caller: Caller,
    ) -> FsResult<FileAttr> {
        let dir = self.ns.dir_node(parent)?;
        let prefix = child_prefix(&dir.key, name);
        let opts = PutOptions {
            content_type: Some("application/x-directory".into()),
            ..Default::default()
        };
        let mode = libc::S_IFDIR | (mode & 0o7777);
        let attr = self
            .put_node(
                parent,
                name,
                prefix,
                Kind::Dir,
                mode,
                0,
                Bytes::new(),
                opts,
                caller,
            )
            .await?;
        // A directory we just created holds nothing: lookups inside it need no request.
        let until = self.ns.valid_until();
        if let Some(d) = self.ns.table().dir_mut(attr.ino.0) {
            d.complete_until = Some(until);
            d.subdirs = Some(0);
        }
        self.ns.count_subdir(parent, 1);
        Ok(attr)
    }

    /// Creates special file (or empty regular file) `name` (validated, known to be new) in
    /// `parent`: a zero-byte object whose s3fs mode carries the type and, for a device, whose
    /// `x-amz-meta-rdev` carries its number.
    pub async fn mknod(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        rdev: u32,
        caller: Caller,
    ) -> FsResult<FileAttr> {
        let dir = self.ns.dir_node(parent)?;
        let key = child_key(&dir.key, name);
        let kind = kind_from_mode(Some(mode));
        if !matches!(kind, Kind::File | Kind::Special) || mode & libc::S_IFMT == 0 {
            return Err(FsError::new(libc::EINVAL, "mknod of an unknown file type"));
        }
        let is_dev = matches!(mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK);
        let rdev = if is_dev { rdev } else { 0 };
        let mut opts = PutOptions::default();
        if kind == Kind::File {
            opts.content_type = Some(guess_content_type(name));
        }
        if is_dev {
            opts.metadata.insert("rdev".into(), rdev.to_string());
        }
        self.put_node(
            parent,
            name,
            key,
            kind,
            mode,
            rdev,
            Bytes::new(),
            opts,
            caller,
        )
        .await
    }

    /// Writes a new node's object with its initial attributes and records it.
    #[allow(clippy::too_many_arguments)]
    async fn put_node(
        &self,
        parent: u64,
        name: &str,
        key: String,
        kind: Kind,
        mode: u32,
        rdev: u32,
        body: Bytes,
        mut opts: PutOptions,
        caller: Caller,
    ) -> FsResult<FileAttr> {
        let dir = self.ns.dir_node(parent)?;
        let mut mode = match kind {
            Kind::Symlink => mode, // no ACL, no umask: always 0777
            _ => {
                let default_acl = inherit::default_acl(&*self.store, &self.ns, &dir).await?;
                inherit::initial_mode(&mut opts, mode, caller.umask, default_acl.as_deref())?
            }
        };
        if kind == Kind::Dir && setgid_dir(&dir) {
            mode |= libc::S_ISGID; // and its own entries take the group in turn
        }
        check_metadata_size(&opts)?;
        let owner = new_owner(&self.config, caller, &dir);
        let now = SystemTime::now();
        initial_metadata(&mut opts, mode, owner, now);
        let size = body.len() as u64;
        let etag = self.store.put(&key, body, &opts).await?;
        let stat = Stat {
            etag: Some(etag),
            mode: Some(mode),
            uid: owner.map(|o| o.0),
            gid: owner.map(|o| o.1),
            rdev,
            ..Stat::basic(size, now)
        };
        // A new directory's marker headers are known: creations inside it ask for none.
        let meta = (kind == Kind::Dir)
            .then(|| inherit::written_marker(stat.etag.clone().unwrap_or_default(), &opts, now));
        let attr = self
            .ns
            .record(parent, name, Entry::known(kind, key, stat, meta));
        self.ns.touch_dir(parent);
        Ok(attr)
    }

    /// Whether anything but the marker lies under directory `node` (in S3 or being written).
    async fn dir_has_children(&self, node: &Inode) -> FsResult<bool> {
        Ok(self.dir_contents(node).await?.0)
    }

    /// Whether anything but the marker lies under directory `node` (in S3 or being written),
    /// and whether its marker exists.
    async fn dir_contents(&self, node: &Inode) -> FsResult<(bool, bool)> {
        let page = self.store.list(&node.key, None, None, Some(2)).await?;
        let has_marker = page.objects.first().is_some_and(|o| o.key == node.key);
        if page.objects.iter().any(|o| o.key != node.key) || !page.prefixes.is_empty() {
            return Ok((true, has_marker));
        }
        let children = self.ns.table().children_of(node.ino);
        let local = children.iter().any(|c| self.writes.is_local(*c));
        Ok((local, has_marker))
    }

    /// Removes empty directory `name` from `parent`.
    pub async fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        let node = self.existing(parent, name).await?;
        if !node.is_dir() {
            return Err(FsError::new(libc::ENOTDIR, "not a directory"));
        }
        let (children, has_marker) = self.dir_contents(&node).await?;
        if children {
            return Err(FsError::new(libc::ENOTEMPTY, "directory not empty"));
        }
        let known = self
            .ns
            .table()
            .get(node.ino)
            .and_then(|n| n.dir()?.stand_in.clone());
        let stand_ins = match (known, has_marker) {
            (Some(key), _) => vec![key],
            (None, true) => Vec::new(),
            (None, false) => self.find_stand_ins(&node.key).await?,
        };
        if has_marker {
            self.store.delete(&node.key).await?;
        }
        for key in stand_ins {
            self.store.delete(&key).await?;
            debug!(key, "deleted the object standing for a directory");
        }
        self.ns.record_absent(parent, &node.name);
        self.ns.touch_dir(parent);
        self.ns.count_subdir(parent, -1);
        Ok(())
    }

    /// The objects standing for directory `prefix` in s3fs's older forms that exist: `dir`
    /// when its headers say directory, and `dir_$folder$`.
    async fn find_stand_ins(&self, prefix: &str) -> FsResult<Vec<String>> {
        let bare = prefix.trim_end_matches('/');
        let folder = format!("{bare}_$folder$");
        let (object, folder_meta) = tokio::join!(self.store.head(bare), self.store.head(&folder));
        let mut found = Vec::new();
        for (key, answer) in [(bare.to_string(), object), (folder, folder_meta)] {
            match answer {
                Ok(meta) if key != bare || is_dir_object(&meta) => found.push(key),
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(found)
    }

    /// Creates symlink `name` (validated, known to be new) in `parent` pointing at `target`,
    /// stored as s3fs stores it.
    pub async fn symlink(
        &self,
        parent: u64,
        name: &str,
        target: &[u8],
        caller: Caller,
    ) -> FsResult<FileAttr> {
        let dir = self.ns.dir_node(parent)?;
        let key = child_key(&dir.key, name);
        let mode = libc::S_IFLNK | 0o777;
        let body = Bytes::copy_from_slice(target);
        let opts = PutOptions::default();
        self.put_node(
            parent,
            name,
            key,
            Kind::Symlink,
            mode,
            0,
            body,
            opts,
            caller,
        )
        .await
    }

    /// Renames `name` in `parent` to `new_name` (validated) in `new_parent`.
    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        flags: u32,
    ) -> FsResult<()> {
        if flags & RENAME_EXCHANGE != 0 {
            return Err(FsError::new(
                libc::EINVAL,
                "RENAME_EXCHANGE cannot be done on S3 (no atomic swap)",
            ));
        }
        let src = self.existing(parent, name).await?;
        let dst = match self.existing(new_parent, new_name).await {
            Ok(n) => Some(n),
            Err(e) if e.errno == libc::ENOENT => None,
            Err(e) => return Err(e),
        };
        if dst.is_some() && flags & RENAME_NOREPLACE != 0 {
            return Err(FsError::new(libc::EEXIST, "target exists"));
        }
        if dst.as_ref().is_some_and(|d| d.ino == src.ino) {
            return Ok(());
        }
        match src.kind() {
            Kind::Dir => {
                self.rename_dir(&src, dst.as_ref(), new_parent, new_name)
                    .await?;
                self.ns.count_subdir(parent, -1);
                if dst.is_none() {
                    self.ns.count_subdir(new_parent, 1);
                }
            }
            _ => {
                self.rename_file(&src, dst.as_ref(), new_parent, new_name)
                    .await?
            }
        }
        self.ns.touch_dir(parent);
        self.ns.touch_dir(new_parent);
        Ok(())
    }

    async fn rename_file(
        &self,
        src: &Inode,
        dst: Option<&Inode>,
        new_parent: u64,
        new_name: &str,
    ) -> FsResult<()> {
        if dst.is_some_and(|d| d.is_dir()) {
            return Err(FsError::new(libc::EISDIR, "target is a directory"));
        }
        let new_dir = self.ns.dir_node(new_parent)?;
        let new_key = child_key(&new_dir.key, new_name);
        check_key(&new_key)?;
        self.files.commit_pending(src.ino).await?;
        self.stage_before_move(src.ino).await?;
        let opts = self.moved_options(src, dst, new_name).await?;
        let etag = self.store.copy(&src.key, &new_key, Some(&opts)).await?;
        self.store.delete(&src.key).await?;
        if let Some(d) = dst {
            self.forget_writes(d.ino).await;
            self.ns.mark_unlinked(d.ino);
        }
        self.rekey_writes(src.ino, &new_key).await;
        let until = self.ns.valid_until();
        let mut table = self.ns.table();
        table.move_node(src.ino, new_parent, new_name, new_key);
        // The copy has its own ETag (a multipart source's `-N` ETag is not kept).
        if let Some(n) = table.get_mut(src.ino) {
            n.stat.etag = Some(etag);
            n.stat.modified = None;
            n.meta = None;
            n.stat.mtime = super::attr::stat_from_metadata(&opts.metadata, n.stat.mtime).mtime;
            n.stat.ctime = super::attr::stat_from_metadata(&opts.metadata, n.stat.ctime).ctime;
        }
        table.set_negative(src.parent, &src.name, until);
        Ok(())
    }

    /// What a renamed file's copy carries: its metadata and tags as they are, its mtime kept
    /// (stored explicitly, since the copy has a new Last-Modified) and ctime now. A
    /// Content-Type that was only guessed from the old name (`sed -i` and editors save to a
    /// temp file, then rename it over the original) gives way to the replaced object's type,
    /// or to a guess from the new name.
    async fn moved_options(
        &self,
        src: &Inode,
        dst: Option<&Inode>,
        new_name: &str,
    ) -> FsResult<PutOptions> {
        let meta = self.store.head(&src.key).await?;
        let mut opts = put_options_of(&meta);
        stamp_change(&mut opts, &src.stat, SystemTime::now());
        let was_guessed = match &opts.content_type {
            None => true,
            Some(t) => *t == guess_content_type(&src.name) || t == "binary/octet-stream",
        };
        if was_guessed && src.kind() == Kind::File {
            let replaced = match dst {
                Some(d) => self
                    .store
                    .head(&d.key)
                    .await
                    .ok()
                    .and_then(|m| m.content_type),
                None => None,
            };
            opts.content_type = Some(replaced.unwrap_or_else(|| guess_content_type(new_name)));
        }
        if dst.is_some() {
            // The new version carries the source's tags, none if it has none, whatever the
            // server did with the replaced object's (some keep them across a copy).
            opts.tags = self.store.get_tags(&src.key).await.ok();
        }
        Ok(opts)
    }

    async fn rename_dir(
        &self,
        src: &Inode,
        dst: Option<&Inode>,
        new_parent: u64,
        new_name: &str,
    ) -> FsResult<()> {
        let new_dir = self.ns.dir_node(new_parent)?;
        let new_prefix = child_prefix(&new_dir.key, new_name);
        if new_prefix.starts_with(&src.key) {
            return Err(FsError::new(
                libc::EINVAL,
                "cannot move a directory into itself",
            ));
        }
        if let Some(d) = dst {
            if !d.is_dir() {
                return Err(FsError::new(libc::ENOTDIR, "target is not a directory"));
            }
            if self.dir_has_children(d).await? {
                return Err(FsError::new(libc::ENOTEMPTY, "target directory not empty"));
            }
            self.store.delete(&d.key).await?;
        }
        let open_files = self.writes_under(&src.key);
        for ino in &open_files {
            self.stage_before_move(*ino).await?;
        }
        // Files under the directory with unsaved writes go first, so the copies see them.
        for ino in &open_files {
            self.files.commit_pending(*ino).await?;
        }
        self.move_prefix(&src.key, &new_prefix).await?;
        for ino in &open_files {
            if let Ok(n) = self.ns.node(*ino) {
                let key = format!("{new_prefix}{}", &n.key[src.key.len()..]);
                self.rekey_writes(*ino, &key).await;
            }
        }
        let until = self.ns.valid_until();
        let mut table = self.ns.table();
        table.rekey_prefix(&src.key, &new_prefix);
        table.move_node(src.ino, new_parent, new_name, new_prefix);
        table.set_negative(src.parent, &src.name, until);
        Ok(())
    }

    /// Copies every key under `old` to the same place under `new`, then deletes the old keys.
    async fn move_prefix(&self, old: &str, new: &str) -> FsResult<()> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self.store.list(old, None, token, None).await?;
            keys.extend(page.objects.into_iter().map(|o| o.key));
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        let copies: Vec<(String, String)> = keys
            .iter()
            .map(|k| (k.clone(), format!("{new}{}", &k[old.len()..])))
            .collect();
        let results: Vec<FsResult<String>> = stream::iter(copies)
            .map(|(src, dst)| {
                let store = Arc::clone(&self.store);
                async move { Ok(store.copy(&src, &dst, None).await?) }
            })
            .buffer_unordered(RENAME_PARALLELISM)
            .collect()
            .await;
        results.into_iter().collect::<FsResult<Vec<_>>>()?;
        let results: Vec<FsResult<()>> = stream::iter(keys.clone())
            .map(|key| {
                let store = Arc::clone(&self.store);
                async move { Ok(store.delete(&key).await?) }
            })
            .buffer_unordered(RENAME_PARALLELISM)
            .collect()
            .await;
        results.into_iter().collect::<FsResult<Vec<()>>>()?;
        info!(
            from = old,
            to = new,
            objects = keys.len(),
            "directory renamed"
        );
        Ok(())
    }

    /// Downloads the object behind an open staged file before a rename or unlink takes it
    /// away, so later writes through the open handle keep the content.
    async fn stage_before_move(&self, ino: u64) -> FsResult<()> {
        if let Some(state) = self.writes.get(ino) {
            let mut st = state.lock().await;
            if st.sync() != super::staged::Sync::Unlinked {
                st.ensure_staged().await?;
            }
        }
        Ok(())
    }

    /// Marks the staged file of `ino` (if any) unlinked: it will not be uploaded.
    async fn forget_writes(&self, ino: u64) {
        if let Some(state) = self.writes.get(ino) {
            state.lock().await.unlink();
        }
    }

    /// Points the staged file of `ino` (if any) at its new key after a rename.
    async fn rekey_writes(&self, ino: u64, new_key: &str) {
        if let Some(state) = self.writes.get(ino) {
            state.lock().await.rekey(new_key);
        }
    }

    /// Staged files whose key lies under `prefix`.
    fn writes_under(&self, prefix: &str) -> Vec<u64> {
        self.writes
            .all()
            .into_iter()
            .map(|(ino, _)| ino)
            .filter(|i| self.ns.node(*i).is_ok_and(|n| n.key.starts_with(prefix)))
            .collect()
    }
}
