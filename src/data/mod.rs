//! The data path between file handles and the store: the block cache, its tiers (the disk
//! cache), read-ahead and uploads. Nothing here knows about inodes or FUSE; it moves bytes of
//! one object version.

pub mod cache;
pub mod disk_cache;
pub mod prefetch;
pub mod salvage;
pub mod shared_cache;
pub mod tier;
pub mod upload;
