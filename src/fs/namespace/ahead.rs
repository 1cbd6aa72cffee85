//! Stat-ahead: completing the attributes of the entries a `stat` of one entry predicts.
//!
//! Design note: a listing tells size, Last-Modified and ETag, not s3fs's mode, owner and
//! times, so an entry known from a listing only is completed (HEAD) before its attributes
//! reach the kernel. `ls -l`, `cp -a`, `rsync -a` and `find -newer` then stat every entry in
//! listing order, one at a time: one HEAD after another would cost a round trip each. So when
//! an entry of a listed directory is looked up, the next [`STAT_AHEAD`] entries of that listing
//! that are still partial are completed in the background, [`MAX_AHEAD_IN_FLIGHT`] at a time,
//! and a lookup that finds its entry in flight waits for that HEAD instead of sending its own.
//! `readdirplus` past the first batch (which the kernel, in its adaptive mode, sends only once
//! entries were stat'ed) completes its own entries the same way before answering, and starts
//! the ones after them, so `ls -l` finds most attributes in the kernel's cache. A plain
//! `readdir` (`ls`, `find` without `-newer`) stats nothing and so sends no HEAD.
//! With `--listing-attributes` nothing is completed at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::Semaphore;

use super::Namespace;
use crate::fs::inode::{AttrSource, Inode};

/// Entries completed ahead of the one being looked up. 64: a HEAD's round trip is hidden
/// behind the stats of the entries before it, with room for `ls -l`'s pace.
pub const STAT_AHEAD: usize = 64;

/// Background completions in flight across the mount.
pub const MAX_AHEAD_IN_FLIGHT: usize = 32;

/// How a background completion asks about a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// As a lookup does: a small file's whole body with its headers (a name looked up is
    /// most often read next: `cat dir/*`), a HEAD otherwise.
    LikeLookup,
    /// A HEAD: the entries are being stat'ed (`ls -l`), not read.
    Head,
}

/// The completions in flight, by inode.
pub struct Ahead {
    in_flight: Mutex<HashMap<u64, Shared<BoxFuture<'static, ()>>>>,
    permits: Arc<Semaphore>,
}

impl Default for Ahead {
    fn default() -> Self {
        Ahead {
            in_flight: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(MAX_AHEAD_IN_FLIGHT)),
        }
    }
}

impl Namespace {
    /// After a lookup of `ino` in `dir`: starts completing the partial entries that follow it
    /// in `dir`'s last listing.
    pub(super) fn stat_ahead(&self, dir: u64, ino: u64) {
        if self.config.trust_listing_attrs {
            return;
        }
        let next = self.next_partial(dir, ino);
        self.complete_in_background(next, Probe::LikeLookup);
    }

    /// Starts completing each of `inos` that is not in flight yet, in background tasks, at
    /// most [`MAX_AHEAD_IN_FLIGHT`] requests at a time across the mount.
    pub(super) fn complete_in_background(&self, inos: Vec<u64>, how: Probe) {
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let mut in_flight = self.ahead.in_flight.lock().unwrap();
        for ino in inos {
            if in_flight.contains_key(&ino) {
                continue;
            }
            let permits = self.ahead.permits.clone();
            let ns = me.clone();
            let job = async move {
                let _permit = permits.acquire_owned().await;
                ns.complete_quietly(ino, how).await;
                ns.ahead.in_flight.lock().unwrap().remove(&ino);
            }
            .boxed()
            .shared();
            in_flight.insert(ino, job.clone());
            tokio::spawn(job);
        }
    }

    /// Whether a background completion of `ino` is in flight.
    pub(super) fn ahead_in_flight(&self, ino: u64) -> bool {
        self.ahead.in_flight.lock().unwrap().contains_key(&ino)
    }

    /// Waits for a background completion of `ino`, if one is in flight.
    pub(super) async fn wait_ahead(&self, ino: u64) {
        let job = self.ahead.in_flight.lock().unwrap().get(&ino).cloned();
        if let Some(job) = job {
            job.await;
        }
    }

    /// The partial entries among the [`STAT_AHEAD`] that follow `ino` in `dir`'s listing.
    fn next_partial(&self, dir: u64, ino: u64) -> Vec<u64> {
        let mut table = self.table();
        let Some(d) = table.dir_mut(dir) else {
            return Vec::new();
        };
        let Some(order) = d.order.clone() else {
            return Vec::new();
        };
        // Stats come in listing order: look from where the last one was found first.
        let hint = d.order_hint.min(order.len());
        let pos = order[hint..]
            .iter()
            .position(|i| *i == ino)
            .map(|p| p + hint)
            .or_else(|| order.iter().position(|i| *i == ino));
        let Some(pos) = pos else {
            return Vec::new();
        };
        d.order_hint = pos;
        let partial = |i: &&u64| table.get(**i).is_some_and(Inode::is_partial);
        order[pos + 1..]
            .iter()
            .take(STAT_AHEAD)
            .filter(partial)
            .copied()
            .collect()
    }

    /// Completes entry `ino` with its headers, if it is still partial: [`Probe::LikeLookup`]
    /// asks about a small file with a GET of the whole object (its bytes go to the cache, and
    /// `cat dir/*` then costs one request a file), anything else with a HEAD. Failures leave
    /// it partial: its own lookup will ask again.
    async fn complete_quietly(&self, ino: u64, how: Probe) {
        let Ok(node) = self.node(ino) else {
            return;
        };
        if node.source != AttrSource::Listing {
            return;
        }
        if node.is_dir() {
            if let Ok(attrs) = self.dir_stat(&node.key, true).await {
                if let Some(n) = self.table().get_mut(ino) {
                    attrs.apply(n);
                }
            }
            return;
        }
        let small = super::lookup::small_file_get(&self.config);
        let like_lookup = how == Probe::LikeLookup;
        let answer = if like_lookup && node.stat.size > 0 && node.stat.size <= small {
            let seen = node.stat.etag.as_deref();
            self.probe.headers(&node.key, small, seen).await
        } else {
            self.probe.head(&node.key).await
        };
        let _ = self.record_object(node.parent, &node.name, node.key.clone(), answer);
    }
}
