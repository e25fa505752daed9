//! Scenario 10, hostile: malformed and out-of-range requests get error replies; checked by
//! the client, which must PASS; the server must still answer the root task afterwards.

use alloc::string::String;


use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(10, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, b| {
        ctx.expect_pass(b)?;
        ctx.sys_stats().map(|_| ())
    })
}
