//! Budgets that cannot be escaped (`lifecycle.rs` hand-over, `shm.rs` per-uid share).
//!
//! - A shared object whose owner goes is handed to a space mapping it only if that space
//!   has room for it (pages within its quota, metadata within its budget); if none has, the
//!   object is destroyed and the mappings of it lose its pages. So the fork-and-exit chain —
//!   clone; the child fills a new shared object within its fresh quota; the parent exits;
//!   repeat — never leaves any client charged past its quota (it once left the survivor at
//!   7.8× its quota after 9 rounds), and the frames in use stay within the quotas alive.
//! - An heir found through the object's reverse map, not by looking at every space.
//! - One user's shm segments never take more than its share of the system-wide limits, so
//!   another user still gets its own.
mod common;

use common::*;
use mem_core::admin::BufferConfig;
use mem_core::mmap::MmapArgs;
use mem_core::{Config, Cred, Errno, MemCore, Prot, Unresolved};
use mem_model::{ModelConfig, ModelKernel};
use mem_protocol::ShmKey;

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;

fn harness(tweak: impl FnOnce(&mut Config)) -> H {
    let mcfg = ModelConfig::riscv64(256 * MB);
    let mut cfg = Config::new(mcfg.geometry);
    cfg.user_hi = cfg.user_hi.min(mcfg.user_top);
    cfg.admins = vec![ADMIN];
    cfg.large_pages = false;
    cfg.buffer = Some(BufferConfig { vaddr: 0x7010_0000, pages: 4, view: None });
    tweak(&mut cfg);
    let core = MemCore::new(ModelKernel::new(mcfg.clone()), cfg, &untypeds(&mcfg), mcfg.first_free_slot(), mcfg.cnode_slots);
    H { core, cfg: mcfg }
}

fn shared(pages: u64) -> MmapArgs {
    MmapArgs { shared: true, ..MmapArgs::anon(pages * PAGE, Prot::RW) }
}

/// Every live client within its quota; the frames in use within the sum of their quotas.
fn within_quotas(h: &H, alive: &[u32], round: usize) {
    let mut quotas = 0;
    for &c in alive {
        let s = h.core.stats(Some(c)).unwrap();
        assert!(s.charged_pages <= s.quota_pages, "round {round}: client {c} charged {} of a quota of {}", s.charged_pages, s.quota_pages);
        assert!(s.meta_bytes <= s.meta_limit, "round {round}: client {c} metadata {} of {}", s.meta_bytes, s.meta_limit);
        quotas += s.quota_pages;
    }
    let sys = h.core.stats(None).unwrap();
    assert!(sys.frames_in_use <= quotas, "round {round}: {} frames in use for quotas of {quotas}", sys.frames_in_use);
    h.core.check_invariants().unwrap();
}

#[test]
fn the_fork_and_exit_chain_never_escapes_the_quota() {
    const QUOTA: u64 = 2048;
    let mut h = harness(|_| {});
    let boot = h.core.stats(None).unwrap();
    h.core.admin_create(2, Cred { uid: 1000, gid: 1000 }, QUOTA).unwrap();
    let mut parent = 2;
    let mut objects: Vec<u64> = Vec::new();
    for round in 0..10 {
        let child = 10 + round as u32;
        h.core.admin_clone(parent, child, QUOTA).unwrap();
        // The child fills a new shared object of half its fresh quota (each shared page it
        // maps, its parent's included, takes one of its cap slots: 256 + QUOTA of them).
        let a = h.core.mmap(child, &shared(QUOTA / 2)).unwrap();
        h.core.populate(child, a, QUOTA / 2 * PAGE).unwrap_or_else(|e| panic!("round {round}: populate: {e:?}"));
        h.write_u64(child, a, round as u64).unwrap();
        h.core.admin_destroy(parent).unwrap();
        within_quotas(&h, &[child], round);
        // The parent's objects had nobody with room: gone from the child too (its
        // mappings of them are dead, like a truncated file), while its own is intact.
        for &old in &objects {
            assert_eq!(h.read_u64(child, old), Err(Unresolved::NoArea), "round {round}: {old:#x}");
        }
        assert_eq!(h.read_u64(child, a).unwrap(), round as u64);
        objects.push(a);
        parent = child;
    }
    h.core.admin_destroy(parent).unwrap();
    h.core.trim();
    let end = h.core.stats(None).unwrap();
    assert_eq!((end.frames_in_use, end.spaces), (boot.frames_in_use, boot.spaces), "exact reclaim");
    h.check();
}

/// With room, the object goes to the space that maps it (found through its reverse map
/// among several spaces) and keeps its bytes; the heir pays for it from then on.
#[test]
fn an_heir_with_room_keeps_the_object_and_pays_for_it() {
    let mut h = harness(|_| {});
    for c in [2, 3, 4, 5] {
        h.core.admin_create(c, Cred { uid: 1000, gid: 1000 }, 4096).unwrap();
    }
    let a = h.core.mmap(2, &shared(64)).unwrap();
    h.core.populate(2, a, 64 * PAGE).unwrap();
    h.write_u64(2, a + 3 * PAGE, 77).unwrap();
    h.core.admin_clone(2, 6, 4096).unwrap();
    let before = h.core.stats(Some(6)).unwrap().charged_pages;
    h.core.admin_destroy(2).unwrap();
    assert_eq!(h.read_u64(6, a + 3 * PAGE).unwrap(), 77);
    assert_eq!(h.core.stats(Some(6)).unwrap().charged_pages, before + 64, "the heir pays for the 64 pages");
    within_quotas(&h, &[3, 4, 5, 6], 0);
    // It can use it as its own: more pages come from its quota.
    h.write_u64(6, a + 63 * PAGE, 1).unwrap();
    h.core.admin_destroy(6).unwrap();
    h.check();
}

/// Among several spaces mapping the object the heir is one with room, not merely the
/// first: a full one is passed over.
#[test]
fn a_full_mapper_is_passed_over_for_one_with_room() {
    let mut h = harness(|_| {});
    h.core.admin_create(2, Cred { uid: 1000, gid: 1000 }, 4096).unwrap();
    let a = h.core.mmap(2, &shared(512)).unwrap();
    h.core.populate(2, a, 512 * PAGE).unwrap();
    h.core.admin_clone(2, 3, 300).unwrap();
    h.core.admin_clone(2, 4, 4096).unwrap();
    // Client 3 has no room for 512 more pages.
    let s3 = h.core.stats(Some(3)).unwrap();
    assert!(s3.charged_pages + 512 > s3.quota_pages);
    h.core.admin_destroy(2).unwrap();
    assert_eq!(h.read_u64(3, a).unwrap(), 0, "still mapped for the full one");
    within_quotas(&h, &[3, 4], 0);
    let s4 = h.core.stats(Some(4)).unwrap();
    assert!(s4.charged_pages >= 512, "client 4 pays: {s4:?}");
    h.check();
}

/// One user's segments stay within its share of the system-wide limits; another user
/// still gets its own share when the first has taken all it may (the segments outlive
/// their creators: it holds even with no client of that user alive).
#[test]
fn one_user_cannot_take_the_whole_shm_limit() {
    let mut h = harness(|c| {
        c.shm.total_pages = 400;
        c.shm.max_segments = 40;
        c.shm.per_uid_pages = 1 << 20;
        c.shm.per_uid_segments = 1 << 10;
    });
    h.core.admin_create(2, Cred { uid: 1000, gid: 1000 }, 4096).unwrap();
    h.core.admin_create(3, Cred { uid: 2000, gid: 2000 }, 4096).unwrap();
    // uid 1000: 10-page keyed segments until the server says no.
    let mut made = 0;
    loop {
        match h.core.shmget(2, ShmKey::Key(100 + made), 10 * PAGE, true, true, 0o600) {
            Ok(_) => made += 1,
            Err(e) => {
                assert_eq!(e, Errno::NoSpc);
                break;
            }
        }
    }
    assert_eq!(made, 10, "a quarter of the 400 system pages");
    h.core.admin_destroy(2).unwrap();
    assert_eq!(h.core.stats(None).unwrap().shm_segments, 10, "keyed segments outlive their creator");
    // uid 2000 still gets its share: 100 pages.
    for k in 0..10 {
        h.core.shmget(3, ShmKey::Key(200 + k), 10 * PAGE, true, true, 0o600).unwrap();
    }
    assert_eq!(h.core.shmget(3, ShmKey::Key(300), PAGE, true, true, 0o600), Err(Errno::NoSpc));
    // And the segment count is shared the same way (a quarter of 40).
    let mut h = harness(|c| {
        c.shm.max_segments = 8;
    });
    h.core.admin_create(2, Cred { uid: 1000, gid: 1000 }, 4096).unwrap();
    h.core.admin_create(3, Cred { uid: 2000, gid: 2000 }, 4096).unwrap();
    for k in 0..2 {
        h.core.shmget(2, ShmKey::Key(k), PAGE, true, true, 0o600).unwrap();
    }
    assert_eq!(h.core.shmget(2, ShmKey::Key(9), PAGE, true, true, 0o600), Err(Errno::NoSpc));
    h.core.shmget(3, ShmKey::Key(10), PAGE, true, true, 0o600).unwrap();
    h.check();
}
