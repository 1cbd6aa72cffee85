//! The caches through real mounts against moto, one module per tier: the disk tier
//! (`--cache DIR`: `disk`), the metadata kept in the same directory (`meta`) and the shared
//! tier (`--cache-xz BUCKET`: `shared`). Requests are counted at a recording proxy between
//! s3mount and moto (`common::fault_proxy::FaultProxy`).

#[path = "../common/mod.rs"]
mod common;

mod disk;
mod meta;
mod shared;
