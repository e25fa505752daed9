//! Scenario 11, reclaim: once every client is gone, the server's free frames and free
//! slots are what they were before the first client (`before`, taken at start), and the
//! root task's own per-client memory (the launcher's client blocks) is all free again:
//! no more blocks were made than clients were alive at once.

use alloc::format;
use alloc::string::String;

use mem_protocol::Stats;

use crate::ctx::Ctx;

#[cfg_attr(feature = "bench", allow(dead_code))]
pub fn run(ctx: &mut Ctx, before: Result<Stats, String>) -> Result<(), String> {
    let before = before.map_err(|e| format!("Stats before the first client: {e}"))?;
    let after = ctx.sys_stats()?;
    if after.spaces != before.spaces {
        return Err(format!("{} spaces left (was {})", after.spaces, before.spaces));
    }
    if (after.frames_free, after.slots_free) != (before.frames_free, before.slots_free) {
        return Err(format!(
            "frames_free {} -> {}, slots_free {} -> {}",
            before.frames_free, after.frames_free, before.slots_free, after.slots_free
        ));
    }
    let (made, free) = ctx.client_blocks();
    sel4::debug_println!("root-task: {} clients were created from {made} client blocks", ctx.clients_created());
    if free != made {
        return Err(format!("{} of {made} client blocks still in use", made - free));
    }
    if made > MOST_CLIENTS_AT_ONCE {
        return Err(format!("{made} client blocks made for at most {MOST_CLIENTS_AT_ONCE} clients alive at once"));
    }
    Ok(())
}

/// The most clients any scenario has alive at the same time (adversaries: victim,
/// attacker, bystander, a second bystander, cleaner; clone: parent and child).
const MOST_CLIENTS_AT_ONCE: usize = 6;
