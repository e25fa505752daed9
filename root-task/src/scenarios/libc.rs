//! Scenarios sqlite and lua: unmodified third-party C programs on picolibc, in the
//! `libc-client` program (`clients/libc-client`, C side in `clients/libc/`), every byte of
//! their memory from the server through mem-capi's heap.
//!
//! - sqlite: SQLite's workload (100,000 rows, indexes, join, sort, update, delete, VACUUM,
//!   integrity check; its checks are in the client) must PASS after reporting its numbers
//!   in STEP 1 (faults, charged pages at start / peak / after trim, heap peak pages); then
//!   the same workload runs again under a quota 256 pages (1 MiB) below what the first
//!   run needed (its pages at start plus the heap's peak): it must meet SQLITE_NOMEM (a
//!   NULL from malloc: the heap is in strict commit mode) and still PASS — no unresolved
//!   fault, no note from the server — and afterwards the server's free frames and slots
//!   are exactly what they were before the scenario.
//! - lua: the interpreter runs its scripts (binary trees, strings, tables, closures,
//!   coroutines, all asserting their results) and must PASS after its STEP 1 numbers;
//!   reclaim exact as above.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{with_client, USER};
use crate::ctx::Ctx;

/// Scenario numbers of `libc-client`.
const SQLITE: u32 = 40;
const LUA: u32 = 41;
/// Quota of the full runs (pages): far above what they need.
const QUOTA: u64 = 16384;
/// How far below the full run's peak the NOMEM run's quota is (pages).
const NOMEM_BELOW_PEAK: u64 = 256;

/// Run one libc client to its STEP 1 (its numbers), answer it, expect PASS.
fn run_one(ctx: &mut Ctx, scenario: u32, arg: u64, quota: u64) -> Result<Vec<u64>, String> {
    let p = ctx.spawn_libc(scenario, arg, USER, quota)?;
    let mut numbers = Vec::new();
    with_client(ctx, p, |ctx, b| {
        let (v, reply) = ctx.expect_step(b, 1)?;
        ctx.answer(reply);
        numbers = v;
        ctx.expect_pass(b)
    })?;
    Ok(numbers)
}

/// The server's free frames and slots are back to `before`.
fn reclaimed(ctx: &mut Ctx, before: &mem_protocol::Stats) -> Result<(), String> {
    let after = ctx.sys_stats()?;
    if (after.frames_free, after.slots_free, after.spaces) != (before.frames_free, before.slots_free, before.spaces) {
        return Err(format!(
            "not all reclaimed: frames_free {} -> {}, slots_free {} -> {}, spaces {} -> {}",
            before.frames_free, after.frames_free, before.slots_free, after.slots_free, before.spaces, after.spaces
        ));
    }
    Ok(())
}

pub fn sqlite(ctx: &mut Ctx) -> Result<(), String> {
    let before = ctx.sys_stats()?;
    let full = run_one(ctx, SQLITE, 0, QUOTA).map_err(|e| format!("full run: {e}"))?;
    let [faults, start, peak, trimmed, heap_peak, _nomem] = full[..] else {
        return Err(format!("full run: STEP 1 values {full:?}"));
    };
    sel4::debug_println!(
        "root-task: sqlite: faults {faults}, charged pages at start {start}, peak {peak}, after trim {trimmed}, heap peak {heap_peak} pages"
    );
    reclaimed(ctx, &before)?;
    // What the workload needs: its pages at start plus the heap's peak (the charge sampled
    // between steps can miss the peak inside one).
    let need = start + heap_peak;
    if heap_peak <= 2 * NOMEM_BELOW_PEAK || peak > need + NOMEM_BELOW_PEAK {
        return Err(format!("full run: heap peak {heap_peak} pages, charged peak {peak}, start {start}"));
    }
    let quota = need - NOMEM_BELOW_PEAK;
    let nomem = run_one(ctx, SQLITE, 1, quota).map_err(|e| format!("run under quota {quota}: {e}"))?;
    let [_, _, npeak, ntrimmed, _, step] = nomem[..] else {
        return Err(format!("run under quota {quota}: STEP 1 values {nomem:?}"));
    };
    sel4::debug_println!(
        "root-task: sqlite under quota {quota}: SQLITE_NOMEM at step {step}, peak {npeak}, after trim {ntrimmed}"
    );
    if step == 0 || npeak > quota {
        return Err(format!("run under quota {quota}: NOMEM step {step}, peak {npeak}"));
    }
    reclaimed(ctx, &before)
}

pub fn lua(ctx: &mut Ctx) -> Result<(), String> {
    let before = ctx.sys_stats()?;
    let v = run_one(ctx, LUA, 0, QUOTA)?;
    let [faults, start, peak, trimmed, heap_peak, gc_before, gc_after] = v[..] else {
        return Err(format!("STEP 1 values {v:?}"));
    };
    sel4::debug_println!(
        "root-task: lua: faults {faults}, charged pages at start {start}, peak {peak}, after trim {trimmed}, heap peak {heap_peak} pages, GC {gc_before} KiB -> {gc_after} KiB"
    );
    reclaimed(ctx, &before)
}
