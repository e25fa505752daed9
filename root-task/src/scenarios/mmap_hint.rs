//! Scenario mmap-hint: `mmap` with a hint that is free (placed there), taken (placed
//! elsewhere, over nothing), unaligned (rounded down) and out of range (ignored), all
//! checked by the client (`clients/scenarios` `s30_mmap_hint.rs`); it must PASS and leave
//! nothing mapped of what it made.

use alloc::format;
use alloc::string::String;

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(30, 0, 0, USER, DEFAULT_QUOTA)?;
    with_client(ctx, p, |ctx, b| {
        ctx.expect_pass(b)?;
        // What it mapped is unmapped again: only its image, stack, heap and system pages.
        let s = ctx.client_stats(b)?;
        if s.areas > 16 {
            return Err(format!("{} areas left after the client unmapped its mappings", s.areas));
        }
        Ok(())
    })
}
