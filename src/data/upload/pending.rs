//! The bytes of a streaming upload that no part holds yet, mirrored in memory.
//!
//! Design note: the staging file stays the source of truth (reads, seeks and a failed upload
//! kept aside all use it), but reading each part back from it cost a copy out of the page
//! cache and a freshly zeroed buffer per part. [`PendingPart`] keeps a copy of what was
//! written past the last part handed to the upload, so a part that fills up goes out from
//! memory. It follows only what it can follow exactly: writes at or after the first byte not
//! sent, with a gap (a sparse write, read back as zeros) of at most one part; anything else
//! (a write below it, a larger jump) makes it *lose track*, and the caller then reads from
//! the staging file, as before, and may start it again from the file ([`PendingPart::reset`]).
//!
//! Memory is bounded: the buffer holds less than a part between writes (a full part leaves at
//! once), and part buffers are recycled through a small pool: a part's buffer comes back
//! when its upload drops the body, so writing a large file does not fault in fresh pages
//! for every part. At most `max_in_flight` idle buffers are kept, and all of them go with the
//! upload.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Buffers of finished parts, waiting to be filled again.
type Pool = Arc<Mutex<Vec<Vec<u8>>>>;

/// A part's bytes, handed to the upload as [`Bytes`]; its buffer returns to the pool on drop.
struct Pooled {
    buf: Vec<u8>,
    pool: Pool,
    keep: usize,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < self.keep {
                pool.push(buf);
            }
        }
    }
}

/// A copy of the bytes written past the last part handed to a streaming upload.
pub(super) struct PendingPart {
    /// The bytes from the first one not sent on; `None` once it lost track of the file.
    buf: Option<Vec<u8>>,
    part_size: usize,
    pool: Pool,
    keep: usize,
}

impl PendingPart {
    /// An empty mirror (nothing written yet) for parts of `part_size` bytes, keeping at most
    /// `keep` idle buffers.
    pub(super) fn new(part_size: u64, keep: usize) -> Self {
        PendingPart {
            buf: Some(Vec::new()),
            part_size: part_size as usize,
            pool: Arc::new(Mutex::new(Vec::new())),
            keep,
        }
    }

    /// Whether it holds every byte written past the last part sent.
    pub(super) fn tracking(&self) -> bool {
        self.buf.is_some()
    }

    /// Stops mirroring: the staging file alone knows the bytes.
    pub(super) fn lose_track(&mut self) {
        self.buf = None;
    }

    fn fresh(&self) -> Vec<u8> {
        self.pool
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default()
    }

    /// Mirrors the write of `data` at `at` bytes past the last part sent.
    pub(super) fn write(&mut self, at: u64, data: &[u8]) {
        let Some(buf) = self.buf.as_mut() else {
            return;
        };
        let end = at + data.len() as u64;
        if end > 2 * self.part_size as u64 {
            // A jump far past the end (or a huge write): not worth holding in memory.
            self.buf = None;
            return;
        }
        let (at, end) = (at as usize, end as usize);
        if buf.capacity() < end {
            // Grow by doubling up to a part, and no further than needed: a write crossing the
            // end of a part must not double the buffer to two parts.
            let want = end.max((2 * buf.capacity()).min(self.part_size));
            buf.reserve_exact(want - buf.len());
        }
        if at == buf.len() {
            buf.extend_from_slice(data);
            return;
        }
        if buf.len() < end {
            // The hole a sparse write leaves reads back as zeros.
            buf.resize(end, 0);
        }
        buf[at..end].copy_from_slice(data);
    }

    /// Mirrors a truncate to `len` bytes past the last part sent.
    pub(super) fn set_len(&mut self, len: u64) {
        let Some(buf) = self.buf.as_mut() else {
            return;
        };
        if len > 2 * self.part_size as u64 {
            self.buf = None;
            return;
        }
        buf.resize(len as usize, 0);
    }

    /// The next full part, when it holds one; the bytes past it stay.
    pub(super) fn take_part(&mut self) -> Option<Bytes> {
        let mut part = self.buf.take()?;
        if part.len() < self.part_size {
            // Out of step with the file: the caller reads the part from it.
            return None;
        }
        let mut next = self.fresh();
        next.extend_from_slice(&part[self.part_size..]);
        part.truncate(self.part_size);
        self.buf = Some(next);
        Some(self.seal(part))
    }

    /// Everything it holds, when that is the `len` bytes the upload still needs.
    pub(super) fn take_rest(&mut self, len: u64) -> Option<Bytes> {
        let buf = self.buf.take()?;
        (buf.len() as u64 == len).then(|| self.seal(buf))
    }

    /// Starts mirroring again from `bytes`, read from the staging file.
    pub(super) fn reset(&mut self, bytes: &[u8]) {
        let mut buf = self.fresh();
        buf.extend_from_slice(bytes);
        self.buf = Some(buf);
    }

    fn seal(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: self.pool.clone(),
            keep: self.keep,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_leave_whole_and_their_buffers_come_back() {
        let mut p = PendingPart::new(4, 2);
        p.write(0, b"abc");
        p.write(3, b"defg");
        let part = p.take_part().unwrap();
        assert_eq!(&part[..], b"abcd");
        assert!(p.take_part().is_none(), "three bytes left are no part");
        assert!(!p.tracking(), "asked for a part it does not hold: lost");
        drop(part);
        assert_eq!(
            p.pool.lock().unwrap().len(),
            1,
            "the buffer is back in the pool"
        );
        p.reset(b"xy");
        assert_eq!(p.pool.lock().unwrap().len(), 0, "and reused");
        assert_eq!(&p.take_rest(2).unwrap()[..], b"xy");
    }

    #[test]
    fn rewrites_holes_and_truncates_are_mirrored() {
        let mut p = PendingPart::new(8, 2);
        p.write(0, b"hello");
        p.write(1, b"EL");
        p.write(7, b"!");
        assert_eq!(&p.buf.as_ref().unwrap()[..], b"hELlo\0\0!");
        p.set_len(3);
        p.set_len(4);
        assert_eq!(&p.buf.as_ref().unwrap()[..], b"hEL\0");
        assert!(p.take_rest(5).is_none(), "a length it does not hold");
        assert!(!p.tracking());
    }

    #[test]
    fn a_buffer_grows_to_a_part_not_past_what_a_write_needs() {
        let mut p = PendingPart::new(1000, 2);
        for i in 0..10 {
            p.write(i * 99, &[7; 99]);
        }
        p.write(990, &[8; 20]);
        let cap = p.buf.as_ref().unwrap().capacity();
        assert!((1010..1500).contains(&cap), "capacity {cap}");
    }

    #[test]
    fn a_jump_past_two_parts_loses_track() {
        let mut p = PendingPart::new(4, 2);
        p.write(9, b"x");
        assert!(!p.tracking());
        p.write(0, b"y");
        assert!(!p.tracking(), "lost until reset");
    }
}
