//! Scenario 6, clone: the parent fills 16 pages and stops (STEP 1, their address). The
//! root task clones its space: page 0 of parent and child is one copy-on-write frame; the
//! child gets its own ClientBoot (role child, `arg = 1 | addr`) and IPC buffer and runs:
//! it sees the parent's data and writes pages 8..16 (PASS), after which page 8 differs
//! between the two and page 0 is still shared. Then the parent goes on and must PASS.

use alloc::format;
use alloc::string::String;

use mem_protocol::system::SharedLayout;
use mem_protocol::{QueryInfo, Request, Target, Value};

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::PAGE;
use crate::DEFAULT_QUOTA;

fn query(ctx: &mut Ctx, client: u32, addr: u64) -> Result<QueryInfo, String> {
    match ctx.admin.request(&Request::Query { target: Target::Client(client), addr })? {
        Value::Query(q) => Ok(q),
        v => Err(format!("Query: unexpected value {v:?}")),
    }
}

/// Page tables a clone of a scenario client may need (4 levels on aarch64 at most: a
/// few paths, one per distinct 2 MiB region of the client's layout).
const MAX_CHILD_TABLES: u64 = 12;

/// Query page `i` of the mapping at `base` in both spaces.
fn both(ctx: &mut Ctx, parent: u32, child: u32, base: u64, i: u64) -> Result<(QueryInfo, QueryInfo), String> {
    let a = base + i * PAGE;
    Ok((query(ctx, parent, a)?, query(ctx, child, a)?))
}

/// Everything between the parent's STEP and its answer.
fn child_part(ctx: &mut Ctx, parent: u32, base: u64) -> Result<(), String> {
    let frames_before = ctx.sys_stats()?.frames_in_use;
    let proc = ctx.start_clone(parent, 6, 1 | base, 0, |ctx, child| {
        let (p, c) = both(ctx, parent, child, base, 0)?;
        if p.paddr != c.paddr || !p.cow || !c.cow {
            return Err(format!("after Clone, page 0: parent {p:x?}, child {c:x?}: want one COW frame"));
        }
        // Frame count: the clone costs the child's VSpace (2 frames), its page tables and
        // its new shared buffer, but none of the parent's 16 data pages (nor its image).
        let cloned = ctx.sys_stats()?.frames_in_use - frames_before;
        let overhead = 2 + SharedLayout::PAGES;
        if cloned < overhead || cloned - overhead > MAX_CHILD_TABLES {
            return Err(format!("Clone added {cloned} frames: want {overhead} + at most {MAX_CHILD_TABLES} page tables (data shared)"));
        }
        Ok(())
    })?;
    // Not waiting for idle here: that would let the child run to its end first.
    let frames_running = ctx.admin.stats(Target::Own)?.frames_in_use;
    with_client(ctx, proc, |ctx, cb| {
        ctx.expect_pass(cb).map_err(|e| format!("child: {e}"))?;
        // The child's 8 writes broke sharing: at least 8 more frames.
        let grown = ctx.admin.stats(Target::Own)?.frames_in_use - frames_running;
        if grown < 8 {
            return Err(format!("child wrote 8 shared pages but frames in use grew by {grown}"));
        }
        let (p8, c8) = both(ctx, parent, cb, base, 8)?;
        if p8.paddr == c8.paddr {
            return Err(format!("page 8 written by the child is still shared: {p8:x?} / {c8:x?}"));
        }
        let (p0, c0) = both(ctx, parent, cb, base, 0)?;
        if p0.paddr != c0.paddr {
            return Err(format!("page 0 written by nobody is no longer shared: {p0:x?} / {c0:x?}"));
        }
        Ok(())
    })
}

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(6, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, pb| {
        let (values, reply) = ctx.expect_step(pb, 1).map_err(|e| format!("parent: {e}"))?;
        let base = values.first().copied().unwrap_or(0);
        if let Err(e) = child_part(ctx, pb, base) {
            ctx.drop_reply(reply);
            return Err(e);
        }
        ctx.answer(reply);
        ctx.expect_pass(pb).map_err(|e| format!("parent: {e}"))
    })
}
