//! Scenario 11, reclaim: once every client is gone, the server's free frames and free
//! slots are what they were before the first client (`before`, taken at start).

use alloc::format;
use alloc::string::String;

use mem_protocol::{Stats, Target};

use crate::ctx::Ctx;

#[cfg_attr(feature = "bench", allow(dead_code))]
pub fn run(ctx: &mut Ctx, before: Result<Stats, String>) -> Result<(), String> {
    let before = before.map_err(|e| format!("Stats before the first client: {e}"))?;
    let after = ctx.admin.stats(Target::Own)?;
    if after.spaces != before.spaces {
        return Err(format!("{} spaces left (was {})", after.spaces, before.spaces));
    }
    if (after.frames_free, after.slots_free) != (before.frames_free, before.slots_free) {
        return Err(format!(
            "frames_free {} -> {}, slots_free {} -> {}",
            before.frames_free, after.frames_free, before.slots_free, after.slots_free
        ));
    }
    Ok(())
}
