//! Behaviours that mutation testing of `res.rs`, `shm.rs`, `fault.rs` and `mprotect.rs`
//! found no test for: one focused test each, asserting values read back, errors, and
//! frames/slots/objects counted, so that a mutant of the code in question fails.
mod common;
use std::collections::BTreeSet;

use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Access, Errno, KernelError, ObjectType, Prot, Unresolved};
use mem_model::{ModelConfig, Op, UntypedSpec};
use mem_protocol::{Placement, ShmKey};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;
const QUOTA: u64 = 1 << 20;

fn small_pages(ram: u64, tweak: impl FnOnce(&mut mem_core::Config)) -> H {
    H::with(ModelConfig::riscv64(ram), |c| {
        c.large_pages = false;
        tweak(c);
    })
}

fn live_objects(h: &H) -> usize {
    let k = h.core.kernel();
    [ObjectType::SmallPage, ObjectType::LargePage, ObjectType::PageTable, ObjectType::VSpace]
        .iter()
        .map(|&t| k.live_objects(t))
        .sum()
}

/// res.rs `trim`: only untypeds with no object in use are given back; the others keep
/// their objects (data intact, children in the model), and the reset untyped serves again.
#[test]
fn trim_gives_back_idle_untypeds_only() {
    let mut h = small_pages(64 * MB, |_| {});
    h.client(1, 1000, 1000, QUOTA);
    let uts: Vec<UntypedSpec> = h.cfg.ram_untypeds().copied().collect();
    assert!(uts.len() > 4, "the preset splits RAM into many untypeds");
    let n = 160;
    let a = h.core.mmap(1, &MmapArgs::anon(n * PAGE, Prot::RW)).unwrap();
    for i in 0..n {
        h.write_u64(1, a + i * PAGE, 0x7000 + i).unwrap();
    }
    let vs = h.core.vspace_of(1).unwrap();
    let owner: Vec<usize> = (0..n)
        .map(|i| {
            let p = h.core.kernel().translate(vs, a + i * PAGE).unwrap().paddr;
            uts.iter().position(|u| p >= u.paddr && p < u.end()).unwrap()
        })
        .collect();
    // An untyped entirely filled with our data pages holds nothing else.
    let count = |u: usize| owner.iter().filter(|&&o| o == u).count() as u64;
    let idle = (0..uts.len()).find(|&u| count(u) == uts[u].bytes() / PAGE).expect("an untyped full of data pages");
    let idle_pages = count(idle);
    for i in (0..n).filter(|&i| owner[i as usize] == idle) {
        h.core.munmap(1, a + i * PAGE, PAGE).unwrap();
    }
    // Also free the page faulted right after them (the next batch, in an untyped that
    // keeps live pages): its pooled frame must survive the trim.
    let next = (0..n).rev().find(|&i| owner[i as usize] == idle).unwrap() + 1;
    assert_ne!(owner[next as usize], idle);
    h.core.munmap(1, a + next * PAGE, PAGE).unwrap();
    let kept: BTreeSet<usize> = owner.iter().copied().filter(|&o| o != idle).collect();
    assert!(kept.len() >= 2, "live data pages in several untypeds: {kept:?}");
    let (dirty, clean) = h.core.pool_frames();
    assert_eq!(dirty, idle_pages + 1, "the unmapped frames wait dirty");
    let free = h.core.stats(None).unwrap().frames_free;
    let live = live_objects(&h);

    let deleted = h.core.trim();
    assert_eq!(deleted as u64, idle_pages, "exactly the idle untyped's objects are deleted");
    assert_eq!(live - live_objects(&h), deleted, "the model destroyed what trim reports");
    assert_eq!(h.core.pool_frames(), (1, clean), "trim drops the idle untyped's frames from the pools only");
    assert_eq!(h.core.stats(None).unwrap().frames_free, free, "pooled frames became untyped memory");
    let k = h.core.kernel();
    assert_eq!(k.untyped_has_children(uts[idle].slot), Some(false), "idle untyped given back");
    for &u in &kept {
        assert_eq!(k.untyped_has_children(uts[u].slot), Some(true), "untyped {u} with live pages is kept");
    }
    for i in (0..n).filter(|&i| owner[i as usize] != idle && i != next) {
        assert_eq!(h.read_u64(1, a + i * PAGE), Ok(0x7000 + i), "page {i} survives trim");
    }
    h.check();
    check_frames(&h);
    // The pools are consistent after trim: map the holes again, fault them and much more.
    for i in (0..n).filter(|&i| owner[i as usize] == idle || i == next) {
        h.core.mmap(1, &MmapArgs::anon(PAGE, Prot::RW).at(a + i * PAGE, Placement::Fixed)).unwrap();
        assert_eq!(h.read_u64(1, a + i * PAGE), Ok(0));
        h.write_u64(1, a + i * PAGE, i).unwrap();
    }
    let b = h.core.mmap(1, &MmapArgs::anon(200 * PAGE, Prot::RW)).unwrap();
    for i in 0..200 {
        h.write_u64(1, b + i * PAGE, 0x9000 + i).unwrap();
    }
    for i in 0..200 {
        assert_eq!(h.read_u64(1, b + i * PAGE), Ok(0x9000 + i));
    }
    assert_eq!(h.core.kernel().stats().errors, 0, "no kernel call refused (no deleted slot reused)");
    h.check();
    check_frames(&h);
}

/// Can client `c` attach segment `id` (read-only or read-write)? Detaches again.
fn can_attach(h: &mut H, c: u32, id: u32, readonly: bool) -> bool {
    match h.core.shmat(c, id, None, readonly) {
        Ok(at) => {
            h.core.shmdt(c, at).unwrap();
            true
        }
        Err(e) => {
            assert_eq!(e, Errno::Acces);
            false
        }
    }
}

/// shm.rs `shm_set`: new uid, gid and mode decide who may attach (owner, group, other
/// bits) and who owns the segment; the creator stays an owner.
#[test]
fn shm_set_changes_who_may_attach() {
    let mut h = H::new(64 * MB);
    for (c, uid, gid) in [(1, 1000, 100), (2, 2000, 200), (3, 3000, 300), (4, 4000, 400)] {
        h.client(c, uid, gid, QUOTA);
    }
    let id = h.core.shmget(1, ShmKey::Key(77), PAGE, true, false, 0o600).unwrap();
    let attach = |h: &mut H| [2, 3, 4].map(|c| (can_attach(h, c, id, true), can_attach(h, c, id, false)));
    assert!(can_attach(&mut h, 1, id, false));
    assert_eq!(attach(&mut h), [(false, false); 3]);
    assert_eq!(h.core.shm_set(2, id, 2000, 300, 0o777), Err(Errno::Perm), "not an owner");
    // New owner uid 2000 (rw), group 300 (r), others nothing.
    h.core.shm_set(1, id, 2000, 300, 0o1640).unwrap();
    let st = h.core.shm_stat(1, id).unwrap();
    assert_eq!((st.uid, st.gid, st.cuid, st.cgid, st.mode), (2000, 300, 1000, 100, 0o640));
    assert_eq!(attach(&mut h), [(true, true), (true, false), (false, false)]);
    // Group bits only: the owners (new uid and creator) get nothing.
    h.core.shm_set(2, id, 2000, 300, 0o060).unwrap();
    assert_eq!(attach(&mut h), [(false, false), (true, true), (false, false)]);
    assert!(!can_attach(&mut h, 1, id, true), "creator uses the owner bits");
    // Other bits only.
    h.core.shm_set(2, id, 2000, 300, 0o006).unwrap();
    assert_eq!(attach(&mut h), [(false, false), (false, false), (true, true)]);
    // Hand the segment to uid 4000 read-only: client 2 is no longer an owner.
    h.core.shm_set(2, id, 4000, 400, 0o400).unwrap();
    assert_eq!(attach(&mut h), [(false, false), (false, false), (true, false)]);
    assert_eq!(h.core.shm_set(2, id, 2000, 200, 0o666), Err(Errno::Perm));
    assert_eq!(h.core.shm_remove(2, id), Err(Errno::Perm));
    assert_eq!(h.core.shm_set(1, id, 1000, 100, 0o600), Ok(()), "the creator stays an owner");
    assert_eq!(attach(&mut h), [(false, false); 3]);
}

/// shm.rs: the system-wide page count (SHMALL) goes down when a segment is destroyed (not
/// when it is only marked removed while attached).
#[test]
fn shm_total_pages_come_back_when_a_segment_dies() {
    // One user may fill the system limit here (`uid_share` 1): this is about the total.
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| {
        c.shm.total_pages = 8;
        c.shm.uid_share = 1;
    });
    h.client(1, 1000, 100, QUOTA);
    h.client(2, 2000, 200, QUOTA);
    let a = h.core.shmget(1, ShmKey::Key(1), 4 * PAGE + 1, true, false, 0o666).unwrap(); // 5 pages
    let b = h.core.shmget(2, ShmKey::Key(2), 3 * PAGE, true, false, 0o666).unwrap();
    assert_eq!(h.core.shmget(2, ShmKey::Key(3), 1, true, false, 0o666), Err(Errno::NoSpc), "8 of 8 pages used");
    assert_eq!(h.core.shmget(1, ShmKey::Private, 1, true, false, 0o600), Err(Errno::NoSpc));
    let at = h.core.shmat(2, a, None, false).unwrap();
    h.write(2, at, b"still here").unwrap();
    h.core.shm_remove(1, a).unwrap();
    assert_eq!(h.core.shmget(1, ShmKey::Key(3), 1, true, false, 0o666), Err(Errno::NoSpc), "attached: still counted");
    assert_eq!(h.read(2, at, 10).unwrap(), b"still here");
    h.core.shmdt(2, at).unwrap();
    assert_eq!(h.core.shm_stat(1, a), Err(Errno::Inval), "destroyed with its last attachment");
    let c = h.core.shmget(1, ShmKey::Key(3), 5 * PAGE, true, false, 0o666).unwrap();
    assert_eq!(h.core.shmget(1, ShmKey::Key(4), 1, true, false, 0o666), Err(Errno::NoSpc));
    h.core.shm_remove(2, b).unwrap();
    let d = h.core.shmget(2, ShmKey::Key(4), 3 * PAGE, true, false, 0o666).unwrap();
    assert_eq!(h.core.shmget(2, ShmKey::Key(5), 1, true, false, 0o666), Err(Errno::NoSpc));
    assert_ne!(c, d);
    assert_eq!(h.core.stats(None).unwrap().shm_segments, 2);
    h.check();
}

/// res.rs `retype`: untypeds are used up to their very end, then a fault fails cleanly.
#[test]
fn untyped_filled_exactly_to_its_end() {
    let mut m = ModelConfig::riscv64(64 * MB);
    let dev = *m.device_untypeds().next().unwrap();
    m.untypeds = vec![
        // One frame (the first batch of 16 gets just it): the object ends at the end.
        UntypedSpec { slot: 1, paddr: 0x8000_0000, size_bits: 12, device: false },
        // Exactly one VSpace (8 KiB).
        UntypedSpec { slot: 2, paddr: 0x8000_2000, size_bits: 13, device: false },
        // 64 pages: 16 page tables, then 3 batches of 16 frames.
        UntypedSpec { slot: 3, paddr: 0x8010_0000, size_bits: 18, device: false },
        UntypedSpec { slot: 4, ..dev },
    ];
    let mut h = H::with(m, |c| {
        c.large_pages = false;
        c.retype_batch = 16;
    });
    h.client(1, 1000, 1000, QUOTA);
    let a = h.core.mmap(1, &MmapArgs::anon(64 * PAGE, Prot::RW)).unwrap();
    let fit = 49;
    for i in 0..fit {
        h.write_u64(1, a + i * PAGE, 0x100 + i).unwrap_or_else(|e| panic!("page {i}: {e:?}"));
    }
    let charged = h.core.stats(Some(1)).unwrap().charged_pages;
    assert_eq!(h.write_u64(1, a + fit * PAGE, 1), Err(Unresolved::NoMemory), "no memory left");
    assert_eq!(h.read(1, a + (fit + 1) * PAGE, 1), Err(Unresolved::NoMemory));
    let k = h.core.kernel();
    for slot in 1..=3 {
        assert_eq!(k.untyped_free_bytes(slot), Some(0), "untyped {slot} used to its end");
    }
    assert_eq!(k.live_objects(ObjectType::SmallPage), fit as usize);
    assert_eq!(k.live_objects(ObjectType::VSpace), 1);
    assert_eq!(k.stats().errors, 0, "the core never asked for more than fits");
    assert_eq!(h.core.mapped_pages(1), fit);
    assert_eq!(h.core.stats(Some(1)).unwrap().charged_pages, charged, "failed faults charge nothing");
    assert_eq!(h.core.stats(Some(1)).unwrap().faults_unresolved, 2);
    assert_eq!(h.core.stats(None).unwrap().frames_free, 14, "only the 14 unused page tables");
    h.core.check_invariants().unwrap();
    h.check();
    for i in 0..fit {
        assert_eq!(h.read_u64(1, a + i * PAGE), Ok(0x100 + i));
    }
    // A freed frame is reused (zeroed) for the next fault.
    h.core.munmap(1, a, PAGE).unwrap();
    assert_eq!(h.read_u64(1, a + fit * PAGE), Ok(0));
    assert_eq!(h.read(1, a + (fit + 1) * PAGE, 1), Err(Unresolved::NoMemory));
    h.check();
}

/// `Stats::frames_free`, the dirty/clean pools and `maintain`: freed frames count as free
/// at once, idle zeroing cleans exactly the budget, and recycled frames read as zeros.
#[test]
fn frames_free_and_idle_zeroing() {
    // One frame per retype: the clean pool holds only what `maintain` zeroed.
    let mut h = small_pages(64 * MB, |c| c.retype_batch = 1);
    h.client(1, 1000, 1000, QUOTA);
    let a = h.core.mmap(1, &MmapArgs::anon(16 * PAGE, Prot::RW)).unwrap();
    let secret = vec![0xab; PAGE as usize];
    for i in 0..11 {
        h.write(1, a + i * PAGE, &secret).unwrap();
    }
    assert_eq!(h.core.pool_frames(), (0, 0));
    let s0 = h.core.stats(None).unwrap();
    h.core.munmap(1, a + PAGE, 10 * PAGE).unwrap(); // page 0 keeps the tables in use
    let s1 = h.core.stats(None).unwrap();
    assert_eq!(s1.frames_free, s0.frames_free + 10);
    assert_eq!(s1.frames_in_use, s0.frames_in_use - 10);
    assert_eq!(h.core.pool_frames(), (10, 0), "freed frames are dirty");
    let k0 = h.core.kernel().stats();
    assert_eq!(h.core.maintain(0), 0);
    assert_eq!(h.core.maintain(4), 4);
    assert_eq!(h.core.pool_frames(), (6, 4));
    assert_eq!(h.core.kernel().stats().frame_zero - k0.frame_zero, 4, "one FrameZero per cleaned frame");
    assert_eq!(h.core.stats(None).unwrap().frames_free, s1.frames_free, "zeroing keeps them free");
    // Map the hole again and fault it: 4 clean frames, then 6 dirty ones zeroed on the
    // way; no retype.
    h.core.mmap(1, &MmapArgs::anon(10 * PAGE, Prot::RW).at(a + PAGE, Placement::Fixed)).unwrap();
    let k1 = h.core.kernel().stats();
    for i in 1..11 {
        assert_eq!(h.read(1, a + i * PAGE, PAGE as usize).unwrap(), vec![0; PAGE as usize], "page {i} leaks old data");
    }
    let d = h.core.kernel().stats() - k1;
    assert_eq!((d.frame_zero, d.untyped_retype), (6, 0));
    assert_eq!(h.core.pool_frames(), (0, 0));
    assert_eq!(h.core.stats(None).unwrap().frames_free, s0.frames_free);
    assert_eq!(h.read(1, a, PAGE as usize).unwrap(), secret);
    // More budget than dirty frames: stops when the pool is empty.
    h.core.munmap(1, a + PAGE, 3 * PAGE).unwrap();
    assert_eq!(h.core.maintain(100), 3);
    assert_eq!(h.core.pool_frames(), (0, 3));
    h.check();
}

/// fault.rs `fill`: fault-around stops at the area end, at a present page, and at the
/// quota, and never touches what lies beyond.
#[test]
fn fault_around_stops_at_end_present_page_and_quota() {
    let mut h = small_pages(64 * MB, |c| c.fault_around = 7);
    h.client(1, 1000, 1000, QUOTA);
    let fixed = |len, prot, at| MmapArgs::anon(len, prot).at(at, Placement::Fixed);
    // Area end: a 6-page area followed directly by a read-only one.
    let a = h.core.mmap(1, &fixed(6 * PAGE, Prot::RW, 0x4000_0000)).unwrap();
    let b = h.core.mmap(1, &fixed(8 * PAGE, Prot::READ, a + 6 * PAGE)).unwrap();
    assert_eq!(h.core.handle_fault(1, a + 2 * PAGE, Access::Write), Ok(4), "pages 2..6 only");
    assert_eq!(h.core.mapped_pages(1), 4);
    assert!(h.accessible(1, a + 5 * PAGE, Access::Write));
    assert!(!h.accessible(1, b, Access::Read), "next area untouched");
    assert!(h.core.mappings(1).iter().all(|m| m.vaddr < b));
    // A present page: populate page 10 alone, then fault page 6.
    let c = h.core.mmap(1, &fixed(32 * PAGE, Prot::RW, 0x4100_0000)).unwrap();
    h.core.populate(1, c + 10 * PAGE, PAGE).unwrap();
    h.write_u64(1, c + 10 * PAGE, 10).unwrap();
    let frame10 = h.core.mappings(1).iter().find(|m| m.vaddr == c + 10 * PAGE).unwrap().frame;
    let (k0, pool0, pages0) = (h.core.kernel().stats(), h.core.pool_frames(), h.core.mapped_pages(1));
    assert_eq!(h.core.handle_fault(1, c + 6 * PAGE, Access::Read), Ok(4), "pages 6..10");
    let d = h.core.kernel().stats() - k0;
    assert_eq!((d.page_map, d.errors), (4, 0), "nothing tried on the present page");
    assert_eq!(h.core.pool_frames().0, pool0.0, "no frame taken and dropped");
    assert_eq!(h.core.mapped_pages(1), pages0 + 4);
    assert!(!h.accessible(1, c + 11 * PAGE, Access::Read), "nothing beyond the present page");
    assert_eq!(h.core.mappings(1).iter().find(|m| m.vaddr == c + 10 * PAGE).unwrap().frame, frame10);
    assert_eq!(h.read_u64(1, c + 10 * PAGE), Ok(10));
    // A full window: the faulting page and exactly `fault_around` more.
    assert_eq!(h.core.handle_fault(1, c + 20 * PAGE, Access::Read), Ok(8));
    assert!(h.accessible(1, c + 27 * PAGE, Access::Read) && !h.accessible(1, c + 28 * PAGE, Access::Read));
    h.check();
    // Quota: the VSpace (2) and two tables (2) leave room for 5 pages.
    h.client(2, 1000, 1000, 9);
    let e = h.core.mmap(2, &MmapArgs::anon(32 * PAGE, Prot::RW)).unwrap();
    assert_eq!(h.core.handle_fault(2, e + 3 * PAGE, Access::Write), Ok(5), "stops at the quota");
    let s = h.core.stats(Some(2)).unwrap();
    assert_eq!((s.charged_pages, s.quota_pages), (9, 9));
    assert_eq!(h.core.mapped_pages(2), 5);
    assert!(h.accessible(2, e + 7 * PAGE, Access::Write) && !h.accessible(2, e + 8 * PAGE, Access::Read));
    assert_eq!(h.read(2, e + 20 * PAGE, 1), Err(Unresolved::NoMemory));
    h.check();
}

/// mprotect.rs `remap_range`: a kernel refusal in the middle restores the pages already
/// changed (and, refused again, takes a page out of the hardware for the fault path).
#[test]
fn mprotect_refused_midway_restores_earlier_pages() {
    let mut h = small_pages(64 * MB, |_| {});
    h.client(1, 1000, 1000, QUOTA);
    let a = h.core.mmap(1, &MmapArgs::anon(8 * PAGE, Prot::RW)).unwrap();
    for i in 0..8 {
        h.write_u64(1, a + i * PAGE, 0x50 + i).unwrap();
    }
    let layout = h.core.layout(1).unwrap();
    h.core.kernel_mut().fail_nth_op(Op::PageMap, 3, KernelError::NotEnoughMemory);
    assert_eq!(h.core.mprotect(1, a, 8 * PAGE, Prot::READ), Err(Errno::NoMem));
    assert_eq!(h.core.layout(1).unwrap(), layout, "areas unchanged");
    for i in 0..8 {
        assert!(h.accessible(1, a + i * PAGE, Access::Write), "page {i} keeps its write access");
    }
    h.check();
    // The first undo refused too: page 0 leaves the hardware and the fault path restores it.
    h.core.kernel_mut().fail_nth_op(Op::PageMap, 3, KernelError::NotEnoughMemory);
    h.core.kernel_mut().fail_nth_op(Op::PageMap, 4, KernelError::NotEnoughMemory);
    assert_eq!(h.core.mprotect(1, a, 8 * PAGE, Prot::READ), Err(Errno::NoMem));
    assert!(!h.accessible(1, a, Access::Read));
    assert!((1..8).all(|i| h.accessible(1, a + i * PAGE, Access::Write)));
    h.check();
    let pages = h.core.mapped_pages(1);
    assert_eq!(h.core.handle_fault(1, a, Access::Write), Ok(0), "remapped, not refilled");
    assert_eq!(h.core.mapped_pages(1), pages);
    for i in 0..8 {
        assert_eq!(h.read_u64(1, a + i * PAGE), Ok(0x50 + i), "page {i} keeps its data");
    }
    h.write_u64(1, a, 1).unwrap();
    // From PROT_NONE: the undo takes the pages mapped so far out again.
    h.core.mprotect(1, a, 8 * PAGE, Prot::NONE).unwrap();
    h.core.kernel_mut().fail_nth_op(Op::PageMap, 2, KernelError::NotEnoughMemory);
    assert_eq!(h.core.mprotect(1, a, 8 * PAGE, Prot::READ), Err(Errno::NoMem));
    assert!((0..8).all(|i| !h.accessible(1, a + i * PAGE, Access::Read)));
    assert_eq!(h.read(1, a, 1), Err(Unresolved::Denied));
    h.check();
    h.core.mprotect(1, a, 8 * PAGE, Prot::READ).unwrap();
    assert_eq!(h.read_u64(1, a), Ok(1));
    assert_eq!(h.read_u64(1, a + 7 * PAGE), Ok(0x57));
}

/// mprotect.rs: merging pieces of a shared mapping back drops their object references, so
/// the object dies with the last unmap; a range past the user top changes what it can and
/// fails with ENOMEM.
#[test]
fn mprotect_merge_and_user_top() {
    let mut h = small_pages(64 * MB, |_| {});
    h.client(1, 1000, 1000, QUOTA);
    let mut sh = MmapArgs::anon(4 * PAGE, Prot::RW);
    sh.shared = true;
    let s = h.core.mmap(1, &sh).unwrap();
    for i in 0..4 {
        h.write_u64(1, s + i * PAGE, i).unwrap();
    }
    h.core.mprotect(1, s + PAGE, PAGE, Prot::READ).unwrap();
    assert_eq!(h.core.layout(1).unwrap().len(), 3);
    h.core.mprotect(1, s + PAGE, PAGE, Prot::RW).unwrap();
    assert_eq!(h.core.layout(1).unwrap(), vec![(s, s + 4 * PAGE, Prot::RW)], "merged back");
    assert_eq!(h.read_u64(1, s + 3 * PAGE), Ok(3));
    h.core.check_invariants().unwrap();
    let used = h.frames_in_use();
    h.core.munmap(1, s, 4 * PAGE).unwrap();
    assert_eq!(h.frames_in_use(), used - 4, "the shared object died with its only mapping");
    assert_eq!(h.core.pool_frames().0, 4, "its frames are back in the pool");
    h.check();
    // Past the user top: the part below it changes, the call reports ENOMEM.
    let hi = h.core.config().user_hi;
    let t = h.core.mmap(1, &MmapArgs::anon(2 * PAGE, Prot::RW).at(hi - 2 * PAGE, Placement::Fixed)).unwrap();
    assert_eq!(h.core.mprotect(1, t, 4 * PAGE, Prot::READ), Err(Errno::NoMem));
    assert_eq!(h.core.layout(1).unwrap(), vec![(t, hi, Prot::READ)]);
    h.check();
}

/// Zeroing off the request path: `DestroySpace` only queues the freed frames (dirty); frames
/// lent for zeroing count as free and pooled all the while, come back clean, and a later
/// fault takes one without zeroing it; `trim` leaves lent frames' untypeds alone; frames
/// given back unzeroed are dirty again.
#[test]
fn frames_lent_for_zeroing_off_the_request_path() {
    let mut h = small_pages(64 * MB, |c| c.retype_batch = 1);
    h.client(1, 1000, 1000, QUOTA);
    h.client(2, 1000, 1000, QUOTA);
    let a = h.core.mmap(1, &MmapArgs::anon(16 * PAGE, Prot::RW)).unwrap();
    for i in 0..16 {
        h.write(1, a + i * PAGE, &[0xcd; 64]).unwrap();
    }
    let k0 = h.core.kernel().stats();
    h.core.admin_destroy(1).unwrap();
    assert_eq!(h.core.kernel().stats().frame_zero, k0.frame_zero, "DestroySpace zeroes nothing");
    let (dirty, clean) = h.core.pool_frames();
    assert!(dirty >= 16, "the freed frames are queued dirty: {dirty}");
    let s0 = h.core.stats(None).unwrap();
    let mut lent = [0; 8];
    assert_eq!(h.core.lend_dirty(&mut lent), 8);
    let s1 = h.core.stats(None).unwrap();
    assert_eq!((s1.frames_free, s1.slots_free, s1.frames_in_use), (s0.frames_free, s0.slots_free, s0.frames_in_use), "lent frames count as free");
    assert_eq!(h.core.pool_frames(), (dirty - 8, clean));
    h.check();
    h.core.trim();
    for &f in &lent {
        assert!(h.core.kernel().cap_kind(f).is_some(), "trim left the lent frame {f} alone");
        mem_core::Kernel::frame_zero(h.core.kernel_mut(), f).unwrap();
    }
    h.core.zeroed(&lent[..6]);
    h.core.unlend(&lent[6..]);
    assert_eq!(h.core.pool_frames(), (dirty - 6, clean + 6));
    h.check();
    // Client 2's next faults take the clean frames: no zeroing on the fault path.
    let b = h.core.mmap(2, &MmapArgs::anon(6 * PAGE, Prot::RW)).unwrap();
    let k1 = h.core.kernel().stats();
    for i in 0..6 {
        assert_eq!(h.read_u64(2, b + i * PAGE).unwrap(), 0);
    }
    assert_eq!(h.core.kernel().stats().frame_zero, k1.frame_zero, "clean frames need no zeroing");
    h.check();
}
