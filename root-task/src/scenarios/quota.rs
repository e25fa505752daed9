//! Scenario 9, quota: a client with a 96-page quota cannot populate 512 pages (ENOMEM) and
//! must PASS; then an ordinary scenario-1 client must PASS as well (the refusal left the
//! server in good shape).

use alloc::format;
use alloc::string::String;

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

/// The small quota of the first client, in pages.
const SMALL_QUOTA: u64 = 96;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(9, 0, 0, USER, SMALL_QUOTA)?;
    with_client(ctx, p, |ctx, b| ctx.expect_pass(b)).map_err(|e| format!("quota client: {e}"))?;
    let p = ctx.spawn(1, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, b| ctx.expect_pass(b)).map_err(|e| format!("lazy-mmap client after it: {e}"))
}
