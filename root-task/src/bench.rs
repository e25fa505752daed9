//! `make bench-sel4`: the root task's side of the benchmark (instead of the scenarios when
//! built with the `bench` feature). See clients/scenarios/src/bench.rs for what is counted.
//!
//! 1. Counters: on aarch64 the cycle counter, counting every exception level (the kernel
//!    runs at EL2); under `-icount shift=0` it counts guest instructions. On the kernel that
//!    logs kernel entries, a 2 MiB frame becomes the kernel's log buffer.
//! 2. The cold client (20): first touches on frames retyped on demand.
//! 3. The bench client (22) starts and waits (STEP 0); the warm-up client (21) touches
//!    pages and is destroyed while the bench client lives (so the server keeps the frames
//!    pooled, instead of giving them back to the untypeds as it does when the last client
//!    goes); the root task waits until the system is idle, which is when the server's
//!    zeroing thread zeroes them: the bench client's faults take recycled clean frames, the
//!    steady state.
//! 4. The bench client: every other operation; at its STEP(1) the root task clones its
//!    space (the clone is never started: it only holds the pages), so its next stores are
//!    copy-on-write faults; the clone is destroyed afterwards.
//! 5. A `Nop` from the administrator makes a bench server print what zeroing frames cost
//!    it. Then `BENCH-DONE`.

use alloc::format;
use alloc::string::String;

use mem_protocol::{Request, Target};

use crate::ctx::Ctx;
use crate::DEFAULT_QUOTA;

/// Printed last; `scripts/qemu-run.sh` stops QEMU when it sees this line.
pub const DONE_MARKER: &str = "BENCH-DONE";

/// Quota of the benchmark clients (enough for every loop).
const QUOTA: u64 = 16 * DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    start_counters(ctx)?;
    let p = ctx.spawn(20, 0, 0, (1000, 1000), QUOTA)?;
    let b = p.badge;
    let r = ctx.expect_pass(b);
    ctx.finish(alloc::vec![p], r)?;
    let p = ctx.spawn(22, 0, 0, (1000, 1000), QUOTA)?;
    let b = p.badge;
    let r = (|| {
        let (_, reply) = ctx.expect_step(b, 0)?;
        let w = ctx.spawn(21, 0, 0, (1000, 1000), QUOTA)?;
        let wb = w.badge;
        let r = ctx.expect_pass(wb);
        ctx.finish(alloc::vec![w], r)?;
        ctx.wait_idle();
        ctx.answer(reply);
        let (_, reply) = ctx.expect_step(b, 1)?;
        let child = ctx.new_badge()?;
        let req = Request::Clone { source: Target::Client(b), child, quota_pages: QUOTA };
        let (_, vspace) = ctx.request_cap(&req)?;
        ctx.answer(reply);
        let r = ctx.expect_pass(b);
        ctx.abandon_space(child, vspace);
        r
    })();
    ctx.finish(alloc::vec![p], r)?;
    ctx.admin.unit(&Request::Nop).map_err(|e| format!("Nop: {e}"))
}

#[cfg(target_arch = "aarch64")]
fn start_counters(ctx: &mut Ctx) -> Result<(), String> {
    // SAFETY: PMU registers the kernel lets user level use (KernelArmExportPMUUser): count
    // EL2 too (PMCCFILTR_EL0.NSH), enable the cycle counter, reset it, 64 bits.
    unsafe {
        core::arch::asm!("msr pmccfiltr_el0, {}", in(reg) 1u64 << 27, options(nostack));
        core::arch::asm!("msr pmcntenset_el0, {}", in(reg) 1u64 << 31, options(nostack));
        core::arch::asm!("msr pmcr_el0, {}", in(reg) 0x47u64, options(nostack));
        core::arch::asm!("isb", options(nostack));
    }
    log_buffer(ctx)
}

#[cfg(not(target_arch = "aarch64"))]
fn start_counters(ctx: &mut Ctx) -> Result<(), String> {
    log_buffer(ctx)
}

/// The 2 MiB frame type of this architecture.
#[cfg(target_arch = "aarch64")]
#[sel4::sel4_cfg(BENCHMARK_TRACK_KERNEL_ENTRIES)]
type LogFrame = sel4::cap_type::LargePage;
#[cfg(target_arch = "riscv64")]
#[sel4::sel4_cfg(BENCHMARK_TRACK_KERNEL_ENTRIES)]
type LogFrame = sel4::cap_type::MegaPage;

/// On the kernel that logs every entry: give it a 2 MiB frame for the log.
#[sel4::sel4_cfg(BENCHMARK_TRACK_KERNEL_ENTRIES)]
fn log_buffer(ctx: &mut Ctx) -> Result<(), String> {
    let frame = ctx
        .objs
        .alloc_fixed::<LogFrame>()
        .map_err(|e| format!("log buffer frame: {e:?}"))?;
    sel4::benchmark_set_log_buffer(frame.cast()).map_err(|e| format!("log buffer: {e:?}"))
}

#[sel4::sel4_cfg(not(BENCHMARK_TRACK_KERNEL_ENTRIES))]
fn log_buffer(_ctx: &mut Ctx) -> Result<(), String> {
    Ok(())
}
