//! Clone in bounded steps (`clone.rs`, `freeze.rs`): the administrator's `Clone` is
//! answered `EAGAIN` until the child is complete, each step doing a bounded amount of
//! kernel work; the parent is frozen meanwhile (its own requests held and answered `EAGAIN`
//! when the clone ends, the administrator's on it `EBUSY`), other clients are served; a
//! clone that fails or loses its parent or child half way leaves nothing behind.
mod common;

use common::*;
use mem_core::clone::CLONE_PAGE_COST;
use mem_core::mmap::MmapArgs;
use mem_core::step::STEP_PAGES;
use mem_core::{Errno, Prot, Unresolved};
use mem_protocol::{Placement, Reply, Request, Target, Value};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;
const BASE: u64 = 0x10_0000_0000;
const PARENT: u32 = 1;
const OTHER: u32 = 2;
const CHILD: u32 = 3;

fn harness() -> H {
    let mut h = H::with(mem_model::ModelConfig::riscv64(256 * MB), |c| c.large_pages = false);
    h.client(PARENT, 1000, 1000, 1 << 20);
    h.client(OTHER, 1000, 1000, 1 << 20);
    h
}

fn ask(h: &mut H, caller: u32, req: &Request) -> Result<Value, Errno> {
    match h.core.dispatch(caller, req, &mut []).reply {
        Reply::Ok(v) => Ok(v),
        Reply::Err(e) => Err(e),
        r => panic!("unexpected reply {r:?}"),
    }
}

/// `pages` pages at `at` holding `tag + i`, and `areas` one-page areas above them (every
/// other page, so they do not merge).
fn fill(h: &mut H, c: u32, at: u64, pages: u64, areas: u64, tag: u64) {
    h.core.mmap(c, &MmapArgs::anon(pages * PAGE, Prot::RW).at(at, Placement::FixedNoReplace)).unwrap();
    for i in 0..pages {
        h.write_u64(c, at + i * PAGE, tag + i).unwrap();
    }
    let top = at + pages * PAGE + PAGE;
    for i in 0..areas {
        let a = top + 2 * i * PAGE;
        h.core.mmap(c, &MmapArgs::anon(PAGE, Prot::RW).at(a, Placement::FixedNoReplace)).unwrap();
        h.write_u64(c, a, tag + 100_000 + i).unwrap();
    }
}

fn clone_req(quota: u64) -> Request {
    Request::Clone { source: Target::Client(PARENT), child: CHILD, quota_pages: quota }
}

/// One step of the clone: its answer, checking its kernel work and the invariants.
fn step(h: &mut H, quota: u64) -> Result<Value, Errno> {
    let calls = h.core.kernel().calls();
    let r = ask(h, ADMIN, &clone_req(quota));
    let spent = h.core.kernel().calls() - calls;
    // A page costs a remap, a cap copy and a map (plus tables now and then).
    assert!(spent <= 2 * STEP_PAGES + 32, "a clone step made {spent} kernel calls");
    h.core.check_invariants().unwrap_or_else(|e| panic!("after a clone step: {e}"));
    r
}

#[test]
fn clone_goes_in_steps_and_copies_everything() {
    let mut h = harness();
    h.client(ADMIN, 0, 0, 1 << 20);
    fill(&mut h, PARENT, BASE, 600, 40, 1);
    fill(&mut h, OTHER, BASE, 4, 0, 7);
    let frames = h.core.stats(None).unwrap().frames_in_use;
    let mut steps = 0;
    let mut mapped = 0;
    let r = loop {
        let r = step(&mut h, 1 << 20);
        steps += 1;
        if r != Err(Errno::Again) {
            break r;
        }
        // Each step copies a bounded number of pages; others are served in between.
        let now = h.core.mapped_pages(CHILD);
        assert!(now - mapped <= STEP_PAGES / CLONE_PAGE_COST, "one step cloned {} pages", now - mapped);
        mapped = now;
        h.write_u64(OTHER, BASE, steps).unwrap();
        assert_eq!(h.read_u64(OTHER, BASE).unwrap(), steps);
    };
    assert_eq!(r, Ok(Value::Unit));
    assert!(steps >= 640 / (STEP_PAGES / CLONE_PAGE_COST), "{steps} steps");
    // The child sees everything; the pages are shared until written.
    for i in [0, 1, 299, 599] {
        assert_eq!(h.read_u64(CHILD, BASE + i * PAGE).unwrap(), 1 + i);
    }
    let top = BASE + 601 * PAGE;
    for i in [0, 17, 39] {
        assert_eq!(h.read_u64(CHILD, top + 2 * i * PAGE).unwrap(), 100_001 + i);
    }
    let shared = h.core.stats(None).unwrap().frames_in_use - frames;
    assert!(shared < 64, "the clone took {shared} frames: data must be shared");
    h.write_u64(CHILD, BASE, 99).unwrap();
    assert_eq!(h.read_u64(PARENT, BASE).unwrap(), 1);
    assert_eq!(h.core.layout(PARENT).unwrap(), h.core.layout(CHILD).unwrap());
    h.check();
}

#[test]
fn the_parent_is_frozen_while_it_is_cloned() {
    let mut h = harness();
    h.client(ADMIN, 0, 0, 1 << 20);
    fill(&mut h, PARENT, BASE, 300, 0, 1);
    assert_eq!(step(&mut h, 1 << 20), Err(Errno::Again));
    // The parent's request that changes its space waits (its reply cap is saved).
    let mmap = Request::Mmap {
        target: Target::Own,
        addr: 0,
        len: PAGE,
        prot: Prot::RW,
        max_prot: Prot::RWX,
        placement: Placement::Anywhere,
        share: mem_protocol::Share::Private,
        backing: mem_protocol::Backing::Anonymous,
        populate: false,
    };
    h.core.kernel_mut().set_caller(Some(11));
    let a = h.core.dispatch(PARENT, &mmap, &mut []);
    h.core.kernel_mut().set_caller(None);
    assert!(a.held, "the parent's mmap waits: {a:?}");
    h.core.check_invariants().unwrap();
    // What changes nothing is served; the administrator may not change it (nor the child).
    assert!(matches!(ask(&mut h, PARENT, &Request::Query { target: Target::Own, addr: BASE }), Ok(Value::Query(_))));
    let unmap = |c| Request::Munmap { target: Target::Client(c), addr: BASE, len: PAGE };
    assert_eq!(ask(&mut h, ADMIN, &unmap(PARENT)), Err(Errno::Busy));
    assert_eq!(ask(&mut h, ADMIN, &unmap(CHILD)), Err(Errno::Busy));
    // Neither may be cloned meanwhile.
    let again = Request::Clone { source: Target::Client(PARENT), child: 4, quota_pages: 1 << 20 };
    assert_eq!(ask(&mut h, ADMIN, &again), Err(Errno::Busy));
    let of_child = Request::Clone { source: Target::Client(CHILD), child: 4, quota_pages: 1 << 20 };
    assert_eq!(ask(&mut h, ADMIN, &of_child), Err(Errno::Busy));
    assert!(!h.core.has_space(4));
    // The parent's faults are still served: a write below the copy's progress stays the
    // parent's.
    h.write_u64(PARENT, BASE, 42).unwrap();
    assert!(delivered(&mut h).is_empty());
    while step(&mut h, 1 << 20) == Err(Errno::Again) {}
    assert_eq!(h.read_u64(CHILD, BASE).unwrap(), 1);
    assert_eq!(h.read_u64(PARENT, BASE).unwrap(), 42);
    // The waiting mmap is answered EAGAIN (sent again by the client library): it goes
    // through now.
    assert_eq!(delivered(&mut h), vec![(11, Some(Reply::Err(Errno::Again)))]);
    assert!(matches!(ask(&mut h, PARENT, &mmap), Ok(Value::Addr(_))));
    assert_eq!(ask(&mut h, ADMIN, &unmap(CHILD)), Ok(Value::Unit));
    assert_eq!(h.core.kernel().saved_replies(), 0);
    h.check();
}

#[test]
fn a_clone_that_runs_out_of_quota_half_way_leaves_nothing() {
    let mut h = harness();
    h.client(ADMIN, 0, 0, 1 << 20);
    fill(&mut h, PARENT, BASE, 500, 0, 1);
    let frames = h.core.stats(None).unwrap().frames_in_use;
    let slots = h.core.stats(None).unwrap().slots_free;
    let mut steps = 0;
    let r = loop {
        steps += 1;
        match step(&mut h, 200) {
            Err(Errno::Again) => {}
            r => break r,
        }
    };
    assert_eq!(r, Err(Errno::NoMem));
    assert!(steps > 2, "failed at step {steps}: the child got some pages first");
    assert!(!h.core.has_space(CHILD));
    assert_eq!(h.core.stats(None).unwrap().frames_in_use, frames);
    assert_eq!(h.core.stats(None).unwrap().slots_free, slots);
    // The parent thawed and its pages are its own again.
    h.write_u64(PARENT, BASE + 499 * PAGE, 5).unwrap();
    assert_eq!(h.read_u64(PARENT, BASE + 498 * PAGE).unwrap(), 499);
    assert_eq!(ask(&mut h, PARENT, &Request::Munmap { target: Target::Own, addr: BASE, len: PAGE }), Ok(Value::Unit));
    h.check();
}

#[test]
fn destroying_the_parent_or_the_child_half_way_ends_the_clone() {
    for victim in [PARENT, CHILD] {
        let mut h = harness();
        h.client(ADMIN, 0, 0, 1 << 20);
        fill(&mut h, PARENT, BASE, 300, 10, 1);
        let frames = h.core.stats(None).unwrap().frames_in_use;
        for _ in 0..3 {
            assert_eq!(step(&mut h, 1 << 20), Err(Errno::Again));
        }
        h.core.kernel_mut().set_caller(Some(5));
        let held = h.core.dispatch(PARENT, &Request::Munmap { target: Target::Own, addr: BASE, len: PAGE }, &mut []);
        h.core.kernel_mut().set_caller(None);
        assert!(held.held);
        let destroy = Request::DestroySpace { client: victim };
        while ask(&mut h, ADMIN, &destroy) == Err(Errno::Again) {
            h.core.check_invariants().unwrap();
        }
        assert!(!h.core.has_space(victim));
        // The waiting request is answered at once; the clone's next step says how it ended.
        assert_eq!(delivered(&mut h), vec![(5, Some(Reply::Err(Errno::Again)))]);
        if victim == PARENT {
            let r = loop {
                match step(&mut h, 1 << 20) {
                    Err(Errno::Again) => {}
                    r => break r,
                }
            };
            assert_eq!(r, Err(Errno::Srch));
            assert!(!h.core.has_space(CHILD));
            assert!(h.core.stats(None).unwrap().frames_in_use < frames - 300);
        } else {
            assert_eq!(h.core.stats(None).unwrap().frames_in_use, frames);
            assert_eq!(h.read_u64(PARENT, BASE + 299 * PAGE).unwrap(), 300);
            // A new clone of the parent starts afresh.
            while step(&mut h, 1 << 20) == Err(Errno::Again) {}
            assert_eq!(h.read_u64(CHILD, BASE + 299 * PAGE).unwrap(), 300);
        }
        assert_eq!(h.core.kernel().saved_replies(), 0);
        h.check();
    }
}

#[test]
fn a_frozen_client_that_cannot_hold_more_requests_gets_eagain_at_once() {
    let mut h = harness();
    h.client(ADMIN, 0, 0, 1 << 20);
    fill(&mut h, PARENT, BASE, 200, 0, 1);
    assert_eq!(step(&mut h, 1 << 20), Err(Errno::Again));
    let req = Request::Munmap { target: Target::Own, addr: BASE, len: PAGE };
    for t in 0..mem_core::freeze::MAX_HELD as u64 {
        h.core.kernel_mut().set_caller(Some(100 + t));
        assert!(h.core.dispatch(PARENT, &req, &mut []).held);
    }
    h.core.kernel_mut().set_caller(Some(99));
    let a = h.core.dispatch(PARENT, &req, &mut []);
    h.core.kernel_mut().set_caller(None);
    assert_eq!((a.held, a.reply), (false, Reply::Err(Errno::Again)));
    h.core.check_invariants().unwrap();
    while step(&mut h, 1 << 20) == Err(Errno::Again) {}
    assert_eq!(delivered(&mut h).len(), mem_core::freeze::MAX_HELD);
    assert_eq!(h.core.kernel().saved_replies(), 0);
    assert_eq!(h.read_u64(PARENT, BASE).unwrap(), 1);
    assert_eq!(h.read_u64(CHILD, BASE + 199 * PAGE), Ok(200));
    assert_eq!(h.read_u64(CHILD, BASE + 200 * PAGE), Err(Unresolved::NoArea));
    h.check();
}

#[test]
fn create_and_clone_make_the_shared_buffer_in_steps() {
    const BUF: u64 = 0x7010_0000;
    const PAGES: u64 = 24;
    let mut h = H::with(mem_model::ModelConfig::riscv64(256 * MB), |c| {
        c.large_pages = false;
        c.buffer = Some(mem_core::BufferConfig { vaddr: BUF, pages: PAGES, view: Some((0x9000_0000, 0x20_0000)) });
    });
    let create = Request::CreateSpace { client: PARENT, uid: 1000, gid: 1000, quota_pages: 1 << 16 };
    let mut steps = 0;
    let r = loop {
        let calls = h.core.kernel().calls();
        let r = h.core.dispatch(ADMIN, &create, &mut []);
        assert!(h.core.kernel().calls() - calls <= 4 * mem_core::buffer::BUFFER_STEP_PAGES + 16);
        h.core.check_invariants().unwrap();
        steps += 1;
        if r.reply != Reply::Err(Errno::Again) {
            break r;
        }
        assert!(!h.core.has_view(PARENT) || h.core.shared_buffer(PARENT).unwrap().len() < PAGES as usize);
    };
    assert_eq!(r.reply, Reply::Ok(Value::Unit));
    assert!(r.cap.is_some());
    assert_eq!(steps, 1 + PAGES.div_ceil(mem_core::buffer::BUFFER_STEP_PAGES));
    assert_eq!(h.core.shared_buffer(PARENT).unwrap().len(), PAGES as usize);
    assert_eq!(h.core.dispatch(ADMIN, &create, &mut []).reply, Reply::Err(Errno::Exist));
    h.write_u64(PARENT, BUF, 5).unwrap();
    fill(&mut h, PARENT, BASE, 100, 0, 1);
    // The child gets a buffer of its own, not a copy of the parent's.
    while step(&mut h, 1 << 16) == Err(Errno::Again) {}
    assert_eq!(h.core.shared_buffer(CHILD).unwrap().len(), PAGES as usize);
    assert!(h.core.shared_buffer(CHILD).unwrap().iter().all(|f| !h.core.shared_buffer(PARENT).unwrap().contains(f)));
    assert_eq!(h.read_u64(CHILD, BUF).unwrap(), 0);
    assert_eq!(h.read_u64(PARENT, BUF).unwrap(), 5);
    assert_eq!(h.read_u64(CHILD, BASE + 99 * PAGE).unwrap(), 100);
    h.check();
}
