//! Asking S3 what an object is: the metadata probe behind lookup, open and revalidation.
//!
//! Design note: what a HEAD of a key tells is learned from a GET of its first block instead
//! (at most one block): the same request class and price (plus the transfer of those bytes),
//! and the bytes a reader of the object asks for first arrive with it. The answer comes with
//! the headers; the body goes on into the block cache as block 0 of that version in a task of
//! its own ([`ReadContext::adopt_first_block`]). A GET can be refused where a HEAD is not — an
//! archived object not restored (`InvalidObjectState`), a KMS key we may not decrypt with —
//! so a refusal is asked again as a HEAD. When block 0 of the version seen last is cached
//! already there is nothing to gain from the GET, and a plain HEAD revalidates.

use crate::data::prefetch::ReadContext;
use crate::storage::{ErrorKind, ObjectMeta, StoreError};

/// The metadata probe.
#[derive(Clone)]
pub struct Probe {
    ctx: ReadContext,
}

impl Probe {
    /// A probe that fills the block cache of `ctx`.
    pub fn new(ctx: ReadContext) -> Self {
        Probe { ctx }
    }

    /// Plain `HeadObject`.
    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        self.ctx.store.head(key).await
    }

    /// What a HEAD of `key` tells, from a GET of its first `len` bytes (capped at one block)
    /// when that helps; `seen` is the ETag of the version seen last, if any.
    pub async fn headers(
        &self,
        key: &str,
        len: u64,
        seen: Option<&str>,
    ) -> Result<ObjectMeta, StoreError> {
        if seen.is_some_and(|etag| self.ctx.has_first_block(key, etag)) {
            return self.head(key).await;
        }
        let len = len.min(self.ctx.config.block_size);
        match self.ctx.store.head_and_start(key, len).await {
            Ok((meta, body)) => {
                self.ctx.adopt_first_block(key, &meta, body, len);
                Ok(meta)
            }
            // A refusal of this GET. Not a server that is away, slow, throttling us or failing
            // (a HEAD would only wait or fail as long again), nor an answer a HEAD would repeat.
            Err(e) if is_refusal(&e) => {
                tracing::debug!(
                    key,
                    "GET for an object's headers failed ({e}); HEAD instead"
                );
                self.head(key).await
            }
            Err(e) => Err(e),
        }
    }
}

/// Whether a GET was refused in a way a HEAD may not be.
fn is_refusal(e: &StoreError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::AccessDenied | ErrorKind::Invalid | ErrorKind::NotImplemented | ErrorKind::Other
    )
}
