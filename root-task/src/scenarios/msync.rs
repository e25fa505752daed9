//! Scenario 7, msync: a shared mapping of a backend object is written back by msync;
//! checked by the client, which must PASS.

use alloc::string::String;

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(7, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, b| ctx.expect_pass(b))
}
