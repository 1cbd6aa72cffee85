//! [`FaultStore`]: an [`ObjectStore`] decorator that injects failures, delays and broken
//! bodies by rule, so fault handling can be tested in-process and fast (over
//! [`MemStore`](super::mem::MemStore)) instead of only through a real server and a proxy.
//!
//! Design note: a [`Rule`] selects requests by operation ([`Op`], or any) and optionally by a
//! substring of the key, then acts on some of the requests it selects: it lets `skip` of them
//! through first, then acts on every `every`-th one, at most `times` times (unbounded by
//! default). "Fail the 3rd PUT" is `Rule::fail(Op::Put, e).skip(2).times(1)`; "fail every GET
//! from the 5th on" is `Rule::fail(Op::GetRange, e).skip(4)`. Each rule counts the requests it
//! selects on its own, whatever other rules do with them. For one request the rules are taken
//! in the order they were added: every matching delay is served, then the first matching
//! failure (if any) answers; a body rule breaks the body of a successful GET. The error of a
//! failure comes from a closure, so the decorator never has to know the shape of
//! [`StoreError`]. Requests are counted by operation, failed or not.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use super::{
    BucketFact, ByteChunks, ListPage, ObjectMeta, ObjectStore, ObjectVersion, PutOptions,
    RestoreRequest, StoreError,
};

/// The requests of [`ObjectStore`], one per method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `list`
    List,
    /// `head`
    Head,
    /// `head_and_start`
    HeadAndStart,
    /// `get_range`
    GetRange,
    /// `put`
    Put,
    /// `create_multipart`
    CreateMultipart,
    /// `upload_part`
    UploadPart,
    /// `upload_part_copy`
    UploadPartCopy,
    /// `complete_multipart`
    CompleteMultipart,
    /// `abort_multipart`
    AbortMultipart,
    /// `copy`
    Copy,
    /// `delete`
    Delete,
    /// `get_tags`
    GetTags,
    /// `put_tags`
    PutTags,
    /// `check_access`
    CheckAccess,
    /// `list_versions`
    ListVersions,
    /// `copy_version`
    CopyVersion,
    /// `restore` and `restore_status`
    Restore,
    /// `bucket_fact`
    BucketFact,
}

/// Builds the error a failing request answers with.
pub type ErrorFn = Arc<dyn Fn() -> StoreError + Send + Sync>;

/// What a rule does to a request it acts on.
#[derive(Clone)]
enum Action {
    /// Answer with this error instead of forwarding the request.
    Fail(ErrorFn),
    /// Wait this long, then go on.
    Delay(Duration),
    /// Forward the request; break the body off after this many bytes with this error.
    BreakBody(u64, ErrorFn),
}

/// One fault: which requests, which of them, and what happens to them.
#[derive(Clone)]
pub struct Rule {
    op: Option<Op>,
    key_contains: Option<String>,
    skip: u64,
    every: u64,
    times: Option<u64>,
    action: Action,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let action = match &self.action {
            Action::Fail(_) => "fail".to_string(),
            Action::Delay(d) => format!("delay {d:?}"),
            Action::BreakBody(n, _) => format!("break body after {n} bytes"),
        };
        f.debug_struct("Rule")
            .field("op", &self.op)
            .field("key_contains", &self.key_contains)
            .field("skip", &self.skip)
            .field("every", &self.every)
            .field("times", &self.times)
            .field("action", &action)
            .finish()
    }
}

impl Rule {
    fn new(op: Option<Op>, action: Action) -> Rule {
        Rule {
            op,
            key_contains: None,
            skip: 0,
            every: 1,
            times: None,
            action,
        }
    }

    /// Fail requests of `op` with the error `err` builds.
    pub fn fail(op: Op, err: impl Fn() -> StoreError + Send + Sync + 'static) -> Rule {
        Rule::new(Some(op), Action::Fail(Arc::new(err)))
    }

    /// Fail requests of any operation with the error `err` builds.
    pub fn fail_any(err: impl Fn() -> StoreError + Send + Sync + 'static) -> Rule {
        Rule::new(None, Action::Fail(Arc::new(err)))
    }

    /// Delay requests of `op` by `delay`.
    pub fn delay(op: Op, delay: Duration) -> Rule {
        Rule::new(Some(op), Action::Delay(delay))
    }

    /// Break the body of GETs (`get_range` or `head_and_start`, as `op` says) after `after`
    /// bytes, ending it with the error `err` builds.
    pub fn break_body(
        op: Op,
        after: u64,
        err: impl Fn() -> StoreError + Send + Sync + 'static,
    ) -> Rule {
        assert!(
            matches!(op, Op::GetRange | Op::HeadAndStart),
            "only GETs have a body to break"
        );
        Rule::new(Some(op), Action::BreakBody(after, Arc::new(err)))
    }

    /// Only requests whose key (or prefix, for a listing) contains `s`.
    pub fn on_key(mut self, s: impl Into<String>) -> Rule {
        self.key_contains = Some(s.into());
        self
    }

    /// Let the first `n` selected requests through untouched.
    pub fn skip(mut self, n: u64) -> Rule {
        self.skip = n;
        self
    }

    /// After the skipped ones, act on every `n`-th selected request only (`n` ≥ 1).
    pub fn every(mut self, n: u64) -> Rule {
        self.every = n.max(1);
        self
    }

    /// Act at most `n` times (default: no limit).
    pub fn times(mut self, n: u64) -> Rule {
        self.times = Some(n);
        self
    }

    /// Act on the `n`-th selected request only (1-based): `skip(n - 1).times(1)`.
    pub fn nth(self, n: u64) -> Rule {
        self.skip(n.saturating_sub(1)).times(1)
    }

    fn selects(&self, op: Op, key: &str) -> bool {
        self.op.is_none_or(|o| o == op)
            && self.key_contains.as_deref().is_none_or(|s| key.contains(s))
    }
}

/// Identifies a rule added to a [`FaultStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleId(u64);

struct Installed {
    id: RuleId,
    rule: Rule,
    seen: u64,
    fired: u64,
}

impl Installed {
    /// Counts a selected request; whether the rule acts on it.
    fn acts(&mut self) -> bool {
        self.seen += 1;
        if self.seen <= self.rule.skip || self.rule.times.is_some_and(|t| self.fired >= t) {
            return false;
        }
        if (self.seen - self.rule.skip - 1) % self.rule.every != 0 {
            return false;
        }
        self.fired += 1;
        true
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Installed>,
    next_id: u64,
    counts: HashMap<Op, u64>,
}

/// What the rules decided for one request.
#[derive(Default)]
struct Verdict {
    delay: Duration,
    fail: Option<ErrorFn>,
    break_body: Option<(u64, ErrorFn)>,
}

/// Wraps a store and applies [`Rule`]s to its requests.
pub struct FaultStore<S: ObjectStore + ?Sized> {
    inner: Arc<S>,
    state: Mutex<State>,
}

impl<S: ObjectStore + ?Sized> std::fmt::Debug for FaultStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock().unwrap();
        let rules: Vec<&Rule> = state.rules.iter().map(|r| &r.rule).collect();
        f.debug_struct("FaultStore").field("rules", &rules).finish()
    }
}

impl<S: ObjectStore + ?Sized> FaultStore<S> {
    /// `inner` with no rule yet: every request goes through.
    pub fn new(inner: Arc<S>) -> Self {
        FaultStore {
            inner,
            state: Mutex::new(State::default()),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// Adds a rule after the existing ones.
    pub fn add(&self, rule: Rule) -> RuleId {
        let mut state = self.state.lock().unwrap();
        let id = RuleId(state.next_id);
        state.next_id += 1;
        state.rules.push(Installed {
            id,
            rule,
            seen: 0,
            fired: 0,
        });
        id
    }

    /// Removes a rule (no-op if it is gone already).
    pub fn remove(&self, id: RuleId) {
        self.state.lock().unwrap().rules.retain(|r| r.id != id);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// How many times rule `id` acted (0 once removed).
    pub fn fired(&self, id: RuleId) -> u64 {
        let state = self.state.lock().unwrap();
        state
            .rules
            .iter()
            .find(|r| r.id == id)
            .map_or(0, |r| r.fired)
    }

    /// How many requests of `op` were made, failed ones included.
    pub fn count(&self, op: Op) -> u64 {
        let state = self.state.lock().unwrap();
        state.counts.get(&op).copied().unwrap_or(0)
    }

    fn verdict(&self, op: Op, key: &str) -> Verdict {
        let mut state = self.state.lock().unwrap();
        *state.counts.entry(op).or_default() += 1;
        let mut v = Verdict::default();
        for r in state.rules.iter_mut() {
            if !r.rule.selects(op, key) {
                continue;
            }
            // Once a failure is chosen, later failure rules do not see the request act on
            // them, but they still count it (each rule counts what it selects).
            let wants = match &r.rule.action {
                Action::Fail(_) => v.fail.is_none(),
                Action::BreakBody(..) => v.break_body.is_none(),
                Action::Delay(_) => true,
            };
            if !r.acts() || !wants {
                continue;
            }
            match &r.rule.action {
                Action::Fail(f) => v.fail = Some(f.clone()),
                Action::Delay(d) => v.delay += *d,
                Action::BreakBody(n, f) => v.break_body = Some((*n, f.clone())),
            }
        }
        v
    }

    /// Applies the rules to a request: waits for the delays, then fails or lets it go on.
    async fn enter(&self, op: Op, key: &str) -> Result<Option<(u64, ErrorFn)>, StoreError> {
        let v = self.verdict(op, key);
        if !v.delay.is_zero() {
            tokio::time::sleep(v.delay).await;
        }
        match v.fail {
            Some(f) => Err(f()),
            None => Ok(v.break_body),
        }
    }
}

/// `body` cut after `after` bytes and ended with the error `brk` builds, or unchanged when
/// `brk` is `None`. A body shorter than `after` ends normally.
fn maybe_break(body: ByteChunks, brk: Option<(u64, ErrorFn)>) -> ByteChunks {
    let Some((after, err)) = brk else {
        return body;
    };
    let cut = futures::stream::unfold(Some((body, after)), move |st| {
        let err = err.clone();
        async move {
            let (mut body, left) = st?;
            if left == 0 {
                return Some((Err(err()), None));
            }
            match body.next().await? {
                Ok(mut bytes) => {
                    let n = bytes.len() as u64;
                    if n >= left {
                        bytes.truncate(left as usize);
                    }
                    Some((Ok(bytes), Some((body, left.saturating_sub(n)))))
                }
                Err(e) => Some((Err(e), None)),
            }
        }
    });
    Box::pin(cut)
}

#[async_trait]
impl<S: ObjectStore + ?Sized> ObjectStore for FaultStore<S> {
    async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
        max_keys: Option<i32>,
    ) -> Result<ListPage, StoreError> {
        self.enter(Op::List, prefix).await?;
        self.inner.list(prefix, delimiter, token, max_keys).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        self.enter(Op::Head, key).await?;
        self.inner.head(key).await
    }

    async fn head_and_start(
        &self,
        key: &str,
        len: u64,
    ) -> Result<(ObjectMeta, ByteChunks), StoreError> {
        let brk = self.enter(Op::HeadAndStart, key).await?;
        let (meta, body) = self.inner.head_and_start(key, len).await?;
        Ok((meta, maybe_break(body, brk)))
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks, StoreError> {
        let brk = self.enter(Op::GetRange, key).await?;
        let body = self.inner.get_range(key, range, if_match).await?;
        Ok(maybe_break(body, brk))
    }

    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> Result<String, StoreError> {
        self.enter(Op::Put, key).await?;
        self.inner.put(key, body, opts).await
    }

    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> Result<String, StoreError> {
        self.enter(Op::CreateMultipart, key).await?;
        self.inner.create_multipart(key, opts).await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        self.enter(Op::UploadPart, key).await?;
        self.inner
            .upload_part(key, upload_id, part_number, body)
            .await
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        src_key: &str,
        src_etag: &str,
        range: Range<u64>,
    ) -> Result<String, StoreError> {
        self.enter(Op::UploadPartCopy, key).await?;
        self.inner
            .upload_part_copy(key, upload_id, part_number, src_key, src_etag, range)
            .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<String, StoreError> {
        self.enter(Op::CompleteMultipart, key).await?;
        self.inner.complete_multipart(key, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.enter(Op::AbortMultipart, key).await?;
        self.inner.abort_multipart(key, upload_id).await
    }

    async fn copy(
        &self,
        src_key: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        self.enter(Op::Copy, dst_key).await?;
        self.inner.copy(src_key, dst_key, replace).await
    }

    async fn copy_if_match(
        &self,
        src_key: &str,
        src_etag: &str,
        dst_key: &str,
        replace: Option<&PutOptions>,
    ) -> Result<String, StoreError> {
        self.enter(Op::Copy, dst_key).await?;
        self.inner
            .copy_if_match(src_key, src_etag, dst_key, replace)
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.enter(Op::Delete, key).await?;
        self.inner.delete(key).await
    }

    async fn get_tags(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.enter(Op::GetTags, key).await?;
        self.inner.get_tags(key).await
    }

    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> Result<(), StoreError> {
        self.enter(Op::PutTags, key).await?;
        self.inner.put_tags(key, tags).await
    }

    async fn check_access(&self) -> Result<(), StoreError> {
        self.enter(Op::CheckAccess, "").await?;
        self.inner.check_access().await
    }

    async fn presign_get(&self, key: &str, version_id: Option<&str>) -> Result<String, StoreError> {
        self.inner.presign_get(key, version_id).await
    }

    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectVersion>, StoreError> {
        self.enter(Op::ListVersions, key).await?;
        self.inner.list_versions(key).await
    }

    async fn copy_version(&self, key: &str, version_id: &str) -> Result<String, StoreError> {
        self.enter(Op::CopyVersion, key).await?;
        self.inner.copy_version(key, version_id).await
    }

    async fn restore(&self, key: &str, req: &RestoreRequest) -> Result<(), StoreError> {
        self.enter(Op::Restore, key).await?;
        self.inner.restore(key, req).await
    }

    async fn restore_status(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.enter(Op::Restore, key).await?;
        self.inner.restore_status(key).await
    }

    async fn bucket_fact(&self, fact: &BucketFact) -> Result<Option<String>, StoreError> {
        self.enter(Op::BucketFact, "").await?;
        self.inner.bucket_fact(fact).await
    }

    async fn bucket_fact_at(
        &self,
        key: &str,
        fact: &BucketFact,
    ) -> Result<Option<String>, StoreError> {
        self.enter(Op::BucketFact, key).await?;
        self.inner.bucket_fact_at(key, fact).await
    }

    async fn retry_pending(&self) {
        self.inner.retry_pending().await
    }
}

#[cfg(test)]
mod tests;
