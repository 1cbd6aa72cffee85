//! The part of a fetch that asks the block tiers (the disk cache) before S3.
//!
//! Design note: a run of blocks that the read path would fetch with one GET is first offered
//! to the tiers block by block, in order, so the first block a reader waits for is handed over
//! first; what no tier has is cut into runs of consecutive blocks again, one GET each. The
//! blocks stay owed ([`Owed`]) throughout, so a fetch dropped half-way still fails its waiters
//! and releases the memory cache's reservations.

use super::{Owed, ReadContext};

/// Serves what it can of `owed` from the tiers; returns the blocks none of them had. A block
/// found in a later tier is offered to the earlier ones.
pub(super) async fn serve_from_tiers(ctx: &ReadContext, size: u64, mut owed: Owed) -> Owed {
    let bs = ctx.config.block_size;
    let mut missing = Owed {
        cache: ctx.cache.clone(),
        blocks: Default::default(),
    };
    while let Some((key, tx)) = owed.blocks.pop_front() {
        let len = size.saturating_sub(key.index * bs).min(bs);
        let mut found = None;
        for (i, tier) in ctx.tiers.iter().enumerate() {
            if let Some(data) = tier.get(&key, len).await {
                for earlier in &ctx.tiers[..i] {
                    earlier.offer(&key, &data);
                }
                found = Some(data);
                break;
            }
        }
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
