//! The benchmark client of `make bench-sel4` (scenario 20; 21 is the warm-up client).
//!
//! Each operation runs in a loop (`N` = 1,024 iterations unless noted) and the client prints
//! one line per operation: `BENCH-INSTR <op> <tenths of instructions per op>` on the
//! instruction-counting kernel, `BENCH-ENTRIES <op> <tenths of kernel entries per op>` on
//! the kernel that logs every entry (`KernelBenchmarks=track_kernel_entries`). Instructions
//! are guest instructions of the whole system (this client, the server, the kernel: QEMU
//! runs with `-icount shift=0`, and on aarch64 the cycle counter counts every exception
//! level, EL2 included, so the kernel's share is counted). `scripts/bench-report.py` makes
//! the table against Linux.
//!
//! 4 KiB faults: areas of 256 pages placed one page past a 2 MiB boundary, so no 2 MiB
//! chunk ever fits (the server would map 2 MiB pages there). Fault numbers have the loop's
//! own cost (`touch`, a store to a mapped page) subtracted.
//!
//! The warm-up client (21) touches `WARM_PAGES` pages and stops; the root task destroys it,
//! so the server's pool holds clean (zeroed) frames: the steady state, in which every
//! operation that touches or populates pages finds clean frames (`fault-clean`,
//! `fault-around-clean`, `populate-clean`, `mmap-touch-munmap-clean`,
//! `shm-cycle-touch-clean`). `fault-cold` is measured first, before that, on frames retyped
//! on demand. What zeroing a frame costs the server (it zeroes the frames of a destroyed
//! client at once, and others on demand) is measured by the server itself (`zero`, bench
//! builds); the report adds it once per page to each `-clean` operation (`fault` =
//! `fault-clean` + `zero`, ...).
//!
//! `fault-around`: the same first touches in address order, where the server maps up to 15
//! pages ahead of the faulting one (fault-around, on by default for in-order touches); the
//! other fault operations touch pages last-first, so each of their faults maps one page.
//!
//! `cow-fault`: 256 touched pages, STEP(1) — the root task clones this space (the clone
//! holds every page) — then one store per page (`cow-fault-store`), plus this client's
//! munmap of the copies, per page (Linux's figure frees the copy at exit too).
//!
//! `mprotect`: one present page between two `PROT_NONE` guard pages (Linux's geometry: no
//! split, no merge); `mprotect-merge`: a page next to an area of the same protection, so
//! every other call splits or merges.
//!
//! `mmap-touch-munmap-256[-random]`: map 256 pages, write each once in address order (or
//! a shuffled one), unmap; per page.
//!
//! Growth rows `grow-<op>-a<areas>-c<clients>`: a fault, an isolated mprotect, an mmap +
//! munmap and a null request with 10 / 1,000 / 50,000 areas in this client, alone and
//! with 32 other clients alive (made and destroyed by the root task at STEP 2 / 3).

extern crate alloc;

use core::arch::asm;

use mem_client::linux::{
    IPC_CREAT, MAP_ANONYMOUS, MAP_FIXED, MAP_POPULATE, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_RW,
};
use mem_client::Client;
use mem_protocol::PAGE_SIZE;

use crate::mem::poke;
use crate::report::{step, Check, Outcome};

const N: u64 = 1024;
/// Pages of one fault area (1 MiB: never a 2 MiB page).
const AREA_PAGES: u64 = 256;
/// Fault areas start here, each one page past a 2 MiB boundary.
const FAULT_BASE: u64 = 0x20_0000_1000;
const AREA_STRIDE: u64 = 2 << 20;
/// Pages the warm-up client touches: enough clean frames for every page the operations
/// below touch or populate (about 10 N, and the other clients' pages of the growth rows), so each of them finds a clean frame and the
/// report adds what zeroing it cost (`-clean` operations).
pub const WARM_PAGES: u64 = 12 * N;

/// What is counted: instructions, or kernel entries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Instr,
    Entries,
}

/// The counter of this kernel.
struct Counter {
    kind: Kind,
    /// Entries counted by an empty measurement (the reset and finalize calls).
    overhead: u64,
}

impl Counter {
    fn new() -> Counter {
        let kind = if ENTRIES { Kind::Entries } else { Kind::Instr };
        let mut c = Counter { kind, overhead: 0 };
        c.init();
        if kind == Kind::Entries {
            c.overhead = c.measure(|| {});
        }
        c
    }

    #[cfg(target_arch = "aarch64")]
    fn init(&self) {
        // SAFETY: PMU registers, which the kernel lets user level use
        // (KernelArmExportPMUUser): count EL2 too (PMCCFILTR_EL0.NSH), enable the cycle
        // counter (PMCNTENSET_EL0.C), reset and start it, 64 bits (PMCR_EL0 E|P|C|LC).
        unsafe {
            asm!("msr pmccfiltr_el0, {}", in(reg) 1u64 << 27, options(nostack));
            asm!("msr pmcntenset_el0, {}", in(reg) 1u64 << 31, options(nostack));
            asm!("msr pmcr_el0, {}", in(reg) 0x47u64, options(nostack));
            asm!("isb", options(nostack));
        }
    }

    #[cfg(not(target_arch = "aarch64"))]
    fn init(&self) {}

    /// Guest instructions so far (under `-icount shift=0` the cycle counter counts them).
    #[cfg(target_arch = "aarch64")]
    fn instructions() -> u64 {
        let v: u64;
        // SAFETY: reading PMCCNTR_EL0 (enabled for user level above) has no side effect.
        unsafe { asm!("isb", "mrs {}, pmccntr_el0", out(reg) v, options(nostack)) };
        v
    }

    #[cfg(target_arch = "riscv64")]
    fn instructions() -> u64 {
        let v: u64;
        // SAFETY: reading the instret counter has no side effect.
        unsafe { asm!("rdinstret {}", out(reg) v, options(nomem, nostack)) };
        v
    }

    /// What `f` costs, in this kernel's unit.
    fn measure(&self, f: impl FnOnce()) -> u64 {
        match self.kind {
            Kind::Instr => {
                let t0 = Self::instructions();
                f();
                Self::instructions() - t0
            }
            Kind::Entries => entries(f).saturating_sub(self.overhead),
        }
    }

    /// Print one result: `total` over `n` operations.
    fn report(&self, op: &str, total: u64, n: u64) {
        let tag = match self.kind {
            Kind::Instr => "INSTR",
            Kind::Entries => "ENTRIES",
        };
        sel4::debug_println!("BENCH-{tag} {op} {}", total * 10 / n.max(1));
    }
}

/// Is this the kernel that logs every entry?
#[sel4::sel4_cfg(BENCHMARK_TRACK_KERNEL_ENTRIES)]
const ENTRIES: bool = true;
#[sel4::sel4_cfg(not(BENCHMARK_TRACK_KERNEL_ENTRIES))]
const ENTRIES: bool = false;

/// Kernel entries `f` makes (the log the kernel keeps of every entry).
#[sel4::sel4_cfg(BENCHMARK_TRACK_KERNEL_ENTRIES)]
fn entries(f: impl FnOnce()) -> u64 {
    let _ = sel4::benchmark_reset_log();
    f();
    sel4::benchmark_finalize_log() as u64
}

#[sel4::sel4_cfg(not(BENCHMARK_TRACK_KERNEL_ENTRIES))]
fn entries(f: impl FnOnce()) -> u64 {
    f();
    0
}

/// Fresh 4 KiB-fault areas for `pages` pages (multiple of AREA_PAGES), from area `first`.
fn fault_areas(c: &mut Client, first: u64, pages: u64) -> Result<u64, crate::report::Fail> {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    for a in 0..pages / AREA_PAGES {
        c.mmap(FAULT_BASE + (first + a) * AREA_STRIDE, AREA_PAGES * PAGE_SIZE, PROT_RW, flags).or_fail(2001)?;
    }
    Ok(first + pages / AREA_PAGES)
}

fn fault_addr(first: u64, i: u64) -> u64 {
    FAULT_BASE + (first + i / AREA_PAGES) * AREA_STRIDE + (i % AREA_PAGES) * PAGE_SIZE
}

/// One store into each of `n` pages of the fault areas from area `first`, last page first:
/// the page below a faulting page is never mapped yet, so the server's fault-around (which
/// maps ahead only for in-order touches) stays out: every fault maps one page.
fn touch_pages(first: u64, n: u64) {
    for i in (0..n).rev() {
        // SAFETY: the pages lie in RW areas this client mapped (fault_areas).
        unsafe { poke(fault_addr(first, i), i) };
    }
}

/// The same stores in address order (fault-around applies).
fn touch_pages_in_order(first: u64, n: u64) {
    for i in 0..n {
        // SAFETY: as above.
        unsafe { poke(fault_addr(first, i), i) };
    }
}

fn unmap_areas(c: &mut Client, first: u64, pages: u64) -> Outcome {
    for a in 0..pages / AREA_PAGES {
        c.munmap(FAULT_BASE + (first + a) * AREA_STRIDE, AREA_PAGES * PAGE_SIZE).or_fail(2002)?;
    }
    Ok(())
}

/// The warm-up client: touch WARM_PAGES pages, then stop (PASS); its frames go back clean.
pub fn warm(c: &mut Client) -> Outcome {
    fault_areas(c, 0, WARM_PAGES)?;
    touch_pages(0, WARM_PAGES);
    Ok(())
}

/// The cold part, run before the warm-up: first touches on frames retyped on demand.
pub fn cold(c: &mut Client) -> Outcome {
    let k = Counter::new();
    fault_areas(c, 0, N)?;
    let t = k.measure(|| touch_pages(0, N));
    unmap_areas(c, 0, N)?;
    let base = touch_baseline(c, &k)?;
    k.report("fault-cold", t.saturating_sub(base), N);
    Ok(())
}

/// The loop's own cost: one store per (mapped) page (an area of its own, left mapped).
fn touch_baseline(c: &mut Client, k: &Counter) -> Result<u64, crate::report::Fail> {
    let first = 200;
    fault_areas(c, first, AREA_PAGES)?;
    touch_pages(first, AREA_PAGES);
    // The same number of stores as a fault loop, to pages already mapped.
    let t = k.measure(|| {
        for i in 0..N {
            // SAFETY: inside the RW area just mapped and touched.
            unsafe { poke(fault_addr(first, i % AREA_PAGES), i) };
        }
    });
    k.report("touch", t, N);
    // Left mapped: unmapping would leave dirty frames for the next faults to zero.
    Ok(t)
}

/// Everything else: STEP(0), during which the warm-up client runs and is destroyed (the
/// pool then holds its frames, zeroed), then every operation.
pub fn run(c: &mut Client) -> Outcome {
    step(0, &[]);
    let k = Counter::new();
    let base = touch_baseline(c, &k)?;
    // Steady-state faults on clean frames (the pool holds the warm-up client's).
    let a1 = 0;
    fault_areas(c, a1, N)?;
    // A bench server prints (and resets) its own meters at every Nop: the next ones are
    // the clean faults' alone.
    let _ = c.nop();
    let clean = k.measure(|| touch_pages(a1, N)).saturating_sub(base);
    let _ = c.nop();
    k.report("fault-clean", clean, N);
    // Sequential first touch (fault-around), on the other half of the warm-up's frames.
    let a2 = 10;
    fault_areas(c, a2, N)?;
    let around = k.measure(|| touch_pages_in_order(a2, N)).saturating_sub(base);
    k.report("fault-around-clean", around, N);
    unmap_areas(c, a2, N)?;
    unmap_areas(c, a1, N)?;

    // MAP_POPULATE per page, and munmap per populated page.
    let len = AREA_PAGES * PAGE_SIZE;
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE;
    let t = k.measure(|| {
        for a in 0..N / AREA_PAGES {
            let _ = c.mmap(FAULT_BASE + a * AREA_STRIDE, len, PROT_RW, flags);
        }
    });
    k.report("populate-clean", t, N);
    let t = k.measure(|| {
        for a in 0..N / AREA_PAGES {
            let _ = c.munmap(FAULT_BASE + a * AREA_STRIDE, len);
        }
    });
    k.report("munmap-populated", t, N);

    let anon = MAP_PRIVATE | MAP_ANONYMOUS;
    let t = k.measure(|| {
        for _ in 0..N {
            if let Ok(a) = c.mmap(0, PAGE_SIZE, PROT_RW, anon) {
                let _ = c.munmap(a, PAGE_SIZE);
            }
        }
    });
    k.report("mmap-munmap", t, N);
    let t = k.measure(|| {
        for i in 0..N {
            if let Ok(a) = c.mmap(0, PAGE_SIZE, PROT_RW, anon) {
                // SAFETY: inside the RW mapping just returned.
                unsafe { poke(a, i) };
                let _ = c.munmap(a, PAGE_SIZE);
            }
        }
    });
    k.report("mmap-touch-munmap-clean", t, N);

    // What a program's steady state sees: map 256 pages, write each once (in address
    // order: fault-around applies; or in a shuffled order: one fault per page), unmap;
    // per touched page, everything included (the report adds `zero` per page).
    let order = shuffled();
    for (name, random) in [("mmap-touch-munmap-256-clean", false), ("mmap-touch-munmap-256-random-clean", true)] {
        let t = k.measure(|| {
            for r in 0..RUN_ROUNDS {
                if let Ok(a) = c.mmap(0, RUN_PAGES * PAGE_SIZE, PROT_RW, anon) {
                    for j in 0..RUN_PAGES {
                        let i = if random { u64::from(order[j as usize]) } else { j };
                        // SAFETY: inside the RW mapping just returned.
                        unsafe { poke(a + i * PAGE_SIZE, r) };
                    }
                    let _ = c.munmap(a, RUN_PAGES * PAGE_SIZE);
                }
            }
        });
        let pages = RUN_PAGES * RUN_ROUNDS;
        k.report(name, t.saturating_sub(base * pages / N), pages);
    }

    let a = c.mmap(0, 3 * PAGE_SIZE, PROT_RW, anon).or_fail(2003)?;
    for p in 0..3 {
        // SAFETY: inside the RW mapping just returned.
        unsafe { poke(a + p * PAGE_SIZE, p) };
    }
    let one = c.mmap(0, PAGE_SIZE, PROT_RW, anon).or_fail(2004)?;
    // SAFETY: as above.
    unsafe { poke(one, 1) };
    let t = k.measure(|| {
        for i in 0..N {
            let _ = c.mprotect(one, PAGE_SIZE, if i % 2 == 0 { PROT_READ } else { PROT_RW });
        }
    });
    k.report("mprotect-merge", t, N);
    // Linux's geometry: one present page between two PROT_NONE guard pages, so no call
    // splits or merges anything.
    let g = c.mmap(0, 3 * PAGE_SIZE, PROT_NONE, anon).or_fail(2008)?;
    c.mprotect(g + PAGE_SIZE, PAGE_SIZE, PROT_RW).or_fail(2009)?;
    // SAFETY: the middle page of the guarded mapping is read-write now.
    unsafe { poke(g + PAGE_SIZE, 1) };
    let t = k.measure(|| mprotect_loop(c, g + PAGE_SIZE, N));
    k.report("mprotect", t, N);
    c.munmap(g, 3 * PAGE_SIZE).or_fail(2014)?;
    let t = k.measure(|| {
        for i in 0..N {
            let _ = c.mprotect(a + PAGE_SIZE, PAGE_SIZE, if i % 2 == 0 { PROT_READ } else { PROT_RW });
        }
    });
    k.report("mprotect-split", t, N);
    c.munmap(a, 3 * PAGE_SIZE).or_fail(2005)?;
    c.munmap(one, PAGE_SIZE).or_fail(2006)?;

    let t = k.measure(|| {
        for _ in 0..N {
            let _ = shm_cycle(c, false);
        }
    });
    k.report("shm-cycle", t, N);
    let t = k.measure(|| {
        for _ in 0..N {
            let _ = shm_cycle(c, true);
        }
    });
    k.report("shm-cycle-touch-clean", t, N);

    // The first Nop lets a bench server print its meters; the measured ones find nothing
    // to print.
    let _ = c.nop();
    let t = k.measure(|| {
        for _ in 0..N {
            let _ = c.nop();
        }
    });
    k.report("null-request", t, N);

    // The process's heap (mem-heap through mem-capi's C malloc): a malloc + free pair of
    // 64 bytes (dlmalloc reuses the same chunk) and of 300 KB (a large block: mapped on
    // its own, one Stats round trip to check the quota, unmapped at free; untouched, as in
    // the Linux row of glibc's malloc). One warm-up pair each first.
    for size in [64usize, 300 * 1024] {
        // SAFETY: a block this heap just returned (or null).
        unsafe { mem_capi::free(mem_capi::malloc(size)) };
        let t = k.measure(|| {
            for i in 0..N {
                // black_box: LLVM knows `malloc` and `free` by name and would delete a
                // pair whose block is never used (the untouched large one).
                let p = core::hint::black_box(mem_capi::malloc(core::hint::black_box(size)));
                if size < 4096 && !p.is_null() {
                    // SAFETY: `p` is a live block of `size` >= 8 bytes, 16-byte aligned.
                    unsafe { poke(p as u64, i) };
                }
                // SAFETY: `p` came from `malloc` just above (or is null).
                unsafe { mem_capi::free(p) };
            }
        });
        // The pair must have worked (a null would measure a failure path).
        let p = core::hint::black_box(mem_capi::malloc(core::hint::black_box(size)));
        if p.is_null() {
            return Err(crate::report::Fail::new(2007).detail(size as u64));
        }
        // SAFETY: `p` came from `malloc` just above.
        unsafe { mem_capi::free(p) };
        k.report(if size < 4096 { "heap-small" } else { "heap-large" }, t, N);
        // The server's meters of the pairs (which requests, how many, faults).
        let _ = c.nop();
    }

    // Copy-on-write: 256 touched pages, the root task clones this space, one store each.
    let cow = 256;
    let first = 100;
    fault_areas(c, first, cow)?;
    touch_pages(first, cow);
    step(1, &[]);
    let t = k.measure(|| touch_pages(first, cow)).saturating_sub(base * cow / N);
    k.report("cow-fault-store", t, cow);
    // Linux's figure (fork + child write + exit, minus fork + exit) includes freeing the
    // copy at exit: so does ours, with this client's munmap of the copies (the clone
    // still holds the originals), per page.
    let free = k.measure(|| {
        let _ = unmap_areas(c, first, cow);
    });
    k.report("cow-fault", t + free, cow);

    growth(c, &k, base)
}

/// `mprotect` of the page at `a` back and forth between read-only and read-write, `n` times.
fn mprotect_loop(c: &mut Client, a: u64, n: u64) {
    for i in 0..n {
        let _ = c.mprotect(a, PAGE_SIZE, if i % 2 == 0 { PROT_READ } else { PROT_RW });
    }
}

/// Extra areas of the growth rows: one page each, every other page, from here (below
/// riscv64 Sv39's 256 GiB user top).
const GROWTH_BASE: u64 = 0x30_0000_0000;
/// Area counts of the growth rows (10: about what the client has anyway).
const GROWTH_AREAS: [u64; 3] = [10, 1_000, 50_000];
/// Other clients alive during the second round (the root task makes them at STEP 2).
pub const GROWTH_CLIENTS: u64 = 32;

/// Growth rows: a fault, an isolated mprotect, an mmap + munmap and a null request with
/// 10 / 1,000 / 50,000 areas in this client, first alone, then (STEP 2: the root task
/// creates `GROWTH_CLIENTS` other spaces with areas and pages of their own; STEP 3: it
/// destroys them) with 32 other clients alive. Rows `grow-<op>-a<areas>-c<clients>`;
/// faults are first touches of clean frames (the `zero` cost is not added here), one page
/// each; the loops are shorter (256) than the main rows'.
fn growth(c: &mut Client, k: &Counter, base: u64) -> Outcome {
    let anon = MAP_PRIVATE | MAP_ANONYMOUS;
    let n = 256;
    for clients in [0, GROWTH_CLIENTS] {
        if clients > 0 {
            step(2, &[]);
        }
        let mut have = 0;
        for areas in GROWTH_AREAS {
            // One-page areas with a hole between them (never merged), untouched.
            let extra = areas.saturating_sub(GROWTH_AREAS[0]);
            while have < extra {
                let at = GROWTH_BASE + 2 * have * PAGE_SIZE;
                c.mmap(at, PAGE_SIZE, PROT_READ, anon | MAP_FIXED).or_fail(2020)?;
                have += 1;
            }
            let name = |op: &str| alloc::format!("grow-{op}-a{areas}-c{clients}");
            let first = 120;
            fault_areas(c, first, AREA_PAGES)?;
            let t = k.measure(|| touch_pages(first, n)).saturating_sub(base * n / N);
            k.report(&name("fault"), t, n);
            unmap_areas(c, first, AREA_PAGES)?;
            let g = c.mmap(0, 3 * PAGE_SIZE, PROT_NONE, anon).or_fail(2021)?;
            c.mprotect(g + PAGE_SIZE, PAGE_SIZE, PROT_RW).or_fail(2022)?;
            // SAFETY: the middle page of the guarded mapping is read-write now.
            unsafe { poke(g + PAGE_SIZE, 1) };
            let t = k.measure(|| mprotect_loop(c, g + PAGE_SIZE, n));
            k.report(&name("mprotect"), t, n);
            c.munmap(g, 3 * PAGE_SIZE).or_fail(2023)?;
            let t = k.measure(|| {
                for _ in 0..n {
                    if let Ok(a) = c.mmap(0, PAGE_SIZE, PROT_RW, anon) {
                        let _ = c.munmap(a, PAGE_SIZE);
                    }
                }
            });
            k.report(&name("mmap-munmap"), t, n);
            // The first Nop makes a bench server print its meters: not measured.
            let _ = c.nop();
            let t = k.measure(|| {
                for _ in 0..n {
                    let _ = c.nop();
                }
            });
            k.report(&name("null-request"), t, n);
        }
        c.munmap(GROWTH_BASE, 2 * have * PAGE_SIZE).or_fail(2024)?;
        if clients > 0 {
            step(3, &[]);
        }
    }
    Ok(())
}

/// Pages per mapping and mappings of the `mmap-touch-munmap-256` rows.
const RUN_PAGES: u64 = 256;
const RUN_ROUNDS: u64 = 4;

/// 0..RUN_PAGES in a fixed shuffled order (Fisher-Yates over a xorshift generator).
fn shuffled() -> [u16; RUN_PAGES as usize] {
    let mut v = [0u16; RUN_PAGES as usize];
    for (i, x) in v.iter_mut().enumerate() {
        *x = i as u16;
    }
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

fn shm_cycle(c: &mut Client, touch: bool) -> Outcome {
    let id = c.shmget(None, PAGE_SIZE, IPC_CREAT | 0o600).or_fail(2010)?;
    let a = c.shmat(id, None, false).or_fail(2011)?;
    if touch {
        // SAFETY: the 1-page segment is attached read-write at `a`.
        unsafe { poke(a, 1) };
    }
    c.shmdt(a).or_fail(2012)?;
    c.shmctl_rmid(id).or_fail(2013)
}
