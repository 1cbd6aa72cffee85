//! Thin wrappers of system calls the tests need and `std` does not give: errnos and their
//! names, close(2) with its result, pread, page-cache dropping, extended attributes.

#![allow(dead_code)]

use super::*;

/// The errno of an I/O error (-1 when it carries none).
pub fn os_errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// `EIO (5)`-style name of an errno, for messages and tallies.
pub fn errno_label(n: i32) -> String {
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENODATA => "ENODATA",
        libc::ENOTSUP => "ENOTSUP",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ESTALE => "ESTALE",
        libc::ENOTCONN => "ENOTCONN",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::E2BIG => "E2BIG",
        libc::EXDEV => "EXDEV",
        libc::EINTR => "EINTR",
        _ => "",
    };
    if name.is_empty() {
        format!("errno {n}")
    } else {
        name.to_string()
    }
}

/// Drops the kernel's page cache for an open file (POSIX_FADV_DONTNEED), so the next reads
/// reach the filesystem again.
pub fn drop_page_cache(file: &File) {
    use std::os::unix::io::AsRawFd;
    // SAFETY: posix_fadvise on a valid descriptor; it only drops clean cached pages.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

/// close(2) the file and return close's result (dropping a `File` hides it).
pub fn close(file: File) -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    let fd = file.into_raw_fd();
    // SAFETY: we own fd (just taken out of the File) and close it exactly once.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Up to `len` bytes of `f` at `off` (fewer only at the end of the file), by pread(2).
pub fn pread_all(f: &File, off: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = f.read_at(&mut buf[got..], off + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

/// The errno of an I/O error (-1 when it carries none); the same as [`os_errno`].
pub fn errno(e: &io::Error) -> i32 {
    os_errno(e)
}

/// `No such file or directory (os error 2) (2)`-style description of an errno.
pub fn errno_name(n: i32) -> String {
    format!("{} ({n})", io::Error::from_raw_os_error(n))
}

/// Asserts `result` failed with `expected` errno.
#[track_caller]
pub fn assert_errno<T: std::fmt::Debug>(result: io::Result<T>, expected: i32, what: &str) {
    match result {
        Ok(v) => panic!(
            "{what}: expected {}, got success ({v:?})",
            errno_name(expected)
        ),
        Err(e) => assert_eq!(
            errno(&e),
            expected,
            "{what}: expected {}, got {e}",
            errno_name(expected)
        ),
    }
}

/// A path as a C string.
pub fn cpath(p: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

fn cname(name: &str) -> std::ffi::CString {
    std::ffi::CString::new(name).expect("name without NUL")
}

/// setxattr(2) with `flags` (0, `XATTR_CREATE` or `XATTR_REPLACE`).
pub fn set_xattr(path: &Path, name: &str, value: &[u8], flags: i32) -> io::Result<()> {
    let (p, n) = (cpath(path), cname(name));
    // SAFETY: valid C strings and a buffer of value.len() bytes.
    let rc = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr() as *const libc::c_void,
            value.len(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// getxattr(2) of a value of up to 64 KiB.
pub fn get_xattr(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    match getxattr(path, name, 64 * 1024) {
        Ok((_, value)) => Ok(value),
        Err(errno) => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// removexattr(2).
pub fn remove_xattr(path: &Path, name: &str) -> io::Result<()> {
    let (p, n) = (cpath(path), cname(name));
    // SAFETY: valid C strings.
    if unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// getxattr(2) with a buffer of `size` bytes: Ok((returned length, bytes)) or Err(errno).
/// `size` 0 asks for the value's size only.
pub fn getxattr(path: &Path, name: &str, size: usize) -> Result<(usize, Vec<u8>), i32> {
    let (p, n) = (cpath(path), cname(name));
    let mut buf = vec![0u8; size];
    let ptr = if size == 0 {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr() as *mut libc::c_void
    };
    // SAFETY: valid C strings and a buffer of `size` bytes (or NULL with size 0).
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), ptr, size) };
    if r < 0 {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(-1));
    }
    let r = r as usize;
    buf.truncate(r.min(size));
    Ok((r, buf))
}

/// listxattr(2) with a buffer of `size` bytes: Ok((returned length, bytes)) or Err(errno).
pub fn listxattr(path: &Path, size: usize) -> Result<(usize, Vec<u8>), i32> {
    let p = cpath(path);
    let mut buf = vec![0u8; size];
    let ptr = if size == 0 {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr() as *mut libc::c_char
    };
    // SAFETY: a valid C string and a buffer of `size` bytes (or NULL with size 0).
    let r = unsafe { libc::listxattr(p.as_ptr(), ptr, size) };
    if r < 0 {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(-1));
    }
    let r = r as usize;
    buf.truncate(r.min(size));
    Ok((r, buf))
}

/// The names of a listxattr buffer, sorted.
pub fn xattr_names(buf: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    names.sort();
    names
}

/// The names listxattr(2) gives for `path`, in its order (panics on an error).
pub fn list_xattr(path: &Path) -> Vec<String> {
    let (_, buf) = listxattr(path, 64 * 1024).unwrap_or_else(|e| {
        panic!(
            "listxattr {}: {}",
            path.display(),
            io::Error::from_raw_os_error(e)
        )
    });
    buf.split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// Writes `data` in 1 MiB writes to a file opened with `opts`, then closes it, returning the
/// first error (of a write or of close).
pub fn write_with(opts: &std::fs::OpenOptions, path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = opts.open(path)?;
    for chunk in data.chunks(1 << 20) {
        if let Err(e) = f.write_all(chunk) {
            let _ = close(f);
            return Err(e);
        }
    }
    close(f)
}

/// Creates or truncates `path` (O_CREAT|O_TRUNC|O_WRONLY), writes `data`, closes it.
pub fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    write_with(
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true),
        path,
        data,
    )
}

/// [`write_file`], panicking on an error.
#[track_caller]
pub fn must_write(path: &Path, data: &[u8]) {
    write_file(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
