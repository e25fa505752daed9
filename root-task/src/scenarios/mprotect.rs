//! Scenario 3, mprotect: arg 0 writes to a page it made read-only (after STEP 1 naming
//! it): the server must refuse (UNRESOLVED, DENIED, that address); arg 1 checks max_prot
//! handling on its own and must PASS.

use alloc::format;
use alloc::string::String;

use mem_protocol::system::UNRESOLVED_DENIED;

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::PAGE;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(3, 0, 0, USER, DEFAULT_QUOTA)?;
    let killed = with_client(ctx, p, |ctx, b| {
        let (values, reply) = ctx.expect_step(b, 1)?;
        let at = values.first().copied().unwrap_or(0);
        ctx.answer(reply);
        let (addr, reason) = ctx.expect_unresolved(b)?;
        if reason != UNRESOLVED_DENIED {
            return Err(format!("unresolved reason {reason}, want DENIED ({UNRESOLVED_DENIED})"));
        }
        if !(at..at + 4 * PAGE).contains(&addr) {
            return Err(format!("unresolved address {addr:#x}, want {at:#x}"));
        }
        Ok(())
    });
    let p = ctx.spawn(3, 1, 0, USER, DEFAULT_QUOTA)?;
    let max_prot = with_client(ctx, p, |ctx, b| ctx.expect_pass(b));
    match (killed, max_prot) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), _) => Err(format!("arg 0: {e}")),
        (_, Err(e)) => Err(format!("arg 1: {e}")),
    }
}
