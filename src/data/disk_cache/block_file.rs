//! The format of one block file, and the names of block files.
//!
//! Design note: a block file is self-describing and self-checking, so nothing outside it (no
//! index, no journal) has to be trusted:
//!
//! ```text
//! magic "S3MBLK1\n" | identity length u32 | data length u64 | CRC32C u32 | identity | data
//! ```
//!
//! (integers little-endian). The identity is the source (endpoint, bucket, prefix), the key,
//! the ETag and the block index, each length-prefixed; the CRC32C covers identity and data.
//! A read checks the magic, that the file is exactly as long as its header says, that the
//! identity is the one asked for, that the data has the expected length, and the CRC. The file
//! name is the CRC-64/NVME of the identity in hex: a collision only makes the identity check
//! fail, which is a miss.

use crc_fast::{CrcAlgorithm, Digest};

/// First bytes of every block file.
const MAGIC: &[u8; 8] = b"S3MBLK1\n";
/// Bytes before the identity.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// Why a block file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockFileError {
    #[error("not a block file (bad magic)")]
    BadMagic,
    #[error("truncated or padded: {actual} bytes where the header says {expected}")]
    WrongSize { expected: u64, actual: u64 },
    #[error("holds another block (same file name)")]
    OtherBlock,
    #[error("holds {actual} bytes of data where the block has {expected}")]
    WrongLength { expected: u64, actual: u64 },
    #[error("checksum mismatch")]
    Checksum,
}

impl BlockFileError {
    /// Whether the file is damaged (as opposed to sound but for another block).
    pub fn is_damage(&self) -> bool {
        !matches!(self, BlockFileError::OtherBlock)
    }
}

/// The identity of block `index` of version `etag` of `key` from `source`.
pub fn identity(source: &str, key: &str, etag: &str, index: u64) -> Vec<u8> {
    let mut id = Vec::with_capacity(source.len() + key.len() + etag.len() + 20);
    for field in [source, key, etag] {
        id.extend_from_slice(&(field.len() as u32).to_le_bytes());
        id.extend_from_slice(field.as_bytes());
    }
    id.extend_from_slice(&index.to_le_bytes());
    id
}

/// The name hash of a block file.
pub fn name_hash(identity: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Nvme, identity)
}

fn crc32c(identity: &[u8], data: &[u8]) -> u32 {
    let mut d = Digest::new(CrcAlgorithm::Crc32Iscsi);
    d.update(identity);
    d.update(data);
    d.finalize() as u32
}

/// The header and identity of a block file holding `data` (the data follows them).
pub fn header(identity: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + identity.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(identity.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32c(identity, data).to_le_bytes());
    out.extend_from_slice(identity);
    out
}

/// Checks a whole block file against the `identity` and data length `len` expected; returns
/// where the data starts.
pub fn verify(file: &[u8], identity: &[u8], len: u64) -> Result<usize, BlockFileError> {
    if file.len() < HEADER_LEN || &file[..8] != MAGIC {
        return Err(BlockFileError::BadMagic);
    }
    let id_len = u32::from_le_bytes(file[8..12].try_into().unwrap()) as u64;
    let data_len = u64::from_le_bytes(file[12..20].try_into().unwrap());
    let crc = u32::from_le_bytes(file[20..24].try_into().unwrap());
    let expected = (HEADER_LEN as u64)
        .saturating_add(id_len)
        .saturating_add(data_len);
    if expected != file.len() as u64 {
        return Err(BlockFileError::WrongSize {
            expected,
            actual: file.len() as u64,
        });
    }
    let start = HEADER_LEN + id_len as usize;
    let (id, data) = (&file[HEADER_LEN..start], &file[start..]);
    if crc32c(id, data) != crc {
        return Err(BlockFileError::Checksum);
    }
    if id != identity {
        return Err(BlockFileError::OtherBlock);
    }
    if data_len != len {
        return Err(BlockFileError::WrongLength {
            expected: len,
            actual: data_len,
        });
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &[u8], data: &[u8]) -> Vec<u8> {
        let mut f = header(id, data);
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn a_sound_file_verifies_and_any_damage_is_caught() {
        let id = identity("src", "k", "e", 3);
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let f = file(&id, &data);
        let start = verify(&f, &id, 1000).unwrap();
        assert_eq!(&f[start..], &data[..]);
        for at in [0, 9, 13, 21, HEADER_LEN + 2, f.len() - 1] {
            let mut bad = f.clone();
            bad[at] ^= 0x40;
            assert!(verify(&bad, &id, 1000).unwrap_err().is_damage(), "{at}");
        }
        assert!(matches!(
            verify(&f[..f.len() - 1], &id, 1000),
            Err(BlockFileError::WrongSize { .. })
        ));
        let other = identity("src", "k", "f", 3);
        assert_eq!(verify(&f, &other, 1000), Err(BlockFileError::OtherBlock));
        assert!(matches!(
            verify(&f, &id, 999),
            Err(BlockFileError::WrongLength { .. })
        ));
    }

    #[test]
    fn identities_are_unambiguous() {
        assert_ne!(identity("a", "bc", "", 0), identity("ab", "c", "", 0));
        assert_ne!(
            name_hash(&identity("s", "k", "e", 0)),
            name_hash(&identity("s", "k", "e", 1))
        );
    }
}
