//! Scenario reset: `Reset` of a running client's space, then its program started again in
//! it (an exec: `Launcher::reset_client` + `restart_client`). The client
//! (`clients/scenarios` `s32_reset.rs`) maps and fills its own memory and stops (STEP 1:
//! its data address, the mark address, its segment's id). The root task stops its thread
//! and resets the space, then checks: the only areas left are its system pages — the IPC
//! buffer and the boot page (both exported by the launcher, so pinned, still holding their
//! bytes) and the shared buffer —; its data, image and everything it mapped are gone
//! (Query fails), and so is the segment it had marked for removal; its charge is back to
//! those pages and its page tables; the frames it held are free again. Then the root task
//! maps a page at the mark address (the space takes new mappings), loads the program again
//! and starts it: its second run checks from inside that nothing of the first is left and
//! that it can map the same range again, and PASSes.

use alloc::format;
use alloc::string::String;

use mem_protocol::system::{SharedLayout, CLIENT_BOOT_VADDR, CLIENT_BUFFER_VADDR, CLIENT_IPC_BUFFER_VADDR};
use mem_protocol::{Request, Target, Value};

use super::USER;
use crate::ctx::Ctx;
use crate::PAGE;
use crate::DEFAULT_QUOTA;

/// `s32_reset::MARK_WORD`: what the mark page starts with.
const MARK_WORD: u64 = 0x7265_7365_7421;
/// Page tables a scenario client's space may hold (its root and a few paths).
const MAX_TABLES: u64 = 16;

fn mapped(ctx: &mut Ctx, b: u32, addr: u64) -> bool {
    matches!(ctx.admin.request(&Request::Query { target: Target::Client(b), addr }), Ok(Value::Query(_)))
}

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(32, 0, 0, USER, DEFAULT_QUOTA)?;
    let badge = p.badge;
    let r = (|| {
        let (values, reply) = ctx.expect_step(badge, 1)?;
        // The thread is taken out of its call by the reset: the reply cap goes with it.
        ctx.drop_reply(reply);
        let (data, mark, id) = (values.first().copied().unwrap_or(0), values.get(1).copied().unwrap_or(0), values.get(2).copied().unwrap_or(0));
        let sys = ctx.sys_stats()?;
        let before = ctx.client_stats(badge)?;
        if !mapped(ctx, badge, data) {
            return Err(format!("the client's data at {data:#x} is not mapped before the reset"));
        }
        ctx.reset_client(&p)?;
        checks(ctx, badge, data, &sys, &before)?;
        // The space takes new mappings: the mark page (with the segment's id after the
        // mark word), then the program again.
        let mut page = [0u8; 16];
        page[..8].copy_from_slice(&MARK_WORD.to_le_bytes());
        page[8..].copy_from_slice(&id.to_le_bytes());
        let bytes = ctx.stage(&page)?;
        ctx.region(badge, mark, PAGE, mem_protocol::Prot::READ, Some(bytes))?;
        let elf = ctx.client_elf;
        ctx.restart_client(&p, elf)?;
        ctx.expect_pass(badge).map_err(|e| format!("second run: {e}"))
    })();
    ctx.finish(alloc::vec![p], r)
}

/// Right after the reset.
fn checks(ctx: &mut Ctx, b: u32, data: u64, sys: &mem_protocol::Stats, before: &mem_protocol::Stats) -> Result<(), String> {
    let buffer = SharedLayout::PAGES * PAGE;
    let want = [(CLIENT_IPC_BUFFER_VADDR, PAGE), (CLIENT_BUFFER_VADDR, buffer), (CLIENT_BOOT_VADDR, PAGE)];
    let areas = ctx.admin.layout(Target::Client(b))?;
    let got: alloc::vec::Vec<(u64, u64)> = areas.iter().map(|e| (e.start, e.end - e.start)).collect();
    if got[..] != want[..] {
        return Err(format!("areas after Reset: {got:x?}, want the IPC buffer, the shared buffer and the boot page {want:x?}"));
    }
    let resident: u64 = areas.iter().map(|e| u64::from(e.resident_pages)).sum();
    let system = 2 + SharedLayout::PAGES;
    if resident != system {
        return Err(format!("{resident} pages resident after Reset, want the {system} system pages"));
    }
    if mapped(ctx, b, data) {
        return Err(format!("the client's data at {data:#x} is still mapped after Reset"));
    }
    let after = ctx.client_stats(b)?;
    if after.charged_pages < system || after.charged_pages > system + MAX_TABLES || after.pinned != 2 {
        return Err(format!("after Reset: {} pages charged ({} pinned), want the {system} system pages and at most {MAX_TABLES} page tables (before: {})", after.charged_pages, after.pinned, before.charged_pages));
    }
    // Its 64 data pages and 16 populated pages at least (the segment was charged in full
    // at shmget but only its touched page had a frame).
    let now = ctx.sys_stats()?;
    if sys.frames_in_use - now.frames_in_use < 64 + 16 || now.shm_segments + 1 != sys.shm_segments {
        return Err(format!(
            "after Reset: frames in use {} -> {} (the client's charge {} -> {}), shm segments {} -> {} (its removed segment must go)",
            sys.frames_in_use, now.frames_in_use, before.charged_pages, after.charged_pages, sys.shm_segments, now.shm_segments
        ));
    }
    Ok(())
}
