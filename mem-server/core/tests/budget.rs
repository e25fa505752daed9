//! The metadata budget is an upper bound of real heap use.
//!
//! A counting global allocator measures the bytes the core really holds on the heap
//! (allocations made inside kernel calls, i.e. by the host model, are not counted: the
//! kernel wrapper pauses counting), and random workloads of every kind of request check
//! after each step that the core's growth since it was built stays within the sum of what
//! it charges the spaces (`Stats::meta_bytes`) plus a small allowance for the server-wide
//! tables that grow with retypes. So a client can never make the server hold more heap
//! than its budget says, and the reservations (`Limits::meta_capacity`) really bound the
//! heap.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mem_core::mmap::MmapArgs;
use mem_core::{Access, Config, Cred, KResult, MemCore, Prot};
use mem_model::{ModelConfig, ModelKernel};
use mem_protocol::{PagerAnswer, Backing, Placement, ShmKey};

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PAUSED: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

// SAFETY: every method forwards to `System` unchanged; the thread-local counters have
// const initialisers and no destructors, so touching them never allocates or re-enters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size() as i64);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(-(l.size() as i64));
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count(l.size() as i64);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new as i64 - l.size() as i64);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn count(d: i64) {
    let _ = PAUSED.try_with(|p| {
        if !p.get() {
            let _ = LIVE.try_with(|l| l.set(l.get() + d));
        }
    });
}

fn live() -> i64 {
    LIVE.with(|l| l.get())
}

/// The model, with the heap counter paused during each call.
struct Quiet(ModelKernel);

fn quiet<T>(f: impl FnOnce() -> T) -> T {
    PAUSED.with(|p| p.set(true));
    let r = f();
    PAUSED.with(|p| p.set(false));
    r
}

impl mem_model::Around for Quiet {
    fn around<T>(&mut self, _: mem_model::Op, f: impl FnOnce(&mut ModelKernel) -> KResult<T>) -> KResult<T> {
        quiet(|| f(&mut self.0))
    }
}

mem_model::kernel_via_around!(Quiet);


const PAGE: u64 = 4096;
/// Server-wide bookkeeping that grows with retypes rather than with one client's state
/// (the batch table: one entry per `Untyped_Retype`), and object-slab slack.
const SERVER_WIDE: i64 = 96 * 1024;

fn run(seed: u64, steps: usize) {
    let mcfg = ModelConfig::riscv64(256 << 20);
    let mut cfg = Config::new(mcfg.geometry);
    cfg.user_hi = cfg.user_hi.min(mcfg.user_top);
    cfg.admins = vec![0];
    cfg.buffer = Some(mem_core::BufferConfig { vaddr: 0x7010_0000, pages: 4, view: Some((0x9000_0000, 0x20_0000)) });
    let uts = common::untypeds(&mcfg);
    let kernel = quiet(|| Quiet(ModelKernel::new(mcfg.clone())));
    let base = live();
    let mut core = MemCore::new(kernel, cfg, &uts, mcfg.first_free_slot(), mcfg.cnode_slots);
    let built = live() - base;
    let mut rng = common::Rng(seed | 1);
    let clients = [2u32, 3, 4];
    for &c in &clients[..2] {
        core.admin_create(c, Cred { uid: 1000 + c, gid: 1000 }, 1 << 14).unwrap();
    }
    let mut worst = 0i64;
    for step in 0..steps {
        let c = clients[rng.below(3) as usize];
        if !core.has_space(c) {
            if rng.below(4) == 0 {
                let parent = clients.iter().copied().find(|&p| core.has_space(p));
                let _ = match parent {
                    Some(p) if rng.below(2) == 0 => core.admin_clone(p, c, 1 << 14),
                    _ => core.admin_create(c, Cred { uid: 1000 + c, gid: 1000 }, 1 << 14),
                };
            }
            continue;
        }
        let at = 0x1000_0000 + rng.below(1 << 14) * PAGE;
        let span = if rng.below(8) == 0 { 1024 } else { 16 };
        let len = (1 + rng.below(span)) * PAGE;
        match rng.below(17) {
            0..=2 => {
                let place = [Placement::Fixed, Placement::FixedNoReplace, Placement::Anywhere][rng.below(3) as usize];
                let mut m = MmapArgs::anon(len, [Prot::RW, Prot::READ, Prot::NONE][rng.below(3) as usize]).at(at, place);
                m.shared = rng.below(4) == 0;
                let _ = core.mmap(c, &m);
            }
            3 | 4 => {
                let _ = core.munmap(c, at, len);
            }
            5 | 6 => {
                let _ = core.mprotect(c, at, len, [Prot::RW, Prot::READ, Prot::NONE][rng.below(3) as usize]);
            }
            7..=9 => {
                for i in 0..1 + rng.below(8) {
                    let _ = core.handle_fault(c, at + i * PAGE * (1 + rng.below(600)), Access::Write);
                }
            }
            10 => {
                let key = if rng.below(2) == 0 { ShmKey::Private } else { ShmKey::Key(rng.below(8) as u32) };
                if let Ok(id) = core.shmget(c, key, len, true, false, 0o666) {
                    let addr = if rng.below(2) == 0 { Some(at) } else { None };
                    if let Ok(a) = core.shmat(c, id, addr, false) {
                        let _ = core.handle_fault(c, a, Access::Write);
                    }
                    if rng.below(2) == 0 {
                        let _ = core.shm_remove(c, id);
                    }
                }
            }
            11 => {
                let _ = core.shmdt(c, at);
            }
            12 => {
                if let Ok(b) = core.backend_create(c, len, 0o644) {
                    let _ = core.backend_write(c, b, 0, &[7u8; 5000]);
                    let mut m = MmapArgs::anon(len, Prot::RW).at(at, Placement::Fixed);
                    m.backing = Backing::Backend { id: b, offset: 0 };
                    m.shared = rng.below(2) == 0;
                    if core.mmap(c, &m).is_ok() {
                        let _ = core.handle_fault(c, at, Access::Write);
                    }
                    if rng.below(2) == 0 {
                        let _ = core.backend_destroy(c, b);
                    }
                }
            }
            13 => {
                let _ = core.populate(c, at, len.min(64 * PAGE));
            }
            14 => {
                let _ = core.region(c, at, len, Prot::RW, &[1u8; 9000]);
            }
            15 => {
                // Pagers: faults on a pager-backed area wait (each a saved reply cap and a
                // record, charged to the faulting client) until the pager answers.
                if let Ok(p) = core.pager_create(c, 0o600) {
                    let mut m = MmapArgs::anon(len, Prot::RW).at(at, Placement::Fixed);
                    m.backing = Backing::Pager { id: p };
                    if core.mmap(c, &m).is_ok() {
                        for i in 0..1 + rng.below(8) {
                            core.kernel_mut().0.set_caller(Some(((step as u64) << 8) + i));
                            let _ = core.handle_fault(c, at + (i % (len / PAGE)) * PAGE, Access::Read);
                        }
                        core.kernel_mut().0.set_caller(Some(1));
                        if let Ok(Some(f)) = core.pager_wait(c, p) {
                            if rng.below(2) == 0 {
                                let _ = core.pager_reply(c, f.token, PagerAnswer::Zero, &[]);
                            }
                        }
                        core.kernel_mut().0.set_caller(None);
                    }
                }
            }
            _ => {
                if rng.below(6) == 0 {
                    let _ = core.admin_destroy(c);
                } else {
                    let _ = core.reset(c);
                }
            }
        }
        let charged: i64 = clients.iter().filter_map(|&c| core.stats(Some(c)).ok()).map(|s| s.meta_bytes as i64).sum();
        let used = live() - base - built;
        worst = worst.max(used - charged);
        assert!(
            used <= charged + SERVER_WIDE,
            "seed {seed} step {step}: the core holds {used} heap bytes beyond its start, the spaces are charged {charged}"
        );
        core.check_invariants().unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
    }
    eprintln!("seed {seed}: worst excess over the charges {worst} bytes (allowance {SERVER_WIDE})");
}

#[test]
fn metadata_charges_bound_real_heap_use() {
    for seed in [1, 2, 3, 0xfeed] {
        run(seed, 1500);
    }
}

/// The per-item costs against what one item really takes, at scale: many areas, many
/// sparse pages (one shadow table each), many objects.
#[test]
fn per_item_costs_cover_real_use_at_scale() {
    let mcfg = ModelConfig::riscv64(1 << 30);
    let mut cfg = Config::new(mcfg.geometry);
    cfg.user_hi = cfg.user_hi.min(mcfg.user_top);
    cfg.admins = vec![0];
    let uts = common::untypeds(&mcfg);
    let kernel = quiet(|| Quiet(ModelKernel::new(mcfg.clone())));
    let mut core = MemCore::new(kernel, cfg, &uts, mcfg.first_free_slot(), mcfg.cnode_slots);
    core.create_space(2, Cred { uid: 1, gid: 1 }, 1 << 20).unwrap();
    let measure = |core: &MemCore<Quiet>| (live(), core.stats(Some(2)).unwrap().meta_bytes as i64);
    let (l0, m0) = measure(&core);
    for i in 0..20_000u64 {
        core.mmap(2, &MmapArgs::anon(PAGE, Prot::NONE).at(0x1_0000_0000 + 2 * i * PAGE, Placement::FixedNoReplace)).unwrap();
    }
    let (l1, m1) = measure(&core);
    eprintln!("area: real {} B, charged {} B each", (l1 - l0) / 20_000, (m1 - m0) / 20_000);
    assert!(l1 - l0 <= m1 - m0);
    for i in 0..2_000u64 {
        core.mmap(2, &MmapArgs::anon(PAGE, Prot::RW).at(0x20_0000_0000 + i * (2 << 20), Placement::FixedNoReplace)).unwrap();
        core.handle_fault(2, 0x20_0000_0000 + i * (2 << 20), Access::Write).unwrap();
    }
    let (l2, m2) = measure(&core);
    eprintln!("sparse page (area + table): real {} B, charged {} B each", (l2 - l1) / 2_000, (m2 - m1) / 2_000);
    assert!(l2 - l1 <= m2 - m1);
    for i in 0..2_000u64 {
        let mut m = MmapArgs::anon(4 * PAGE, Prot::RW);
        m.shared = true;
        let a = core.mmap(2, &m).unwrap();
        core.handle_fault(2, a + (i % 4) * PAGE, Access::Write).unwrap();
    }
    let (l3, m3) = measure(&core);
    eprintln!("shared object (area + object + page): real {} B, charged {} B each", (l3 - l2) / 2_000, (m3 - m2) / 2_000);
    assert!(l3 - l2 <= m3 - m2);
    // Removing everything gives the heap back (up to the retained shadow tables, which
    // stay charged until the space goes).
    core.reset(2).unwrap();
    let (l4, m4) = measure(&core);
    eprintln!("after reset: real {} B over start, charged {} B over start", l4 - l0, m4 - m0);
    assert!(l4 - l0 <= m4 - m0 + SERVER_WIDE);
    core.destroy_space(2).unwrap();
}
