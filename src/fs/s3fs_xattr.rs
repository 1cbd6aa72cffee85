//! Extended attributes stored the s3fs way: every `user.*` name outside the `user.s3.*`
//! scheme, and the POSIX ACLs, in one `x-amz-meta-xattr` header.
//!
//! Design note: s3fs writes the header as `urlencode({"name":"base64(value)",...})`: names in
//! full and sorted (a C++ `std::map`), values in standard base64 with padding, no spaces, and
//! every byte outside `A-Z a-z 0-9 / . - _ ~` as `%XX` in upper case. It reads it back by
//! splitting the JSON text on `,` and each pair on its first `:`, without escapes — so a name
//! holding `"`, `,` or `:` could not be read back, and is refused (ENOTSUP). Reading here
//! follows s3fs's parser, so whatever s3fs can read, s3mount reads the same. The header is
//! dropped when the last attribute goes, as s3fs does. Nothing here does I/O: the functions
//! edit user metadata (a `PutOptions`), and the caller sends it, after the 2 KB check.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::acl;
use super::xattr::check_flags;
use crate::error::{FsError, FsResult};
use crate::storage::PutOptions;

/// The user-metadata key (`x-amz-meta-xattr`).
pub const HEADER: &str = "xattr";
/// The access ACL's name.
pub const ACL_ACCESS: &str = "system.posix_acl_access";
/// The default ACL's name (directories).
pub const ACL_DEFAULT: &str = "system.posix_acl_default";

/// Attributes by name, in s3fs's order.
pub type Xattrs = BTreeMap<String, Vec<u8>>;

/// What s3fs's `urlEncode` leaves as it is.
const KEPT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// Standard base64; reading tolerates missing padding and stray bits, as s3fs's decoder does.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// How an extended-attribute name is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// `user.s3.*`: tags, metadata and object facts (see [`super::xattr`]).
    Scheme,
    /// Any other `user.*` name, or a POSIX ACL: in the `x-amz-meta-xattr` header.
    Stored,
    /// Any other namespace (`security.*`, `trusted.*`, other `system.*`): not kept.
    Unsupported,
}

/// How `name` is kept.
pub fn classify(name: &str) -> Class {
    if name.starts_with("user.s3.") {
        Class::Scheme
    } else if name.starts_with("user.") || name == ACL_ACCESS || name == ACL_DEFAULT {
        Class::Stored
    } else {
        Class::Unsupported
    }
}

/// Refuses a name the header cannot carry so that s3fs reads it back.
fn check_name(name: &str) -> FsResult<()> {
    if name == "user." {
        return Err(FsError::new(libc::EINVAL, "empty attribute name"));
    }
    if name.contains(['"', ',', ':']) {
        return Err(FsError::new(
            libc::ENOTSUP,
            "attribute names with '\"', ',' or ':' cannot be stored the s3fs way",
        ));
    }
    Ok(())
}

/// The header value for `xattrs`, byte for byte as s3fs writes it.
pub fn encode(xattrs: &Xattrs) -> String {
    let mut json = String::from("{");
    for (i, (name, value)) in xattrs.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(name);
        json.push_str("\":\"");
        json.push_str(&BASE64.encode(value));
        json.push('"');
    }
    json.push('}');
    utf8_percent_encode(&json, KEPT).to_string()
}

/// The attributes in header value `header`, read as s3fs reads it; pairs it would skip are
/// skipped.
pub fn decode(header: &str) -> Xattrs {
    let json: Vec<u8> = percent_decode_str(header).collect();
    let (Some(start), Some(end)) = (
        json.iter().position(|&b| b == b'{'),
        json.iter().rposition(|&b| b == b'}'),
    ) else {
        return Xattrs::new();
    };
    if end <= start {
        return Xattrs::new();
    }
    json[start + 1..end]
        .split(|&b| b == b',')
        .filter_map(parse_pair)
        .collect()
}

/// One `"name":"base64"` pair; `None` where s3fs would skip it.
fn parse_pair(pair: &[u8]) -> Option<(String, Vec<u8>)> {
    let colon = pair.iter().position(|&b| b == b':')?;
    let name = unquote(&pair[..colon])?;
    let value = unquote(&pair[colon + 1..])?;
    let name = String::from_utf8(name.to_vec())
        .ok()
        .filter(|n| !n.is_empty())?;
    match BASE64.decode(value) {
        Ok(v) => Some((name, v)),
        Err(e) => {
            tracing::debug!(
                name,
                "skipping an x-amz-meta-xattr value that is not base64: {e}"
            );
            None
        }
    }
}

/// s3fs's `takeout_str_dquart`: what lies between the first and the last `"`, if any.
fn unquote(s: &[u8]) -> Option<&[u8]> {
    let Some(first) = s.iter().position(|&b| b == b'"') else {
        return Some(s);
    };
    let rest = &s[first + 1..];
    let last = rest.iter().rposition(|&b| b == b'"')?;
    let inner = &rest[..last];
    (!inner.contains(&b'"')).then_some(inner)
}

/// The stored attributes in user metadata `metadata`.
pub fn read(metadata: &HashMap<String, String>) -> Xattrs {
    metadata.get(HEADER).map(|h| decode(h)).unwrap_or_default()
}

/// Writes `xattrs` into user metadata `metadata` (the header goes when they are none).
fn write(metadata: &mut HashMap<String, String>, xattrs: &Xattrs) {
    if xattrs.is_empty() {
        metadata.remove(HEADER);
    } else {
        metadata.insert(HEADER.to_string(), encode(xattrs));
    }
}

/// setxattr(2) of stored attribute `name` in `opts` (with XATTR_CREATE / XATTR_REPLACE
/// `flags`). `mode` is the node's full `st_mode`: an access ACL sets its permission bits
/// (kept in s3fs's `mode`), and one that says no more than them is not stored.
pub fn set(opts: &mut PutOptions, name: &str, value: &[u8], flags: i32, mode: u32) -> FsResult<()> {
    check_name(name)?;
    let mut xattrs = read(&opts.metadata);
    check_flags(xattrs.contains_key(name), flags)?;
    let mut value = Some(value.to_vec());
    if name == ACL_ACCESS || name == ACL_DEFAULT {
        let entries = acl::parse(value.as_deref().unwrap_or_default())?;
        if name == ACL_ACCESS {
            let mode = (mode & !0o777) | acl::mode_bits(&entries)?;
            opts.metadata.insert("mode".into(), mode.to_string());
            if acl::is_minimal(&entries) {
                value = None;
            }
        }
    }
    match value {
        Some(v) => xattrs.insert(name.to_string(), v),
        None => xattrs.remove(name),
    };
    write(&mut opts.metadata, &xattrs);
    Ok(())
}

/// removexattr(2) of stored attribute `name` in `opts`; ENODATA if there is none.
pub fn remove(opts: &mut PutOptions, name: &str) -> FsResult<()> {
    let mut xattrs = read(&opts.metadata);
    if xattrs.remove(name).is_none() {
        return Err(FsError::new(libc::ENODATA, "no such attribute"));
    }
    write(&mut opts.metadata, &xattrs);
    Ok(())
}

/// After a chmod to `mode`: rewrites the access ACL in `metadata`, if any, to match it.
pub fn chmod(metadata: &mut HashMap<String, String>, mode: u32) {
    let mut xattrs = read(metadata);
    let Some(updated) = xattrs.get(ACL_ACCESS).and_then(|v| acl::chmod(v, mode)) else {
        return;
    };
    xattrs.insert(ACL_ACCESS.to_string(), updated);
    write(metadata, &xattrs);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xattrs(pairs: &[(&str, &[u8])]) -> Xattrs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn encodes_byte_for_byte_as_s3fs() {
        // {"user.key1":"aGVsbG8="} url-encoded by s3fs's urlEncode
        let one = xattrs(&[("user.key1", b"hello")]);
        assert_eq!(encode(&one), "%7B%22user.key1%22%3A%22aGVsbG8%3D%22%7D");
        // sorted by name, comma-separated; '+' and '=' escaped, '/' kept; empty value empty
        let two = xattrs(&[("user.z", b"\xfb\xff"), ("user.a-b_c~d", b"")]);
        assert_eq!(
            encode(&two),
            "%7B%22user.a-b_c~d%22%3A%22%22%2C%22user.z%22%3A%22%2B/8%3D%22%7D"
        );
        assert_eq!(encode(&Xattrs::new()), "%7B%7D");
    }

    #[test]
    fn round_trips_binary_values() {
        let all: Vec<u8> = (0..=255).collect();
        let x = xattrs(&[
            ("user.bin", &all),
            ("user.empty", b""),
            (ACL_ACCESS, b"\x02\0\0\0"),
            ("user.ünïcode", b"v"),
        ]);
        assert_eq!(decode(&encode(&x)), x);
    }

    #[test]
    fn reads_what_s3fs_reads() {
        // lower-case escapes, a pair without quotes, a broken pair skipped
        let h = "%7b%22user.a%22%3a%22YQ%3d%3d%22,user.b:Yg==,%22user.c%22%7D";
        assert_eq!(
            decode(h),
            xattrs(&[("user.a", b"a"), ("user.b", b"b")]),
            "{h}"
        );
        assert_eq!(decode("not json"), Xattrs::new());
        assert_eq!(decode("%7D%7B"), Xattrs::new());
        // unpadded base64 (as some writers leave it)
        assert_eq!(decode("{\"user.k\":\"aGk\"}"), xattrs(&[("user.k", b"hi")]));
    }

    #[test]
    fn classifies_names() {
        assert_eq!(classify("user.s3.tag.x"), Class::Scheme);
        assert_eq!(classify("user.key1"), Class::Stored);
        assert_eq!(classify("user.s3"), Class::Stored);
        assert_eq!(classify(ACL_ACCESS), Class::Stored);
        assert_eq!(classify(ACL_DEFAULT), Class::Stored);
        assert_eq!(classify("security.selinux"), Class::Unsupported);
        assert_eq!(classify("trusted.x"), Class::Unsupported);
        assert_eq!(classify("system.other"), Class::Unsupported);
    }

    #[test]
    fn set_and_remove_edit_one_header() {
        let mut opts = PutOptions::default();
        opts.metadata.insert("mode".into(), "33188".into());
        set(&mut opts, "user.b", b"2", 0, 0o100644).unwrap();
        set(&mut opts, "user.a", b"1", 0, 0o100644).unwrap();
        assert_eq!(
            read(&opts.metadata),
            xattrs(&[("user.a", b"1"), ("user.b", b"2")])
        );
        let e = set(
            &mut opts,
            "user.a",
            b"x",
            super::super::xattr::XATTR_CREATE,
            0,
        )
        .unwrap_err();
        assert_eq!(e.errno, libc::EEXIST);
        let e = set(
            &mut opts,
            "user.c",
            b"x",
            super::super::xattr::XATTR_REPLACE,
            0,
        )
        .unwrap_err();
        assert_eq!(e.errno, libc::ENODATA);
        assert_eq!(
            set(&mut opts, "user.a,b", b"x", 0, 0).unwrap_err().errno,
            libc::ENOTSUP
        );
        remove(&mut opts, "user.a").unwrap();
        assert_eq!(
            remove(&mut opts, "user.a").unwrap_err().errno,
            libc::ENODATA
        );
        remove(&mut opts, "user.b").unwrap();
        assert!(
            !opts.metadata.contains_key(HEADER),
            "header dropped with the last one"
        );
        assert_eq!(opts.metadata["mode"], "33188", "other metadata kept");
    }

    #[test]
    fn an_access_acl_sets_the_mode_and_chmod_updates_it() {
        use acl::{Entry, GROUP_OBJ, MASK, OTHER, USER, USER_OBJ};
        let e = |tag, perm, id| Entry { tag, perm, id };
        let named = acl::to_bytes(&[
            e(USER_OBJ, 6, 0),
            e(USER, 4, 65534),
            e(GROUP_OBJ, 4, 0),
            e(MASK, 5, 0),
            e(OTHER, 0, 0),
        ]);
        let mut opts = PutOptions::default();
        set(&mut opts, ACL_ACCESS, &named, 0, libc::S_IFREG | 0o4644).unwrap();
        assert_eq!(opts.metadata["mode"], (libc::S_IFREG | 0o4650).to_string());
        assert_eq!(read(&opts.metadata)[ACL_ACCESS], named);

        chmod(&mut opts.metadata, 0o640);
        let after = acl::parse(&read(&opts.metadata)[ACL_ACCESS]).unwrap();
        assert_eq!(acl::mode_bits(&after).unwrap(), 0o640);

        // an ACL no richer than the mode bits only sets them
        let minimal = acl::to_bytes(&[e(USER_OBJ, 7, 0), e(GROUP_OBJ, 0, 0), e(OTHER, 0, 0)]);
        set(&mut opts, ACL_ACCESS, &minimal, 0, libc::S_IFREG | 0o640).unwrap();
        assert_eq!(opts.metadata["mode"], (libc::S_IFREG | 0o700).to_string());
        assert!(!opts.metadata.contains_key(HEADER));
        assert_eq!(
            set(&mut opts, ACL_ACCESS, b"junk", 0, 0).unwrap_err().errno,
            libc::EINVAL
        );
    }
}
