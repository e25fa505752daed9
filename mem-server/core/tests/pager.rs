//! Pagers (`pager.rs`): the state machine on the model. The tests play the kernel's part
//! of IPC: `set_caller` names the thread whose fault or request the server handles, and
//! `take_delivered` shows what was sent on saved reply caps (`None`: a faulting thread
//! resumed; `Some(reply)`: a `PagerWait` answered).
mod common;
use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Access, Errno, Prot, Unresolved};
use mem_model::ModelConfig;
use mem_protocol::system::{UNRESOLVED_NO_MEMORY, UNRESOLVED_PAGER};
use mem_protocol::{Backing, BufRef, PagerAnswer, Placement, Reply, Value};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;
/// Pager owner, consumer, another consumer, a stranger (other uid).
const P: u32 = 1;
const C: u32 = 2;
const D: u32 = 3;
const X: u32 = 4;

fn harness() -> H {
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| c.large_pages = false);
    h.client(P, 1000, 1000, 4096);
    h.client(C, 1000, 1000, 4096);
    h.client(D, 1000, 1000, 4096);
    h.client(X, 2000, 2000, 4096);
    h
}

fn page_of(index: u64) -> [u8; 4096] {
    let mut b = [0u8; 4096];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (index as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    b
}

fn copy() -> PagerAnswer {
    PagerAnswer::Copy(BufRef::new(0, 4096))
}

#[test]
fn faults_go_to_the_pager_and_supplied_pages_are_mapped_and_charged() {
    let mut h = harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    let a = pager_area(&mut h, C, pg, 8);
    let charged = h.core.stats(Some(C)).unwrap().charged_pages;
    // Queued before the pager waits: the wait returns it at once.
    assert_eq!(pager_fault(&mut h, C, a + 3 * PAGE + 5, 100), Err(Unresolved::Deferred));
    assert_eq!(h.core.stats(Some(P)).unwrap().pager_pending, 1);
    let f = pager_wait_as(&mut h, P, pg, 200).unwrap().expect("queued fault");
    assert_eq!((f.pager, f.client, f.offset, f.access), (pg, C, 3 * PAGE, Access::Read));
    assert!(delivered(&mut h).is_empty(), "the client still waits");
    h.core.pager_reply(P, f.token, copy(), &page_of(3)).unwrap();
    assert_eq!(delivered(&mut h), vec![(100, None)], "the faulting thread resumed");
    assert_eq!(h.read(C, a + 3 * PAGE, 4096).unwrap(), page_of(3).to_vec());
    assert_eq!(h.core.stats(Some(C)).unwrap().charged_pages, charged + 1 + 2, "the page and its tables");
    // The pager waits first: the next fault is sent to it through its saved reply cap.
    assert_eq!(pager_wait_as(&mut h, P, pg, 201), Ok(None));
    assert_eq!(pager_fault(&mut h, C, a, 101), Err(Unresolved::Deferred));
    let d = delivered(&mut h);
    let f = match d.as_slice() {
        [(201, Some(Reply::Ok(Value::PagerFault(f))))] => *f,
        other => panic!("{other:?}"),
    };
    assert_eq!(f.offset, 0);
    h.core.pager_reply(P, f.token, PagerAnswer::Zero, &[]).unwrap();
    assert_eq!(delivered(&mut h), vec![(101, None)]);
    assert_eq!(h.read_u64(C, a).unwrap(), 0);
    // An answered fault is gone.
    assert_eq!(h.core.pager_reply(P, f.token, PagerAnswer::Zero, &[]), Err(Errno::NoEnt));
    // Pages supplied are private pages: written, read back, unmapped and freed as usual.
    h.write_u64(C, a + 3 * PAGE, 0xfeed).unwrap();
    assert_eq!(h.read_u64(C, a + 3 * PAGE).unwrap(), 0xfeed);
    pager_settled(&mut h);
    h.core.munmap(C, a, 8 * PAGE).unwrap();
    assert_eq!(h.core.stats(Some(C)).unwrap().charged_pages, charged + 2);
    pager_settled(&mut h);
}

#[test]
fn a_page_is_asked_for_once_and_every_waiting_thread_resumes() {
    let mut h = harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    let a = pager_area(&mut h, C, pg, 4);
    assert_eq!(pager_fault(&mut h, C, a + PAGE, 1), Err(Unresolved::Deferred));
    assert_eq!(pager_fault(&mut h, C, a + PAGE + 8, 2), Err(Unresolved::Deferred));
    // Faults of several clients queue in order.
    let b = pager_area(&mut h, D, pg, 4);
    assert_eq!(pager_fault(&mut h, D, b, 3), Err(Unresolved::Deferred));
    assert_eq!(h.core.stats(Some(P)).unwrap().pager_pending, 2);
    let f1 = pager_wait_as(&mut h, P, pg, 10).unwrap().unwrap();
    let f2 = pager_wait_as(&mut h, P, pg, 11).unwrap().unwrap();
    assert_eq!((f1.client, f1.offset, f2.client, f2.offset), (C, PAGE, D, 0));
    assert_eq!(pager_wait_as(&mut h, P, pg, 12), Ok(None), "nothing else queued: the pager waits");
    assert_eq!(pager_wait_as(&mut h, P, pg, 13), Err(Errno::Busy), "one waiter at a time");
    h.core.pager_reply(P, f1.token, copy(), &page_of(1)).unwrap();
    let mut d = delivered(&mut h);
    d.sort_by_key(|x| x.0);
    assert_eq!(d, vec![(1, None), (2, None)]);
    h.core.pager_reply(P, f2.token, copy(), &page_of(9)).unwrap();
    assert_eq!(delivered(&mut h), vec![(3, None)]);
    assert_eq!(h.read(D, b, 16).unwrap(), page_of(9)[..16].to_vec());
    // The waiting pager is still waiting; its owner's destruction drops it.
    h.core.destroy_space(P).unwrap();
    pager_settled(&mut h);
}

#[test]
fn fail_reports_the_fault_and_the_thread_stays_stopped() {
    let mut h = harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    let a = pager_area(&mut h, C, pg, 2);
    let before = h.core.stats(Some(C)).unwrap();
    assert_eq!(pager_fault(&mut h, C, a, 5), Err(Unresolved::Deferred));
    let f = pager_wait_as(&mut h, P, pg, 6).unwrap().unwrap();
    h.core.pager_reply(P, f.token, PagerAnswer::Fail, &[]).unwrap();
    assert!(delivered(&mut h).is_empty(), "not resumed");
    assert!(h.core.take_notes_raised(), "the administrator is told");
    let n = h.core.take_note().unwrap();
    assert_eq!((n.client, n.addr, u64::from(n.reason)), (C, a, UNRESOLVED_PAGER));
    let after = h.core.stats(Some(C)).unwrap();
    assert_eq!(after.faults_unresolved, before.faults_unresolved + 1);
    assert_eq!((after.slots_charged, after.meta_bytes), (before.slots_charged, before.meta_bytes), "charges back");
    pager_settled(&mut h);
}

#[test]
fn pager_death_reports_pending_faults_and_later_ones() {
    let mut h = harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    let a = pager_area(&mut h, C, pg, 4);
    assert_eq!(pager_fault(&mut h, C, a, 1), Err(Unresolved::Deferred));
    let handed = pager_wait_as(&mut h, P, pg, 2).unwrap().unwrap();
    assert_eq!(pager_fault(&mut h, C, a + PAGE, 3), Err(Unresolved::Deferred));
    h.core.destroy_space(P).unwrap();
    assert!(delivered(&mut h).is_empty());
    let n = h.core.take_note().unwrap();
    assert_eq!((n.client, u64::from(n.reason)), (C, UNRESOLVED_PAGER));
    // Gone for good: an answer is refused, later faults are reported at once.
    assert_eq!(h.core.pager_reply(P, handed.token, PagerAnswer::Zero, &[]), Err(Errno::NoEnt));
    assert_eq!(pager_fault(&mut h, C, a + 2 * PAGE, 4), Err(Unresolved::Pager));
    pager_settled(&mut h);
}

#[test]
fn an_answer_for_a_page_that_went_away_resumes_the_thread_and_costs_nothing() {
    let mut h = harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    let a = pager_area(&mut h, C, pg, 4);
    let before = h.core.stats(Some(C)).unwrap();
    assert_eq!(pager_fault(&mut h, C, a + PAGE, 1), Err(Unresolved::Deferred));
    let f = pager_wait_as(&mut h, P, pg, 2).unwrap().unwrap();
    // The administrator unmaps the range meanwhile (another thread could too).
    h.core.munmap(C, a, 4 * PAGE).unwrap();
    assert_eq!(h.core.pager_reply(P, f.token, copy(), &page_of(1)), Err(Errno::NoEnt));
    assert_eq!(delivered(&mut h), vec![(1, None)], "it retries and faults on what is there now");
    assert_eq!(pager_fault(&mut h, C, a + PAGE, 1), Err(Unresolved::NoArea));
    // Re-mapped as anonymous memory meanwhile: the pager's answer does not land there.
    let a2 = pager_area(&mut h, C, pg, 1);
    assert_eq!(pager_fault(&mut h, C, a2, 3), Err(Unresolved::Deferred));
    let f = pager_wait_as(&mut h, P, pg, 4).unwrap().unwrap();
    h.core.mmap(C, &MmapArgs::anon(PAGE, Prot::RW).at(a2, Placement::Fixed)).unwrap();
    assert_eq!(h.core.pager_reply(P, f.token, copy(), &page_of(2)), Err(Errno::NoEnt));
    assert_eq!(delivered(&mut h), vec![(3, None)]);
    assert_eq!(h.read_u64(C, a2).unwrap(), 0, "zero-filled anonymous page, not the pager's");
    h.core.munmap(C, a2, PAGE).unwrap();
    // Re-mapped from the same pager at another offset: the answer was for the old one.
    let big = pager_area(&mut h, C, pg, 4);
    assert_eq!(pager_fault(&mut h, C, big + 2 * PAGE, 5), Err(Unresolved::Deferred));
    let f = pager_wait_as(&mut h, P, pg, 6).unwrap().unwrap();
    assert_eq!(f.offset, 2 * PAGE);
    h.core.munmap(C, big, 4 * PAGE).unwrap();
    let mut m = MmapArgs::anon(2 * PAGE, Prot::RW).at(big + PAGE, Placement::Fixed);
    m.backing = Backing::Pager { id: pg };
    h.core.mmap(C, &m).unwrap();
    assert_eq!(h.core.pager_reply(P, f.token, copy(), &page_of(2)), Err(Errno::NoEnt), "page at offset PAGE now");
    assert_eq!(delivered(&mut h), vec![(5, None)]);
    h.core.munmap(C, big + PAGE, 2 * PAGE).unwrap();
    let after = h.core.stats(Some(C)).unwrap();
    // Only the page tables the anonymous page needed stay (as after any munmap).
    assert_eq!((after.charged_pages, after.slots_charged), (before.charged_pages + 2, before.slots_charged));
    pager_settled(&mut h);
}

#[test]
fn the_faulting_clients_quota_takes_the_page_or_the_fault_is_reported() {
    let mut h = harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    // Quota: the VSpace (2), two tables (2) and one page.
    h.client(9, 1000, 1000, 5);
    let a = pager_area(&mut h, 9, pg, 4);
    assert_eq!(pager_fault(&mut h, 9, a, 1), Err(Unresolved::Deferred));
    let f = pager_wait_as(&mut h, P, pg, 2).unwrap().unwrap();
    h.core.pager_reply(P, f.token, copy(), &page_of(0)).unwrap();
    assert_eq!(delivered(&mut h), vec![(1, None)]);
    assert_eq!(h.core.stats(Some(9)).unwrap().charged_pages, 5);
    assert_eq!(pager_fault(&mut h, 9, a + PAGE, 3), Err(Unresolved::Deferred));
    let f = pager_wait_as(&mut h, P, pg, 4).unwrap().unwrap();
    assert_eq!(h.core.pager_reply(P, f.token, copy(), &page_of(1)), Err(Errno::NoMem));
    assert!(delivered(&mut h).is_empty());
    let n = h.core.take_note().unwrap();
    assert_eq!((n.client, u64::from(n.reason)), (9, UNRESOLVED_NO_MEMORY));
    assert_eq!(h.core.stats(Some(9)).unwrap().charged_pages, 5, "never over quota");
    pager_settled(&mut h);
}

#[test]
fn only_the_owner_serves_and_the_mode_decides_who_maps() {
    let mut h = harness();
    let pg = h.core.pager_create(P, 0o600).unwrap();
    // Same uid maps; another uid does not (0600), nor shared, nor anything for a missing pager.
    let a = pager_area(&mut h, C, pg, 2);
    let mut m = MmapArgs::anon(PAGE, Prot::RW);
    m.backing = Backing::Pager { id: pg };
    assert_eq!(h.core.mmap(X, &m), Err(Errno::Acces));
    m.shared = true;
    assert_eq!(h.core.mmap(C, &m), Err(Errno::Inval));
    m.shared = false;
    m.backing = Backing::Pager { id: pg + 100 };
    assert_eq!(h.core.mmap(C, &m), Err(Errno::NoEnt));
    let open = h.core.pager_create(P, 0o602).unwrap();
    m.backing = Backing::Pager { id: open };
    let x = h.core.mmap(X, &m).unwrap();
    // Only the owner waits and answers.
    assert_eq!(pager_fault(&mut h, C, a, 1), Err(Unresolved::Deferred));
    h.core.kernel_mut().set_caller(Some(2));
    assert_eq!(h.core.pager_wait(C, pg), Err(Errno::Perm));
    assert_eq!(h.core.pager_wait(P, pg + 100), Err(Errno::NoEnt));
    h.core.kernel_mut().set_caller(None);
    let f = pager_wait_as(&mut h, P, pg, 3).unwrap().unwrap();
    assert_eq!(h.core.pager_reply(C, f.token, PagerAnswer::Zero, &[]), Err(Errno::Perm));
    assert_eq!(h.core.pager_reply(P, f.token, copy(), &[0; 100]), Err(Errno::Inval), "a page is 4 KiB");
    assert!(delivered(&mut h).is_empty(), "refused answers change nothing");
    h.core.pager_reply(P, f.token, copy(), &page_of(7)).unwrap();
    assert_eq!(h.read(C, a, 8).unwrap(), page_of(7)[..8].to_vec());
    // Populate leaves pager areas alone (their pages come from faults only).
    h.core.populate(X, x, PAGE).unwrap();
    assert!(!h.accessible(X, x, Access::Read));
    // Too many pagers.
    for _ in 2..mem_core::pager::MAX_PAGERS {
        h.core.pager_create(P, 0o600).unwrap();
    }
    assert_eq!(h.core.pager_create(P, 0o600), Err(Errno::NFile));
    pager_settled(&mut h);
    h.core.destroy_space(P).unwrap();
    assert_eq!(h.core.stats(Some(X)).unwrap().slots_charged, 0);
    pager_settled(&mut h);
}

#[test]
fn a_consumer_destroyed_while_waiting_leaves_nothing_behind() {
    let mut h = harness();
    let boot = (h.core.stats(None).unwrap().frames_in_use, h.core.stats(None).unwrap().slots_in_use);
    h.client(7, 1000, 1000, 4096);
    let pg = h.core.pager_create(P, 0o600).unwrap();
    let a = pager_area(&mut h, 7, pg, 4);
    assert_eq!(pager_fault(&mut h, 7, a, 1), Err(Unresolved::Deferred));
    assert_eq!(pager_fault(&mut h, 7, a + PAGE, 2), Err(Unresolved::Deferred));
    let f = pager_wait_as(&mut h, P, pg, 3).unwrap().unwrap();
    h.core.destroy_space(7).unwrap();
    assert_eq!(h.core.pager_reply(P, f.token, PagerAnswer::Zero, &[]), Err(Errno::NoEnt));
    assert_eq!(pager_wait_as(&mut h, P, pg, 4), Ok(None), "the other fault went with its client");
    assert!(delivered(&mut h).is_empty());
    h.core.destroy_space(P).unwrap();
    pager_settled(&mut h);
    let s = h.core.stats(None).unwrap();
    // P is gone (its frames with it); the others are as before.
    assert!(s.frames_in_use <= boot.0 && s.slots_in_use <= boot.1, "{s:?} vs {boot:?}");
}

#[test]
fn the_pager_protocol_through_dispatch() {
    use mem_protocol::Request;
    let mut h = harness();
    let id = match h.core.dispatch(P, &Request::PagerCreate { mode: 0o600 }, &mut []).reply {
        Reply::Ok(Value::Id(id)) => id,
        r => panic!("{r:?}"),
    };
    let a = pager_area(&mut h, C, id, 1);
    // A wait with nothing queued is held: no reply now.
    h.core.kernel_mut().set_caller(Some(50));
    let w = h.core.dispatch(P, &Request::PagerWait { id }, &mut []);
    assert!(w.held);
    assert_eq!(pager_fault(&mut h, C, a, 51), Err(Unresolved::Deferred));
    let token = match delivered(&mut h).as_slice() {
        [(50, Some(Reply::Ok(Value::PagerFault(f))))] => f.token,
        d => panic!("{d:?}"),
    };
    // The page's bytes come from the pager's shared buffer.
    let mut buf = vec![0u8; 3 * 4096];
    buf[4096..8192].copy_from_slice(&page_of(5));
    let req = Request::PagerReply { token, answer: PagerAnswer::Copy(BufRef::new(4096, 4096)) };
    let r = h.core.dispatch(P, &req, &mut buf);
    assert_eq!((r.reply, r.held), (Reply::Ok(Value::Unit), false));
    assert_eq!(delivered(&mut h), vec![(51, None)]);
    assert_eq!(h.read(C, a, 4096).unwrap(), page_of(5).to_vec());
    // A buffer reference outside the buffer is EFAULT, before anything changes.
    let bad = Request::PagerReply { token: 0, answer: PagerAnswer::Copy(BufRef::new(8192, 8192)) };
    assert_eq!(h.core.dispatch(P, &bad, &mut buf).reply, Reply::Err(Errno::Fault));
    pager_settled(&mut h);
}

/// Attack: a client whose threads fault on ever more pages of a pager area (the pager never
/// answers) makes the server hold a saved reply cap and a record per fault. Both are charged
/// to that client: at its slot limit the next fault is unresolved (NoMemory) with nothing
/// held for it; the pager and other clients are unaffected, and everything is given back
/// when the client goes.
#[test]
fn faults_waiting_on_a_pager_are_bounded_by_the_faulting_clients_budget() {
    let mut h = harness();
    let boot = h.core.stats(None).unwrap();
    let pg = h.core.pager_create(P, 0o606).unwrap();
    h.client(8, 2000, 2000, 16);
    let limit = h.core.stats(Some(8)).unwrap().slot_limit;
    let a = pager_area(&mut h, 8, pg, limit + 8);
    let mut held = 0;
    for i in 0..limit + 8 {
        match pager_fault(&mut h, 8, a + i * PAGE, 1000 + i) {
            Err(Unresolved::Deferred) => held += 1,
            Err(Unresolved::NoMemory) => break,
            r => panic!("fault {i}: {r:?}"),
        }
    }
    assert_eq!(held, limit, "faults wait up to the slot limit, not beyond");
    let s = h.core.stats(Some(8)).unwrap();
    assert_eq!(held, s.slots_charged, "one saved reply cap per waiting fault");
    assert!(s.slots_charged <= s.slot_limit && s.meta_bytes <= s.meta_limit, "{s:?}");
    assert_eq!(h.core.kernel().saved_replies() as u64, held);
    h.check();
    // The pager's owner and another consumer still work.
    let b = pager_area(&mut h, C, pg, 1);
    assert_eq!(pager_fault(&mut h, C, b, 1), Err(Unresolved::Deferred));
    let mut served = 0;
    while let Ok(Some(f)) = pager_wait_as(&mut h, P, pg, 2) {
        if f.client == C {
            h.core.pager_reply(P, f.token, PagerAnswer::Zero, &[]).unwrap();
            served += 1;
            break;
        }
    }
    assert_eq!(served, 1);
    assert_eq!(h.read_u64(C, b).unwrap(), 0);
    // The attacker goes: every saved cap and record with it.
    h.core.destroy_space(8).unwrap();
    pager_settled(&mut h);
    h.core.destroy_space(C).unwrap();
    h.core.destroy_space(P).unwrap();
    pager_settled(&mut h);
    let s = h.core.stats(None).unwrap();
    assert!(s.slots_in_use <= boot.slots_in_use, "{s:?} vs {boot:?}");
}

#[test]
fn a_pager_with_many_queued_faults_goes_in_bounded_steps() {
    let mut h = harness();
    let id = h.core.pager_create(P, 0o666).unwrap();
    let a = pager_area(&mut h, C, id, 300);
    for i in 0..300 {
        assert_eq!(pager_fault(&mut h, C, a + i * PAGE, 1000 + i), Err(Unresolved::Deferred));
    }
    assert_eq!(h.core.kernel().saved_replies(), 300);
    let destroy = mem_protocol::Request::DestroySpace { client: P };
    let mut steps = 0;
    loop {
        let calls = h.core.kernel().calls();
        let r = h.core.dispatch(ADMIN, &destroy, &mut []).reply;
        assert!(h.core.kernel().calls() - calls <= 2 * mem_core::lifecycle::PAGER_STEP as u64 + 16);
        h.core.check_invariants().unwrap();
        steps += 1;
        if r != Reply::Err(Errno::Again) {
            assert_eq!(r, Reply::Ok(Value::Unit));
            break;
        }
    }
    assert!(steps > 300 / mem_core::lifecycle::PAGER_STEP as u64, "{steps} steps");
    // The faults were reported, the threads stay stopped, nothing is left saved.
    assert!(delivered(&mut h).is_empty());
    pager_settled(&mut h);
}
