//! Behaviours that an independent mutation run of `shm.rs`, `pager.rs` and `admin.rs` found
//! no test for: mutants that left every test green. Each test drives the public API and
//! asserts what a client or the administrator sees (errors, values returned, counters from
//! `stats`), so that the mutant in question fails it:
//!
//! - `shm_object_gone`: a destroyed segment gives its pages and its count back to its
//!   creator's uid (per-uid limits, ENOSPC), to the system (`ShmLimits::max_segments`), and
//!   its count and metadata back to the creating client (`Limits::max_segments`,
//!   `meta_bytes`); a uid's other live segments stay counted. Nearby: the exact limits in
//!   `shmget`, and a second IPC_RMID changing nothing (`mark_removed`).
//! - `take_pending`: taking one fault off a pager's queue (answered, or its client destroyed)
//!   leaves the other queued faults queued in order; an answered page is asked for again
//!   on its next fault; the fault's metadata charge comes back. Nearby: a fault whose
//!   delivery to a waiting pager fails stays queued (`pager_deliver`).
//! - `valid_client`: `CreateSpace` / `Clone` accept exactly the ids in `[lo, hi)` that are
//!   not an administrator's.
mod common;
use common::*;
use mem_core::ledger::cost;
use mem_core::mmap::MmapArgs;
use mem_core::{Cred, Errno, KernelError, Prot, Unresolved};
use mem_model::{ModelConfig, Op};
use mem_protocol::system::UNRESOLVED_PAGER;
use mem_protocol::{PagerAnswer, Reply, Request, ShmKey, Target, Value};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;
const QUOTA: u64 = 1 << 14;

fn shm_harness(tweak: impl FnOnce(&mut mem_core::Config)) -> H {
    H::with(ModelConfig::riscv64(64 * MB), |c| {
        c.large_pages = false;
        tweak(c);
    })
}

/// Create a keyed segment of `pages` pages as `client`.
fn seg(h: &mut H, client: u32, key: u32, pages: u64) -> Result<u32, Errno> {
    h.core.shmget(client, ShmKey::Key(key), pages * PAGE, true, true, 0o600)
}

// ---- shm.rs `shm_object_gone` ----------------------------------------------------------

/// Per-uid limits: pages and segments of a destroyed segment come back to the uid that
/// created it, while its live segments stay counted (whichever client created them, and
/// also when the segment dies with its creator).
#[test]
fn shm_per_uid_pages_and_segments_come_back_when_a_segment_dies() {
    let mut h = shm_harness(|c| {
        c.shm.per_uid_pages = 8;
        c.shm.per_uid_segments = 3;
    });
    h.client(1, 1000, 100, QUOTA);
    h.client(2, 1000, 100, QUOTA);
    h.client(3, 2000, 200, QUOTA);
    // uid 1000 fills its page limit through two clients.
    let a = seg(&mut h, 1, 1, 5).unwrap();
    let b = seg(&mut h, 2, 2, 3).unwrap();
    assert_eq!(seg(&mut h, 1, 3, 1), Err(Errno::NoSpc), "8 of 8 pages of uid 1000");
    assert!(seg(&mut h, 3, 4, 8).is_ok(), "another uid has its own 8 pages");
    // b dies (no attachment): its 3 pages come back, a's 5 stay counted.
    h.core.shm_remove(2, b).unwrap();
    assert_eq!(h.core.shm_stat(2, b), Err(Errno::Inval), "destroyed at once");
    assert_eq!(seg(&mut h, 1, 5, 4), Err(Errno::NoSpc), "a's 5 pages still count: 5 + 4 > 8");
    let c = seg(&mut h, 1, 5, 3).unwrap();
    assert_eq!(seg(&mut h, 2, 6, 1), Err(Errno::NoSpc), "8 of 8 again");
    // Everything of uid 1000 dies: the whole limit is back, in one segment.
    h.core.shm_remove(1, a).unwrap();
    h.core.shm_remove(1, c).unwrap();
    let full = seg(&mut h, 2, 7, 8).expect("uid 1000 has all its 8 pages back");
    assert_eq!(seg(&mut h, 1, 8, 1), Err(Errno::NoSpc));
    h.core.shm_remove(2, full).unwrap();
    // Segment count: 3 per uid; one dying makes room for exactly one.
    let ids: Vec<u32> = (10..13).map(|k| seg(&mut h, 1, k, 1).unwrap()).collect();
    assert_eq!(seg(&mut h, 2, 13, 1), Err(Errno::NoSpc), "3 of 3 segments of uid 1000");
    h.core.shm_remove(1, ids[1]).unwrap();
    let d = seg(&mut h, 2, 13, 1).expect("one segment of uid 1000 came back");
    assert_eq!(seg(&mut h, 2, 14, 1), Err(Errno::NoSpc), "and only one");
    // Destroyed with the last detach: the same.
    let at = h.core.shmat(1, d, None, false).unwrap();
    h.core.shm_remove(2, d).unwrap();
    assert_eq!(seg(&mut h, 2, 14, 1), Err(Errno::NoSpc), "attached: still counted");
    h.core.shmdt(1, at).unwrap();
    let e = seg(&mut h, 2, 14, 1).expect("the detach destroyed it");
    // A private segment dies with its only client: its uid gets the pages and count back.
    for id in [ids[0], ids[2], e] {
        h.core.shm_remove(1, id).unwrap();
    }
    h.client(4, 1000, 100, QUOTA);
    h.core.shmget(4, ShmKey::Private, 8 * PAGE, true, false, 0o600).unwrap();
    assert_eq!(seg(&mut h, 1, 15, 1), Err(Errno::NoSpc), "the private segment holds all 8 pages");
    h.core.destroy_space(4).unwrap();
    let f: Vec<u32> = (15..18).map(|k| seg(&mut h, 1, k, 1).unwrap()).collect();
    assert_eq!(f.len(), 3);
    assert_eq!(seg(&mut h, 1, 18, 5), Err(Errno::NoSpc), "segment limit, not the pages");
    h.check();
}

/// The creating client's own budget: its segment count (`Limits::max_segments`, ENOSPC) and
/// the metadata charged for each segment come back when the segment dies; the limit is
/// per client, not per uid.
#[test]
fn shm_segment_count_and_metadata_come_back_to_the_creating_client() {
    let mut h = shm_harness(|c| c.limits.max_segments = 3);
    h.client(1, 1000, 100, QUOTA);
    h.client(2, 1000, 100, QUOTA);
    let meta0 = h.core.stats(Some(1)).unwrap().meta_bytes;
    let charged0 = h.core.stats(Some(1)).unwrap().charged_pages;
    let ids: Vec<u32> = (1..4).map(|k| seg(&mut h, 1, k, 2).unwrap()).collect();
    let meta3 = h.core.stats(Some(1)).unwrap().meta_bytes;
    assert!(meta3 > meta0, "segments cost metadata");
    assert_eq!(h.core.stats(Some(1)).unwrap().charged_pages, charged0 + 6);
    assert_eq!(seg(&mut h, 1, 4, 1), Err(Errno::NoSpc), "3 of 3 segments of client 1");
    assert_eq!(h.core.shmget(1, ShmKey::Private, PAGE, true, false, 0o600), Err(Errno::NoSpc));
    let other = seg(&mut h, 2, 5, 1).expect("the same uid in another client is not limited");
    // One dies: exactly one more, at the same metadata as before.
    h.core.shm_remove(1, ids[0]).unwrap();
    let meta2 = h.core.stats(Some(1)).unwrap().meta_bytes;
    assert_eq!(meta3 - meta2, (meta3 - meta0) / 3, "all of one segment's metadata came back");
    let again = seg(&mut h, 1, 4, 2).expect("client 1 has one segment back");
    assert_eq!(h.core.stats(Some(1)).unwrap().meta_bytes, meta3);
    assert_eq!(seg(&mut h, 1, 6, 1), Err(Errno::NoSpc), "and only one");
    // All of them die: the client is back at its starting charges, with 3 segments to go.
    for id in [ids[1], ids[2], again] {
        h.core.shm_remove(1, id).unwrap();
    }
    let s = h.core.stats(Some(1)).unwrap();
    assert_eq!((s.meta_bytes, s.charged_pages), (meta0, charged0));
    for k in 10..13 {
        seg(&mut h, 1, k, 1).unwrap();
    }
    assert_eq!(seg(&mut h, 1, 13, 1), Err(Errno::NoSpc));
    h.core.shm_remove(2, other).unwrap();
    h.check();
}

/// The system-wide limits (`ShmLimits::max_segments`, SHMMNI, and `total_pages`, SHMALL):
/// ENOSPC for every client at either limit, room again when a segment dies.
#[test]
fn shm_system_limits_are_exact_and_come_back() {
    // One user may use the whole system limits here (`uid_share` 1): this is about them.
    let mut h = shm_harness(|c| {
        c.shm.max_segments = 3;
        c.shm.total_pages = 6;
        c.shm.uid_share = 1;
    });
    h.client(1, 1000, 100, QUOTA);
    h.client(2, 2000, 200, QUOTA);
    let a = seg(&mut h, 1, 1, 1).unwrap();
    let b = seg(&mut h, 2, 2, 1).unwrap();
    seg(&mut h, 1, 3, 1).unwrap();
    assert_eq!(seg(&mut h, 2, 4, 1), Err(Errno::NoSpc), "3 of 3 segments in the system");
    assert_eq!(seg(&mut h, 1, 4, 1), Err(Errno::NoSpc));
    h.core.shm_remove(1, a).unwrap();
    seg(&mut h, 2, 4, 4).expect("room for one segment, and 2 + 4 of 6 pages");
    assert_eq!(seg(&mut h, 1, 5, 1), Err(Errno::NoSpc));
    assert_eq!(h.core.stats(None).unwrap().shm_segments, 3);
    // b dies: one segment and one page come back, not two pages.
    h.core.shm_remove(2, b).unwrap();
    assert_eq!(seg(&mut h, 1, 5, 2), Err(Errno::NoSpc), "5 + 2 of 6 pages");
    seg(&mut h, 1, 5, 1).expect("5 + 1 of 6 pages");
    h.check();
}

/// IPC_RMID twice while attached: the second changes nothing (as in Linux); the segment
/// lives until its last detach, then its pages come back to its uid.
#[test]
fn shm_removed_twice_while_attached_dies_once_at_the_last_detach() {
    let mut h = shm_harness(|c| c.shm.per_uid_pages = 4);
    h.client(1, 1000, 100, QUOTA);
    h.client(2, 1000, 100, QUOTA);
    let id = seg(&mut h, 1, 1, 4).unwrap();
    let a1 = h.core.shmat(1, id, None, false).unwrap();
    let a2 = h.core.shmat(2, id, None, false).unwrap();
    h.write(1, a1, b"kept").unwrap();
    h.core.shm_remove(1, id).unwrap();
    h.core.shm_remove(2, id).unwrap();
    let st = h.core.shm_stat(2, id).unwrap();
    assert!(st.removed && st.nattch == 2, "{st:?}");
    h.core.shmdt(1, a1).unwrap();
    assert_eq!(h.read(2, a2, 4).unwrap(), b"kept", "one attachment left: alive");
    assert_eq!(h.core.shm_stat(2, id).unwrap().nattch, 1);
    assert_eq!(seg(&mut h, 1, 2, 1), Err(Errno::NoSpc), "it still holds uid 1000's 4 pages");
    h.core.shmdt(2, a2).unwrap();
    assert_eq!(h.core.shm_stat(2, id), Err(Errno::Inval), "destroyed with the last detach");
    seg(&mut h, 1, 2, 4).expect("its pages came back");
    h.check();
}

// ---- pager.rs `take_pending` -----------------------------------------------------------

const P: u32 = 1;
const C: u32 = 2;
const D: u32 = 3;

fn pager_harness() -> H {
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| c.large_pages = false);
    h.client(P, 1000, 1000, 4096);
    h.client(C, 1000, 1000, 4096);
    h.client(D, 1000, 1000, 4096);
    h
}

/// Three faults queued; the pager takes the oldest and answers it: the other two are still
/// queued and `PagerWait` returns them in order, then nothing.
#[test]
fn answering_one_fault_leaves_the_other_queued_faults_in_order() {
    let mut h = pager_harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    let a = pager_area(&mut h, C, pg, 4);
    let meta = |h: &H| h.core.stats(Some(C)).unwrap().meta_bytes;
    let before = meta(&h);
    for (i, t) in [(0, 10), (1, 11), (2, 12)] {
        assert_eq!(pager_fault(&mut h, C, a + i * PAGE, t), Err(Unresolved::Deferred));
    }
    assert_eq!(h.core.stats(Some(P)).unwrap().pager_pending, 3);
    assert_eq!(meta(&h), before + 3 * cost::PENDING, "one record per fault, charged to C");
    let f0 = pager_wait_as(&mut h, P, pg, 100).unwrap().expect("the oldest fault");
    assert_eq!(f0.offset, 0);
    h.core.pager_reply(P, f0.token, PagerAnswer::Zero, &[]).unwrap();
    assert_eq!(delivered(&mut h), vec![(10, None)]);
    assert_eq!(h.core.stats(Some(P)).unwrap().pager_pending, 2, "the other two are still pending");
    // The page (and its tables) is mapped now; two records are still charged.
    let mapped = meta(&h) - 2 * cost::PENDING;
    let f1 = pager_wait_as(&mut h, P, pg, 101).unwrap().expect("the second fault is still queued");
    let f2 = pager_wait_as(&mut h, P, pg, 102).unwrap().expect("the third fault is still queued");
    assert_eq!((f1.client, f1.offset, f2.client, f2.offset), (C, PAGE, C, 2 * PAGE));
    assert_ne!(f1.token, f2.token);
    assert_eq!(pager_wait_as(&mut h, P, pg, 103), Ok(None), "nothing else queued: the pager waits");
    assert!(delivered(&mut h).is_empty());
    // Answered out of order: each resumes its own thread.
    h.core.pager_reply(P, f2.token, PagerAnswer::Zero, &[]).unwrap();
    assert_eq!(delivered(&mut h), vec![(12, None)]);
    h.core.pager_reply(P, f1.token, PagerAnswer::Zero, &[]).unwrap();
    assert_eq!(delivered(&mut h), vec![(11, None)]);
    for i in 0..3 {
        assert_eq!(h.read_u64(C, a + i * PAGE).unwrap(), 0);
    }
    assert_eq!(meta(&h), mapped, "the records' charges came back (same tables, no record)");
    assert_eq!(h.core.stats(Some(C)).unwrap().slots_charged, 0, "no saved reply cap left charged");
    h.core.destroy_space(P).unwrap();
    pager_settled(&mut h);
}

/// Faults of C, D, C queued; D is destroyed: its fault leaves the middle of the queue and
/// C's two are returned in order.
#[test]
fn a_destroyed_consumers_fault_leaves_the_middle_of_the_queue() {
    let mut h = pager_harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    let a = pager_area(&mut h, C, pg, 4);
    let b = pager_area(&mut h, D, pg, 4);
    let meta = |h: &H| h.core.stats(Some(C)).unwrap().meta_bytes;
    let before = meta(&h);
    assert_eq!(pager_fault(&mut h, C, a + PAGE, 1), Err(Unresolved::Deferred));
    assert_eq!(pager_fault(&mut h, D, b, 2), Err(Unresolved::Deferred));
    assert_eq!(pager_fault(&mut h, C, a + 3 * PAGE, 3), Err(Unresolved::Deferred));
    h.core.destroy_space(D).unwrap();
    assert_eq!(h.core.stats(Some(P)).unwrap().pager_pending, 2);
    let f1 = pager_wait_as(&mut h, P, pg, 10).unwrap().expect("C's first fault");
    let f2 = pager_wait_as(&mut h, P, pg, 11).unwrap().expect("C's second fault");
    assert_eq!((f1.client, f1.offset, f2.client, f2.offset), (C, PAGE, C, 3 * PAGE));
    assert_eq!(pager_wait_as(&mut h, P, pg, 12), Ok(None), "D's fault went with D");
    assert_eq!(meta(&h), before + 2 * cost::PENDING, "C's two records");
    h.core.pager_reply(P, f1.token, PagerAnswer::Zero, &[]).unwrap();
    let one = meta(&h);
    h.core.pager_reply(P, f2.token, PagerAnswer::Zero, &[]).unwrap();
    assert_eq!(meta(&h) + cost::PENDING, one, "the second answer gives back its record (same table)");
    let mut d = delivered(&mut h);
    d.sort_by_key(|x| x.0);
    assert_eq!(d, vec![(1, None), (3, None)]);
    h.core.destroy_space(P).unwrap();
    pager_settled(&mut h);
}

/// A page whose fault was answered (here with `Fail`: it stays absent) is asked for again
/// when another thread faults on it: a new fault, queued and answered as the first.
#[test]
fn a_page_is_asked_for_again_after_its_fault_was_answered() {
    let mut h = pager_harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    let a = pager_area(&mut h, C, pg, 2);
    let before = h.core.stats(Some(C)).unwrap();
    assert_eq!(pager_fault(&mut h, C, a, 1), Err(Unresolved::Deferred));
    assert_eq!(h.core.stats(Some(C)).unwrap().meta_bytes, before.meta_bytes + cost::PENDING);
    let f = pager_wait_as(&mut h, P, pg, 10).unwrap().unwrap();
    h.core.pager_reply(P, f.token, PagerAnswer::Fail, &[]).unwrap();
    let after = h.core.stats(Some(C)).unwrap();
    assert_eq!((after.meta_bytes, after.slots_charged), (before.meta_bytes, before.slots_charged), "charges back");
    let n = h.core.take_note().unwrap();
    assert_eq!((n.client, u64::from(n.reason)), (C, UNRESOLVED_PAGER));
    assert!(delivered(&mut h).is_empty(), "thread 1 stays stopped");
    // Thread 2 faults on the same page: the pager is asked again.
    assert_eq!(pager_fault(&mut h, C, a + 8, 2), Err(Unresolved::Deferred));
    assert_eq!(h.core.stats(Some(P)).unwrap().pager_pending, 1);
    let g = pager_wait_as(&mut h, P, pg, 11).unwrap().expect("a new fault for the same page");
    assert_eq!((g.client, g.offset), (C, 0));
    h.core.pager_reply(P, g.token, PagerAnswer::Zero, &[]).unwrap();
    assert_eq!(delivered(&mut h), vec![(2, None)]);
    assert_eq!(h.read_u64(C, a).unwrap(), 0);
    assert_eq!(h.core.stats(Some(C)).unwrap().slots_charged, before.slots_charged);
    pager_settled(&mut h);
}

/// The pager's waiting thread is gone when a fault comes (the reply on its saved cap
/// fails): the fault stays queued for the next `PagerWait`, and the faulting thread is
/// resumed when it is answered.
#[test]
fn a_fault_whose_delivery_fails_waits_for_the_next_pager_wait() {
    let mut h = pager_harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    let a = pager_area(&mut h, C, pg, 2);
    assert_eq!(pager_wait_as(&mut h, P, pg, 10), Ok(None), "the pager waits");
    h.core.kernel_mut().fail_nth_op(Op::ReplySaved, 0, KernelError::InvalidCapability);
    assert_eq!(pager_fault(&mut h, C, a + PAGE, 1), Err(Unresolved::Deferred));
    h.core.kernel_mut().clear_injections();
    assert!(delivered(&mut h).is_empty(), "nothing reached the pager");
    assert_eq!(h.core.stats(Some(P)).unwrap().slots_charged, 0, "its dead waiter is dropped");
    assert_eq!(h.core.stats(Some(P)).unwrap().pager_pending, 1);
    let f = pager_wait_as(&mut h, P, pg, 11).unwrap().expect("the fault is still queued");
    assert_eq!((f.client, f.offset), (C, PAGE));
    h.core.pager_reply(P, f.token, PagerAnswer::Zero, &[]).unwrap();
    assert_eq!(delivered(&mut h), vec![(1, None)]);
    assert_eq!(h.read_u64(C, a + PAGE).unwrap(), 0);
    pager_settled(&mut h);
}

// ---- admin.rs `valid_client` -----------------------------------------------------------

const LO: u32 = 10;
const HI: u32 = 20;
/// An administrator whose id lies inside `[LO, HI)`.
const INNER_ADMIN: u32 = 15;

fn admin_harness() -> H {
    H::with(ModelConfig::riscv64(64 * MB), |c| {
        c.client_ids = (LO, HI);
        c.admins = vec![ADMIN, INNER_ADMIN];
    })
}

fn user(uid: u32) -> Cred {
    Cred { uid, gid: uid }
}

/// `CreateSpace`: ids `LO` and `HI - 1` work; `LO - 1`, `HI` and an administrator's id are
/// EINVAL with nothing created.
#[test]
fn create_space_accepts_exactly_the_configured_client_ids() {
    let mut h = admin_harness();
    let boot = h.core.stats(None).unwrap();
    for bad in [LO - 1, HI, INNER_ADMIN, ADMIN, HI + 1, u32::MAX] {
        assert_eq!(h.core.admin_create(bad, user(1000), QUOTA), Err(Errno::Inval), "id {bad}");
        assert!(!h.core.has_space(bad), "id {bad}");
    }
    let s = h.core.stats(None).unwrap();
    assert_eq!((s.spaces, s.frames_in_use, s.slots_in_use), (boot.spaces, boot.frames_in_use, boot.slots_in_use));
    h.core.admin_create(LO, user(1000), QUOTA).expect("lo is a client id");
    h.core.admin_create(HI - 1, user(1000), QUOTA).expect("hi - 1 is a client id");
    assert_eq!(h.core.stats(None).unwrap().spaces, boot.spaces + 2);
    // Through the protocol too.
    let req = |client| Request::CreateSpace { client, uid: 1000, gid: 1000, quota_pages: QUOTA };
    assert_eq!(h.core.dispatch(ADMIN, &req(HI), &mut []).reply, Reply::Err(Errno::Inval));
    assert_eq!(h.core.dispatch(ADMIN, &req(INNER_ADMIN), &mut []).reply, Reply::Err(Errno::Inval));
    let ok = h.core.dispatch(ADMIN, &req(LO + 1), &mut []);
    assert_eq!(ok.reply, Reply::Ok(Value::Unit));
    assert!(ok.cap.is_some(), "the VSpace cap goes with the reply");
    h.check();
}

/// `Clone`: the same bounds for the child id.
#[test]
fn clone_accepts_exactly_the_configured_client_ids() {
    let mut h = admin_harness();
    h.core.admin_create(LO, user(1000), QUOTA).unwrap();
    let a = h.core.mmap(LO, &MmapArgs::anon(PAGE, Prot::RW)).unwrap();
    h.write_u64(LO, a, 77).unwrap();
    let spaces = h.core.stats(None).unwrap().spaces;
    for bad in [LO - 1, HI, INNER_ADMIN, ADMIN, u32::MAX] {
        assert_eq!(h.core.admin_clone(LO, bad, QUOTA), Err(Errno::Inval), "child id {bad}");
        assert!(!h.core.has_space(bad), "child id {bad}");
    }
    assert_eq!(h.core.stats(None).unwrap().spaces, spaces);
    h.core.admin_clone(LO, HI - 1, QUOTA).expect("hi - 1 is a client id");
    assert_eq!(h.read_u64(HI - 1, a).unwrap(), 77, "a real clone");
    h.core.admin_destroy(LO).unwrap();
    h.core.admin_clone(HI - 1, LO, QUOTA).expect("lo is a client id");
    assert_eq!(h.read_u64(LO, a).unwrap(), 77);
    // Through the protocol too.
    let req = |child| Request::Clone { source: Target::Client(LO), child, quota_pages: QUOTA };
    assert_eq!(h.core.dispatch(ADMIN, &req(HI), &mut []).reply, Reply::Err(Errno::Inval));
    assert_eq!(h.core.dispatch(ADMIN, &req(LO - 1), &mut []).reply, Reply::Err(Errno::Inval));
    assert_eq!(h.core.dispatch(ADMIN, &req(INNER_ADMIN), &mut []).reply, Reply::Err(Errno::Inval));
    // A clone takes steps (`EAGAIN` until the last).
    let reply = loop {
        match h.core.dispatch(ADMIN, &req(LO + 1), &mut []).reply {
            Reply::Err(Errno::Again) => {}
            r => break r,
        }
    };
    assert_eq!(reply, Reply::Ok(Value::Unit));
    assert_eq!(h.read_u64(LO + 1, a).unwrap(), 77);
    h.check();
}
