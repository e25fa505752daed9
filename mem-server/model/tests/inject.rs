//! Call counting and failure injection: an injected failure has no effect, at any call
//! index of a multi-call sequence (checked against a proxy that simply drops the call);
//! counters per kind; per-kind and persistent injections.

mod common;

use common::*;
use mem_core::{Caching, KResult, Kernel, KernelError, ObjectType};
use mem_model::{ModelKernel, Op};
use mem_protocol::Prot;

const VA: u64 = 0x40_0000;

#[test]
fn every_call_is_counted() {
    let mut e = Env::new();
    let before = e.k.stats();
    let vs = e.vspace(); // retype + assign
    let f = e.map_small(vs, VA, Prot::RW); // 2 retype + 2 pt map + retype + page map
    e.k.page_unmap(f).unwrap();
    let _ = e.k.page_paddr(f);
    e.k.frame_write(f, 0, b"x").unwrap();
    let _ = e.k.cap_copy(f, f); // errors count too
    let d = e.k.stats() - before;
    assert_eq!(d.untyped_retype, 4);
    assert_eq!(d.asid_assign, 1);
    assert_eq!(d.page_table_map, 2);
    assert_eq!(d.page_map, 1);
    assert_eq!(d.page_unmap, 1);
    assert_eq!(d.page_paddr, 1);
    assert_eq!(d.frame_write, 1);
    assert_eq!(d.cap_copy, 1);
    assert_eq!(d.total, 12);
    assert_eq!(d.invocations(), 11);
    assert_eq!(d.errors, 1);
    assert_eq!(d.injected, 0);
    assert_eq!(e.k.calls(), e.k.stats().total);
    assert_eq!(e.k.last_error(), Some((Op::CapCopy, KernelError::DeleteFirst)));
    let sum: u64 = Op::ALL.iter().map(|&op| d.count(op)).sum();
    assert_eq!(sum, d.total);
    e.k.reset_stats();
    assert_eq!(e.k.calls(), 0);
}

/// Everything observable about a model (except its counters).
fn snapshot(k: &ModelKernel, vs: u32, slots: std::ops::Range<u32>) -> String {
    let mut s = format!(
        "occ={} free={:?} objs={:?} asids={} maps={:?} server={}",
        k.occupied_slots(),
        k.untyped_free_bytes(RAM),
        [ObjectType::SmallPage, ObjectType::LargePage, ObjectType::PageTable, ObjectType::VSpace]
            .map(|t| k.live_objects(t)),
        k.free_asids(),
        k.mappings(vs),
        k.server_mappings(),
    );
    for slot in slots {
        let mut b = [0u8; 8];
        let bytes = k.cap_kind(slot).and_then(|_| {
            let pa = k.cap_object(slot).and_then(|o| k.object_paddr(o))?;
            k.phys_read(pa + 4096, &mut b);
            Some(b)
        });
        s += &format!(
            " {slot}:{:?}/{:?}/{:?}/{:?}/{:?}",
            k.cap_kind(slot),
            k.cap_mapping(slot),
            k.page_table_mapped(slot),
            k.vspace_asid(slot),
            bytes
        );
    }
    s
}

/// A sequence touching every kind of call; returns every result.
fn workload<K: Kernel>(k: &mut K, vs: u32, base: u32) -> Vec<KResult> {
    let (pt1, pt2, f, c, big, v2) = (base, base + 1, base + 2, base + 3, base + 4, base + 5);
    let mut b = [0u8; 4];
    vec![
        k.untyped_retype(RAM, ObjectType::PageTable, pt1, 2),
        k.page_table_map(pt1, vs, VA),
        k.page_table_map(pt2, vs, VA),
        k.untyped_retype(RAM, ObjectType::SmallPage, f, 1),
        k.frame_write(f, 0, b"payload"),
        k.page_map(f, vs, VA, Prot::READ, Caching::Cached),
        k.page_map(f, vs, VA, Prot::RW, Caching::Cached),
        k.cap_copy(f, c),
        k.page_map(c, vs, VA + 4096, Prot::READ, Caching::Cached),
        k.untyped_retype(RAM, ObjectType::LargePage, big, 1),
        k.frame_copy(f, 0, big, 4096, 4096),
        k.frame_zero(f),
        k.frame_read(big, 4096, &mut b),
        k.page_paddr(big).map(|_| ()),
        k.page_unmap(c),
        k.cap_delete(c),
        k.untyped_retype(RAM, ObjectType::VSpace, v2, 1),
        k.asid_assign(v2),
        k.page_table_unmap(pt2),
        k.cap_copy(f, base + 6),
        k.server_map(base + 6, 0x9000_0000),
        k.cap_revoke(f),
        k.untyped_retype(RAM, ObjectType::PageTable, base + 7, 1),
        k.server_table_map(base + 7, 0x2_0000_0000),
        k.direct_map(f, base + 8, 0x2_0000_0000),
        k.direct_unmap(f, base + 8),
        k.save_caller(base + 9),
        k.reply_saved(base + 9, None),
        k.cap_delete(f),
    ]
}

/// Forwards every call except number `skip` (which is dropped: no effect, an error
/// returned), and logs the kind of each call.
struct Proxy<'a> {
    k: &'a mut ModelKernel,
    n: u64,
    skip: Option<u64>,
    log: Vec<Op>,
}

impl Proxy<'_> {
    fn pass(&mut self, op: Op) -> bool {
        let i = self.n;
        self.n += 1;
        self.log.push(op);
        Some(i) != self.skip
    }
}

impl mem_model::Around for Proxy<'_> {
    fn around<T>(&mut self, op: Op, f: impl FnOnce(&mut ModelKernel) -> KResult<T>) -> KResult<T> {
        if self.pass(op) {
            f(self.k)
        } else {
            Err(KernelError::NotEnoughMemory)
        }
    }
}

mem_model::kernel_via_around!(Proxy<'_>);

fn setup() -> (Env, u32, u32) {
    let mut e = Env::new();
    let vs = e.vspace();
    let base = e.next;
    // The thread "calling" the server, for save_caller.
    e.k.set_caller(Some(7));
    (e, vs, base)
}

#[test]
fn injected_failure_has_no_side_effect_at_any_index() {
    let (mut e, vs, base) = setup();
    let mut p = Proxy { k: &mut e.k, n: 0, skip: None, log: Vec::new() };
    let clean = workload(&mut p, vs, base);
    assert!(clean.iter().all(Result::is_ok), "{clean:?}");
    let ops = p.log;
    let n = ops.len() as u64;
    assert_eq!(n, 29);
    assert!(Op::ALL.iter().all(|op| ops.contains(op)), "the workload uses every kind");
    for i in 0..n {
        // Reference: the call is never made.
        let (mut r, _, _) = setup();
        let mut p = Proxy { k: &mut r.k, n: 0, skip: Some(i), log: Vec::new() };
        let want = workload(&mut p, vs, base);
        let want_state = snapshot(&r.k, vs, base..base + 9);
        // Absolute index.
        let (mut a, _, _) = setup();
        a.k.fail_call(a.k.calls() + i, KernelError::NotEnoughMemory);
        let got = workload(&mut a.k, vs, base);
        assert_eq!(got, want, "call {i}");
        assert_eq!(snapshot(&a.k, vs, base..base + 9), want_state, "call {i}");
        assert_eq!(a.k.stats().injected, 1);
        assert_eq!(a.k.pending_injections(), 0);
        // Relative index.
        let (mut b, _, _) = setup();
        b.k.fail_nth_call(i, KernelError::NotEnoughMemory);
        assert_eq!(workload(&mut b.k, vs, base), want, "call {i}");
        assert_eq!(snapshot(&b.k, vs, base..base + 9), want_state, "call {i}");
        // Per-kind index.
        let op = ops[i as usize];
        let nth = ops[..i as usize].iter().filter(|&&o| o == op).count() as u64;
        let (mut c, _, _) = setup();
        c.k.fail_nth_op(op, nth, KernelError::NotEnoughMemory);
        assert_eq!(workload(&mut c.k, vs, base), want, "call {i} ({op:?} #{nth})");
        assert_eq!(snapshot(&c.k, vs, base..base + 9), want_state, "call {i}");
        assert_eq!(c.k.stats().injected, 1);
    }
}

#[test]
fn injected_error_is_returned_and_counted() {
    let (mut e, vs, _) = setup();
    e.tables_for_small(vs, VA);
    let f = e.obj(ObjectType::SmallPage);
    let before = e.k.stats();
    e.k.fail_nth_call(0, KernelError::RevokeFirst);
    assert_eq!(e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached), Err(KernelError::RevokeFirst));
    assert!(e.k.translate(vs, VA).is_none());
    e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached).unwrap();
    let d = e.k.stats() - before;
    assert_eq!((d.page_map, d.total, d.errors, d.injected), (2, 2, 1, 1));
    assert_eq!(e.k.last_error(), Some((Op::PageMap, KernelError::RevokeFirst)));
}

#[test]
fn persistent_and_past_injections() {
    let (mut e, vs, _) = setup();
    let f = e.map_small(vs, VA, Prot::RW);
    e.k.fail_op_always(Op::PageUnmap, KernelError::IllegalOperation);
    for _ in 0..3 {
        assert_eq!(e.k.page_unmap(f), Err(KernelError::IllegalOperation));
    }
    assert!(e.k.is_mapped(f));
    // Other kinds are unaffected.
    e.k.page_paddr(f).unwrap();
    assert_eq!(e.k.pending_injections(), 1);
    e.k.clear_injections();
    e.k.page_unmap(f).unwrap();
    assert!(!e.k.is_mapped(f));
    // An index already passed never fires and is dropped at the next call.
    e.k.fail_call(0, KernelError::RangeError);
    e.k.page_paddr(f).unwrap();
    assert_eq!(e.k.pending_injections(), 0);
}
