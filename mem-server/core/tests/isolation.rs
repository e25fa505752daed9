//! Isolation, one test per attack class of the isolation issue: the attack sequence, the
//! bounded charge, ENOMEM (or the Linux errno) at the budget, other clients unaffected,
//! and after teardown exact reclaim, including creating a full-size client and retyping a
//! full batch again.
mod common;
use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{BufferConfig, Config, Cred, Errno, MemCore, Prot, Unresolved};
use mem_model::{ModelConfig, ModelKernel};
use mem_protocol::{Backing, MsyncFlags, Placement, Reply, Request, ShmKey, Target, Value};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;
const IPC: u64 = 0x7000_0000;
const BUF: u64 = 0x7010_0000;

/// A harness whose core leaves the top 16 CNode slots alone: slot `OUTSIDE` plays the
/// administrator's copy of an exported cap (a cap the server derived and gave away).
fn harness_with_outside(tweak: impl FnOnce(&mut Config)) -> (H, u32) {
    let mcfg = ModelConfig::riscv64(128 * MB);
    let mut cfg = Config::new(mcfg.geometry);
    cfg.user_hi = cfg.user_hi.min(mcfg.user_top);
    cfg.admins = vec![ADMIN];
    cfg.buffer = Some(BufferConfig { vaddr: BUF, pages: 4, view: Some((0x9000_0000, 0x20_0000)) });
    tweak(&mut cfg);
    let first = mcfg.first_free_slot();
    let top = mcfg.cnode_slots - 16;
    let core = MemCore::new(ModelKernel::new(mcfg.clone()), cfg, &untypeds(&mcfg), first, top);
    (H { core, cfg: mcfg }, top + 1)
}

fn user(uid: u32) -> Cred {
    Cred { uid, gid: uid }
}

/// Boot figures to compare with after teardown.
fn boot_figures(h: &H) -> (u64, u64, u32) {
    let s = h.core.stats(None).unwrap();
    (s.frames_in_use, s.slots_in_use, h.core.slot_capacity().1)
}

/// Everything is back: frames and slots as at boot, a full-size client can be created
/// and fault a full retype batch.
fn assert_capacity_back(h: &mut H, boot: (u64, u64, u32), label: &str) {
    h.core.check_invariants().unwrap_or_else(|e| panic!("{label}: {e}"));
    let s = h.core.stats(None).unwrap();
    assert_eq!((s.frames_in_use, s.slots_in_use), (boot.0, boot.1), "{label}: counters back to boot values");
    assert_eq!(s.pinned, 0, "{label}");
    h.core.trim();
    assert_eq!(h.core.slot_capacity().1, boot.2, "{label}: the longest run of free slots is back");
    h.core.admin_create(90, user(1), 1 << 16).unwrap_or_else(|e| panic!("{label}: full-size client: {e:?}"));
    let a = h.core.mmap(90, &MmapArgs::anon(64 * PAGE, Prot::RW)).unwrap();
    for i in 0..64 {
        h.write_u64(90, a + i * PAGE, i).unwrap();
    }
    h.core.admin_destroy(90).unwrap();
}

#[test]
fn ipc_buffer_frame_is_pinned_and_never_reaches_another_client() {
    pinned_ipc_buffer(false);
}

/// The same with the direct map: revoking the exported caps takes the frame's direct-map
/// copy too, and the server maps it again (the model fails any data operation through a
/// stale direct mapping).
#[test]
fn ipc_buffer_frame_is_pinned_with_the_direct_map() {
    pinned_ipc_buffer(true);
}

fn pinned_ipc_buffer(direct: bool) {
    let (mut h, outside) = harness_with_outside(|c| {
        if direct {
            c.direct_map = Some(0x2_0000_0000);
        }
    });
    if direct {
        assert!(h.core.prepare_direct_map().unwrap() > 0);
    }
    let boot = boot_figures(&h);
    h.core.admin_create(2, user(1000), 4096).unwrap();
    h.core.admin_create(3, user(1001), 4096).unwrap();
    h.core.region(2, IPC, PAGE, Prot::RW, &[0]).unwrap();
    let f = h.core.admin_export(2, IPC).unwrap();
    // The administrator keeps a copy (it goes into the client's TCB).
    mem_core::Kernel::cap_copy(h.core.kernel_mut(), f, outside).unwrap();
    h.write(2, IPC, b"my ipc").unwrap();
    // Attack: unmap it, map Fixed over it, reset: the frame must never be freed.
    h.core.munmap(2, IPC, PAGE).unwrap();
    h.core.mmap(2, &MmapArgs::anon(PAGE, Prot::RW).at(IPC, Placement::Fixed)).unwrap();
    h.write(2, IPC, b"new page").unwrap();
    h.core.reset(2).unwrap();
    assert_eq!(h.core.stats(Some(2)).unwrap().pinned, 1);
    // The victim faults many pages: none of them is the pinned frame.
    let v = h.core.mmap(3, &MmapArgs::anon(256 * PAGE, Prot::RW)).unwrap();
    for i in 0..256 {
        h.write_u64(3, v + i * PAGE, 0xfeed_0000 + i).unwrap();
    }
    assert!(h.core.mappings(3).iter().all(|m| m.frame != f), "the pinned frame was reused");
    let k = h.core.kernel();
    let pa = k.object_paddr(k.cap_object(f).unwrap()).unwrap();
    let mut got = [0u8; 6];
    k.phys_read(pa, &mut got);
    assert_eq!(&got, b"my ipc", "the kernel's IPC buffer still holds the client's bytes");
    h.check();
    // Destroying the space revokes every derived cap before the frame is reused.
    h.core.admin_destroy(2).unwrap();
    assert_eq!(h.core.kernel().cap_kind(outside), None, "the administrator's copy was revoked");
    assert_eq!(h.core.kernel().direct_mapped(f), direct, "the direct map of the revoked frame is back");
    for i in 0..256 {
        assert_eq!(h.read_u64(3, v + i * PAGE).unwrap(), 0xfeed_0000 + i);
    }
    h.core.admin_destroy(3).unwrap();
    assert_capacity_back(&mut h, boot, "pinned");
}

#[test]
fn clone_gives_the_child_its_own_ipc_buffer() {
    let (mut h, _) = harness_with_outside(|_| {});
    h.core.admin_create(2, user(1000), 4096).unwrap();
    h.core.region(2, IPC, PAGE, Prot::RW, &[0]).unwrap();
    let f = h.core.admin_export(2, IPC).unwrap();
    h.write(2, IPC, b"parent").unwrap();
    h.core.admin_clone(2, 4, 4096).unwrap();
    let child = h.core.mappings(4).into_iter().find(|m| m.vaddr == IPC).unwrap();
    assert_ne!(child.frame, f, "the child has its own frame");
    assert!(!child.cow);
    assert_eq!(h.read(4, IPC, 6).unwrap(), b"parent");
    let parent = h.core.mappings(2).into_iter().find(|m| m.vaddr == IPC).unwrap();
    assert_eq!(parent.frame, f);
    assert!(!parent.cow, "the parent's pinned page never becomes copy-on-write");
    h.write(2, IPC, b"PARENT").unwrap();
    h.write(4, IPC, b"child!").unwrap();
    assert_eq!(h.core.mappings(2).into_iter().find(|m| m.vaddr == IPC).unwrap().frame, f, "no move");
    assert_eq!(h.read(2, IPC, 6).unwrap(), b"PARENT");
    assert_eq!(h.read(4, IPC, 6).unwrap(), b"child!");
    // Export rules: only a small private anonymous page.
    let s = h.core.shmget(2, ShmKey::Private, PAGE, true, false, 0o600).unwrap();
    let at = h.core.shmat(2, s, None, false).unwrap();
    assert_eq!(h.core.admin_export(2, at), Err(Errno::Inval));
    assert_eq!(h.core.admin_export(2, 0x5000_0000), Err(Errno::Fault));
    h.check();
}

#[test]
fn server_heap_use_is_bounded_per_client() {
    let (mut h, _) = harness_with_outside(|c| c.large_pages = false);
    let boot = boot_figures(&h);
    h.core.admin_create(2, user(1000), 4096).unwrap();
    h.core.admin_create(3, user(1001), 4096).unwrap();
    let limit = h.core.stats(Some(2)).unwrap().meta_limit;
    assert_eq!(limit, 64 * 1024 + 4096 * 256, "meta_limit(Q) = 64 KiB + 256 B * Q");
    // (a) A 1-page segment attached once every 2 MiB: each attachment costs a shadow
    // table; the budget stops it with ENOMEM long before the heap could suffer.
    let id = h.core.shmget(2, ShmKey::Private, PAGE, true, false, 0o600).unwrap();
    let mut n = 0u64;
    loop {
        let at = 0x40_0000_0000u64.min(0x1_0000_0000 + n * 2 * MB);
        match h.core.shmat(2, id, Some(at), false) {
            Ok(a) => match h.write(2, a, b"x") {
                Ok(()) => n += 1,
                Err(u) => {
                    assert_eq!(u, Unresolved::NoMemory);
                    break;
                }
            },
            Err(e) => {
                assert_eq!(e, Errno::NoMem);
                break;
            }
        }
        assert!(h.core.stats(Some(2)).unwrap().meta_bytes <= limit);
    }
    assert!(n > 100 && n < 400, "{n} attachments touched");
    h.core.check_invariants().unwrap();
    // (b) One-page mmaps until the area budget says no.
    let mut areas = 0u64;
    while h.core.mmap(3, &MmapArgs::anon(PAGE, Prot::NONE).at(0x2_0000_0000 + areas * 2 * PAGE, Placement::FixedNoReplace)).is_ok() {
        areas += 1;
        assert!(areas < 100_000, "no limit on areas");
    }
    let s3 = h.core.stats(Some(3)).unwrap();
    assert!(s3.meta_bytes <= s3.meta_limit && areas > 1000, "{areas} areas, {s3:?}");
    // (c) One munmap across all of them (no list of areas is built).
    h.core.munmap(3, 0x2_0000_0000, areas * 2 * PAGE).unwrap();
    assert_eq!(h.core.stats(Some(3)).unwrap().areas, 1, "only the shared buffer is left");
    // The other client was never affected.
    let v = h.core.mmap(3, &MmapArgs::anon(16 * PAGE, Prot::RW)).unwrap();
    h.write_u64(3, v, 7).unwrap();
    h.core.admin_destroy(2).unwrap();
    h.core.admin_destroy(3).unwrap();
    assert_capacity_back(&mut h, boot, "heap");
}

#[test]
fn reservations_bound_the_heap_and_clients_pay_for_it() {
    let (mut h, _) = harness_with_outside(|c| c.limits.meta_capacity = 3 * (64 * 1024 + 4096 * 256));
    h.core.admin_create(2, user(1), 4096).unwrap();
    h.core.admin_create(3, user(1), 4096).unwrap();
    h.core.admin_create(4, user(1), 4096).unwrap();
    assert_eq!(h.core.admin_create(5, user(1), 4096), Err(Errno::NoMem), "the heap is fully promised");
    assert!(!h.core.has_space(5));
    assert_eq!(h.core.admin_create(5, user(1), 16), Err(Errno::NoMem), "even a small one");
    h.core.admin_destroy(4).unwrap();
    h.core.admin_create(5, user(1), 4096).unwrap();
    let s = h.core.stats(None).unwrap();
    assert_eq!(s.meta_limit, 3 * (64 * 1024 + 4096 * 256));
}

#[test]
fn backend_and_shm_hogs_cannot_starve_others_and_capacity_comes_back() {
    let (mut h, _) = harness_with_outside(|c| {
        c.shm.per_uid_segments = 16;
        c.limits.max_backends = 8;
        c.limits.max_segments = 32;
    });
    let boot = boot_figures(&h);
    let hog = 2;
    let bystander = 3;
    h.core.admin_create(hog, user(1000), 1 << 14).unwrap();
    h.core.admin_create(bystander, user(2000), 1 << 14).unwrap();
    // Backends: the per-client limit, for the hog only.
    let mut backends = Vec::new();
    loop {
        match h.core.backend_create(hog, 4 * PAGE, 0o644) {
            Ok(b) => backends.push(b),
            Err(e) => {
                assert_eq!(e, Errno::NFile);
                break;
            }
        }
    }
    assert_eq!(backends.len(), 8);
    let mine = h.core.backend_create(bystander, PAGE, 0o600).expect("the bystander still creates backends");
    // Shm: the per-uid limit stops the hog (ENOSPC), not the bystander.
    let mut segs = 0;
    while h.core.shmget(hog, ShmKey::Key(0x1000 + segs), PAGE, true, true, 0o644).is_ok() {
        segs += 1;
    }
    assert_eq!(segs, 16);
    assert_eq!(h.core.shmget(hog, ShmKey::Key(0x9999), PAGE, true, true, 0o644), Err(Errno::NoSpc));
    let sb = h.core.shmget(bystander, ShmKey::Key(0x7777), PAGE, true, true, 0o600).expect("the bystander still gets shm");
    // Cap slots: shared pages mapped by the hog are charged to it (slot limit).
    let big = h.core.shmget(hog, ShmKey::Private, 64 * PAGE, true, false, 0o600);
    assert_eq!(big, Err(Errno::NoSpc), "uid limit reached");
    let mut sh = MmapArgs::anon(2048 * PAGE, Prot::RW);
    sh.shared = true;
    let a = h.core.mmap(hog, &sh).unwrap();
    h.core.clone_space(hog, 4, 1 << 14).unwrap();
    let mut mapped = 0;
    for i in 0..2048 {
        if h.write_u64(4, a + i * PAGE, i).is_err() {
            break;
        }
        mapped += 1;
    }
    let s4 = h.core.stats(Some(4)).unwrap();
    assert!(s4.slots_charged <= s4.slot_limit, "{s4:?}");
    assert!(mapped > 1000, "{mapped}");
    let m = h.core.mmap(bystander, &MmapArgs::anon(8 * PAGE, Prot::RW)).unwrap();
    h.write_u64(bystander, m, 1).unwrap();
    // The hog goes: its backends die with it; its keyed segments stay charged to uid 1000.
    h.core.admin_destroy(4).unwrap();
    h.core.admin_destroy(hog).unwrap();
    assert_eq!(h.core.backend_read(bystander, backends[0], 0, &mut [0u8; 4]), Err(Errno::NoEnt), "dead with its owner");
    h.core.admin_create(5, user(1000), 1 << 14).unwrap();
    assert_eq!(h.core.shmget(5, ShmKey::Key(0x4242), PAGE, true, true, 0o600), Err(Errno::NoSpc), "uid 1000 still holds its segments");
    // The administrator removes them; everything is back.
    for k in 0..segs {
        let id = h.core.shmget(5, ShmKey::Key(0x1000 + k), 0, false, false, 0).unwrap();
        h.core.shm_remove(5, id).unwrap();
    }
    h.core.shm_remove(bystander, sb).unwrap();
    h.core.backend_destroy(bystander, mine).unwrap();
    h.core.admin_destroy(5).unwrap();
    h.core.admin_destroy(bystander).unwrap();
    assert_eq!(h.core.stats(None).unwrap().shm_segments, 0);
    assert_capacity_back(&mut h, boot, "hogs");
}

#[test]
fn keyed_shm_stays_charged_after_its_creator_is_gone() {
    let (mut h, _) = harness_with_outside(|c| c.shm.per_uid_pages = 1024);
    h.core.admin_create(2, user(1000), 4096).unwrap();
    let before = h.core.stats(Some(2)).unwrap().charged_pages;
    let id = h.core.shmget(2, ShmKey::Key(77), 512 * PAGE, true, true, 0o600).unwrap();
    assert_eq!(h.core.stats(Some(2)).unwrap().charged_pages, before + 512, "paid in full at shmget");
    let a = h.core.shmat(2, id, None, false).unwrap();
    for i in 0..512 {
        h.write_u64(2, a + i * PAGE, i).unwrap();
    }
    let touched = h.core.stats(Some(2)).unwrap().charged_pages;
    assert!((before + 513..=before + 515).contains(&touched), "touching costs no more than page tables: {touched}");
    assert_eq!(h.core.shmget(2, ShmKey::Key(78), 4096 * PAGE, true, true, 0o600), Err(Errno::NoSpc), "uid limit");
    h.core.admin_destroy(2).unwrap();
    let frames = h.core.stats(None).unwrap().frames_in_use;
    assert!(frames >= 512, "the segment's pages live on");
    // Another client of the same user cannot go beyond the user's share.
    h.core.admin_create(3, user(1000), 4096).unwrap();
    assert_eq!(h.core.shmget(3, ShmKey::Key(79), 600 * PAGE, true, true, 0o600), Err(Errno::NoSpc));
    assert!(h.core.shmget(3, ShmKey::Key(79), 500 * PAGE, true, true, 0o600).is_ok());
    // Another user is not affected.
    h.core.admin_create(4, user(2000), 4096).unwrap();
    assert!(h.core.shmget(4, ShmKey::Key(80), 1000 * PAGE, true, true, 0o600).is_ok());
    // The data survived its creator.
    let id2 = h.core.shmget(3, ShmKey::Key(77), 0, false, false, 0o600).unwrap();
    let b = h.core.shmat(3, id2, None, true).unwrap();
    assert_eq!(h.read_u64(3, b + 100 * PAGE).unwrap(), 100);
    h.check();
}

#[test]
fn backends_have_owners_and_permissions() {
    let (mut h, _) = harness_with_outside(|_| {});
    h.core.admin_create(2, Cred { uid: 1000, gid: 100 }, 4096).unwrap();
    h.core.admin_create(3, Cred { uid: 2000, gid: 200 }, 4096).unwrap();
    h.core.admin_create(4, Cred { uid: 3000, gid: 100 }, 4096).unwrap();
    let b = h.core.backend_create(2, 4 * PAGE, 0o640).unwrap();
    h.core.backend_write(2, b, 0, b"secret").unwrap();
    let map = |id, shared, prot| {
        let mut m = MmapArgs::anon(4 * PAGE, prot);
        m.shared = shared;
        m.backing = Backing::Backend { id, offset: 0 };
        m
    };
    // Another user, other group: nothing.
    assert_eq!(h.core.mmap(3, &map(b, true, Prot::RW)), Err(Errno::Acces));
    assert_eq!(h.core.mmap(3, &map(b, false, Prot::READ)), Err(Errno::Acces));
    assert_eq!(h.core.backend_read(3, b, 0, &mut [0u8; 6]), Err(Errno::Acces));
    assert_eq!(h.core.backend_write(3, b, 0, b"x"), Err(Errno::Acces));
    assert_eq!(h.core.backend_destroy(3, b), Err(Errno::Perm));
    // Same group: read only. A shared read-only mapping loses write for good.
    let mut got = [0u8; 6];
    h.core.backend_read(4, b, 0, &mut got).unwrap();
    assert_eq!(&got, b"secret");
    assert_eq!(h.core.mmap(4, &map(b, true, Prot::RW)), Err(Errno::Acces));
    let r = h.core.mmap(4, &map(b, true, Prot::READ)).unwrap();
    assert_eq!(h.read(4, r, 6).unwrap(), b"secret");
    assert_eq!(h.core.mprotect(4, r, PAGE, Prot::RW), Err(Errno::Acces));
    assert_eq!(h.core.msync(4, r, PAGE, MsyncFlags::SYNC), Err(Errno::Acces));
    let p = h.core.mmap(4, &map(b, false, Prot::RW)).unwrap();
    h.write(4, p, b"mine").unwrap();
    h.core.backend_read(2, b, 0, &mut got).unwrap();
    assert_eq!(&got, b"secret", "a private copy never reaches the backend");
    // The owner goes: the backend dies, the group member's shared pages go with it (its
    // private copy stays).
    h.core.admin_destroy(2).unwrap();
    assert_eq!(h.read(4, r, 1), Err(Unresolved::NoArea));
    assert_eq!(h.read(4, p, 4).unwrap(), b"mine");
    h.check();
    h.core.admin_destroy(4).unwrap();
    h.core.admin_destroy(3).unwrap();
    assert_eq!(h.frames_in_use(), 0);
}

#[test]
fn shared_memory_is_handed_to_a_remaining_mapper() {
    let (mut h, _) = harness_with_outside(|_| {});
    h.core.admin_create(2, user(1000), 4096).unwrap();
    let mut sh = MmapArgs::anon(8 * PAGE, Prot::RW);
    sh.shared = true;
    let a = h.core.mmap(2, &sh).unwrap();
    h.write_u64(2, a, 41).unwrap();
    h.core.admin_clone(2, 3, 4096).unwrap();
    h.core.admin_destroy(2).unwrap();
    // The clone pays now, and keeps the memory.
    assert_eq!(h.read_u64(3, a).unwrap(), 41);
    h.write_u64(3, a + PAGE, 42).unwrap();
    h.core.check_invariants().unwrap();
    h.core.admin_destroy(3).unwrap();
    assert_eq!(h.frames_in_use(), 0);
}

#[test]
fn the_free_range_index_has_no_attacker_shaped_worst_case() {
    let mut h = H::new(256 * MB);
    h.client(2, 0, 0, 1 << 20);
    // Ascending one-page areas with one-page holes: the worst order for a plain tree.
    for i in 0..20_000u64 {
        h.core.mmap(2, &MmapArgs::anon(PAGE, Prot::NONE).at(0x10_0000_0000 + i * 2 * PAGE, Placement::FixedNoReplace)).unwrap();
    }
    assert!(h.core.gap_height(2) < 80, "height {}", h.core.gap_height(2));
    // Many long but misaligned gaps below: a 2 MiB-aligned search does not visit them all.
    for i in 0..2_000u64 {
        let base = 0x20_0000_0000 + i * 4 * MB;
        h.core.mmap(2, &MmapArgs::anon(PAGE, Prot::NONE).at(base, Placement::FixedNoReplace)).unwrap();
        h.core.mmap(2, &MmapArgs::anon(MB - 2 * PAGE, Prot::NONE).at(base + 3 * MB + PAGE, Placement::FixedNoReplace)).unwrap();
    }
    let a = h.core.mmap(2, &MmapArgs::anon(2 * MB, Prot::RW)).unwrap();
    assert_eq!(a % (2 * MB), 0);
    h.check();
}

#[test]
fn faults_are_authenticated_by_badge() {
    use mem_core::dispatch::sender_of;
    use mem_core::Sender;
    use mem_protocol::system::FAULT_BADGE_FLAG;
    assert_eq!(sender_of(7, false), Ok(Sender::Request(7)));
    assert_eq!(sender_of(7 | FAULT_BADGE_FLAG, true), Ok(Sender::Fault(7)));
    assert!(sender_of(7, true).is_err(), "a fault label on a request badge");
    assert!(sender_of(7 | FAULT_BADGE_FLAG, false).is_err(), "a request on a fault badge");
    assert!(sender_of(1 << 33, false).is_err(), "no such client");
}

#[test]
fn unresolved_notes_are_queued_bounded_and_admin_only() {
    let (mut h, _) = harness_with_outside(|c| c.log_unresolved = 2);
    h.core.admin_create(2, user(1000), 4096).unwrap();
    h.core.admin_create(3, user(1001), 4096).unwrap();
    let logged: Vec<bool> = (0..5).map(|i| h.core.note_unresolved(2, 0x1000 * i, 1)).collect();
    assert_eq!(logged, [true, true, false, false, false], "printed twice, then only counted");
    h.core.note_unresolved(3, 0x5000, 2);
    assert_eq!(h.core.notes_pending(), 2, "one note per client");
    let mut buf = [0u8; 16];
    assert_eq!(h.core.dispatch(2, &Request::TakeNote, &mut buf).reply, Reply::Err(Errno::Perm));
    let Reply::Ok(Value::Note(Some(n))) = h.core.dispatch(ADMIN, &Request::TakeNote, &mut buf).reply else { panic!() };
    assert_eq!((n.client, n.addr, n.reason, n.count), (2, 0, 1, 5));
    let Reply::Ok(Value::Note(Some(n))) = h.core.dispatch(ADMIN, &Request::TakeNote, &mut buf).reply else { panic!() };
    assert_eq!((n.client, n.reason), (3, 2));
    assert_eq!(h.core.dispatch(ADMIN, &Request::TakeNote, &mut buf).reply, Reply::Ok(Value::Note(None)));
    // A flood from a badge without a space stays bounded.
    for i in 0..100_000u32 {
        h.core.note_unresolved(1_000_000 + i, 0, 4);
    }
    assert!(h.core.notes_pending() <= 2 * 512 + 2);
}

#[test]
fn clients_learn_no_physical_addresses_or_system_figures() {
    let (mut h, _) = harness_with_outside(|c| c.device_grants = vec![(4, ModelConfig::DEVICE_BASE, 1 << 20)]);
    h.core.admin_create(2, user(1000), 4096).unwrap();
    h.core.admin_create(4, user(1000), 4096).unwrap();
    let a = h.core.mmap(2, &MmapArgs::anon(PAGE, Prot::RW)).unwrap();
    h.write_u64(2, a, 1).unwrap();
    let mut buf = [0u8; 16];
    let q = |h: &mut H, caller, target| match h.core.dispatch(caller, &Request::Query { target, addr: a }, &mut [0u8; 16]).reply {
        Reply::Ok(Value::Query(q)) => q.paddr,
        r => panic!("{r:?}"),
    };
    assert_eq!(q(&mut h, 2, Target::Own), 0, "a client does not see its physical addresses");
    assert_ne!(q(&mut h, ADMIN, Target::Client(2)), 0, "the administrator does");
    let Reply::Ok(Value::Stats(s)) = h.core.dispatch(2, &Request::Stats { target: Target::Own }, &mut buf).reply else { panic!() };
    assert_eq!((s.frames_free, s.frames_in_use, s.slots_free, s.spaces, s.shm_segments), (0, 0, 0, 0, 0));
    assert!(s.charged_pages > 0 && s.quota_pages == 4096 && s.meta_limit > 0);
    let d = h.core.map_phys(4, 0, Placement::Anywhere, ModelConfig::DEVICE_BASE, PAGE, Prot::RW).unwrap();
    let Reply::Ok(Value::Query(qd)) = h.core.dispatch(4, &Request::Query { target: Target::Own, addr: d }, &mut buf).reply else { panic!() };
    assert_eq!(qd.paddr, ModelConfig::DEVICE_BASE, "a client granted device memory sees its addresses");
}

#[test]
fn failed_requests_change_nothing() {
    let (mut h, _) = harness_with_outside(|c| c.large_pages = false);
    h.core.admin_create(2, user(1000), 200).unwrap();
    // BackendWrite over the owner's quota: ENOMEM and no byte written, no page kept.
    let b = h.core.backend_create(2, 1024 * PAGE, 0o600).unwrap();
    let before = h.core.stats(Some(2)).unwrap();
    let data = vec![0x77u8; 300 * PAGE as usize];
    assert_eq!(h.core.backend_write(2, b, 0, &data), Err(Errno::NoMem));
    assert_eq!(h.core.stats(Some(2)).unwrap(), before);
    let mut got = [0u8; 8];
    h.core.backend_read(2, b, 0, &mut got).unwrap();
    assert_eq!(got, [0; 8]);
    // Populate of more than the quota: ENOMEM, and nothing of it stays mapped.
    let a = h.core.mmap(2, &MmapArgs::anon(400 * PAGE, Prot::RW)).unwrap();
    h.write_u64(2, a, 5).unwrap();
    let before = h.core.stats(Some(2)).unwrap();
    assert_eq!(h.core.populate(2, a, 400 * PAGE), Err(Errno::NoMem));
    let after = h.core.stats(Some(2)).unwrap();
    assert!(after.charged_pages <= before.charged_pages + 2, "populate rolled back (page tables stay)");
    assert_eq!(h.core.mapped_pages(2), 4 + 1, "the buffer and the page touched before");
    assert_eq!(h.read_u64(2, a).unwrap(), 5);
    // msync whose store pages would not fit the owner's budget: ENOMEM, nothing written.
    h.core.admin_create(3, user(1000), 128).unwrap();
    let b3 = h.core.backend_create(3, 64 * PAGE, 0o600).unwrap();
    let mut m = MmapArgs::anon(64 * PAGE, Prot::RW);
    m.shared = true;
    m.backing = Backing::Backend { id: b3, offset: 0 };
    let sm = h.core.mmap(3, &m).unwrap();
    for i in 0..60 {
        h.write_u64(3, sm + i * PAGE, 0x5000 + i).unwrap();
    }
    let before = h.core.stats(Some(3)).unwrap();
    assert_eq!(h.core.msync(3, sm, 64 * PAGE, MsyncFlags::SYNC), Err(Errno::NoMem));
    assert_eq!(h.core.stats(Some(3)).unwrap(), before);
    for i in [0u64, 30, 59] {
        h.core.backend_read(3, b3, i * PAGE, &mut got).unwrap();
        assert_eq!(got, [0; 8], "nothing written back");
    }
    h.core.msync(3, sm, 4 * PAGE, MsyncFlags::SYNC).unwrap();
    h.core.backend_read(3, b3, PAGE, &mut got).unwrap();
    assert_eq!(u64::from_le_bytes(got), 0x5001);
    // mprotect that would split past the area limit: ENOMEM, nothing changed.
    let (mut h2, _) = harness_with_outside(|c| c.limits.max_map_count = 3);
    h2.core.admin_create(2, user(1000), 200).unwrap();
    let m = h2.core.mmap(2, &MmapArgs::anon(8 * PAGE, Prot::RW)).unwrap();
    let layout = h2.core.layout(2).unwrap();
    assert_eq!(h2.core.mprotect(2, m + 2 * PAGE, PAGE, Prot::READ), Err(Errno::NoMem));
    assert_eq!(h2.core.layout(2).unwrap(), layout);
    h.check();
    h2.check();
}

/// The seL4 server keeps one answer slot from message to message (`dispatch_into`): what one
/// request put there never goes out with the next, whoever sends it and however it ends.
#[test]
fn the_answer_slot_never_carries_an_earlier_reply() {
    let (mut h, _) = harness_with_outside(|_| {});
    h.core.admin_create(2, user(1000), 4096).unwrap();
    h.core.admin_create(3, user(2000), 4096).unwrap();
    let a = h.core.mmap(2, &MmapArgs::anon(PAGE, Prot::RW)).unwrap();
    h.write_u64(2, a, 1).unwrap();
    let mut slot = mem_core::Answer::EMPTY;
    let mut buf = [0u8; 16];
    let mut ask = |h: &mut H, caller: u32, req: Request, slot: &mut mem_core::Answer| {
        h.core.dispatch_into(caller, &req, &mut buf, slot);
        *slot
    };
    let first = ask(&mut h, 2, Request::Stats { target: Target::Own }, &mut slot);
    assert!(matches!(first.reply, Reply::Ok(Value::Stats(_))));
    let r = ask(&mut h, 3, Request::Nop, &mut slot);
    assert_eq!((r.reply, r.cap, r.held), (Reply::Ok(Value::Unit), None, false));
    let r = ask(&mut h, 2, Request::Query { target: Target::Own, addr: a }, &mut slot);
    assert!(matches!(r.reply, Reply::Ok(Value::Query(_))));
    let r = ask(&mut h, 3, Request::Munmap { target: Target::Own, addr: a + 1, len: PAGE }, &mut slot);
    assert_eq!(r.reply, Reply::Err(Errno::Inval));
    let r = ask(&mut h, 3, Request::Query { target: Target::Client(2), addr: a }, &mut slot);
    assert_eq!(r.reply, Reply::Err(Errno::Perm), "no other client's query either");
    let r = ask(&mut h, 77, Request::Nop, &mut slot);
    assert_eq!(r.reply, Reply::Err(Errno::Srch), "a badge without a space");
    let r = ask(&mut h, 3, Request::Mmap {
        target: Target::Own,
        addr: 0,
        len: PAGE,
        prot: Prot::RW,
        max_prot: Prot::RW,
        placement: Placement::Anywhere,
        share: mem_protocol::Share::Private,
        backing: Backing::Anonymous,
        populate: false,
    }, &mut slot);
    assert!(matches!(r.reply, Reply::Ok(Value::Addr(_))) && r.cap.is_none());
    h.check();
}
