//! Dead objects released a slice at a time (`dying.rs`): the request that lets go of a
//! big object does not release its frames; they, the owner's charge and the shm limits
//! stay counted until `release_step` has dropped them all; memory refused meanwhile
//! releases a slice and asks for the request again (EAGAIN) or retries the fault.
mod common;

use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Errno, Prot};
use mem_protocol::{Reply, Request, ShmKey, Target, Value};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;
const SLICE: u64 = 64;
const A: u32 = 1;

fn harness(tweak: impl FnOnce(&mut mem_core::Config)) -> H {
    let mut h = H::with(mem_model::ModelConfig::riscv64(256 * MB), |c| {
        c.large_pages = false;
        c.release_slice = SLICE;
        tweak(c);
    });
    h.client(A, 1000, 1000, 1 << 14);
    h
}

fn ask(h: &mut H, caller: u32, req: &Request) -> Result<Value, Errno> {
    match h.core.dispatch(caller, req, &mut []).reply {
        Reply::Ok(v) => Ok(v),
        Reply::Err(e) => Err(e),
        r => panic!("unexpected reply {r:?}"),
    }
}

/// A removed segment of `pages` pages, all touched, attached by `c` only: its id and where.
fn removed_segment(h: &mut H, c: u32, pages: u64) -> (u32, u64) {
    let id = h.core.shmget(c, ShmKey::Private, pages * PAGE, true, false, 0o600).unwrap();
    let at = h.core.shmat(c, id, None, false).unwrap();
    for i in 0..pages {
        h.write_u64(c, at + i * PAGE, i).unwrap();
    }
    h.core.shm_remove(c, id).unwrap();
    (id, at)
}

#[test]
fn a_dead_segment_is_released_a_slice_at_a_time_and_counted_until_then() {
    let mut h = harness(|_| {});
    let (_, at) = removed_segment(&mut h, A, 1000);
    // The detach itself drops the mappings (64 a step) but not the object's frames, which
    // stay charged (and in use).
    let dt = Request::ShmDt { addr: at };
    while ask(&mut h, A, &dt) == Err(Errno::Again) {}
    assert!(h.core.has_dying());
    assert_eq!(h.core.stats(Some(A)).unwrap().shm_segments, 0);
    let frames = h.core.stats(None).unwrap().frames_in_use;
    let charged = h.core.stats(Some(A)).unwrap().charged_pages;
    assert!(charged >= 1000, "still charged: {charged}");
    h.check();
    let mut steps = 0;
    loop {
        let before = h.core.stats(None).unwrap().frames_in_use;
        let more = h.core.release_step();
        steps += 1;
        assert!(before - h.core.stats(None).unwrap().frames_in_use <= SLICE);
        h.check();
        if !more {
            break;
        }
    }
    assert_eq!(steps, 1000u64.div_ceil(SLICE));
    assert!(!h.core.has_dying());
    assert_eq!(h.core.stats(None).unwrap().frames_in_use, frames - 1000);
    assert_eq!(h.core.stats(Some(A)).unwrap().charged_pages, charged - 1000);
    h.check();
}

#[test]
fn memory_refused_while_frames_die_releases_a_slice_and_asks_again() {
    // A quota that holds the segment or the new mapping, not both.
    let mut h = harness(|_| {});
    h.client(3, 1000, 1000, 1200);
    let (_, at) = removed_segment(&mut h, 3, 1000);
    while ask(&mut h, 3, &Request::ShmDt { addr: at }) == Err(Errno::Again) {}
    assert!(h.core.has_dying());
    // The new mapping is refused for quota until the dead segment's frames are released:
    // each refusal releases a slice and asks for the request again.
    let mmap = Request::Mmap {
        target: Target::Own,
        addr: 0,
        len: 900 * PAGE,
        prot: Prot::RW,
        max_prot: Prot::RWX,
        placement: mem_protocol::Placement::Anywhere,
        share: mem_protocol::Share::Private,
        backing: mem_protocol::Backing::Anonymous,
        populate: false,
    };
    let a = match ask(&mut h, 3, &mmap) {
        Ok(Value::Addr(a)) => a,
        r => panic!("{r:?}"),
    };
    let populate = Request::Populate { target: Target::Own, addr: a, len: 900 * PAGE };
    let mut agains = 0;
    let r = loop {
        match ask(&mut h, 3, &populate) {
            Err(Errno::Again) => agains += 1,
            r => break r,
        }
        h.check();
    };
    assert_eq!(r, Ok(Value::Unit));
    assert!(agains >= 900 / SLICE, "{agains} EAGAINs");
    assert!(!h.core.has_dying());
    // A fault that cannot get memory releases a slice and is retried.
    let (_, at) = removed_segment(&mut h, 3, 250);
    while ask(&mut h, 3, &Request::ShmDt { addr: at }) == Err(Errno::Again) {}
    let b = h.core.mmap(3, &MmapArgs::anon(100 * PAGE, Prot::RW)).unwrap();
    assert!(h.core.has_dying());
    for i in 0..100 {
        h.write_u64(3, b + i * PAGE, i).unwrap();
    }
    assert!(h.core.stats(Some(3)).unwrap().charged_pages <= 1200);
    h.check();
}

#[test]
fn shm_limits_count_dying_segments_until_released() {
    let mut h = harness(|c| {
        c.shm.per_uid_pages = 1024;
        c.shm.total_pages = 1 << 16;
    });
    let (_, at) = removed_segment(&mut h, A, 1000);
    while ask(&mut h, A, &Request::ShmDt { addr: at }) == Err(Errno::Again) {}
    assert!(h.core.has_dying());
    // Still counted against uid 1000's share: a new segment that would not fit gets
    // EAGAIN (a slice released each time) until it does.
    let get = Request::ShmGet { key: ShmKey::Private, size: 500 * PAGE, create: true, exclusive: false, mode: 0o600 };
    let mut agains = 0;
    let r = loop {
        match ask(&mut h, A, &get) {
            Err(Errno::Again) => agains += 1,
            r => break r,
        }
    };
    assert!(matches!(r, Ok(Value::Id(_))), "{r:?}");
    assert!(agains > 0);
    h.check();
}

#[test]
fn an_owner_destroyed_while_its_object_dies_is_forgotten() {
    let mut h = harness(|_| {});
    let (_, at) = removed_segment(&mut h, A, 500);
    while ask(&mut h, A, &Request::ShmDt { addr: at }) == Err(Errno::Again) {}
    assert!(h.core.has_dying());
    h.core.destroy_space(A).unwrap();
    h.check();
    // A new space with the same id is not uncharged for the old object.
    h.client(A, 1000, 1000, 1 << 14);
    let charged = h.core.stats(Some(A)).unwrap().charged_pages;
    while h.core.release_step() {}
    assert_eq!(h.core.stats(Some(A)).unwrap().charged_pages, charged);
    h.check();
}
