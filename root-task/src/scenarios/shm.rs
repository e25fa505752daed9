//! Scenario 5, shm: a writer creates and fills a System V segment (STEP 1); meanwhile an
//! intruder of another user is refused and a reader of the same user sees the data (both
//! PASS). The writer then removes the segment while still attached (STEP 2: the server
//! must still count one segment), detaches and PASSes: no segment is left.

use alloc::format;
use alloc::string::String;


use super::{with_client, OTHER_USER, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

/// Segments the server counts.
fn segments(ctx: &mut Ctx) -> Result<u64, String> {
    Ok(ctx.sys_stats()?.shm_segments)
}

/// Intruder (refused), then reader (sees the data), each to completion.
fn others(ctx: &mut Ctx) -> Result<(), String> {
    let i = ctx.spawn(5, 2, 0, OTHER_USER, DEFAULT_QUOTA)?;
    with_client(ctx, i, |ctx, b| ctx.expect_pass(b)).map_err(|e| format!("intruder: {e}"))?;
    let r = ctx.spawn(5, 1, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, r, |ctx, b| ctx.expect_pass(b)).map_err(|e| format!("reader: {e}"))
}

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let w = ctx.spawn(5, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, w, |ctx, wb| {
        let (_, reply) = ctx.expect_step(wb, 1).map_err(|e| format!("writer: {e}"))?;
        if let Err(e) = others(ctx) {
            ctx.drop_reply(reply);
            return Err(e);
        }
        ctx.answer(reply);
        let (_, reply) = ctx.expect_step(wb, 2).map_err(|e| format!("writer: {e}"))?;
        match segments(ctx) {
            Ok(1) => ctx.answer(reply),
            r => {
                ctx.drop_reply(reply);
                return Err(format!("after IPC_RMID while attached: shm_segments {r:?}, want 1"));
            }
        }
        ctx.expect_pass(wb).map_err(|e| format!("writer: {e}"))?;
        match segments(ctx)? {
            0 => Ok(()),
            n => Err(format!("after the last detach: shm_segments {n}, want 0")),
        }
    })
}
