//! Shared fixtures for s3mount's integration tests (`mod common;` in each file under tests/).
//!
//! * [`S3Server`] starts a private `moto_server` on a free 127.0.0.1 port and kills it on drop.
//!   One server per test: moto answers ~0.3 s after it starts, so tests need not share one.
//! * [`Bucket`] is a handle on one bucket of that server with seeding/inspection helpers.
//!   [`S3Server::new_bucket`] creates a bucket with a unique name.
//! * [`Mount`] runs the s3mount binary in the foreground against a server and waits until the
//!   mount point is live; on drop it unmounts (`fusermount3 -u`, falling back to SIGTERM and
//!   `umount -l`) and reaps the process. [`run_mount_expect_failure`] runs a mount that must fail.
//!
//! Everything is hermetic: the children get no `AWS_*` variable from the environment except the
//! ones set here (`AWS_EC2_METADATA_DISABLED=true`, static credentials `test`/`test`, region
//! us-east-1, no config/credentials files), and the test's own S3 client is built from explicit
//! static credentials and region, so nothing ever reaches for the instance metadata service.
//! All traffic goes to 127.0.0.1.
//!
//! moto_server is found through `S3MOUNT_MOTO_SERVER` (exported by scripts/test.sh), else
//! `$S3MOUNT_DEPS_DIR/venv/bin/moto_server`, else `~/.cache/s3mount-deps/venv/bin/moto_server`.
//! Install it with `./scripts/test.sh` or `bash -c '. scripts/lib.sh; s3m_ensure_moto'`.
//!
//! `S3MOUNT_BIN` overrides the s3mount binary under test (default: cargo's `CARGO_BIN_EXE_s3mount`).
//!
//! Children are started with `PR_SET_PDEATHSIG`, so a test process that dies without running its
//! destructors (SIGKILL, abort) takes its servers and mounts with it: moto gets SIGKILL, s3mount
//! gets SIGTERM (it unmounts itself). The signal fires when the *thread* that spawned the child
//! exits, so create fixtures on the test's own thread (as `#[tokio::test]` does), not inside
//! `spawn_blocking` or a thread that ends before the fixture is dropped.
//!
//! Modules: [`server`] (moto, s3rver, SDK clients), [`bucket`] ([`Bucket`]), [`mount`]
//! ([`Mount`], [`MountBuilder`], mountinfo), [`env`] (the one-call fixtures [`Env`] and
//! [`Served`]), [`process`] (hermetic environment, children, deadlines, `sh`), [`sys`] (errnos,
//! xattrs and other system calls), [`rng`], [`figures`] (reliability report lines, periodic
//! faults) and [`fault_proxy`]. Everything is re-exported here: `use common::*;`.
//!
//! Typical use:
//!
//! ```ignore
//! mod common;
//! use common::*;
//!
//! #[tokio::test]
//! async fn reads_a_file() {
//!     let served = Served::new().await;
//!     served.bucket.put("hello.txt", b"hello world\n").await;
//!     let Env { s3, bucket, mount } = served.mount(&[]);
//!     assert_eq!(std::fs::read(mount.path().join("hello.txt")).unwrap(), b"hello world\n");
//! }
//! ```

#![allow(dead_code, unused_imports)] // every test binary uses a different subset of these helpers

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

pub mod bucket;
pub mod env;
pub mod fault_proxy;
pub mod figures;
pub mod metrics;
pub mod mount;
pub mod process;
pub mod rng;
pub mod s3fs;
pub mod server;
pub mod sys;

pub use bucket::*;
pub use env::*;
pub use figures::*;
pub use metrics::*;
pub use mount::*;
pub use process::*;
pub use rng::*;
pub use s3fs::*;
pub use server::*;
pub use sys::*;
