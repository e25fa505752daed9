//! Scenario heap: a Rust client whose whole heap is mem-heap over the server runs a
//! workload of others' code (DEFLATE round trip of 4 MiB, a BTreeMap of 10^5 entries,
//! sorting 10^6 integers), frees everything and checks that its resident pages dropped
//! back; it must PASS (its `HEAP-NUMBERS` line gives the figures). Quota 8,192 pages.

use alloc::string::String;

use super::{with_client, USER};
use crate::ctx::Ctx;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(27, 0, 0, USER, 8192)?;
    with_client(ctx, p, |ctx, b| ctx.expect_pass(b))
}
