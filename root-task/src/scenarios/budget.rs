//! Scenarios budget-chain and shm-share: budgets no set of clients can escape
//! (`clients/scenarios` `s33_budget.rs`; `mem-core` `lifecycle.rs`, `shm.rs`).
//!
//! budget-chain, the fork-and-exit chain: a client fills a shared object of half its quota
//! (STEP 1); the root task clones it, the child (which sees the parent's object) fills a
//! new one, then the parent is destroyed: its object goes to the child only if the child
//! has room (it has not: the object is destroyed). [`ROUNDS`] rounds; after each the
//! survivor is charged at most its quota and its metadata within its budget, and the
//! frames in use are within what the scenario started with plus one quota; at the end
//! frames and slots are back to their values before the scenario.
//!
//! shm-share: fillers of one user (uid 3000, quota 4,096 pages each, one after another,
//! each destroyed when its quota is full) create keyed 512-page segments, which outlive
//! them, until the server answers ENOSPC: that user has its share of the system-wide
//! limit, at most a quarter of it. A client of another user (uid 4000) still gets
//! segments until its own quota is full (never ENOSPC). Cleaners remove every segment;
//! frames, slots and segments are back to their values before the scenario.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use mem_protocol::Stats;

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

/// Rounds of the chain.
const ROUNDS: u64 = 8;
/// Errno numbers (Linux) the fillers report.
const ENOSPC: u64 = 28;
const ENOMEM: u64 = 12;
/// Pages of each segment (`s33_budget::SEG_PAGES`).
const SEG_PAGES: u64 = 512;

fn same_resources(what: &str, before: &Stats, after: &Stats) -> Result<(), String> {
    if (after.frames_free, after.slots_free, after.frames_in_use, after.shm_segments)
        != (before.frames_free, before.slots_free, before.frames_in_use, before.shm_segments)
    {
        return Err(format!(
            "{what}: frames free {} -> {}, slots free {} -> {}, frames in use {} -> {}, segments {} -> {}",
            before.frames_free, after.frames_free, before.slots_free, after.slots_free, before.frames_in_use, after.frames_in_use, before.shm_segments, after.shm_segments
        ));
    }
    Ok(())
}

pub fn chain(ctx: &mut Ctx) -> Result<(), String> {
    let before = ctx.sys_stats()?;
    let mut p = ctx.spawn(33, 0, 0, USER, DEFAULT_QUOTA)?;
    let r = (|| {
        let (values, reply) = ctx.expect_step(p.badge, 1)?;
        ctx.drop_reply(reply);
        let mut obj = values.first().copied().unwrap_or(0);
        for round in 1..=ROUNDS {
            let c = ctx.start_clone(p.badge, 33, obj | round, 0, |_, _| Ok(()))?;
            let child = c.badge;
            let parent = core::mem::replace(&mut p, c);
            let (values, reply) = ctx.expect_step(child, 1).map_err(|e| format!("round {round}: {e}"))?;
            ctx.drop_reply(reply);
            obj = values.first().copied().unwrap_or(0);
            ctx.finish(alloc::vec![parent], Ok(()))?;
            let s = ctx.client_stats(child)?;
            if s.charged_pages > s.quota_pages || s.meta_bytes > s.meta_limit {
                return Err(format!("round {round}: the survivor holds {} pages of a quota of {} ({} of {} metadata bytes)", s.charged_pages, s.quota_pages, s.meta_bytes, s.meta_limit));
            }
            let sys = ctx.sys_stats()?;
            if sys.frames_in_use > before.frames_in_use + s.quota_pages {
                return Err(format!("round {round}: {} frames in use, {} before the scenario + one quota of {}", sys.frames_in_use, before.frames_in_use, s.quota_pages));
            }
        }
        Ok(())
    })();
    ctx.finish(alloc::vec![p], r)?;
    same_resources("after the chain", &before, &ctx.sys_stats()?)
}

/// Run a client of scenario 34 to its STEP 1: (segments made, errno).
fn fill(ctx: &mut Ctx, cred: (u32, u32), role: u64, key: u32) -> Result<(u64, u64), String> {
    let p = ctx.spawn(34, (u64::from(key) << 12) | role, 0, cred, DEFAULT_QUOTA)?;
    let b = p.badge;
    let r = ctx.expect_step(b, 1).map(|(values, reply)| {
        ctx.drop_reply(reply);
        (values.first().copied().unwrap_or(0), values.get(1).copied().unwrap_or(0))
    });
    let made = r.as_ref().map(|&v| v).map_err(|e| e.clone());
    ctx.finish(alloc::vec![p], r.map(|_| ()))?;
    made
}

pub fn shm_share(ctx: &mut Ctx) -> Result<(), String> {
    const A: (u32, u32) = (3000, 3000);
    const B: (u32, u32) = (4000, 4000);
    const KEY_A: u32 = 0x5_0000;
    const KEY_B: u32 = 0x6_0000;
    let before = ctx.sys_stats()?;
    let mut made_a = 0u64;
    let mut fillers = 0;
    let r = (|| {
        loop {
            let (made, errno) = fill(ctx, A, 0, KEY_A + made_a as u32)?;
            made_a += made;
            fillers += 1;
            if errno == ENOSPC {
                break;
            }
            if errno != ENOMEM || made == 0 || fillers > 64 {
                return Err(format!("filler {fillers}: {made} segments, then errno {errno}"));
            }
        }
        let s = ctx.sys_stats()?;
        if s.shm_segments != before.shm_segments + made_a {
            return Err(format!("{} segments after the fillers, want {} more than {}", s.shm_segments, made_a, before.shm_segments));
        }
        // The share: at most a quarter of the system-wide limit, which the server keeps at
        // a quarter of its RAM at most (`mem-server` `main.rs`): RAM / 16.
        let pages = made_a * SEG_PAGES;
        let ram = s.frames_free + s.frames_in_use;
        if pages > ram / 16 {
            return Err(format!("uid {} took {pages} pages of segments (RAM {ram} pages): more than its share", A.0));
        }
        sel4::debug_println!("root-task: shm-share: uid {} stopped at {made_a} segments ({pages} pages) by {fillers} clients", A.0);
        let (made_b, errno) = fill(ctx, B, 1, KEY_B)?;
        if errno != ENOMEM || made_b * SEG_PAGES + 2 * SEG_PAGES < DEFAULT_QUOTA / 2 {
            return Err(format!("uid {}: {made_b} segments, then errno {errno}: want its quota's worth, then ENOMEM", B.0));
        }
        Ok(made_b)
    })();
    // Clean up whatever was made, in any case.
    let mut cleaners: Vec<((u32, u32), u32, u32)> = alloc::vec![(A, KEY_A, made_a as u32)];
    if let Ok(made_b) = &r {
        cleaners.push((B, KEY_B, *made_b as u32));
    }
    for (cred, key, n) in cleaners {
        if n == 0 {
            continue;
        }
        let p = ctx.spawn(34, (u64::from(key) << 12) | 2, n, cred, DEFAULT_QUOTA)?;
        with_client(ctx, p, |ctx, b| ctx.expect_pass(b))?;
    }
    r?;
    same_resources("after the cleaners", &before, &ctx.sys_stats()?)
}
