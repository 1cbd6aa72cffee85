//! Unit tests of [`FaultStore`] itself, over [`MemStore`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use super::{FaultStore, Op, Rule};
use crate::error::FsError;
use crate::storage::mem::MemStore;
use crate::storage::{ObjectStore, PutOptions, StoreError};

fn store() -> FaultStore<MemStore> {
    let mem = Arc::new(MemStore::new());
    mem.insert("a", "0123456789");
    mem.insert("dir/b", "bbbb");
    FaultStore::new(mem)
}

fn errno(r: Result<impl std::fmt::Debug, StoreError>) -> i32 {
    FsError::from(r.expect_err("expected an error")).errno
}

async fn body(chunks: crate::storage::ByteChunks) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    let mut chunks = chunks;
    while let Some(c) = chunks.next().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

#[tokio::test]
async fn no_rule_forwards_everything() {
    let s = store();
    assert_eq!(s.head("a").await.unwrap().size, 10);
    let got = body(s.get_range("a", 2..5, None).await.unwrap()).await;
    assert_eq!(got.unwrap(), b"234");
    assert_eq!(errno(s.head("missing").await), libc::ENOENT);
    assert_eq!(s.count(Op::Head), 2);
    assert_eq!(s.count(Op::GetRange), 1);
    assert_eq!(s.inner().count("head"), 2);
}

#[tokio::test]
async fn fails_only_the_nth_request_of_its_operation() {
    let s = store();
    let id = s.add(Rule::fail(Op::Head, StoreError::not_found).nth(2));
    assert!(s.head("a").await.is_ok());
    assert_eq!(errno(s.head("a").await), libc::ENOENT);
    assert!(s.head("a").await.is_ok());
    // Other operations are not selected and do not count.
    assert!(s.list("", Some("/"), None, None).await.is_ok());
    assert_eq!(s.fired(id), 1);
    // The failed request never reached the inner store.
    assert_eq!(s.inner().count("head"), 2);
}

#[tokio::test]
async fn fails_every_request_from_a_point_on_until_removed() {
    let s = store();
    let id = s.add(Rule::fail(Op::Put, StoreError::precondition_failed).skip(1));
    let opts = PutOptions::default();
    assert!(s.put("k", Bytes::from_static(b"1"), &opts).await.is_ok());
    for _ in 0..3 {
        let r = s.put("k", Bytes::from_static(b"2"), &opts).await;
        assert_eq!(errno(r), libc::ESTALE);
    }
    assert_eq!(s.inner().body("k").unwrap(), "1");
    assert_eq!(s.fired(id), 3);
    s.remove(id);
    assert!(s.put("k", Bytes::from_static(b"3"), &opts).await.is_ok());
    assert_eq!(s.inner().body("k").unwrap(), "3");
    assert_eq!(s.count(Op::Put), 5);
}

#[tokio::test]
async fn every_and_times_bound_a_periodic_fault() {
    let s = store();
    s.add(
        Rule::fail(Op::Head, StoreError::not_found)
            .every(3)
            .times(2),
    );
    let mut outcomes = Vec::new();
    for _ in 0..9 {
        outcomes.push(s.head("a").await.is_ok());
    }
    // Acts on the 1st and 4th selected requests, then it is spent.
    assert_eq!(
        outcomes,
        [false, true, true, false, true, true, true, true, true]
    );
}

#[tokio::test]
async fn selects_by_key_substring_and_any_operation() {
    let s = store();
    s.add(Rule::fail_any(StoreError::not_found).on_key("dir/"));
    assert!(s.head("a").await.is_ok());
    assert_eq!(errno(s.head("dir/b").await), libc::ENOENT);
    assert_eq!(errno(s.get_tags("dir/b").await), libc::ENOENT);
    assert_eq!(errno(s.delete("dir/b").await), libc::ENOENT);
    assert_eq!(s.inner().body("dir/b").unwrap(), "bbbb");
    // A listing is selected by its prefix.
    assert_eq!(
        errno(s.list("dir/", Some("/"), None, None).await),
        libc::ENOENT
    );
    assert!(s.list("", Some("/"), None, None).await.is_ok());
}

#[tokio::test]
async fn the_first_matching_failure_answers_and_later_rules_still_count() {
    let s = store();
    let first = s.add(Rule::fail(Op::Head, StoreError::not_found).times(1));
    let second = s.add(Rule::fail(Op::Head, StoreError::precondition_failed).nth(2));
    assert_eq!(errno(s.head("a").await), libc::ENOENT);
    assert_eq!(errno(s.head("a").await), libc::ESTALE);
    assert!(s.head("a").await.is_ok());
    assert_eq!((s.fired(first), s.fired(second)), (1, 1));
}

#[tokio::test]
async fn delays_add_up_and_then_the_request_succeeds() {
    let s = store();
    s.add(Rule::delay(Op::Head, Duration::from_millis(60)));
    s.add(Rule::delay(Op::Head, Duration::from_millis(60)).times(1));
    let t = Instant::now();
    assert!(s.head("a").await.is_ok());
    assert!(
        t.elapsed() >= Duration::from_millis(120),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    assert!(s.head("a").await.is_ok());
    let second = t.elapsed();
    assert!(second >= Duration::from_millis(60), "{second:?}");
    assert!(second < Duration::from_millis(120), "{second:?}");
}

#[tokio::test]
async fn a_broken_body_ends_with_the_error_after_the_given_bytes() {
    let s = store();
    s.add(Rule::break_body(Op::GetRange, 4, || StoreError::other("cut")).times(1));
    let mut chunks = s.get_range("a", 0..10, None).await.unwrap();
    let mut got = Vec::new();
    let mut failed = None;
    while let Some(c) = chunks.next().await {
        match c {
            Ok(b) => got.extend_from_slice(&b),
            Err(e) => failed = Some(FsError::from(e).errno),
        }
    }
    assert_eq!(got, b"0123");
    assert_eq!(failed, Some(libc::EIO));
    // Spent: the next body is whole.
    let got = body(s.get_range("a", 0..10, None).await.unwrap()).await;
    assert_eq!(got.unwrap(), b"0123456789");
}

#[tokio::test]
async fn a_break_past_the_end_leaves_a_short_body_whole() {
    let s = store();
    s.add(Rule::break_body(Op::HeadAndStart, 100, || {
        StoreError::other("cut")
    }));
    let (meta, chunks) = s.head_and_start("a", 64).await.unwrap();
    assert_eq!(meta.size, 10);
    assert_eq!(body(chunks).await.unwrap(), b"0123456789");
}

#[tokio::test]
async fn clear_removes_every_rule() {
    let s = store();
    s.add(Rule::fail_any(StoreError::not_found));
    assert!(s.head("a").await.is_err());
    assert!(s.check_access().await.is_err());
    s.clear();
    assert!(s.head("a").await.is_ok());
    assert!(s.check_access().await.is_ok());
    assert_eq!(s.count(Op::CheckAccess), 2);
}
