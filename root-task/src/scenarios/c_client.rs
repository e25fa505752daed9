//! Scenario c-client: a C component (`clients/c-client/c_client.c`, through mem-capi's
//! generated header) checks mmap/munmap/mprotect/msync, System V shm and malloc with Linux
//! errno values, and must PASS; afterwards no shm segment of it is left.

use alloc::format;
use alloc::string::String;


use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(26, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, b| {
        ctx.expect_pass(b)?;
        let s = ctx.sys_stats()?;
        if s.shm_segments != 0 {
            return Err(format!("{} shm segments left after the C client", s.shm_segments));
        }
        Ok(())
    })
}
