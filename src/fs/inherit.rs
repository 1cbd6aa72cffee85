//! What a new node inherits from its directory: its permission bits and POSIX ACLs.
//!
//! Design note: with `FUSE_POSIX_ACL` (and `FUSE_DONT_MASK`) the kernel leaves the umask and
//! default ACLs to the filesystem, which does here what Linux's local filesystems do
//! (`posix_acl_create`): when the directory has a default ACL, the new node's permission bits
//! are the requested ones masked by that ACL (the umask plays no part), its access ACL is the
//! default ACL masked by the mode (not stored when it says no more than the mode, as
//! [`super::s3fs_xattr::set`] does), and a new directory takes the default ACL as its own
//! default; without one, the umask applies and no ACL is stored. Symlinks have no ACL: their
//! creation does not come here. The directory's default ACL is read from its marker's headers:
//! those the inode keeps while fresh (no request), else one HEAD, kept for the next creation;
//! a directory without a marker (or the bucket's root) has none.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::warn;

use super::acl;
use super::inode::{AttrSource, Inode};
use super::namespace::Namespace;
use super::s3fs_xattr::{self, ACL_ACCESS, ACL_DEFAULT};
use crate::error::FsResult;
use crate::storage::{ObjectMeta, ObjectStore, PutOptions};

/// The headers of directory `node`'s marker object, kept on the inode for the TTL; `None`
/// when it has none (or is the bucket's root, which has nowhere to keep them).
pub async fn dir_headers(
    store: &dyn ObjectStore,
    ns: &Namespace,
    node: &Inode,
) -> FsResult<Option<Arc<ObjectMeta>>> {
    let fresh = node.valid_until > Instant::now();
    if node.key.is_empty() || (fresh && node.source == AttrSource::NoMarker) {
        return Ok(None);
    }
    if let Some(meta) = node.meta.as_ref().filter(|m| fresh && is_current(node, m)) {
        return Ok(Some(meta.clone()));
    }
    let meta = match store.head(&node.key).await {
        Ok(meta) => Arc::new(meta),
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if let Some(n) = ns.table().get_mut(node.ino) {
        if is_current(n, &meta) {
            n.meta = Some(meta.clone());
        }
    }
    Ok(Some(meta))
}

/// The headers of a directory marker just written with `opts` (its ETag `etag`), as a HEAD
/// would answer them: kept on the inode, they spare the next creation in it a request.
pub fn written_marker(etag: String, opts: &PutOptions, now: SystemTime) -> Arc<ObjectMeta> {
    Arc::new(ObjectMeta {
        size: 0,
        last_modified: now,
        etag,
        content_type: opts.content_type.clone(),
        storage_class: None,
        version_id: None,
        metadata: opts.metadata.clone(),
    })
}

/// Whether headers `meta` are those `node`'s attributes were read from (same ETag).
pub fn is_current(node: &Inode, meta: &ObjectMeta) -> bool {
    Some(&meta.etag) == node.stat.etag.as_ref()
}

/// The default ACL (xattr form) of directory `dir`, if it has one.
pub async fn default_acl(
    store: &dyn ObjectStore,
    ns: &Namespace,
    dir: &Inode,
) -> FsResult<Option<Vec<u8>>> {
    let Some(meta) = dir_headers(store, ns, dir).await? else {
        return Ok(None);
    };
    Ok(s3fs_xattr::read(&meta.metadata).remove(ACL_DEFAULT))
}

/// The `st_mode` of a new node asked with `mode` (type and permission bits) by a process
/// whose umask is `umask`, in a directory whose default ACL is `default`; the ACLs it
/// inherits go into `opts`'s metadata. A default ACL that cannot be read counts as none.
pub fn initial_mode(
    opts: &mut PutOptions,
    mode: u32,
    umask: u32,
    default: Option<&[u8]>,
) -> FsResult<u32> {
    let umasked = mode & !(umask & 0o777);
    let Some(default) = default else {
        return Ok(umasked);
    };
    let entries = match acl::parse(default) {
        Ok(entries) => entries,
        Err(e) => {
            warn!("ignoring a default ACL that cannot be read: {e}");
            return Ok(umasked);
        }
    };
    let (bits, access) = match acl::create_masq(&entries, mode & 0o777) {
        Ok(r) => r,
        Err(e) => {
            warn!("ignoring a default ACL that cannot be used: {e}");
            return Ok(umasked);
        }
    };
    let mode = (mode & !0o777) | bits;
    if let Some(access) = access {
        s3fs_xattr::set(opts, ACL_ACCESS, &acl::to_bytes(&access), 0, mode)?;
    }
    if mode & libc::S_IFMT == libc::S_IFDIR {
        s3fs_xattr::set(opts, ACL_DEFAULT, default, 0, mode)?;
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use acl::{Entry, GROUP_OBJ, MASK, OTHER, USER, USER_OBJ};

    fn default_acl() -> Vec<u8> {
        let e = |tag, perm, id| Entry { tag, perm, id };
        acl::to_bytes(&[
            e(USER_OBJ, 7, u32::MAX),
            e(USER, 7, 65534),
            e(GROUP_OBJ, 5, u32::MAX),
            e(MASK, 7, u32::MAX),
            e(OTHER, 5, u32::MAX),
        ])
    }

    #[test]
    fn without_a_default_acl_the_umask_applies_and_nothing_is_stored() {
        let mut opts = PutOptions::default();
        let mode = initial_mode(&mut opts, libc::S_IFREG | 0o666, 0o022, None).unwrap();
        assert_eq!(mode, libc::S_IFREG | 0o644);
        assert!(opts.metadata.is_empty());
        let junk = initial_mode(&mut opts, libc::S_IFDIR | 0o777, 0o027, Some(b"junk")).unwrap();
        assert_eq!(junk, libc::S_IFDIR | 0o750);
        assert!(opts.metadata.is_empty());
    }

    #[test]
    fn a_file_takes_the_default_acl_as_its_access_acl() {
        let mut opts = PutOptions::default();
        let default = default_acl();
        let mode = initial_mode(&mut opts, libc::S_IFREG | 0o666, 0o077, Some(&default)).unwrap();
        assert_eq!(mode, libc::S_IFREG | 0o664, "the umask plays no part");
        let stored = s3fs_xattr::read(&opts.metadata);
        assert!(
            !stored.contains_key(ACL_DEFAULT),
            "files have no default ACL"
        );
        let access = acl::parse(&stored[ACL_ACCESS]).unwrap();
        assert_eq!(acl::mode_bits(&access).unwrap(), 0o664);
        assert!(access
            .iter()
            .any(|e| e.tag == USER && e.id == 65534 && e.perm == 7));
    }

    #[test]
    fn a_directory_also_takes_it_as_its_default() {
        let mut opts = PutOptions::default();
        let default = default_acl();
        let mode = initial_mode(&mut opts, libc::S_IFDIR | 0o1777, 0o077, Some(&default)).unwrap();
        assert_eq!(mode, libc::S_IFDIR | 0o1775, "special bits kept");
        let stored = s3fs_xattr::read(&opts.metadata);
        assert_eq!(stored[ACL_DEFAULT], default);
        assert_eq!(
            acl::mode_bits(&acl::parse(&stored[ACL_ACCESS]).unwrap()).unwrap(),
            0o775
        );
    }
}
