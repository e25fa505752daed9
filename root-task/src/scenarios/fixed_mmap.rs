//! Scenario 4, fixed-mmap: MAP_FIXED / MAP_FIXED_NOREPLACE semantics, all checked by the
//! client; it must PASS.

use alloc::string::String;

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(4, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, b| ctx.expect_pass(b))
}
