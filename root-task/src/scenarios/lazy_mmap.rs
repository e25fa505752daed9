//! Scenario 1, lazy-mmap: the client maps 64 lazy pages and touches them all; it must PASS
//! and the server must have served at least 64 faults for it.

use alloc::format;
use alloc::string::String;

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(1, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, b| {
        ctx.expect_pass(b)?;
        let s = ctx.client_stats(b)?;
        if s.faults_served < 64 {
            return Err(format!("faults_served {} < 64", s.faults_served));
        }
        Ok(())
    })
}
