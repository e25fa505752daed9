//! Scenario 1, lazy-mmap: the client maps 64 lazy pages and touches them all (half of them
//! last-first, one fault each, half in order, where fault-around maps ahead); it must PASS,
//! the server must have served at least 35 faults for it, and it is charged for the pages.

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
        if s.faults_served < 35 {
            return Err(format!("faults_served {} < 35", s.faults_served));
        }
        if s.charged_pages < 64 {
            return Err(format!("charged_pages {} < 64", s.charged_pages));
        }
        Ok(())
    })
}
