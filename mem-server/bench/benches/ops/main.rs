//! `cargo bench -p mem-bench`: host time and kernel calls per operation of `mem-core` on the
//! seL4 model (`mem-model`), with 10, 1,000 and 100,000 areas in the client's address space,
//! and bytes of server metadata per mapped page.
//!
//! Each address space is filled with `n` one-page anonymous areas mapped `Fixed` at
//! `user_lo + 2 * i * PAGE` (one-page holes between them, so nothing merges), every fourth
//! one faulted in; then one multi-page area (all faulted, for mprotect) and one big lazy area
//! (for faults). Operations are timed in batches (one `Instant` pair per batch); the first
//! batch of each operation is a discarded warm-up. Reported per operation: median of the
//! per-batch ns/op, mean ns/op over all batches, a robust mean leaving out batches slower
//! than 3× the median (preempted by other processes), the 90th-percentile batch, the seL4
//! calls per op counted by the model, and heap allocations per op made outside the model.
//!
//! Memory: a counting `#[global_allocator]` (`count.rs`) splits live heap bytes between the
//! model kernel (calls run inside `as_model`, `kernel.rs`) and everything else (the core).
//!
//! Without `--bench` (i.e. under `cargo test --workspace`) it runs a seconds-long smoke pass
//! with small sizes and checks its own bookkeeping.

mod count;
mod kernel;
mod report;

use std::time::Instant;

use mem_core::mmap::MmapArgs;
use mem_core::{Access, Config, Cred, MemCore, Prot, UntypedDesc};
use mem_model::{ModelConfig, Op};
use mem_protocol::{Placement, LARGE_PAGE_SIZE, PAGE_SIZE};

use count::{Counting, Heap};
use kernel::Attributed;
use report::{MemRow, Row, Sampler};

#[global_allocator]
static ALLOC: Counting = Counting;

pub type Core = MemCore<Attributed>;

const PAGE: u64 = PAGE_SIZE;
const CLIENT: u32 = 1;
const CHILD: u32 = 2;
const QUOTA: u64 = 1 << 40;
/// Model RAM: frame contents are allocated lazily by the model, so this is only a limit.
const RAM: u64 = 8 << 30;
const SLOTS: u32 = 1 << 20;

/// Sizes and iteration counts.
struct Plan {
    full: bool,
    sizes: Vec<usize>,
    /// Batches per area-map operation (mmap, munmap, mprotect).
    samples: u64,
    /// Batches and batch size for faults (and COW breaks).
    fault_samples: u64,
    fault_batch: u64,
    /// Same with fault-around (16 pages per fault).
    around_samples: u64,
    around_batch: u64,
    /// Pages of the dense and sparse memory scenarios.
    mem_pages: u64,
    mem_sparse_pages: u64,
}

impl Plan {
    fn new(full: bool) -> Plan {
        if full {
            Plan {
                full,
                sizes: vec![10, 1_000, 100_000],
                samples: 1_000,
                fault_samples: 100,
                fault_batch: 1_000,
                around_samples: 40,
                around_batch: 250,
                mem_pages: 100_000,
                mem_sparse_pages: 10_000,
            }
        } else {
            Plan {
                full,
                sizes: vec![10, 1_000],
                samples: 4,
                fault_samples: 3,
                fault_batch: 50,
                around_samples: 2,
                around_batch: 20,
                mem_pages: 2_000,
                mem_sparse_pages: 100,
            }
        }
    }
}

fn untypeds(cfg: &ModelConfig) -> Vec<UntypedDesc> {
    cfg.untypeds
        .iter()
        .map(|u| UntypedDesc { slot: u.slot, paddr: u.paddr, size_bits: u.size_bits, device: u.device })
        .collect()
}

/// A core on a riscv64 model with one client space.
fn new_core(large_pages: bool, fault_around: u32) -> Core {
    let mut mcfg = ModelConfig::riscv64(RAM);
    mcfg.cnode_slots = SLOTS;
    let mut cfg = Config::new(mcfg.geometry);
    cfg.user_hi = cfg.user_hi.min(mcfg.user_top);
    cfg.large_pages = large_pages;
    cfg.fault_around = fault_around;
    cfg.admins = vec![0];
    let uts = untypeds(&mcfg);
    let first = mcfg.first_free_slot();
    let mut core = MemCore::new(Attributed::new(mcfg), cfg, &uts, first, SLOTS);
    core.create_space(CLIENT, Cred { uid: 1, gid: 1 }, QUOTA).expect("create space");
    core
}

fn align_up(x: u64, a: u64) -> u64 {
    (x + a - 1) & !(a - 1)
}

fn anon(len: u64) -> MmapArgs {
    MmapArgs::anon(len, Prot::RW)
}

fn fixed(addr: u64, len: u64) -> MmapArgs {
    anon(len).at(addr, Placement::Fixed)
}

fn write_fault(core: &mut Core, client: u32, vaddr: u64) -> u32 {
    core.handle_fault(client, vaddr, Access::Write).unwrap_or_else(|e| panic!("fault at {vaddr:#x}: {e:?}"))
}

fn areas(core: &Core, client: u32) -> u64 {
    core.stats(Some(client)).expect("space").areas
}

/// One client space with `n` one-page areas (+ a faulted multi-page area + a big lazy area).
struct Env {
    core: Core,
    n: usize,
    /// Multi-page areas of `mp_pages` pages, all faulted: for mprotect and for munmap.
    mp: u64,
    mu: u64,
    mp_pages: u64,
    /// Lazy area for faults.
    fa: u64,
    fa_pages: u64,
}

fn build_env(n: usize, fault_around: u32, mp_pages: u64, fa_pages: u64) -> Env {
    let mut core = new_core(false, fault_around);
    let lo = core.config().user_lo;
    for i in 0..n as u64 {
        let a = lo + 2 * i * PAGE;
        core.mmap(CLIENT, &fixed(a, PAGE)).expect("fixed mmap");
        if i % 4 == 0 {
            write_fault(&mut core, CLIENT, a);
        }
    }
    let end = lo + 2 * n as u64 * PAGE;
    let mp = align_up(end + 64 * PAGE, LARGE_PAGE_SIZE);
    map_faulted(&mut core, mp, mp_pages);
    let mu = align_up(mp + mp_pages * PAGE + LARGE_PAGE_SIZE, LARGE_PAGE_SIZE);
    map_faulted(&mut core, mu, mp_pages);
    let fa = align_up(mu + mp_pages * PAGE + LARGE_PAGE_SIZE, LARGE_PAGE_SIZE);
    core.mmap(CLIENT, &fixed(fa, fa_pages * PAGE)).expect("fault area");
    assert_eq!(areas(&core, CLIENT), n as u64 + EXTRA);
    // Idle work a real server does between requests: zero freed frames off the fault path.
    core.maintain(usize::MAX);
    Env { core, n, mp, mu, mp_pages, fa, fa_pages }
}

/// Areas besides the `n` one-page ones: mprotect area, munmap area, fault area.
const EXTRA: u64 = 3;

/// A fixed area of `pages` pages at `a`, every page faulted in.
fn map_faulted(core: &mut Core, a: u64, pages: u64) {
    core.mmap(CLIENT, &fixed(a, pages * PAGE)).expect("multi-page area");
    for p in 0..pages {
        write_fault(core, CLIENT, a + p * PAGE);
    }
}

/// mmap / munmap / mprotect with `n` areas present.
fn bench_area_ops(env: &mut Env, plan: &Plan, rows: &mut Vec<Row>) {
    let n = env.n;
    let b = (n as u64 / 2).clamp(5, 200);
    let core = &mut env.core;
    let mut addrs: Vec<u64> = Vec::with_capacity(b as usize);
    let (mut mm, mut un, mut unf, mut pair, mut mm4) = (Sampler::new(), Sampler::new(), Sampler::new(), Sampler::new(), Sampler::new());
    for _ in 0..=plan.samples {
        addrs.clear();
        mm.run(core, b, |c| {
            for _ in 0..b {
                addrs.push(c.mmap(CLIENT, &anon(PAGE)).expect("mmap"));
            }
        });
        un.run(core, b, |c| {
            for &a in &addrs {
                c.munmap(CLIENT, a, PAGE).expect("munmap");
            }
        });

        addrs.clear();
        for _ in 0..b {
            let a = core.mmap(CLIENT, &anon(PAGE)).expect("mmap");
            write_fault(core, CLIENT, a);
            addrs.push(a);
        }
        unf.run(core, b, |c| {
            for &a in &addrs {
                c.munmap(CLIENT, a, PAGE).expect("munmap");
            }
        });
        core.maintain(usize::MAX);

        pair.run(core, b, |c| {
            for _ in 0..b {
                let a = c.mmap(CLIENT, &anon(PAGE)).expect("mmap");
                c.munmap(CLIENT, a, PAGE).expect("munmap");
            }
        });

        addrs.clear();
        mm4.run(core, b, |c| {
            for _ in 0..b {
                addrs.push(c.mmap(CLIENT, &anon(4 * PAGE)).expect("mmap 4"));
            }
        });
        for &a in &addrs {
            core.munmap(CLIENT, a, 4 * PAGE).expect("munmap 4");
        }
        assert_eq!(areas(core, CLIENT), n as u64 + EXTRA);
    }
    rows.push(mm.row("mmap 1 page, first-fit (fills the lowest 1-page hole)", n));
    rows.push(mm4.row("mmap 4 pages, first-fit (past every hole)", n));
    rows.push(un.row("munmap 1-page area (lazy)", n));
    rows.push(unf.row("munmap 1-page area (faulted in)", n));
    rows.push(pair.row("mmap + munmap pair (1 page, lazy)", n));

    // mprotect: page 2j+1 of the faulted multi-page area → READ (splits in 3), then back
    // to RW (merges the 3 pieces again).
    let (mut split, mut merge) = (Sampler::new(), Sampler::new());
    let mp = env.mp;
    for _ in 0..=plan.samples {
        split.run(core, b, |c| {
            for j in 0..b {
                c.mprotect(CLIENT, mp + (2 * j + 1) * PAGE, PAGE, Prot::READ).expect("mprotect R");
            }
        });
        assert_eq!(areas(core, CLIENT), n as u64 + EXTRA + 2 * b);
        merge.run(core, b, |c| {
            for j in 0..b {
                c.mprotect(CLIENT, mp + (2 * j + 1) * PAGE, PAGE, Prot::RW).expect("mprotect RW");
            }
        });
        assert_eq!(areas(core, CLIENT), n as u64 + EXTRA);
    }
    rows.push(split.row("mprotect 1 faulted page RW→R inside an area (split)", n));
    rows.push(merge.row("mprotect it back R→RW (merge)", n));

    // munmap page 2j+1 of a faulted multi-page area (each splits off a piece); the area is
    // rebuilt outside the timed part.
    let (mu, mp_pages) = (env.mu, env.mp_pages);
    let mut hole = Sampler::new();
    for _ in 0..=plan.samples {
        hole.run(core, b, |c| {
            for j in 0..b {
                c.munmap(CLIENT, mu + (2 * j + 1) * PAGE, PAGE).expect("munmap in area");
            }
        });
        assert_eq!(areas(core, CLIENT), n as u64 + EXTRA + b);
        core.munmap(CLIENT, mu, mp_pages * PAGE).expect("munmap area");
        map_faulted(core, mu, mp_pages);
        core.maintain(usize::MAX);
    }
    rows.push(hole.row("munmap 1 faulted page inside an area (split)", n));
}

/// Faults on fresh pages of the lazy area, then COW breaks after a clone.
fn bench_faults(env: &mut Env, plan: &Plan, rows: &mut Vec<Row>) {
    let (n, fa) = (env.n, env.fa);
    let fb = plan.fault_batch;
    let core = &mut env.core;
    let mut next = 0u64;
    let mut fault = Sampler::new();
    for _ in 0..=plan.fault_samples {
        fault.run(core, fb, |c| {
            for j in next..next + fb {
                write_fault(c, CLIENT, fa + j * PAGE);
            }
        });
        next += fb;
    }
    assert!(next <= env.fa_pages);
    rows.push(fault.row("fault: first write to a lazy anonymous 4K page", n));

    // Clone: every faulted page becomes COW in both spaces.
    let mapped = core.mapped_pages(CLIENT);
    let k0 = core.kernel().0.stats();
    let t = Instant::now();
    core.clone_space(CLIENT, CHILD, QUOTA).expect("clone");
    let dt = t.elapsed().as_nanos() as f64;
    let mut calls = [0u64; Op::ALL.len()];
    report::add_calls(&mut calls, core.kernel().0.stats() - k0);
    rows.push(Row {
        op: "clone_space, per mapped page (one run)".into(),
        areas: n,
        ops: mapped,
        median: dt / mapped as f64,
        mean: dt / mapped as f64,
        robust_mean: dt / mapped as f64,
        dropped: 0,
        batches: 1,
        p90: dt / mapped as f64,
        calls: report::calls_per_op(&calls, mapped),
        allocs: f64::NAN,
        target: false,
    });
    core.maintain(usize::MAX);

    // Child writes: the frame has two references → copy.
    let (mut copy, mut last) = (Sampler::new(), Sampler::new());
    let mut at = 0u64;
    for _ in 0..=plan.fault_samples {
        copy.run(core, fb, |c| {
            for j in at..at + fb {
                write_fault(c, CHILD, fa + j * PAGE);
            }
        });
        at += fb;
    }
    // Parent writes the same pages: now the last reference → take over, no copy.
    at = 0;
    for _ in 0..=plan.fault_samples {
        last.run(core, fb, |c| {
            for j in at..at + fb {
                write_fault(c, CLIENT, fa + j * PAGE);
            }
        });
        at += fb;
    }
    rows.push(copy.row("COW break after clone: write, frame shared (copy)", n));
    rows.push(last.row("COW break after clone: write, last reference (no copy)", n));
}

/// Faults with fault_around = 15 (each fault maps up to 16 pages).
fn bench_fault_around(env: &mut Env, plan: &Plan, rows: &mut Vec<Row>) {
    let (n, fa) = (env.n, env.fa);
    let fb = plan.around_batch;
    let core = &mut env.core;
    let mut next = 0u64;
    let mut s = Sampler::new();
    let before = core.mapped_pages(CLIENT);
    for _ in 0..=plan.around_samples {
        s.run(core, fb, |c| {
            for j in next..next + fb {
                let got = write_fault(c, CLIENT, fa + j * 16 * PAGE);
                debug_assert_eq!(got, 16);
            }
        });
        next += fb;
    }
    assert!(next * 16 <= env.fa_pages);
    let pages = (core.mapped_pages(CLIENT) - before) as f64 / next as f64;
    assert!((pages - 16.0).abs() < 1e-9, "fault-around mapped {pages} pages per fault");
    let mut r = s.row("fault with fault_around=15: per fault (16 pages)", n);
    r.target = false;
    let per_page = r.per("fault with fault_around=15: per page", pages, r.calls.clone() + " (per fault, /16 per page)");
    rows.push(r);
    rows.push(per_page);
}

/// Build the core state for `scenario`, measuring heap and metadata around it.
fn mem_scenario(name: &str, large_pages: bool, build: impl FnOnce(&mut Core)) -> MemRow {
    let h0 = Heap::now();
    let mut core = new_core(large_pages, 0);
    let h1 = Heap::now();
    build(&mut core);
    let h2 = Heap::now();
    let row = MemRow {
        scenario: name.to_string(),
        pages: core.mapped_pages(CLIENT),
        areas: areas(&core, CLIENT),
        metadata: core.metadata_bytes(),
        heap_total: h2.core - h0.core,
        heap_delta: h2.core - h1.core,
        model_delta: h2.model - h1.model,
    };
    drop(core);
    row
}

fn bench_memory(plan: &Plan) -> Vec<MemRow> {
    let p = plan.mem_pages;
    let sp = plan.mem_sparse_pages;
    let mut out = Vec::new();
    out.push(mem_scenario(&format!("dense: 1 area of {} pages, every page faulted (4K)", report::group(p)), false, |c| {
        let a = c.mmap(CLIENT, &anon(p * PAGE)).expect("mmap");
        for i in 0..p {
            write_fault(c, CLIENT, a + i * PAGE);
        }
    }));
    out.push(mem_scenario(&format!("dense, large pages on: 1 area of {} pages, populated", report::group(p)), true, |c| {
        let a = c.mmap(CLIENT, &anon(p * PAGE)).expect("mmap");
        c.populate(CLIENT, a, p * PAGE).expect("populate");
    }));
    out.push(mem_scenario(&format!("sparse: every 16th page of 1 area, {} pages faulted", report::group(p)), false, |c| {
        let a = c.mmap(CLIENT, &anon(p * 16 * PAGE)).expect("mmap");
        for i in 0..p {
            write_fault(c, CLIENT, a + i * 16 * PAGE);
        }
    }));
    out.push(mem_scenario(&format!("sparse: 1 page per 2 MiB (own leaf table), {} pages", report::group(sp)), false, |c| {
        let a = c.mmap(CLIENT, &anon(sp * 512 * PAGE)).expect("mmap");
        for i in 0..sp {
            write_fault(c, CLIENT, a + i * 512 * PAGE);
        }
    }));
    out.push(mem_scenario(&format!("{} 1-page areas (1-page holes), all faulted", report::group(p)), false, |c| {
        let lo = c.config().user_lo;
        for i in 0..p {
            let a = lo + 2 * i * PAGE;
            c.mmap(CLIENT, &fixed(a, PAGE)).expect("mmap");
            write_fault(c, CLIENT, a);
        }
    }));
    out
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = Plan::new(full);
    let t0 = Instant::now();
    let mut rows = Vec::new();
    for &n in &plan.sizes {
        let b = (n as u64 / 2).clamp(5, 200);
        let t = Instant::now();
        let fa_pages = (plan.fault_samples + 1) * plan.fault_batch + 1024;
        let mut env = build_env(n, 0, 2 * b + 1, fa_pages);
        let setup = t.elapsed();
        bench_area_ops(&mut env, &plan, &mut rows);
        bench_faults(&mut env, &plan, &mut rows);
        drop(env);
        let fa_pages = (plan.around_samples + 1) * plan.around_batch * 16 + 1024;
        let mut env = build_env(n, 15, 2 * b + 1, fa_pages);
        bench_fault_around(&mut env, &plan, &mut rows);
        drop(env);
        eprintln!("mem-bench: {n} areas done (setup {:.2} s, total {:.1} s)", setup.as_secs_f64(), t.elapsed().as_secs_f64());
    }
    let mem = bench_memory(&plan);
    let elapsed = t0.elapsed();

    println!();
    println!("## mem-core on the seL4 model (riscv64 Sv39), host time per operation{}", if plan.full { "" } else { " (smoke pass, tiny sizes)" });
    println!();
    println!("Batches of operations timed together (first batch = warm-up, discarded); median = median of per-batch ns/op,");
    println!("mean = total time / ops, robust mean = the same without batches slower than 3× the median (preempted by");
    println!("other processes; how many is in parentheses). The 1 µs verdict uses median and robust mean.");
    println!("Kernel calls are counted by the model (`*` = frame data access, not a seL4 invocation).");
    println!();
    report::print_time_table(&rows);
    println!();
    println!("### Summary: median / mean ns per op by number of areas");
    println!();
    report::print_summary(&rows, &plan.sizes);
    println!();
    println!("### Server metadata per mapped page");
    println!();
    println!("`metadata_bytes()` is the core's own estimate; \"counted\" is live heap measured by the counting allocator");
    println!("(allocations made outside model-kernel calls), total since before `MemCore::new` and growth while mapping.");
    println!();
    report::print_mem_table(&mem);
    println!();
    println!("total benchmark time: {:.1} s", elapsed.as_secs_f64());
}
