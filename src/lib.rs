//! s3mount: mount an S3 bucket as a local directory with FUSE.
//!
//! Layers, top to bottom (see `docs/ARCHITECTURE.md`):
//! - [`cli`] and [`config`]: flags and the settings they produce;
//! - [`mount`]: mount-time checks, the runtime and the FUSE session;
//!   [`daemon`] and [`logging`] around it; [`startup`]: why it could not start, in one line;
//! - [`fuse`]: the thin adapter from fuser callbacks to the core;
//! - [`fs`]: the filesystem core (inodes, directory and file handles, xattrs);
//! - [`data`]: block cache and read-ahead;
//! - [`storage`]: the object-store trait and its aws-sdk-s3 implementation;
//! - [`error`]: the one error type, and the one place store errors become errnos;
//! - [`recovery`]: uploads that failed, kept on disk: the notice, listing and retrying them.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod data;
pub mod error;
pub mod fs;
pub mod fuse;
pub mod logging;
pub mod metrics;
pub mod mount;
pub mod recovery;
pub mod startup;
pub mod storage;
