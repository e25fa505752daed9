//! Scenario shm-clone: an `IPC_PRIVATE` segment shared between a parent and its
//! copy-on-write clone (`clients/scenarios` `s31_shm_clone.rs`). The parent creates,
//! attaches and fills it and stops (STEP 1: id, address); the root task clones it, starts
//! the child (role 1: the inherited attachment and a second one show the same pages; its
//! write shows through both) and an outsider of the same user (role 2: the id is not
//! found); after both PASS the parent sees the child's write, removes the segment and
//! PASSes. No segment is left.

use alloc::format;
use alloc::string::String;


use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let segments = ctx.sys_stats()?.shm_segments;
    let p = ctx.spawn(31, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, pb| {
        let (values, reply) = ctx.expect_step(pb, 1).map_err(|e| format!("parent: {e}"))?;
        let (id, at) = (values.first().copied().unwrap_or(0), values.get(1).copied().unwrap_or(0));
        if let Err(e) = family(ctx, pb, id as u32, at) {
            ctx.drop_reply(reply);
            return Err(e);
        }
        ctx.answer(reply);
        ctx.expect_pass(pb).map_err(|e| format!("parent: {e}"))
    })?;
    let left = ctx.sys_stats()?.shm_segments;
    if left != segments {
        return Err(format!("{left} shm segments after the scenario, {segments} before"));
    }
    Ok(())
}

/// Between the parent's STEP and its answer: the clone and the outsider.
fn family(ctx: &mut Ctx, parent: u32, id: u32, at: u64) -> Result<(), String> {
    let proc = ctx.start_clone(parent, 31, 1 | at, id, |_, _| Ok(()))?;
    with_client(ctx, proc, |ctx, cb| ctx.expect_pass(cb).map_err(|e| format!("child: {e}")))?;
    let outsider = ctx.spawn(31, 2, id, USER, DEFAULT_QUOTA)?;
    with_client(ctx, outsider, |ctx, ob| ctx.expect_pass(ob).map_err(|e| format!("outsider: {e}")))
}
