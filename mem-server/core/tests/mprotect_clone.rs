//! mprotect (splits, remaps, max protection, holes) and clone (copy-on-write).
mod common;
use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Access, Errno, Prot, Unresolved};
use mem_protocol::{Placement, Share};

const MB: u64 = 1 << 20;

fn h() -> H {
    let mut h = H::with(mem_model::ModelConfig::riscv64(256 * MB), |c| c.large_pages = false);
    h.client(1, 1000, 1000, 1 << 20);
    h
}

#[test]
fn mprotect_splits_remaps_present_pages_and_never_prefaults() {
    let mut h = h();
    let a = h.core.mmap(1, &MmapArgs::anon(8 * 4096, Prot::RW)).unwrap();
    h.write_u64(1, a + 2 * 4096, 5).unwrap();
    h.write_u64(1, a + 3 * 4096, 6).unwrap();
    let pages = h.core.mapped_pages(1);
    h.core.mprotect(1, a + 2 * 4096, 4 * 4096, Prot::READ).unwrap();
    assert_eq!(h.core.mapped_pages(1), pages, "no pre-faulting");
    assert_eq!(
        h.core.layout(1).unwrap(),
        vec![(a, a + 2 * 4096, Prot::RW), (a + 2 * 4096, a + 6 * 4096, Prot::READ), (a + 6 * 4096, a + 8 * 4096, Prot::RW)]
    );
    assert!(h.accessible(1, a + 2 * 4096, Access::Read));
    assert!(!h.accessible(1, a + 2 * 4096, Access::Write), "present page remapped read-only");
    assert_eq!(h.write(1, a + 3 * 4096, &[1]), Err(Unresolved::Denied));
    assert_eq!(h.read_u64(1, a + 3 * 4096).unwrap(), 6, "contents kept");
    h.check();
    // Back to RW: areas merge again, writes succeed.
    h.core.mprotect(1, a + 2 * 4096, 4 * 4096, Prot::RW).unwrap();
    assert_eq!(h.core.layout(1).unwrap(), vec![(a, a + 8 * 4096, Prot::RW)]);
    h.write_u64(1, a + 3 * 4096, 7).unwrap();
    assert_eq!(h.read_u64(1, a + 3 * 4096).unwrap(), 7);
    // PROT_NONE keeps the frame; restoring access shows the same bytes.
    h.core.mprotect(1, a, 8 * 4096, Prot::NONE).unwrap();
    assert_eq!(h.read(1, a + 3 * 4096, 8), Err(Unresolved::Denied));
    h.check();
    h.core.mprotect(1, a, 8 * 4096, Prot::READ).unwrap();
    assert_eq!(h.read_u64(1, a + 3 * 4096).unwrap(), 7);
    h.check();
}

#[test]
fn mprotect_max_protection_holes_and_arguments() {
    let mut h = h();
    let mut args = MmapArgs::anon(4 * 4096, Prot::READ);
    args.max_prot = Prot::READ;
    let a = h.core.mmap(1, &args.at(0x3000_0000, Placement::Fixed)).unwrap();
    assert_eq!(h.core.mprotect(1, a, 4096, Prot::RW), Err(Errno::Acces));
    assert_eq!(h.core.mprotect(1, a, 4096, Prot::NONE), Ok(()));
    assert_eq!(h.core.mprotect(1, a + 1, 4096, Prot::READ), Err(Errno::Inval));
    assert_eq!(h.core.mprotect(1, a, 0, Prot::RW), Ok(()), "zero length is a no-op");
    assert_eq!(h.core.mprotect(1, 0x6000_0000, 4096, Prot::READ), Err(Errno::NoMem), "nothing mapped");
    // A hole: areas before it change (Linux), the call reports ENOMEM.
    let b = h.core.mmap(1, &MmapArgs::anon(2 * 4096, Prot::RW).at(0x3001_0000, Placement::Fixed)).unwrap();
    h.core.mmap(1, &MmapArgs::anon(2 * 4096, Prot::RW).at(0x3001_3000, Placement::Fixed)).unwrap();
    assert_eq!(h.core.mprotect(1, b, 5 * 4096, Prot::READ), Err(Errno::NoMem));
    let l = h.core.layout(1).unwrap();
    assert!(l.contains(&(b, b + 2 * 4096, Prot::READ)));
    assert!(l.contains(&(0x3001_3000, 0x3001_5000, Prot::RW)));
    h.check();
}

#[test]
fn clone_shares_pages_copy_on_write() {
    let mut h = h();
    let a = h.core.mmap(1, &MmapArgs::anon(16 * 4096, Prot::RW)).unwrap();
    for i in 0..16 {
        h.write_u64(1, a + i * 4096, 1000 + i).unwrap();
    }
    let before = h.frames_in_use();
    h.core.clone_space(1, 2, 1 << 20).unwrap();
    let after_clone = h.frames_in_use();
    // Only the child's vspace and page tables are new: no data frame was copied.
    assert!(after_clone - before < 8, "clone copied frames: {before} -> {after_clone}");
    for i in 0..16 {
        assert_eq!(h.read_u64(2, a + i * 4096).unwrap(), 1000 + i, "child sees parent data");
    }
    assert!(h.core.query(1, a).unwrap().cow && h.core.query(2, a).unwrap().cow);
    assert_eq!(h.core.query(1, a).unwrap().paddr, h.core.query(2, a).unwrap().paddr, "same frame");
    h.check();
    // Writes stay private, one frame copied per written page.
    h.write_u64(2, a, 7).unwrap();
    assert_eq!(h.frames_in_use(), after_clone + 1);
    h.write_u64(1, a + 4096, 8).unwrap();
    assert_eq!(h.frames_in_use(), after_clone + 2);
    assert_eq!(h.read_u64(1, a).unwrap(), 1000);
    assert_eq!(h.read_u64(2, a).unwrap(), 7);
    assert_eq!(h.read_u64(2, a + 4096).unwrap(), 1001);
    assert_eq!(h.read_u64(1, a + 4096).unwrap(), 8);
    // The parent's page 0 is now its last reference: the write takes it over, no copy.
    h.write_u64(1, a, 9).unwrap();
    assert_eq!(h.frames_in_use(), after_clone + 2);
    assert!(!h.core.query(1, a).unwrap().cow);
    h.check();
    // Destroying the child drops its references; the parent keeps its data.
    h.core.destroy_space(2).unwrap();
    assert_eq!(h.read_u64(1, a + 2 * 4096).unwrap(), 1002);
    h.write_u64(1, a + 2 * 4096, 3).unwrap();
    assert_eq!(h.frames_in_use(), before, "back to the parent's own frames");
    h.check();
}

#[test]
fn clone_keeps_shared_areas_shared_and_lazy_pages_lazy() {
    let mut h = h();
    let mut s = MmapArgs::anon(4 * 4096, Prot::RW);
    s.shared = true;
    let sa = h.core.mmap(1, &s).unwrap();
    let lazy = h.core.mmap(1, &MmapArgs::anon(4 * 4096, Prot::RW)).unwrap();
    h.write_u64(1, sa, 11).unwrap();
    h.core.clone_space(1, 2, 1 << 20).unwrap();
    h.write_u64(2, sa, 22).unwrap();
    assert_eq!(h.read_u64(1, sa).unwrap(), 22, "shared mapping stays shared");
    h.write_u64(2, sa + 4096, 33).unwrap();
    assert_eq!(h.read_u64(1, sa + 4096).unwrap(), 33, "pages first touched after the clone are shared too");
    assert_eq!(h.read_u64(2, lazy).unwrap(), 0);
    h.write_u64(1, lazy, 5).unwrap();
    assert_eq!(h.read_u64(2, lazy).unwrap(), 0, "lazy private pages are independent");
    assert_eq!(h.core.clone_space(1, 2, 10), Err(Errno::Exist));
    assert_eq!(h.core.clone_space(9, 3, 10), Err(Errno::Srch));
    h.check();
    let _ = Share::Private;
}

#[test]
fn clone_over_child_quota_fails_cleanly() {
    let mut h = h();
    let a = h.core.mmap(1, &MmapArgs::anon(64 * 4096, Prot::RW)).unwrap();
    for i in 0..64 {
        h.write_u64(1, a + i * 4096, i).unwrap();
    }
    let before = h.core.stats(None).unwrap();
    assert_eq!(h.core.clone_space(1, 2, 16), Err(Errno::NoMem));
    assert!(!h.core.has_space(2));
    let after = h.core.stats(None).unwrap();
    assert_eq!(before.frames_in_use, after.frames_in_use);
    assert_eq!(before.slots_in_use, after.slots_in_use);
    for i in 0..64 {
        assert_eq!(h.read_u64(1, a + i * 4096).unwrap(), i);
    }
    h.write_u64(1, a, 99).unwrap();
    h.check();
}

/// mprotect of exactly one whole area (the case served with one search of the area map):
/// guards on both sides keep it apart, a neighbour of equal protection merges, the checks
/// come in the general order, and a refused remap leaves rights and areas as they were.
#[test]
fn mprotect_of_one_whole_area() {
    let mut h = h();
    let g = h.core.mmap(1, &MmapArgs::anon(3 * 4096, Prot::NONE)).unwrap();
    let p = g + 4096;
    h.core.mprotect(1, p, 4096, Prot::RW).unwrap();
    h.write_u64(1, p, 41).unwrap();
    let areas = |h: &H| h.core.layout(1).unwrap();
    let isolated = vec![(g, p, Prot::NONE), (p, p + 4096, Prot::RW), (p + 4096, p + 2 * 4096, Prot::NONE)];
    assert_eq!(areas(&h), isolated);
    for round in 0..4 {
        let prot = if round % 2 == 0 { Prot::READ } else { Prot::RW };
        h.core.mprotect(1, p, 4096, prot).unwrap();
        let mut want = isolated.clone();
        want[1].2 = prot;
        assert_eq!(areas(&h), want, "no split, no merge");
        assert_eq!(h.accessible(1, p, Access::Write), prot == Prot::RW, "the present page remapped");
        assert_eq!(h.read_u64(1, p).unwrap(), 41);
        h.check();
    }
    // The same protection again: nothing to do.
    h.core.mprotect(1, p, 4096, Prot::RW).unwrap();
    assert_eq!(areas(&h), isolated);
    // A refused remap: ENOMEM, the page keeps its rights, the area its protection.
    h.core.kernel_mut().fail_nth_op(mem_model::Op::PageMap, 0, mem_core::KernelError::NotEnoughMemory);
    assert_eq!(h.core.mprotect(1, p, 4096, Prot::READ), Err(Errno::NoMem));
    assert_eq!(areas(&h), isolated);
    assert!(h.accessible(1, p, Access::Write));
    h.check();
    // More than the maximum protection: EACCES, nothing changed.
    let r = h.core.mmap(1, &MmapArgs { max_prot: Prot::READ, ..MmapArgs::anon(4096, Prot::READ) }).unwrap();
    assert_eq!(h.core.mprotect(1, r, 4096, Prot::RW), Err(Errno::Acces));
    // The guards becoming RW: the whole range merges into one area.
    h.core.mprotect(1, g, 4096, Prot::RW).unwrap();
    assert_eq!(areas(&h)[..2], [(g, p + 4096, Prot::RW), (p + 4096, p + 2 * 4096, Prot::NONE)]);
    h.core.mprotect(1, p + 4096, 4096, Prot::RW).unwrap();
    assert_eq!(areas(&h)[0], (g, g + 3 * 4096, Prot::RW), "merged with the area before it");
    assert_eq!(h.read_u64(1, p).unwrap(), 41);
    h.check();
}
