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
//!    copy-on-write faults; the clone is destroyed afterwards. At STEP(2) the root task
//!    creates 32 other spaces with areas and pages of their own (the growth rows' second
//!    round), at STEP(3) destroys them.
//! 5. The server's per-message meters go on (they were off for everything above) for the
//!    latency part.
//! 6. A `Nop` from the administrator makes a bench server print what zeroing frames cost
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
    let p = ctx.spawn(22, 0, 0, (1000, 1000), BENCH_QUOTA)?;
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
        // The growth rows' second round: other clients alive (the clone, whose pages the
        // copy-on-write stores needed, goes first: its metadata reservation is large).
        let step2 = ctx.expect_step(b, 2);
        ctx.abandon_space(child, vspace);
        let r = step2.and_then(|(_, reply)| match others(ctx) {
            Ok(made) => {
                ctx.answer(reply);
                let r = ctx.expect_step(b, 3).map(|(_, reply)| ctx.answer(reply));
                for (badge, vspace) in made {
                    ctx.abandon_space(badge, vspace);
                }
                r
            }
            Err(e) => {
                ctx.drop_reply(reply);
                Err(e)
            }
        });
        r.and_then(|_| ctx.expect_pass(b))
    })();
    ctx.finish(alloc::vec![p], r)?;
    // The server's per-message meters (its longest step) for the latency part only: the
    // speed rows above measure the server without them.
    meters(ctx, true)?;
    latency(ctx)?;
    ctx.admin.unit(&Request::Nop).map_err(|e| format!("Nop: {e}"))
}

/// Switch the bench server's per-message meters (`mem-server/sel4/src/meter.rs`).
fn meters(ctx: &mut Ctx, on: bool) -> Result<(), String> {
    match ctx.admin.call_raw(mem_protocol::system::BENCH_METERS_LABEL, &[u64::from(on)]) {
        (0, 0) => Ok(()),
        (label, len) => Err(format!("meters: the server answered label {label:#x}, {len} words")),
    }
}

/// Quota of the benchmark client itself: its loops, and the metadata of the 50,000 areas
/// of the growth rows (448 bytes each, 256 bytes of metadata per page of quota).
const BENCH_QUOTA: u64 = 100_000;
/// Spaces alive during the growth rows' second round (the client's `GROWTH_CLIENTS`).
const OTHERS: usize = 32;

/// The other clients of the growth rows: `OTHERS` spaces (no threads: the server's
/// structures are what counts), each with a populated area of 4 pages and a lazy one of
/// 256. Their (badge, VSpace cap slot), for `abandon_space`; on failure what was made is
/// destroyed again.
fn others(ctx: &mut Ctx) -> Result<alloc::vec::Vec<(u32, usize)>, String> {
    use mem_protocol::{Backing, Placement, Prot, Share};
    let mut made = alloc::vec::Vec::new();
    let r = (|| {
        for _ in 0..OTHERS {
            let badge = ctx.new_badge()?;
            let req = Request::CreateSpace { client: badge, uid: 1001, gid: 1001, quota_pages: DEFAULT_QUOTA };
            let (_, vspace) = ctx.request_cap(&req)?;
            made.push((badge, vspace));
            for (pages, populate) in [(4u64, true), (256, false)] {
                let req = Request::Mmap {
                    target: Target::Client(badge),
                    addr: 0,
                    len: pages * 4096,
                    prot: Prot::RW,
                    max_prot: Prot::RW,
                    placement: Placement::Anywhere,
                    share: Share::Private,
                    backing: Backing::Anonymous,
                    populate,
                };
                ctx.admin.request(&req).map_err(|e| format!("growth: other client's mmap: {e}"))?;
            }
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(made),
        Err(e) => {
            for (badge, vspace) in made {
                ctx.abandon_space(badge, vspace);
            }
            Err(e)
        }
    }
}

/// Quota of the latency aggressors: 65,536 pages and the metadata of 65,530 areas.
const AGGRESSOR_QUOTA: u64 = 131_072;
/// Quota of the administrator's operations' aggressor (its clone needs as much again).
const ADMIN_AGGRESSOR_QUOTA: u64 = 70_000;

/// The latency part (instruction-counting kernel only): for each heavy operation, a victim
/// client faults page after page while the operation runs on the same core, and reports
/// its worst fault round trip (`clients/scenarios/src/latency.rs`). Prints
/// `BENCH-INSTR latency-<op> <worst, tenths>`, `latency-<op>-mean` (the victim's average
/// round trip) and `latency-<op>-total` (what the operation itself took).
#[sel4::sel4_cfg(not(BENCHMARK_TRACK_KERNEL_ENTRIES))]
fn latency(ctx: &mut Ctx) -> Result<(), String> {
    for (name, op) in [("munmap-65536", 1), ("munmap-areas-65500", 2), ("shm-rmid-16384", 3), ("layout-65500", 4)] {
        let a = ctx.spawn(37, op, 0, (1000, 1000), AGGRESSOR_QUOTA)?;
        let v = ctx.spawn(36, 0, 0, (1000, 1000), QUOTA)?;
        let (ab, vb) = (a.badge, v.badge);
        let r = (|| {
            let (ra, rv) = ready(ctx, ab, vb)?;
            // The server's meters start over here (its longest step is printed at the next
            // `Nop`, after the operation: `BENCH-STEP-MAX`).
            ctx.admin.unit(&Request::Nop)?;
            sel4::debug_println!("BENCH-LATENCY {name}");
            ctx.answer(rv);
            ctx.answer(ra);
            let (mut victim, mut total) = (None, None);
            while victim.is_none() || total.is_none() {
                match ctx.next_event() {
                    crate::ctx::Event::Step { badge, step: 2, values, reply } if badge == vb => {
                        ctx.drop_reply(reply);
                        victim = Some(values);
                    }
                    crate::ctx::Event::Step { badge, step: 2, values, reply } if badge == ab => {
                        ctx.drop_reply(reply);
                        total = values.first().copied();
                    }
                    e => return Err(format!("latency {name}: {e:?}")),
                }
            }
            report(name, victim.unwrap_or_default(), total.unwrap_or(0));
            ctx.admin.unit(&Request::Nop)
        })();
        ctx.finish(alloc::vec![a, v], r)?;
    }
    // The administrator's operations, run by the root task at the clients' priority (so the
    // victim and the server's answers share the core with it, as with a client).
    for (name, clone) in [("destroy-65536", false), ("clone-16384", true)] {
        let a = ctx.spawn(37, if clone { 5 } else { 0 }, 0, (1000, 1000), ADMIN_AGGRESSOR_QUOTA)?;
        let v = ctx.spawn(36, 0, 0, (1000, 1000), QUOTA)?;
        let (ab, vb) = (a.badge, v.badge);
        let mut a = Some(a);
        let r = (|| {
            let (ra, rv) = ready(ctx, ab, vb)?;
            ctx.drop_reply(ra);
            ctx.admin.unit(&Request::Nop)?;
            sel4::debug_println!("BENCH-LATENCY {name}");
            ctx.answer(rv);
            let tcb = sel4::init_thread::slot::TCB.cap();
            let _ = tcb.tcb_set_priority(tcb, mem_launcher::client::CLIENT_PRIORITY);
            let t0 = now();
            let r = if clone {
                let child = ctx.new_badge()?;
                let req = Request::Clone { source: Target::Client(ab), child, quota_pages: ADMIN_AGGRESSOR_QUOTA };
                let r = ctx.request_cap(&req).map(|(_, vspace)| (child, vspace));
                let total = now() - t0;
                // The clone's longest step, before the child goes again.
                ctx.admin.unit(&Request::Nop)?;
                if let Ok((child, vspace)) = r {
                    ctx.abandon_space(child, vspace);
                }
                r.map(|_| total)
            } else {
                let p = a.take().ok_or("no aggressor")?;
                ctx.destroy_client(p).map(|_| now() - t0)
            };
            let _ = tcb.tcb_set_priority(tcb, crate::ctx::ROOT_PRIORITY);
            let total = r?;
            match ctx.next_event() {
                crate::ctx::Event::Step { badge, step: 2, values, reply } if badge == vb => {
                    ctx.drop_reply(reply);
                    report(name, values, total);
                    ctx.admin.unit(&Request::Nop)
                }
                e => Err(format!("latency {name}: {e:?}")),
            }
        })();
        let mut procs = alloc::vec![v];
        procs.extend(a);
        ctx.finish(procs, r)?;
    }
    Ok(())
}

/// Both latency clients' STEP(1), in either order: (aggressor's reply, victim's reply).
#[sel4::sel4_cfg(not(BENCHMARK_TRACK_KERNEL_ENTRIES))]
fn ready(ctx: &mut Ctx, ab: u32, vb: u32) -> Result<(usize, usize), String> {
    let (mut ra, mut rv) = (None, None);
    while ra.is_none() || rv.is_none() {
        match ctx.next_event() {
            crate::ctx::Event::Step { badge, step: 1, reply, .. } if badge == ab => ra = Some(reply),
            crate::ctx::Event::Step { badge, step: 1, reply, .. } if badge == vb => rv = Some(reply),
            e => {
                for r in [ra, rv].into_iter().flatten() {
                    ctx.drop_reply(r);
                }
                return Err(format!("latency: waiting for the clients to be ready: {e:?}"));
            }
        }
    }
    Ok((ra.unwrap_or(0), rv.unwrap_or(0)))
}

#[sel4::sel4_cfg(BENCHMARK_TRACK_KERNEL_ENTRIES)]
fn latency(_ctx: &mut Ctx) -> Result<(), String> {
    Ok(())
}

#[sel4::sel4_cfg(not(BENCHMARK_TRACK_KERNEL_ENTRIES))]
fn report(name: &str, victim: alloc::vec::Vec<u64>, total: u64) {
    let worst = victim.first().copied().unwrap_or(0);
    let (n, sum) = (victim.get(1).copied().unwrap_or(1), victim.get(2).copied().unwrap_or(0));
    sel4::debug_println!("BENCH-INSTR latency-{name} {}", worst * 10);
    sel4::debug_println!("BENCH-INSTR latency-{name}-mean {}", sum * 10 / n.max(1));
    sel4::debug_println!("BENCH-INSTR latency-{name}-total {}", total * 10);
}

/// The instruction counter (started by `start_counters`).
#[cfg(target_arch = "aarch64")]
#[sel4::sel4_cfg(not(BENCHMARK_TRACK_KERNEL_ENTRIES))]
fn now() -> u64 {
    let v: u64;
    // SAFETY: reading PMCCNTR_EL0, enabled for user level, has no side effect.
    unsafe { core::arch::asm!("isb", "mrs {}, pmccntr_el0", out(reg) v, options(nostack)) };
    v
}

#[cfg(target_arch = "riscv64")]
#[sel4::sel4_cfg(not(BENCHMARK_TRACK_KERNEL_ENTRIES))]
fn now() -> u64 {
    let v: u64;
    // SAFETY: reading the instret counter has no side effect.
    unsafe { core::arch::asm!("rdinstret {}", out(reg) v, options(nomem, nostack)) };
    v
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
