//! POSIX ACLs in their extended-attribute form (`system.posix_acl_access`/`_default`).
//!
//! Design note: the kernel hands ACLs to the filesystem already checked, as
//! `struct posix_acl_xattr_header` (a little-endian `u32` version, 2) followed by one 8-byte
//! `posix_acl_xattr_entry` per entry (`u16` tag, `u16` permissions, `u32` uid or gid). They
//! are stored as they come (s3fs keeps them the same way). With the kernel enforcing ACLs
//! (`FUSE_POSIX_ACL`), the filesystem keeps the file mode and the access ACL in step, as
//! local filesystems do: setting an access ACL sets the permission bits from it, a chmod
//! rewrites the ACL's owner, mask (or group) and other entries. Nothing here does I/O.

use crate::error::{FsError, FsResult};

/// The only version of the xattr form.
const VERSION: u32 = 2;
/// Size of the header and of each entry.
const HEADER_LEN: usize = 4;
const ENTRY_LEN: usize = 8;

/// The file owner's entry.
pub const USER_OBJ: u16 = 0x01;
/// A named user's entry.
pub const USER: u16 = 0x02;
/// The owning group's entry.
pub const GROUP_OBJ: u16 = 0x04;
/// A named group's entry.
pub const GROUP: u16 = 0x08;
/// The mask entry (the group class's upper bound).
pub const MASK: u16 = 0x10;
/// Everyone else's entry.
pub const OTHER: u16 = 0x20;

/// One ACL entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `USER_OBJ`, `USER`, `GROUP_OBJ`, `GROUP`, `MASK` or `OTHER`.
    pub tag: u16,
    /// `rwx` bits (4, 2, 1).
    pub perm: u16,
    /// The uid or gid of a named entry.
    pub id: u32,
}

/// The entries of an ACL in xattr form; EINVAL when it is not one.
pub fn parse(value: &[u8]) -> FsResult<Vec<Entry>> {
    let invalid = || FsError::new(libc::EINVAL, "not a POSIX ACL in xattr form");
    if value.len() < HEADER_LEN || (value.len() - HEADER_LEN) % ENTRY_LEN != 0 {
        return Err(invalid());
    }
    let version = u32::from_le_bytes(value[..4].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(invalid());
    }
    Ok(value[HEADER_LEN..]
        .chunks_exact(ENTRY_LEN)
        .map(|e| Entry {
            tag: u16::from_le_bytes([e[0], e[1]]),
            perm: u16::from_le_bytes([e[2], e[3]]),
            id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
        })
        .collect())
}

/// The xattr form of `entries`.
pub fn to_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * entries.len());
    out.extend_from_slice(&VERSION.to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.tag.to_le_bytes());
        out.extend_from_slice(&e.perm.to_le_bytes());
        out.extend_from_slice(&e.id.to_le_bytes());
    }
    out
}

fn perm_of(entries: &[Entry], tag: u16) -> Option<u32> {
    entries
        .iter()
        .find(|e| e.tag == tag)
        .map(|e| u32::from(e.perm & 7))
}

/// The permission bits (`0o777`) an access ACL stands for: the owner's entry, the mask (or,
/// without one, the owning group's), and other's. EINVAL if one of them is missing.
pub fn mode_bits(entries: &[Entry]) -> FsResult<u32> {
    let missing = || FsError::new(libc::EINVAL, "an ACL needs owner, group and other entries");
    let user = perm_of(entries, USER_OBJ).ok_or_else(missing)?;
    let group = perm_of(entries, MASK)
        .or_else(|| perm_of(entries, GROUP_OBJ))
        .ok_or_else(missing)?;
    let other = perm_of(entries, OTHER).ok_or_else(missing)?;
    Ok(user << 6 | group << 3 | other)
}

/// Whether the ACL says no more than the permission bits (owner, group and other only): such
/// an ACL is not stored, as local filesystems do not store it.
pub fn is_minimal(entries: &[Entry]) -> bool {
    entries
        .iter()
        .all(|e| matches!(e.tag, USER_OBJ | GROUP_OBJ | OTHER))
}

/// The access ACL `value` after a chmod to `mode`: the owner, mask (or owning group) and
/// other entries take the new bits, named entries stay. `None` if `value` is not an ACL.
pub fn chmod(value: &[u8], mode: u32) -> Option<Vec<u8>> {
    let mut entries = parse(value).ok()?;
    let has_mask = entries.iter().any(|e| e.tag == MASK);
    let group_tag = if has_mask { MASK } else { GROUP_OBJ };
    for e in &mut entries {
        let bits = match e.tag {
            USER_OBJ => mode >> 6,
            OTHER => mode,
            t if t == group_tag => mode >> 3,
            _ => continue,
        };
        e.perm = (bits & 7) as u16;
    }
    Some(to_bytes(&entries))
}

/// A new node's share of its directory's default ACL `default` (POSIX.1e, as Linux's
/// `posix_acl_create_masq`): the requested permission bits `mode` (`0o777`) are masked by the
/// ACL's owner, group class (mask, or owning group without one) and other entries, and those
/// entries by the mode. Returns the new permission bits and the new access ACL, `None` when
/// it says no more than them (no named entry, no mask). EINVAL if the ACL lacks an entry.
pub fn create_masq(default: &[Entry], mode: u32) -> FsResult<(u32, Option<Vec<Entry>>)> {
    let invalid = || FsError::new(libc::EINVAL, "a default ACL needs owner, group and other");
    let mut acl = default.to_vec();
    let mut mode = mode & 0o777;
    let mut richer = false;
    let (mut group_obj, mut mask) = (None, None);
    for (i, e) in acl.iter_mut().enumerate() {
        match e.tag {
            USER_OBJ => {
                e.perm &= ((mode >> 6) & 7) as u16;
                mode &= (u32::from(e.perm) << 6) | 0o077;
            }
            OTHER => {
                e.perm &= (mode & 7) as u16;
                mode &= u32::from(e.perm) | 0o770;
            }
            GROUP_OBJ => group_obj = Some(i),
            MASK => {
                mask = Some(i);
                richer = true;
            }
            USER | GROUP => richer = true,
            _ => return Err(invalid()),
        }
    }
    let class = mask.or(group_obj).ok_or_else(invalid)?;
    let e = &mut acl[class];
    e.perm &= ((mode >> 3) & 7) as u16;
    mode &= (u32::from(e.perm) << 3) | 0o707;
    if perm_of(&acl, USER_OBJ).is_none() || perm_of(&acl, OTHER).is_none() {
        return Err(invalid());
    }
    Ok((mode, richer.then_some(acl)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tag: u16, perm: u16, id: u32) -> Entry {
        Entry { tag, perm, id }
    }

    /// `setfacl -m u:65534:r` on a 0644 file: what the kernel hands over.
    fn with_named_user() -> Vec<Entry> {
        vec![
            entry(USER_OBJ, 6, u32::MAX),
            entry(USER, 4, 65534),
            entry(GROUP_OBJ, 4, u32::MAX),
            entry(MASK, 4, u32::MAX),
            entry(OTHER, 4, u32::MAX),
        ]
    }

    #[test]
    fn round_trips_the_xattr_form() {
        let bytes = to_bytes(&with_named_user());
        assert_eq!(bytes.len(), 4 + 5 * 8);
        assert_eq!(&bytes[..4], &[2, 0, 0, 0]);
        assert_eq!(&bytes[12..20], &[2, 0, 4, 0, 0xfe, 0xff, 0, 0], "u:65534:r");
        assert_eq!(parse(&bytes).unwrap(), with_named_user());
        assert!(parse(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse(&[1, 0, 0, 0]).is_err(), "version 1");
    }

    #[test]
    fn mode_follows_the_mask_and_chmod_rewrites_it() {
        let acl = with_named_user();
        assert_eq!(mode_bits(&acl).unwrap(), 0o644);
        assert!(!is_minimal(&acl));
        let minimal = [
            entry(USER_OBJ, 7, 0),
            entry(GROUP_OBJ, 5, 0),
            entry(OTHER, 0, 0),
        ];
        assert_eq!(mode_bits(&minimal).unwrap(), 0o750);
        assert!(is_minimal(&minimal));
        assert!(mode_bits(&minimal[..2]).is_err());

        let after = parse(&chmod(&to_bytes(&acl), 0o710).unwrap()).unwrap();
        assert_eq!(mode_bits(&after).unwrap(), 0o710);
        assert_eq!(after[1], entry(USER, 4, 65534), "named entries kept");
        assert_eq!(
            after[2],
            entry(GROUP_OBJ, 4, u32::MAX),
            "group kept under a mask"
        );
        assert_eq!(chmod(b"junk", 0o700), None);
    }

    #[test]
    fn a_new_node_takes_the_default_acl_masked_by_its_mode() {
        // setfacl -d -m u:65534:rwx on a directory whose mode is 0755
        let default = [
            entry(USER_OBJ, 7, u32::MAX),
            entry(USER, 7, 65534),
            entry(GROUP_OBJ, 5, u32::MAX),
            entry(MASK, 7, u32::MAX),
            entry(OTHER, 5, u32::MAX),
        ];
        // open(O_CREAT, 0666): the umask plays no part
        let (mode, acl) = create_masq(&default, 0o666).unwrap();
        assert_eq!(mode, 0o664);
        let acl = acl.unwrap();
        assert_eq!(acl[0], entry(USER_OBJ, 6, u32::MAX));
        assert_eq!(acl[1], entry(USER, 7, 65534), "named entries kept");
        assert_eq!(
            acl[2],
            entry(GROUP_OBJ, 5, u32::MAX),
            "masked only by the mask"
        );
        assert_eq!(acl[3], entry(MASK, 6, u32::MAX));
        assert_eq!(acl[4], entry(OTHER, 4, u32::MAX));
        assert_eq!(mode_bits(&acl).unwrap(), mode);
        // mkdir(0700): the mask and other entries close
        let (mode, acl) = create_masq(&default, 0o700).unwrap();
        assert_eq!(mode, 0o700);
        assert_eq!(acl.unwrap()[3], entry(MASK, 0, u32::MAX));

        // A minimal default ACL only masks the mode.
        let minimal = [
            entry(USER_OBJ, 7, 0),
            entry(GROUP_OBJ, 0, 0),
            entry(OTHER, 0, 0),
        ];
        assert_eq!(create_masq(&minimal, 0o777).unwrap(), (0o700, None));
        assert!(create_masq(&minimal[..2], 0o777).is_err());
        assert!(create_masq(&[entry(USER_OBJ, 7, 0), entry(OTHER, 0, 0)], 0o777).is_err());
    }
}
