//! One-call fixtures: [`Served`] (a moto server with a fresh bucket) and [`Env`] (the same
//! plus a live mount of that bucket), for the `S3Server::start(); s3.new_bucket()` (then
//! `Mount::new`) that almost every test begins with.
//!
//! Drop order matters (the mount must go before its server): destructure in the order the
//! fields are declared, `let Env { s3, bucket, mount } = …`; locals drop in reverse, so the
//! mount goes first. Keep a field you do not use under a `_name`, never `_` (that would drop
//! the server at once).

#![allow(dead_code)]

use super::*;

/// A private moto server and a fresh bucket on it.
pub struct Served {
    pub s3: S3Server,
    pub bucket: Bucket,
}

impl Served {
    /// Starts moto and creates a bucket with a unique name.
    pub async fn new() -> Served {
        let s3 = S3Server::start();
        let bucket = s3.new_bucket().await;
        Served { s3, bucket }
    }

    /// Mounts the bucket with `args` (after seeding it, typically).
    pub fn mount(self, args: &[&str]) -> Env {
        let mount = Mount::new(&self.s3, self.bucket.name(), args);
        Env {
            mount,
            bucket: self.bucket,
            s3: self.s3,
        }
    }
}

/// A private moto server, a fresh bucket and a live mount of it. The fields are declared
/// mount first, so that an `Env` dropped whole unmounts before its server stops.
pub struct Env {
    pub mount: Mount,
    pub bucket: Bucket,
    pub s3: S3Server,
}

impl Env {
    /// A mount of an empty bucket with the default options.
    pub async fn new() -> Env {
        Env::with_args(&[]).await
    }

    /// A mount of an empty bucket with extra command-line arguments.
    pub async fn with_args(args: &[&str]) -> Env {
        Served::new().await.mount(args)
    }
}
