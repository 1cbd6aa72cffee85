//! The part of a fetch that asks the block tiers (the disk cache, the shared bucket) before S3.
//!
//! Design note: a run of blocks that the read path would fetch with one GET is first offered
//! to the tiers block by block (a few at a time, handed over in order, so the first block a
//! reader waits for comes first); what no tier has is cut into runs of consecutive blocks
//! again, one GET each. The blocks stay owed ([`Owed`]) throughout, so a fetch dropped
//! half-way still fails its waiters and releases the memory cache's reservations.

use bytes::Bytes;
use futures::StreamExt;

use super::{Owed, ReadContext};
use crate::data::cache::BlockKey;

/// How many blocks of a run are looked up in the tiers at once: a tier behind the network
/// (the shared bucket) answers in a round trip, which a run of blocks should not pay in turn.
const LOOKUPS_IN_FLIGHT: usize = 8;

/// Serves what it can of `owed` from the tiers; returns the blocks none of them had. A block
/// found in a later tier is offered to the earlier ones. Blocks are looked up
/// [`LOOKUPS_IN_FLIGHT`] at a time and handed over in order.
pub(super) async fn serve_from_tiers(ctx: &ReadContext, size: u64, mut owed: Owed) -> Owed {
    let bs = ctx.config.block_size;
    let mut missing = Owed {
        cache: ctx.cache.clone(),
        blocks: Default::default(),
    };
    let keys: Vec<BlockKey> = owed.blocks.iter().map(|(k, _)| k.clone()).collect();
    let mut lookups = futures::stream::iter(keys)
        .map(|key| async move {
            let len = size.saturating_sub(key.index * bs).min(bs);
            find(ctx, &key, len).await
        })
        .buffered(LOOKUPS_IN_FLIGHT);
    // The answers come in the order of `owed`, whose blocks stay owed until answered.
    while let Some(found) = lookups.next().await {
        let Some((key, tx)) = owed.blocks.pop_front() else {
            break;
        };
        match found {
            Some(data) => {
                ctx.cache.complete(&key, data.clone());
                let _ = tx.send(Ok(data));
            }
            None => missing.blocks.push_back((key, tx)),
        }
    }
    missing
}

/// Block `key` (`len` bytes) from the first tier that has it, offered to the tiers before it.
async fn find(ctx: &ReadContext, key: &BlockKey, len: u64) -> Option<Bytes> {
    for (i, tier) in ctx.tiers.iter().enumerate() {
        if let Some(data) = tier.get(key, len).await {
            for earlier in &ctx.tiers[..i] {
                earlier.offer(key, &data).await;
            }
            return Some(data);
        }
    }
    None
}

/// Cuts `owed` into runs of consecutive blocks, one GET each.
pub(super) fn split_contiguous(mut owed: Owed) -> Vec<Owed> {
    let mut runs: Vec<Owed> = Vec::new();
    while let Some((key, tx)) = owed.blocks.pop_front() {
        let follows = runs
            .last()
            .and_then(|r| r.blocks.back())
            .is_some_and(|(k, _)| k.index + 1 == key.index);
        if !follows {
            runs.push(Owed {
                cache: owed.cache.clone(),
                blocks: Default::default(),
            });
        }
        runs.last_mut().unwrap().blocks.push_back((key, tx));
    }
    runs
}
