//! Archived objects (GLACIER, DEEP_ARCHIVE, the archive tiers of INTELLIGENT_TIERING) are
//! refused at open until a restored copy exists.
//!
//! Design note: S3 refuses a GET of an archived object that has no restored copy
//! (`InvalidObjectState`). Rather than an open that succeeds and reads that fail, an open for
//! reading of an object whose headers name an archive class asks for its restore state
//! (`x-amz-restore`, one HEAD, only for such objects) and answers `EACCES` unless a restored
//! copy is there (`ongoing-request="false"`); the log names the object and the `setfattr`
//! that restores it. EACCES because the object is there and S3 refuses to serve it, as it
//! would for a policy: `cat` says "Permission denied" instead of an I/O error that suggests a
//! broken disk. A GET that S3 refuses anyway (an object only listed so far, or an
//! INTELLIGENT_TIERING archive tier, which the storage class alone does not tell) gets the
//! same errno and hint from [`crate::error`].

use super::Files;
use crate::error::{FsError, FsResult};
use crate::fs::inode::Inode;
use crate::storage::ops::is_archived;

/// The command a log line offers for restoring an archived object.
pub const RESTORE_HINT: &str = "restore it with: setfattr -n user.s3.restore -v 'days=7' FILE";

impl Files {
    /// Refuses to read `node` when its headers name an archive class and no restored copy of
    /// it exists.
    pub(super) async fn refuse_archived(&self, node: &Inode) -> FsResult<()> {
        let class = node.meta.as_ref().and_then(|m| m.storage_class.clone());
        if !is_archived(class.as_deref(), None) {
            return Ok(());
        }
        let header = self.store.restore_status(&node.key).await?;
        match restore_of(header.as_deref()) {
            Restore::Done => Ok(()),
            state => Err(FsError::new(
                libc::EACCES,
                format!(
                    "{} is archived ({}) and {}: {RESTORE_HINT} (FILE: its path in the mount)",
                    node.key,
                    class.unwrap_or_default(),
                    match state {
                        Restore::InProgress => "its restore is still in progress",
                        _ => "not restored",
                    }
                ),
            )),
        }
    }
}

/// Where an archived object's restore stands, from its `x-amz-restore` header.
#[derive(Debug, PartialEq, Eq)]
enum Restore {
    None,
    InProgress,
    Done,
}

fn restore_of(header: Option<&str>) -> Restore {
    match header {
        None => Restore::None,
        Some(h) if h.contains("ongoing-request=\"false\"") => Restore::Done,
        Some(_) => Restore::InProgress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_finished_restore_reads() {
        assert_eq!(restore_of(None), Restore::None);
        assert_eq!(
            restore_of(Some("ongoing-request=\"true\"")),
            Restore::InProgress
        );
        let done = "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"";
        assert_eq!(restore_of(Some(done)), Restore::Done);
    }
}
