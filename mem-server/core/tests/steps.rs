//! Bounded steps (`step.rs`): long requests through `dispatch` are done a step at a time —
//! `EAGAIN` until the last step — each step releasing or mapping at most `STEP_PAGES` page
//! entries (counted as kernel calls), each leaving a consistent state the whole operation
//! could have passed through; other clients are served between the steps; a request
//! abandoned half way leaves its prefix untouched and usable.
mod common;

use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::step::STEP_PAGES;
use mem_core::{Errno, Prot, Unresolved};
use mem_protocol::{Placement, Reply, Request, ShmKey, Target, Value};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;
const BASE: u64 = 0x10_0000_0000;

fn harness() -> H {
    let mut h = H::with(mem_model::ModelConfig::riscv64(256 * MB), |c| c.large_pages = false);
    h.client(ADMIN, 0, 0, 1 << 20);
    h.client(1, 1000, 1000, 1 << 20);
    h.client(2, 1000, 1000, 1 << 20);
    h
}

fn ask(h: &mut H, caller: u32, req: &Request) -> Result<Value, Errno> {
    match h.core.dispatch(caller, req, &mut []).reply {
        Reply::Ok(v) => Ok(v),
        Reply::Err(e) => Err(e),
        r => panic!("unexpected reply {r:?}"),
    }
}

/// Send `req` until it is done, checking every step: at most `STEP_PAGES` page entries of
/// kernel work (plus a few calls of fixed cost) and the invariants; `between` runs after
/// each step that answered EAGAIN. Returns (the final answer, steps taken).
fn stepped(h: &mut H, caller: u32, req: &Request, mut between: impl FnMut(&mut H)) -> (Result<Value, Errno>, u64) {
    let mut steps = 0;
    loop {
        let calls = h.core.kernel().calls();
        let r = ask(h, caller, req);
        let spent = h.core.kernel().calls() - calls;
        steps += 1;
        assert!(spent <= 2 * STEP_PAGES + 16, "step {steps} of {req:?}: {spent} kernel calls");
        h.core.check_invariants().unwrap_or_else(|e| panic!("after step {steps}: {e}"));
        match r {
            Err(Errno::Again) => between(h),
            r => return (r, steps),
        }
    }
}

fn fill(h: &mut H, c: u32, at: u64, pages: u64) {
    h.core.mmap(c, &MmapArgs::anon(pages * PAGE, Prot::RW).at(at, Placement::FixedNoReplace)).unwrap();
    for i in 0..pages {
        h.write_u64(c, at + i * PAGE, i + 1).unwrap();
    }
}

#[test]
fn munmap_of_many_pages_goes_in_steps_from_the_end() {
    let mut h = harness();
    fill(&mut h, 1, BASE, 1000);
    fill(&mut h, 2, BASE, 4);
    let req = Request::Munmap { target: Target::Own, addr: BASE, len: 1000 * PAGE };
    let mut last = 1000;
    let (r, steps) = stepped(&mut h, 1, &req, |h| {
        // What is left is a prefix, still readable; the other client is served meanwhile.
        let left = h.core.mapped_pages(1);
        assert!(left < last && last - left <= STEP_PAGES);
        last = left;
        assert_eq!(h.read_u64(1, BASE).unwrap(), 1);
        assert_eq!(h.read_u64(1, BASE + (left - 1) * PAGE).unwrap(), left);
        assert_eq!(h.read_u64(1, BASE + left * PAGE), Err(Unresolved::NoArea));
        h.write_u64(2, BASE, 7).unwrap();
    });
    assert_eq!(r, Ok(Value::Unit));
    assert_eq!(steps, 1000u64.div_ceil(STEP_PAGES));
    assert_eq!(h.core.mapped_pages(1), 0);
    assert_eq!(h.read_u64(1, BASE), Err(Unresolved::NoArea));
    h.check();
}

#[test]
fn munmap_over_many_areas_goes_in_steps() {
    let mut h = harness();
    // 300 one-page areas of alternating rights (never merged), one page apart.
    for i in 0..300u64 {
        let prot = if i % 2 == 0 { Prot::RW } else { Prot::READ };
        h.core.mmap(1, &MmapArgs::anon(PAGE, prot).at(BASE + 2 * i * PAGE, Placement::FixedNoReplace)).unwrap();
    }
    let before = h.core.layout(1).unwrap().len();
    let req = Request::Munmap { target: Target::Own, addr: BASE, len: 600 * PAGE };
    let (r, steps) = stepped(&mut h, 1, &req, |_| {});
    assert_eq!(r, Ok(Value::Unit));
    assert!(steps >= 300 / mem_core::step::STEP_AREAS, "{steps} steps for 300 areas");
    assert_eq!(h.core.layout(1).unwrap().len(), before - 300);
    h.check();
}

/// A munmap given up after one step: the rest of the range stays mapped and usable; the
/// client's next requests work; a later munmap of the rest finishes it.
#[test]
fn an_abandoned_munmap_leaves_a_usable_prefix() {
    let mut h = harness();
    fill(&mut h, 1, BASE, 300);
    let req = Request::Munmap { target: Target::Own, addr: BASE, len: 300 * PAGE };
    assert_eq!(ask(&mut h, 1, &req), Err(Errno::Again));
    let left = h.core.mapped_pages(1);
    assert_eq!(left, 300 - STEP_PAGES);
    let other = h.core.mmap(1, &MmapArgs::anon(8 * PAGE, Prot::RW)).unwrap();
    h.write_u64(1, other, 5).unwrap();
    h.write_u64(1, BASE + 10 * PAGE, 99).unwrap();
    h.check();
    h.core.munmap(1, BASE, left * PAGE).unwrap();
    assert_eq!(h.read_u64(1, BASE), Err(Unresolved::NoArea));
    assert_eq!(h.read_u64(1, other).unwrap(), 5);
    h.check();
}

#[test]
fn populate_reset_and_destroy_go_in_steps() {
    let mut h = harness();
    fill(&mut h, 2, BASE, 1);
    h.core.mmap(1, &MmapArgs::anon(500 * PAGE, Prot::RW).at(BASE, Placement::FixedNoReplace)).unwrap();
    let req = Request::Populate { target: Target::Own, addr: BASE, len: 500 * PAGE };
    let mut last = 0;
    let (r, steps) = stepped(&mut h, 1, &req, |h| {
        // Each step maps a bounded part (its work budget: fewer pages when frames must be
        // retyped or zeroed), and makes progress.
        let now = h.core.mapped_pages(1);
        assert!(now > last && now - last <= STEP_PAGES);
        last = now;
        h.write_u64(2, BASE, 1).unwrap();
    });
    assert_eq!(r, Ok(Value::Unit));
    assert!(steps >= 500u64.div_ceil(STEP_PAGES), "{steps} steps");
    assert_eq!(h.core.mapped_pages(1), 500);
    // A Populate of an overlapping range restarts from its own start.
    let req = Request::Populate { target: Target::Own, addr: BASE + 100 * PAGE, len: 400 * PAGE };
    assert_eq!(stepped(&mut h, 1, &req, |_| {}).0, Ok(Value::Unit));
    let (r, _) = stepped(&mut h, 1, &Request::Reset { target: Target::Own }, |_| {});
    assert_eq!(r, Ok(Value::Unit));
    assert_eq!(h.core.mapped_pages(1), 0);
    // The administrator's DestroySpace of a client with many pages: steps too.
    fill(&mut h, 2, BASE + 64 * MB, 400);
    let sys = h.core.stats(None).unwrap();
    let (r, steps) = stepped(&mut h, ADMIN, &Request::DestroySpace { client: 2 }, |h| {
        assert!(h.core.has_space(2), "the space goes in the last step");
    });
    assert_eq!(r, Ok(Value::Unit));
    assert!(steps > 400 / STEP_PAGES);
    assert!(!h.core.has_space(2));
    assert!(h.core.stats(None).unwrap().frames_in_use < sys.frames_in_use - 400);
    h.check();
}

#[test]
fn fixed_mmap_and_shmdt_over_many_pages_go_in_steps() {
    let mut h = harness();
    fill(&mut h, 1, BASE, 300);
    let req = Request::Mmap {
        target: Target::Own,
        addr: BASE,
        len: 300 * PAGE,
        prot: Prot::READ,
        max_prot: Prot::RWX,
        placement: Placement::Fixed,
        share: mem_protocol::Share::Private,
        backing: mem_protocol::Backing::Anonymous,
        populate: false,
    };
    let (r, steps) = stepped(&mut h, 1, &req, |_| {});
    assert_eq!(r, Ok(Value::Addr(BASE)));
    assert!(steps > 1);
    assert_eq!(h.read_u64(1, BASE + 5 * PAGE).unwrap(), 0, "fresh pages where the old ones were");
    assert_eq!(h.core.layout(1).unwrap().iter().filter(|(s, _, _)| *s == BASE).count(), 1);
    // A 300-page segment attached and filled, removed, detached in steps: it goes with
    // the last step.
    let id = h.core.shmget(2, ShmKey::Private, 300 * PAGE, true, false, 0o600).unwrap();
    let at = h.core.shmat(2, id, None, false).unwrap();
    for i in 0..300 {
        h.write_u64(2, at + i * PAGE, i).unwrap();
    }
    h.core.shm_remove(2, id).unwrap();
    let segments = h.core.stats(None).unwrap().shm_segments;
    let (r, steps) = stepped(&mut h, 2, &Request::ShmDt { addr: at }, |h| {
        assert_eq!(h.core.stats(None).unwrap().shm_segments, segments, "still attached in part");
    });
    assert_eq!(r, Ok(Value::Unit));
    assert!(steps > 1);
    assert_eq!(h.core.stats(None).unwrap().shm_segments, segments - 1);
    assert_eq!(ask(&mut h, 2, &Request::ShmDt { addr: at }), Err(Errno::Inval), "nothing attached there any more");
    h.check();
}

/// Stepping never splits a 2 MiB page that the whole operation would release whole: a
/// munmap of an area of 2 MiB pages releases one or more of them per step and maps nothing
/// (splitting one would map 512 small pages in one step).
#[test]
fn steps_release_2mib_pages_whole() {
    let mut h = H::with(mem_model::ModelConfig::aarch64(256 * MB), |c| c.large_pages = true);
    h.client(1, 1000, 1000, 1 << 20);
    let base = 0x40_0000_0000;
    h.core.mmap(1, &MmapArgs::anon(8 * MB, Prot::RW).at(base, Placement::FixedNoReplace)).unwrap();
    h.core.populate(1, base, 8 * MB).unwrap();
    assert_eq!(h.core.query(1, base).unwrap().page_size, mem_core::PageSize::Large);
    let maps = h.core.kernel().stats().page_map;
    let req = Request::Munmap { target: Target::Own, addr: base, len: 8 * MB };
    let (r, steps) = stepped(&mut h, 1, &req, |_| {});
    assert_eq!(r, Ok(Value::Unit));
    assert!(steps <= 4, "{steps} steps for four 2 MiB pages");
    assert_eq!(h.core.kernel().stats().page_map, maps, "no 2 MiB page was split");
    assert_eq!(h.core.mapped_pages(1), 0);
    h.check();
}

#[test]
fn destroy_gives_page_tables_back_a_few_at_a_time() {
    let mut h = harness();
    // One page in each of 60 different 2 MiB ranges: 60 leaf tables and their parents.
    for i in 0..60 {
        fill(&mut h, 1, BASE + i * 2 * MB, 1);
    }
    let frames = h.core.stats(None).unwrap().frames_in_use;
    let mut tables_seen = Vec::new();
    let (r, steps) = stepped(&mut h, ADMIN, &Request::DestroySpace { client: 1 }, |h| {
        tables_seen.push(h.core.stats(None).unwrap().frames_in_use);
    });
    assert_eq!(r, Ok(Value::Unit));
    // 60 one-page areas, 16 a step; then the tables, TABLE_STEP a step.
    assert!(steps >= 60 / 16 + 60 / mem_core::lifecycle::TABLE_STEP as u64, "{steps} steps");
    for w in tables_seen.windows(2) {
        assert!(w[0] - w[1] <= 16.max(mem_core::lifecycle::TABLE_STEP as u64));
    }
    assert!(h.core.stats(None).unwrap().frames_in_use < frames - 60);
    h.check();
}
