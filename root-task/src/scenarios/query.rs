//! Scenario 8, query: what the server reports about small and large pages; checked by the
//! client, which must PASS.

use alloc::string::String;

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(8, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, b| ctx.expect_pass(b))
}
