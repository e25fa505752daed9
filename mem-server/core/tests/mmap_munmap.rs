//! mmap placement, munmap splitting, fault basics.
mod common;
use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Errno, Prot, Unresolved};
use mem_protocol::{Backing, Placement};

const MB: u64 = 1 << 20;

fn h() -> H {
    let mut h = H::with(mem_model::ModelConfig::riscv64(256 * MB), |c| c.large_pages = false);
    h.client(1, 1000, 1000, 1 << 20);
    h
}

#[test]
fn lazy_area_faults_in_zeroed_pages_and_reads_back() {
    let mut h = h();
    let a = h.core.mmap(1, &MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
    assert_eq!(h.core.mapped_pages(1), 0, "mmap is lazy");
    for i in 0..64u64 {
        assert_eq!(h.read_u64(1, a + i * 4096).unwrap(), 0, "fresh page reads zero");
        h.write_u64(1, a + i * 4096 + 8, i * 7 + 1).unwrap();
    }
    for i in 0..64u64 {
        assert_eq!(h.read_u64(1, a + i * 4096 + 8).unwrap(), i * 7 + 1);
    }
    assert_eq!(h.core.mapped_pages(1), 64);
    assert_eq!(h.core.stats(Some(1)).unwrap().faults_served, 64, "one fault per page");
    h.check();
}

#[test]
fn length_rules() {
    let mut h = h();
    assert_eq!(h.core.mmap(1, &MmapArgs::anon(0, Prot::RW)), Err(Errno::Inval));
    assert_eq!(h.core.mmap(1, &MmapArgs::anon(u64::MAX, Prot::RW)), Err(Errno::NoMem));
    assert_eq!(h.core.mmap(1, &MmapArgs::anon(1 << 62, Prot::RW)), Err(Errno::NoMem));
    let a = h.core.mmap(1, &MmapArgs::anon(1, Prot::RW)).unwrap();
    assert_eq!(h.core.layout(1).unwrap(), vec![(a, a + 4096, Prot::RW)], "length rounded up to a page");
    let fixed = MmapArgs::anon(4096, Prot::RW).at(0x10_0001, Placement::Fixed);
    assert_eq!(h.core.mmap(1, &fixed), Err(Errno::Inval), "unaligned fixed address");
    let low = MmapArgs::anon(4096, Prot::RW).at(0x1000, Placement::Fixed);
    assert_eq!(h.core.mmap(1, &low), Err(Errno::Perm), "below mmap_min_addr");
    let top = h.core.config().user_hi;
    let high = MmapArgs::anon(8192, Prot::RW).at(top - 4096, Placement::Fixed);
    assert_eq!(h.core.mmap(1, &high), Err(Errno::NoMem), "past the user range");
    let mut over = MmapArgs::anon(4096, Prot::RWX);
    over.max_prot = Prot::RW;
    assert_eq!(h.core.mmap(1, &over), Err(Errno::Acces), "prot above max_prot");
    assert_eq!(h.core.mmap(9, &MmapArgs::anon(4096, Prot::RW)), Err(Errno::Srch));
    h.check();
}

#[test]
fn first_fit_hint_and_fixed_no_replace() {
    let mut h = h();
    let lo = h.core.config().user_lo;
    let a = h.core.mmap(1, &MmapArgs::anon(4096, Prot::RW)).unwrap();
    assert_eq!(a, lo, "first fit starts at the bottom");
    let b = h.core.mmap(1, &MmapArgs::anon(8192, Prot::RW)).unwrap();
    assert_eq!(b, lo + 4096);
    h.core.munmap(1, a, 4096).unwrap();
    assert_eq!(h.core.mmap(1, &MmapArgs::anon(4096, Prot::READ)).unwrap(), lo, "reuses the first hole");
    assert_eq!(h.core.mmap(1, &MmapArgs::anon(8192, Prot::READ)).unwrap(), lo + 3 * 4096, "hole too small: next fit");
    // Hint: used when free, else first fit.
    let hint = MmapArgs::anon(4096, Prot::RW).at(0x4000_0000, Placement::Hint);
    assert_eq!(h.core.mmap(1, &hint).unwrap(), 0x4000_0000);
    assert_eq!(h.core.mmap(1, &hint).unwrap(), lo + 5 * 4096, "occupied hint falls back to first fit");
    let odd = MmapArgs::anon(4096, Prot::RW).at(0x5000_0001, Placement::Hint);
    assert_eq!(h.core.mmap(1, &odd).unwrap(), 0x5000_0000, "hint rounded down to a page, as Linux");
    // Fixed-no-replace: any overlap, even partial, is EEXIST and changes nothing.
    let before = h.core.layout(1).unwrap();
    let nr = MmapArgs::anon(3 * 4096, Prot::RW).at(0x4000_0000 - 4096, Placement::FixedNoReplace);
    assert_eq!(h.core.mmap(1, &nr), Err(Errno::Exist));
    let nr2 = MmapArgs::anon(4096, Prot::RW).at(0x4000_0000, Placement::FixedNoReplace);
    assert_eq!(h.core.mmap(1, &nr2), Err(Errno::Exist));
    assert_eq!(h.core.layout(1).unwrap(), before);
    let ok = MmapArgs::anon(4096, Prot::RW).at(0x4000_1000, Placement::FixedNoReplace);
    assert_eq!(h.core.mmap(1, &ok).unwrap(), 0x4000_1000);
    h.check();
}

#[test]
fn fixed_replaces_overlapped_areas_and_frees_their_frames() {
    let mut h = h();
    let base = 0x2000_0000;
    let a = MmapArgs::anon(8 * 4096, Prot::RW).at(base, Placement::Fixed);
    h.core.mmap(1, &a).unwrap();
    for i in 0..8 {
        h.write_u64(1, base + i * 4096, 0xAA00 + i).unwrap();
    }
    let used = h.frames_in_use();
    // Replace pages 2..6 with a read-only area.
    let r = MmapArgs::anon(4 * 4096, Prot::READ).at(base + 2 * 4096, Placement::Fixed);
    assert_eq!(h.core.mmap(1, &r).unwrap(), base + 2 * 4096);
    assert_eq!(h.frames_in_use(), used - 4, "replaced pages freed");
    assert_eq!(
        h.core.layout(1).unwrap(),
        vec![(base, base + 2 * 4096, Prot::RW), (base + 2 * 4096, base + 6 * 4096, Prot::READ), (base + 6 * 4096, base + 8 * 4096, Prot::RW)]
    );
    assert_eq!(h.read_u64(1, base + 4096).unwrap(), 0xAA01);
    assert_eq!(h.read_u64(1, base + 2 * 4096).unwrap(), 0, "new area is fresh");
    assert_eq!(h.read_u64(1, base + 7 * 4096).unwrap(), 0xAA07);
    // A fixed mmap that fails validation leaves the old mapping intact.
    let mut bad = MmapArgs::anon(4 * 4096, Prot::RW).at(base, Placement::Fixed);
    bad.backing = Backing::Backend { id: 77, offset: 0 };
    assert_eq!(h.core.mmap(1, &bad), Err(Errno::NoEnt));
    assert_eq!(h.read_u64(1, base).unwrap(), 0xAA00);
    assert_eq!(h.core.layout(1).unwrap().len(), 3);
    h.check();
}

#[test]
fn munmap_middle_splits_in_three_and_hole_is_unresolved() {
    let mut h = h();
    let a = h.core.mmap(1, &MmapArgs::anon(16 * 4096, Prot::RW)).unwrap();
    for i in 0..16 {
        h.write_u64(1, a + i * 4096, i + 100).unwrap();
    }
    let used = h.frames_in_use();
    h.core.munmap(1, a + 5 * 4096, 3 * 4096).unwrap();
    assert_eq!(h.frames_in_use(), used - 3);
    assert_eq!(h.core.layout(1).unwrap(), vec![(a, a + 5 * 4096, Prot::RW), (a + 8 * 4096, a + 16 * 4096, Prot::RW)]);
    assert_eq!(h.read(1, a + 6 * 4096, 1), Err(Unresolved::NoArea));
    assert_eq!(h.read_u64(1, a + 4 * 4096).unwrap(), 104);
    assert_eq!(h.read_u64(1, a + 8 * 4096).unwrap(), 108);
    // Spanning several areas and holes at once.
    h.core.munmap(1, a + 4 * 4096, 6 * 4096).unwrap();
    assert_eq!(h.core.layout(1).unwrap(), vec![(a, a + 4 * 4096, Prot::RW), (a + 10 * 4096, a + 16 * 4096, Prot::RW)]);
    // Unmapping nothing is fine; bad arguments are EINVAL.
    h.core.munmap(1, 0x7000_0000, 4096).unwrap();
    assert_eq!(h.core.munmap(1, a + 1, 4096), Err(Errno::Inval));
    assert_eq!(h.core.munmap(1, a, 0), Err(Errno::Inval));
    assert_eq!(h.core.munmap(1, u64::MAX - 4095, 4096), Err(Errno::Inval));
    h.core.munmap(1, a, 16 * 4096).unwrap();
    assert_eq!(h.frames_in_use(), 2 + h.core.mappings(1).len() as u64 + tables(&h), "all pages gone");
    assert!(h.core.layout(1).unwrap().is_empty());
    h.check();
}

fn tables(h: &H) -> u64 {
    // frames_in_use = vspace (2) + page tables; recompute tables from the invariant checker.
    let s = h.core.stats(None).unwrap();
    s.frames_in_use - 2 - h.core.mappings(1).len() as u64
}

#[test]
fn faults_outside_areas_or_rights_are_unresolved() {
    let mut h = h();
    let a = h.core.mmap(1, &MmapArgs::anon(4096, Prot::READ)).unwrap();
    assert_eq!(h.read_u64(1, a).unwrap(), 0);
    assert_eq!(h.write(1, a, &[1]), Err(Unresolved::Denied));
    assert_eq!(h.read(1, 0x7777_0000, 1), Err(Unresolved::NoArea));
    let n = h.core.mmap(1, &MmapArgs::anon(4096, Prot::NONE)).unwrap();
    assert_eq!(h.read(1, n, 1), Err(Unresolved::Denied));
    assert_eq!(h.core.handle_fault(5, a, mem_core::Access::Read), Err(Unresolved::NoSpace));
    assert_eq!(h.core.stats(Some(1)).unwrap().faults_unresolved, 3);
    h.check();
}

#[test]
fn fault_around_maps_neighbours() {
    let mut h = H::with(mem_model::ModelConfig::riscv64(64 * MB), |c| {
        c.large_pages = false;
        c.fault_around = 7;
    });
    h.client(1, 0, 0, 1 << 20);
    let a = h.core.mmap(1, &MmapArgs::anon(32 * 4096, Prot::RW)).unwrap();
    h.write_u64(1, a, 1).unwrap();
    assert_eq!(h.core.mapped_pages(1), 8, "faulting page + 7 neighbours");
    assert!(h.accessible(1, a + 7 * 4096, mem_core::Access::Write));
    assert!(!h.accessible(1, a + 8 * 4096, mem_core::Access::Read));
    // Near the end of the area, fault-around stops at the area end.
    h.write_u64(1, a + 30 * 4096, 1).unwrap();
    assert_eq!(h.core.mapped_pages(1), 10);
    h.check();
}

/// Sequential fault-around: a first touch maps one page; a touch right after a mapped page
/// maps `fault_around` more; a touch elsewhere (not after a mapped page) one page; near the
/// quota (less than twice the window free) every page is mapped on its own touch, and the
/// quota is reached exactly as without fault-around.
#[test]
fn sequential_fault_around_maps_ahead_only_in_order_and_never_near_the_quota() {
    let mut h = H::with(mem_model::ModelConfig::riscv64(64 * MB), |c| {
        c.large_pages = false;
        c.fault_around = 7;
        c.fault_around_sequential = true;
    });
    h.client(1, 0, 0, 1 << 20);
    let a = h.core.mmap(1, &MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
    assert_eq!(h.core.handle_fault(1, a, mem_core::Access::Write), Ok(1), "first page alone");
    assert_eq!(h.core.handle_fault(1, a + 4096, mem_core::Access::Write), Ok(8), "in order: page + 7");
    assert!(h.accessible(1, a + 8 * 4096, mem_core::Access::Write));
    assert!(!h.accessible(1, a + 9 * 4096, mem_core::Access::Read));
    assert_eq!(h.core.handle_fault(1, a + 20 * 4096, mem_core::Access::Read), Ok(1), "a jump: one page");
    assert_eq!(h.core.handle_fault(1, a + 21 * 4096, mem_core::Access::Read), Ok(8));
    // At the area end it stops there.
    assert_eq!(h.core.handle_fault(1, a + 62 * 4096, mem_core::Access::Read), Ok(1));
    assert_eq!(h.core.handle_fault(1, a + 63 * 4096, mem_core::Access::Read), Ok(1));
    assert_eq!(h.core.mapped_pages(1), 1 + 8 + 1 + 8 + 2);
    h.check();
    // Quota 2 (VSpace) + 2 (tables) + 20 pages: in-order touches get windows while at
    // least 14 pages stay free, then one page per touch, and all 20 pages can be touched.
    h.client(2, 0, 0, 24);
    let b = h.core.mmap(2, &MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
    let mut mapped = Vec::new();
    for i in 0..20 {
        if !h.accessible(2, b + i * 4096, mem_core::Access::Write) {
            mapped.push(h.core.handle_fault(2, b + i * 4096, mem_core::Access::Write).unwrap());
        }
    }
    // 5 charged after the first touch (VSpace, two tables, the page): one window fits.
    assert_eq!(mapped, [vec![1, 8], vec![1; 11]].concat());
    let s = h.core.stats(Some(2)).unwrap();
    assert_eq!(s.charged_pages, 24, "every page of the quota used, no more");
    assert_eq!(h.core.mapped_pages(2), 20);
    assert_eq!(h.read(2, b + 20 * 4096, 1), Err(mem_core::Unresolved::NoMemory));
    h.check();
}

/// A fresh mapping placed right after a populated one (merged into one area with it, as a
/// heap's large block lands after its segments) gets one page for its first touch, and
/// the window only when the touches go on in order.
#[test]
fn fault_around_is_not_taken_for_a_fresh_mapping_next_to_populated_pages() {
    let mut h = H::with(mem_model::ModelConfig::riscv64(64 * MB), |c| {
        c.large_pages = false;
        c.fault_around = 15;
        c.fault_around_sequential = true;
    });
    h.client(1, 0, 0, 1 << 20);
    let base = 0x10_0000_0000;
    let seg = MmapArgs::anon(16 * 4096, Prot::RW).at(base, Placement::FixedNoReplace);
    h.core.mmap(1, &seg).unwrap();
    h.core.populate(1, base, 16 * 4096).unwrap();
    let big = MmapArgs::anon(76 * 4096, Prot::RW).at(base + 16 * 4096, Placement::FixedNoReplace);
    h.core.mmap(1, &big).unwrap();
    assert_eq!(h.core.layout(1).unwrap().len(), 1, "merged into one area");
    assert!(h.accessible(1, base + 15 * 4096, mem_core::Access::Write));
    assert_eq!(h.core.handle_fault(1, base + 16 * 4096, mem_core::Access::Write), Ok(1), "the header page alone");
    assert_eq!(h.core.mapped_pages(1), 17);
    assert_eq!(h.core.handle_fault(1, base + 17 * 4096, mem_core::Access::Write), Ok(16), "in order: the window");
    // Unmapping and mapping again right there: a fresh mapping again.
    h.core.munmap(1, base + 16 * 4096, 76 * 4096).unwrap();
    h.core.mmap(1, &big).unwrap();
    assert_eq!(h.core.handle_fault(1, base + 16 * 4096, mem_core::Access::Write), Ok(1));
    assert_eq!(h.core.mapped_pages(1), 17);
    // Populated pages before a lazy page of an older mapping: sequential (as before).
    assert_eq!(h.core.handle_fault(1, base + 17 * 4096, mem_core::Access::Write), Ok(16));
    h.check();
}

#[test]
fn common_fault_costs_one_kernel_invocation() {
    let mut h = h();
    let a = h.core.mmap(1, &MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
    h.write_u64(1, a, 1).unwrap(); // first fault creates tables and fills the pool
    h.core.kernel_mut().reset_stats();
    h.core.handle_fault(1, a + 4096, mem_core::Access::Write).unwrap();
    let s = h.core.kernel().stats();
    assert_eq!(s.invocations(), 1, "fault path = one Page_Map: {s:?}");
    assert_eq!(s.page_map, 1);
}

/// At the area limit, munmap of one end of an area needs no new area and works (as Linux
/// needs no split there), in the middle it would split and fails with ENOMEM; either way
/// the pages and data outside the range stay.
#[test]
fn munmap_of_an_area_edge_works_at_the_area_limit() {
    let mut h = H::with(mem_model::ModelConfig::riscv64(256 * MB), |c| {
        c.large_pages = false;
        c.limits.max_map_count = 4;
    });
    h.client(1, 1000, 1000, 1 << 20);
    let base = 0x10_0000_0000;
    let at = |i: u64, prot| MmapArgs::anon(4 * 4096, prot).at(base + i * 4 * 4096, Placement::FixedNoReplace);
    for (i, prot) in [Prot::RW, Prot::READ, Prot::RW, Prot::READ].into_iter().enumerate() {
        h.core.mmap(1, &at(i as u64, prot)).unwrap();
    }
    assert_eq!(h.core.layout(1).unwrap().len(), 4);
    for p in 0..4 {
        h.write_u64(1, base + p * 4096, p + 1).unwrap();
    }
    assert_eq!(h.core.munmap(1, base + 4096, 4096), Err(Errno::NoMem), "a middle piece needs a fifth area");
    h.core.munmap(1, base + 3 * 4096, 4096).unwrap();
    h.core.munmap(1, base, 4096).unwrap();
    assert_eq!(h.core.layout(1).unwrap()[0], (base + 4096, base + 3 * 4096, Prot::RW));
    assert_eq!(h.read_u64(1, base), Err(Unresolved::NoArea));
    assert_eq!(h.read_u64(1, base + 3 * 4096), Err(Unresolved::NoArea));
    assert_eq!((h.read_u64(1, base + 4096).unwrap(), h.read_u64(1, base + 2 * 4096).unwrap()), (2, 3));
    // The freed edges are free space again: mapped over exactly, then merged back.
    h.core.mmap(1, &MmapArgs::anon(4096, Prot::RW).at(base, Placement::FixedNoReplace)).unwrap();
    h.core.mmap(1, &MmapArgs::anon(4096, Prot::RW).at(base + 3 * 4096, Placement::FixedNoReplace)).unwrap();
    assert_eq!(h.core.layout(1).unwrap()[0], (base, base + 4 * 4096, Prot::RW));
    h.check();
}
