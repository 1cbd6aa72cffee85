//! The data path between file handles and the store: the block cache, read-ahead and (later)
//! uploads. Nothing here knows about inodes or FUSE; it moves bytes of one object version.

pub mod cache;
pub mod prefetch;
pub mod salvage;
pub mod upload;
