//! One listing in flight per directory, shared by the lookups that need it.
//!
//! Design note: lookups that miss in one directory at the same time — 16 readers opening their
//! files, `xargs -P`, a parallel build, the revalidations of open files after the TTL — each
//! need the directory's listing. The first starts it in a task of its own; the others
//! subscribe to its outcome (a `watch` channel) and a failure reaches every one of them. The
//! task, not a caller, owns the listing: a caller that is cancelled (its FUSE request
//! interrupted) leaves the listing running for the others. The flight leaves the table after
//! the listing is recorded and before its outcome is sent, so a lookup that finds no flight
//! finds the directory complete instead; and a task that ends in any other way (a panic) takes
//! its flight with it (a guard) and closes the channel, so nothing waits on a listing nobody
//! runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

use super::Namespace;
use crate::error::{FsError, FsResult};

/// What a listing taken for lookups found out about the directory's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fit {
    /// Listed completely in one page: the table now knows every child.
    OnePage,
    /// More than one page: ask S3 about each name alone (remembered for the TTL).
    TooBig,
}

type Outcome = Option<FsResult<Fit>>;

/// The listings in flight, by directory inode.
#[derive(Default)]
pub(super) struct Flights {
    by_dir: Mutex<HashMap<u64, Flight>>,
    next_id: AtomicU64,
}

struct Flight {
    id: u64,
    outcome: watch::Receiver<Outcome>,
}

/// Takes a flight out of the table when its task ends, however it ends.
struct Landing {
    ns: Arc<Namespace>,
    dir: u64,
    id: u64,
}

impl Drop for Landing {
    fn drop(&mut self) {
        let mut by_dir = self.ns.flights.by_dir.lock().unwrap();
        if by_dir.get(&self.dir).is_some_and(|f| f.id == self.id) {
            by_dir.remove(&self.dir);
        }
    }
}

impl Namespace {
    /// Makes the table know every child of directory `dir` (listed within the TTL), by one
    /// listing page shared with every lookup that needs it at the same time; or tells that the
    /// directory needs more than one page.
    pub(super) async fn list_for_lookups(&self, dir: u64) -> FsResult<Fit> {
        let mut outcome = match self.join_or_start(dir)? {
            Ok(outcome) => outcome,
            Err(known) => return Ok(known),
        };
        let answer = outcome
            .wait_for(Option::is_some)
            .await
            .map_err(|_| FsError::new(libc::EIO, "the directory's listing was abandoned"))?;
        answer.clone().expect("waited for an outcome")
    }

    /// The outcome to wait for: of the flight listing `dir` now, or of one started here; or
    /// (`Err`) what the table knows already.
    fn join_or_start(&self, dir: u64) -> FsResult<Result<watch::Receiver<Outcome>, Fit>> {
        let mut by_dir = self.flights.by_dir.lock().unwrap();
        if let Some(flight) = by_dir.get(&dir) {
            return Ok(Ok(flight.outcome.clone()));
        }
        // Decided under the flights' lock: a listing is recorded before its flight leaves, so
        // the table is complete once no flight is found.
        if self.too_big_to_list(dir) {
            return Ok(Err(Fit::TooBig));
        }
        if self.is_complete(dir) {
            return Ok(Err(Fit::OnePage));
        }
        let ns = self
            .me
            .upgrade()
            .ok_or_else(|| FsError::new(libc::EIO, "unmounting"))?;
        let (tell, outcome) = watch::channel(None);
        let id = self.flights.next_id.fetch_add(1, Ordering::Relaxed);
        let flight = Flight {
            id,
            outcome: outcome.clone(),
        };
        by_dir.insert(dir, flight);
        tokio::spawn(fly(Landing { ns, dir, id }, tell));
        Ok(Ok(outcome))
    }

    /// Whether the table knows every child of `dir` now.
    fn is_complete(&self, dir: u64) -> bool {
        self.table()
            .get(dir)
            .is_some_and(|d| d.is_complete(Instant::now()))
    }

    /// Lists `dir` if it fits in one page; else remembers for the TTL that it does not, so
    /// lookups go straight to S3 instead of each listing a first page again.
    async fn list_one_page(&self, dir: u64) -> FsResult<Fit> {
        if self.list_dir_limited(dir, Some(1)).await?.is_some() {
            return Ok(Fit::OnePage);
        }
        let until = self.valid_until();
        if let Some(d) = self.table().dir_mut(dir) {
            d.too_big_until = Some(until);
        }
        Ok(Fit::TooBig)
    }
}

/// The task of one flight: lists, lands (leaves the table), then tells the waiting lookups.
async fn fly(landing: Landing, tell: watch::Sender<Outcome>) {
    let outcome = landing.ns.list_one_page(landing.dir).await;
    drop(landing);
    tell.send_replace(Some(outcome));
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::sync::Arc;
    use std::time::Duration;

    use futures::future::join_all;

    use super::Fit;
    use crate::config::FsConfig;
    use crate::fs::inode::ROOT_INO;
    use crate::fs::test_fs::{test_fs, TestFs};
    use crate::storage::fault::{FaultStore, Op, Rule};
    use crate::storage::mem::MemStore;
    use crate::storage::{ObjectStore, StoreError};

    /// A mount of `d/f00` … `d/f15`, every LIST taking 50 ms; and `d`'s inode.
    async fn sixteen() -> (Arc<FaultStore<MemStore>>, TestFs, u64) {
        let mem = Arc::new(MemStore::new());
        for i in 0..16 {
            mem.insert(&format!("d/f{i:02}"), "x");
        }
        let store = Arc::new(FaultStore::new(mem));
        store.add(Rule::delay(Op::List, Duration::from_millis(50)));
        let fs = test_fs(store.clone() as Arc<dyn ObjectStore>, FsConfig::default());
        let d = fs.lookup(ROOT_INO, OsStr::new("d")).await.unwrap().ino.0;
        (store, fs, d)
    }

    #[tokio::test]
    async fn listings_asked_for_at_once_are_one_listing() {
        let (store, fs, d) = sixteen().await;
        let before = store.count(Op::List);
        let all = join_all((0..16).map(|_| fs.ns.list_for_lookups(d))).await;
        assert!(all
            .iter()
            .all(|r| r.as_ref().is_ok_and(|f| *f == Fit::OnePage)));
        assert_eq!(store.count(Op::List) - before, 1);
        // Complete now: asked again within the TTL, it lists nothing.
        fs.ns.list_for_lookups(d).await.unwrap();
        assert_eq!(store.count(Op::List) - before, 1);
    }

    #[tokio::test]
    async fn sixteen_misses_at_once_cost_two_lists() {
        let (store, fs, d) = sixteen().await;
        let before = store.count(Op::List);
        let names: Vec<String> = (0..16).map(|i| format!("f{i:02}")).collect();
        let found = join_all(names.iter().map(|n| fs.lookup(d, OsStr::new(n)))).await;
        assert!(found.iter().all(Result::is_ok), "{found:?}");
        // The first asks about its name alone; the second lists, and the rest share that.
        assert_eq!(store.count(Op::List) - before, 2);
    }

    #[tokio::test]
    async fn a_failed_listing_reaches_every_waiter_and_the_next_one_lists_again() {
        let (store, fs, d) = sixteen().await;
        let before = store.count(Op::List);
        let failing = store.add(Rule::fail(Op::List, || StoreError::server("down")).times(1));
        let all = join_all((0..8).map(|_| fs.ns.list_for_lookups(d))).await;
        assert!(all.iter().all(Result::is_err), "{all:?}");
        assert_eq!(store.fired(failing), 1);
        assert_eq!(
            store.count(Op::List) - before,
            1,
            "one listing, failed for all"
        );
        assert_eq!(fs.ns.list_for_lookups(d).await.unwrap(), Fit::OnePage);
        assert_eq!(store.count(Op::List) - before, 2);
    }

    #[tokio::test]
    async fn a_cancelled_first_caller_leaves_the_listing_to_the_others() {
        let (store, fs, d) = sixteen().await;
        let before = store.count(Op::List);
        let first = tokio::time::timeout(Duration::from_millis(5), fs.ns.list_for_lookups(d));
        assert!(
            first.await.is_err(),
            "cancelled while the LIST is on its way"
        );
        assert_eq!(fs.ns.list_for_lookups(d).await.unwrap(), Fit::OnePage);
        assert_eq!(
            store.count(Op::List) - before,
            1,
            "the second joined the first's"
        );
    }

    #[tokio::test]
    async fn a_directory_of_more_than_a_page_is_told_too_big_once() {
        let mem = Arc::new(MemStore::new());
        for i in 0..1001 {
            mem.insert(&format!("big/f{i:04}"), "x");
        }
        let store = Arc::new(FaultStore::new(mem));
        let fs = test_fs(store.clone() as Arc<dyn ObjectStore>, FsConfig::default());
        let d = fs.lookup(ROOT_INO, OsStr::new("big")).await.unwrap().ino.0;
        let before = store.count(Op::List);
        let all = join_all((0..4).map(|_| fs.ns.list_for_lookups(d))).await;
        assert!(all
            .iter()
            .all(|r| r.as_ref().is_ok_and(|f| *f == Fit::TooBig)));
        assert_eq!(fs.ns.list_for_lookups(d).await.unwrap(), Fit::TooBig);
        assert_eq!(store.count(Op::List) - before, 1, "remembered for the TTL");
    }
}
