//! Scenario 2, munmap-hole: the client unmaps 3 pages out of 16, says where (STEP 1), then
//! reads the hole. The server cannot resolve that fault and must tell the root task
//! (UNRESOLVED, NO_AREA, an address in the hole); the server keeps answering.

use alloc::format;
use alloc::string::String;

use mem_protocol::system::UNRESOLVED_NO_AREA;

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::PAGE;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(2, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, b| {
        let (values, reply) = ctx.expect_step(b, 1)?;
        let hole = values.first().copied().unwrap_or(0);
        ctx.answer(reply);
        let (addr, reason) = ctx.expect_unresolved(b)?;
        if reason != UNRESOLVED_NO_AREA {
            return Err(format!("unresolved reason {reason}, want NO_AREA ({UNRESOLVED_NO_AREA})"));
        }
        if !(hole..hole + 3 * PAGE).contains(&addr) {
            return Err(format!("unresolved address {addr:#x} not in the hole at {hole:#x}"));
        }
        ctx.sys_stats().map(|_| ())
    })
}
