//! The thin FUSE adapter: each handler turns a fuser callback into one call of the core
//! ([`S3Fs`]) and its result into a reply.
//!
//! Design note: fuser calls handlers on its session threads. A handler wraps the core call
//! and its reply in one future. Requests that usually need no I/O (lookup, getattr, open,
//! read, readdir, the xattr reads) poll it once right there and reply at once when they can
//! (a table or block-cache hit); whatever has to wait, and every request that changes
//! something, runs as a task on the tokio runtime, so a slow S3 request or staging write
//! never blocks other FUSE requests. Each future runs inside a `tracing` span named after the
//! FUSE operation, and errors are logged once here, at debug level for the expected ones
//! (ENOENT, ENODATA) and warn for the rest. A panic inside a handler or its reply is caught
//! and answered with EIO, so the mount keeps serving. [`KernelNotifier`] lets the core drop
//! what the kernel caches (FUSE notifications).
//!
//! Layout: this file is fuser's `Filesystem` impl, one short handler per FUSE operation; how a
//! handler's future runs and replies (polling, errors, panics) is `fuse/run.rs`.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fuser::{
    CopyFileRangeFlags, Errno, FileAttr, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use tracing::{debug, warn};

use crate::fs::names::NAME_MAX;
use crate::fs::AttrChange;
use crate::fs::{CacheMode, Caller, DirEntry, KernelCache, S3Fs};

mod run;

use self::run::{log_error, reply_xattr, Poll};

/// The kernel's caches as the core may drop them, through the session's notifications.
pub struct KernelNotifier(pub fuser::Notifier);

impl KernelCache for KernelNotifier {
    fn invalidate_attrs(&self, ino: u64) {
        // A negative offset drops the attributes only: no page is touched, so this is safe
        // while a read of the inode waits for our reply.
        if let Err(e) = self.0.inval_inode(INodeNo(ino), -1, 0) {
            debug!(ino, "attribute invalidation not sent: {e}");
        }
    }
}

/// The fuser [`Filesystem`] over [`S3Fs`].
pub struct FuseAdapter {
    fs: Arc<S3Fs>,
    rt: tokio::runtime::Handle,
}

impl FuseAdapter {
    /// An adapter running core calls on `rt`.
    pub fn new(fs: Arc<S3Fs>, rt: tokio::runtime::Handle) -> Self {
        FuseAdapter { fs, rt }
    }

    fn ttl(&self) -> Duration {
        self.fs.config().metadata_ttl
    }

    /// Replies with an entry (the core counted the reference the kernel takes to it).
    fn entry_reply(&self) -> impl FnOnce(ReplyEntry, FileAttr) + Send + 'static {
        let ttl = self.ttl();
        move |r, attr| r.entry(&ttl, &attr, Generation(0))
    }
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // readdirplus lets a listing hand the kernel every entry's attributes, so `ls -l`
        // needs no lookup per file.
        let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS);
        // Adaptive: past the first batch, the kernel asks for attributes only when the entries
        // it got are being stat'ed (`ls -l`), so a plain `ls` or `find` costs no HEADs.
        let _ = config.add_capabilities(InitFlags::FUSE_READDIRPLUS_AUTO);
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        // Files being written use direct I/O; this keeps mmap working on them.
        let _ = config.add_capabilities(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP);
        // POSIX ACLs (kept in x-amz-meta-xattr) enforced by the kernel, which caches them and
        // asks for system.posix_acl_access when it checks a non-owner's access. Needs
        // default_permissions, which every mount has; the filesystem keeps mode and ACL in step.
        let _ = config.add_capabilities(InitFlags::FUSE_POSIX_ACL);
        // With it, the kernel hands over the mode as asked and the umask beside it: a new node
        // in a directory with a default ACL takes the ACL's bits, not the umask's (the core
        // decides which applies).
        let _ = config.add_capabilities(InitFlags::FUSE_DONT_MASK);
        // The kernel offers 128 KiB and refuses more here; `mount` raises it through sysfs.
        let _ = config.set_max_readahead(1 << 20);
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        Ok(())
    }

    fn destroy(&mut self) {
        // The kernel is letting go of the mount (unmount, even a lazy one): save whatever is
        // still unsaved; anything that cannot be saved is kept on disk and logged.
        let fs = self.fs.clone();
        let failures = self.rt.block_on(async move { fs.shutdown().await });
        for (key, err) in failures {
            warn!(key = %key, "unsaved at unmount: {err}");
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.to_owned();
        self.run(
            Poll::HereFirst,
            "lookup",
            move |fs| async move { fs.lookup(parent.0, &name).await },
            reply,
            self.entry_reply(),
        );
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let ttl = self.ttl();
        self.run(
            Poll::HereFirst,
            "getattr",
            move |fs| async move { fs.getattr(ino.0).await },
            reply,
            move |r, attr| r.attr(&ttl, &attr),
        );
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = AttrChange {
            mode,
            uid,
            gid,
            size,
            mtime: mtime.map(time_or_now),
            atime: atime.map(time_or_now),
        };
        let ttl = self.ttl();
        self.run(
            Poll::OnRuntime,
            "setattr",
            move |fs| async move { fs.setattr(ino.0, fh.map(|f| f.0), change).await },
            reply,
            move |r, attr| r.attr(&ttl, &attr),
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.run(
            Poll::HereFirst,
            "readlink",
            move |fs| async move { fs.readlink(ino.0).await },
            reply,
            |r, target| r.data(&target),
        );
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let name = name.to_owned();
        let caller = Caller {
            umask,
            ..caller_of(req)
        };
        self.run(
            Poll::OnRuntime,
            "mknod",
            move |fs| async move { fs.mknod(parent.0, &name, mode, rdev, caller).await },
            reply,
            self.entry_reply(),
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let name = name.to_owned();
        let caller = Caller {
            umask,
            ..caller_of(req)
        };
        self.run(
            Poll::OnRuntime,
            "mkdir",
            move |fs| async move { fs.mkdir(parent.0, &name, mode, caller).await },
            reply,
            self.entry_reply(),
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.run(
            Poll::OnRuntime,
            "unlink",
            move |fs| async move { fs.unlink(parent.0, &name).await },
            reply,
            |r, ()| r.ok(),
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.run(
            Poll::OnRuntime,
            "rmdir",
            move |fs| async move { fs.rmdir(parent.0, &name).await },
            reply,
            |r, ()| r.ok(),
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let name = link_name.to_owned();
        let target = target.as_os_str().as_bytes().to_vec();
        let caller = caller_of(req);
        self.run(
            Poll::OnRuntime,
            "symlink",
            move |fs| async move { fs.symlink(parent.0, &name, &target, caller).await },
            reply,
            self.entry_reply(),
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (name, newname) = (name.to_owned(), newname.to_owned());
        let flags = flags.bits();
        self.run(
            Poll::OnRuntime,
            "rename",
            move |fs| async move {
                fs.rename(parent.0, &name, newparent.0, &newname, flags)
                    .await
            },
            reply,
            |r, ()| r.ok(),
        );
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        // S3 has no way to give one object two keys.
        debug!("hard links are not supported");
        reply.error(Errno::EPERM);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let caller = caller_of(req);
        self.run(
            Poll::HereFirst,
            "open",
            move |fs| async move { fs.open(ino.0, flags.0, caller).await },
            reply,
            |r, (fh, mode)| {
                let flags = match mode {
                    CacheMode::Keep => FopenFlags::FOPEN_KEEP_CACHE,
                    CacheMode::Invalidate => FopenFlags::empty(),
                    CacheMode::Direct => FopenFlags::FOPEN_DIRECT_IO,
                };
                r.opened(FileHandle(fh), flags)
            },
        );
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.run(
            Poll::HereFirst,
            "read",
            move |fs| async move { fs.read(fh.0, offset, size).await },
            reply,
            |r, data| r.data(&data),
        );
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        self.run(
            Poll::OnRuntime,
            "write",
            move |fs| async move { fs.write(fh.0, offset, &data).await },
            reply,
            |r, n| r.written(n),
        );
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let pid = req.pid();
        let work = move |fs: Arc<S3Fs>| async move { fs.flush(fh.0, pid).await };
        // Closing a file that is only read (`cat`) does nothing: answer it here.
        let mode = if self.fs.is_read_handle(fh.0) {
            Poll::HereFirst
        } else {
            Poll::OnRuntime
        };
        self.run(mode, "flush", work, reply, |r, ()| r.ok());
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let work = move |fs: Arc<S3Fs>| async move {
            fs.release(fh.0).await;
            Ok(())
        };
        let mode = if self.fs.is_read_handle(fh.0) {
            Poll::HereFirst
        } else {
            Poll::OnRuntime
        };
        self.run(mode, "release", work, reply, |r, ()| r.ok());
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.run(
            Poll::OnRuntime,
            "fsync",
            move |fs| async move { fs.fsync(fh.0).await },
            reply,
            |r, ()| r.ok(),
        );
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        self.run(
            Poll::OnRuntime,
            "copy_file_range",
            move |fs| async move {
                let (from, to) = ((fh_in.0, offset_in), (fh_out.0, offset_out));
                fs.copy_file_range(from, to, len).await
            },
            reply,
            |r, n| r.written(n),
        );
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Directory changes are made on S3 synchronously: nothing is pending.
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => {
                log_error("opendir", &e);
                reply.error(Errno::from_i32(e.errno));
            }
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.run(
            Poll::HereFirst,
            "readdir",
            move |fs| async move { fs.readdir_from(fh.0, offset).await },
            reply,
            move |mut r, entries| {
                for (i, e) in entries.iter().enumerate() {
                    let i = i + offset as usize;
                    if r.add(INodeNo(e.ino), i as u64 + 1, e.attr.kind, &e.name) {
                        break;
                    }
                }
                r.ok()
            },
        );
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        let ttl = self.ttl();
        let counted = self.fs.clone();
        self.run(
            Poll::HereFirst,
            "readdirplus",
            move |fs| async move { fs.readdirplus(ino.0, fh.0, offset).await },
            reply,
            move |mut r, entries| {
                add_plus_entries(&counted, &mut r, &entries, offset, ttl);
                r.ok()
            },
        );
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // S3 has no capacity limit: report plenty of everything so `df` and space checks pass.
        const BLOCKS: u64 = 1 << 40;
        reply.statfs(
            BLOCKS,
            BLOCKS,
            BLOCKS,
            1 << 30,
            1 << 30,
            4096,
            NAME_MAX as u32,
            4096,
        );
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.run(
            Poll::OnRuntime,
            "setxattr",
            move |fs| async move { fs.setxattr(ino.0, &name, &value, flags).await },
            reply,
            |r, ()| r.ok(),
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let name = name.to_owned();
        self.run(
            Poll::HereFirst,
            "getxattr",
            move |fs| async move { fs.getxattr(ino.0, &name).await.map(|v| (size, v)) },
            reply,
            |r, (size, value)| reply_xattr(size, r, value),
        );
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.run(
            Poll::HereFirst,
            "listxattr",
            move |fs| async move { fs.listxattr(ino.0).await.map(|v| (size, v)) },
            reply,
            |r, (size, value)| reply_xattr(size, r, value),
        );
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.run(
            Poll::OnRuntime,
            "removexattr",
            move |fs| async move { fs.removexattr(ino.0, &name).await },
            reply,
            |r, ()| r.ok(),
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let caller = Caller {
            umask,
            ..caller_of(req)
        };
        let name = name.to_owned();
        let ttl = self.ttl();
        self.run(
            Poll::OnRuntime,
            "create",
            move |fs| async move { fs.create(parent.0, &name, mode, flags, caller).await },
            reply,
            move |r, (attr, fh)| {
                // Files being written bypass the page cache: reads come from the staged copy.
                r.created(
                    &ttl,
                    &attr,
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::FOPEN_DIRECT_IO,
                )
            },
        );
    }
}

/// Adds `entries` (the first numbered `offset`) to a `readdirplus` reply until the kernel's
/// buffer is full, counting the reference the kernel takes to each but `.` and `..`.
///
/// An entry forgotten since the core answered (a FORGET in these microseconds) ends the
/// batch, and the next batch looks its name up again; unless it comes first, as an empty
/// batch would end the listing: then it goes uncounted, and the kernel's next getattr of it
/// fails once and makes it look the name up.
fn add_plus_entries(
    fs: &S3Fs,
    r: &mut ReplyDirectoryPlus,
    entries: &[DirEntry],
    offset: u64,
    ttl: Duration,
) {
    for (i, e) in entries.iter().enumerate() {
        let counts = e.name != "." && e.name != "..";
        let known = !counts || fs.remember(e.ino);
        if !known && i > 0 {
            break;
        }
        let ttl = if e.attr_known { ttl } else { Duration::ZERO };
        let next = offset + i as u64 + 1;
        let full = r.add(INodeNo(e.ino), next, &e.name, &ttl, &e.attr, Generation(0));
        if full {
            if counts && known {
                fs.unremember(e.ino);
            }
            break;
        }
    }
}

/// The process and credentials of a request (its umask comes only with a creation).
fn caller_of(req: &Request) -> Caller {
    Caller {
        pid: req.pid(),
        uid: req.uid(),
        gid: req.gid(),
        umask: 0,
    }
}

fn time_or_now(t: TimeOrNow) -> std::time::SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => std::time::SystemTime::now(),
    }
}
