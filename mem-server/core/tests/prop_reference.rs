//! Differential property tests: random operation sequences run against `MemCore` (on the
//! seL4 host model) and against a page-by-page reference model written here, in a small
//! window of the address space so that collisions are frequent.
//!
//! After every step we compare: return values and errnos, the per-page layout (the core's
//! areas expanded page by page → protection), the contents of every page the client can
//! read without a fault, that every page holding data still has a frame, and the core's
//! invariants plus its agreement with the model's page tables (`H::check`).
//!
//! Operations: mmap (Fixed / FixedNoReplace / Hint / Anywhere, private or shared anonymous,
//! optional populate, random prot and max prot), munmap and mprotect of random ranges
//! (several areas, holes, unaligned lengths), writes and reads of a tag per page, populate.
//! Shared pages point to cells of the reference's shared objects, so both sides of a clone
//! see each other's writes there, while private pages are copied (COW).
//!
//! Properties:
//! - `single_client_matches_reference`: one client, 4 KiB pages only, fault-around 0 or 3;
//! - `two_clients_with_clone_match_reference`: two clients, `clone_space` (COW), destroy,
//!   create; writes on either side of a private page stay private;
//! - `large_pages_match_reference`: large pages on, a 6 MiB window, 2 MiB aligned areas,
//!   two clients with clone; the reference ignores page sizes but compares contents, and
//!   checks that a write to an untouched 2 MiB chunk inside one area gets a large page.
//!
//! `PROPTEST_CASES=n` runs deeper. Bugs these properties found in the core (now fixed) are
//! pinned as `regression_*` tests at the end of the file.
mod common;
use std::collections::{BTreeMap, BTreeSet};

use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Access, Errno, PageSize, Prot, Unresolved};
use mem_protocol::Placement;
use proptest::prelude::*;
use proptest::test_runner::Config as PtConfig;

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;
const LARGE_PAGES: u64 = 512;

/// Client ids used by the properties (index 0 and 1).
const IDS: [u32; 2] = [1, 2];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RefPage {
    prot: Prot,
    max: Prot,
    /// Value of the first u64 of a private page (0 = never written / zero-filled).
    tag: u64,
    /// Shared (MAP_SHARED anonymous) page: `(object, page index)` into `Sim::cells`.
    cell: Option<(u32, u64)>,
}

/// Reference address space: page number (address / 4096) → page.
type RefSpace = BTreeMap<u64, RefPage>;

fn prot_of(bits: u8) -> Prot {
    Prot::from_bits(bits & 7).unwrap()
}

fn placement_of(p: u8) -> Placement {
    match p % 4 {
        0 => Placement::Fixed,
        1 => Placement::FixedNoReplace,
        2 => Placement::Hint,
        _ => Placement::Anywhere,
    }
}

fn ref_free(sp: &RefSpace, p: u64, n: u64) -> bool {
    sp.range(p..p + n).next().is_none()
}

/// Lowest `align`-aligned page `>= lo` starting `n` free pages (the core's first fit).
fn ref_first_fit(sp: &RefSpace, lo: u64, n: u64, align: u64) -> u64 {
    let up = |x: u64| x.div_ceil(align) * align;
    let mut p = up(lo);
    while let Some((&q, _)) = sp.range(p..p + n).next_back() {
        p = up(q + 1);
    }
    p
}

fn readable(p: Prot) -> bool {
    mem_core::fault::allows(p, Access::Read)
}

fn writable(p: Prot) -> bool {
    mem_core::fault::allows(p, Access::Write)
}

#[derive(Clone, Debug)]
enum Op {
    /// `page` is relative to the window; `slack` bytes are added to the hint address (it
    /// must round down to the page, as Linux does); `max`/`superset` choose the max protection.
    Mmap {
        c: usize,
        place: u8,
        page: u64,
        slack: u64,
        n: u64,
        prot: u8,
        max: u8,
        superset: bool,
        populate: bool,
        shared: bool,
    },
    /// Length in bytes is `n * 4096 - slack` (rounded up by the core).
    Munmap {
        c: usize,
        page: u64,
        n: u64,
        slack: u64,
    },
    /// `n == 0` is a zero length.
    Mprotect {
        c: usize,
        page: u64,
        n: u64,
        slack: u64,
        prot: u8,
    },
    Write {
        c: usize,
        page: u64,
        tag: u64,
    },
    Read {
        c: usize,
        page: u64,
    },
    Populate {
        c: usize,
        page: u64,
        n: u64,
    },
    /// Clone client `parent` into the other id.
    Clone {
        parent: usize,
    },
    Destroy {
        c: usize,
    },
    Create {
        c: usize,
    },
}

/// The system under test next to the reference.
struct Sim {
    h: H,
    refs: [Option<RefSpace>; 2],
    /// First page of the window (= the core's `user_lo`).
    lo: u64,
    /// Large pages on: first fit of >= 2 MiB anonymous areas is 2 MiB aligned.
    large: bool,
    /// 2 MiB chunks (address >> 21) that ever held a small page, per client.
    tainted: [BTreeSet<u64>; 2],
    /// Contents of shared pages: `(object, index)` → first u64.
    cells: BTreeMap<(u32, u64), u64>,
    next_obj: u32,
}

impl Sim {
    fn new(ram: u64, window: u64, large: bool, fault_around: u32) -> Sim {
        let mut h = H::with(mem_model::ModelConfig::riscv64(ram), |c| {
            c.large_pages = large;
            c.user_lo = window;
            c.fault_around = fault_around;
        });
        h.client(IDS[0], 1000, 1000, 1 << 24);
        Sim {
            h,
            refs: [Some(RefSpace::new()), None],
            lo: window / PAGE,
            large,
            tainted: Default::default(),
            cells: BTreeMap::new(),
            next_obj: 0,
        }
    }

    fn addr(&self, page: u64) -> u64 {
        (self.lo + page) * PAGE
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Mmap { c, place, page, slack, n, prot, max, superset, populate, shared } => {
                let prot = prot_of(prot);
                let max = if superset { prot.union(prot_of(max)) } else { prot_of(max) };
                let placement = placement_of(place);
                let addr = if placement == Placement::Hint { self.addr(page) + slack } else { self.addr(page) };
                let mut a = MmapArgs::anon(n * PAGE, prot).at(addr, placement);
                a.max_prot = max;
                a.populate = populate;
                a.shared = shared;
                let got = self.h.core.mmap(IDS[c], &a);
                let want = self.ref_mmap(c, placement, page, n, prot, max, shared);
                assert_eq!(got, want.map(|p| p * PAGE), "{op:?}");
            }
            Op::Munmap { c, page, n, slack } => {
                let got = self.h.core.munmap(IDS[c], self.addr(page), n * PAGE - slack);
                let want = match &mut self.refs[c] {
                    None => Err(Errno::Srch),
                    Some(sp) => {
                        let p = self.lo + page;
                        let doomed: Vec<u64> = sp.range(p..p + n).map(|(&q, _)| q).collect();
                        for q in doomed {
                            sp.remove(&q);
                        }
                        Ok(())
                    }
                };
                assert_eq!(got, want, "{op:?}");
            }
            Op::Mprotect { c, page, n, slack, prot } => {
                let prot = prot_of(prot);
                let len = if n == 0 { 0 } else { n * PAGE - slack };
                let got = self.h.core.mprotect(IDS[c], self.addr(page), len, prot);
                let want = match &mut self.refs[c] {
                    None => Err(Errno::Srch),
                    Some(sp) => ref_mprotect(sp, self.lo + page, n, prot),
                };
                assert_eq!(got, want, "{op:?}");
            }
            Op::Write { c, page, tag } => {
                let Some(sp) = &self.refs[c] else { return };
                let p = self.lo + page;
                let want = match sp.get(&p) {
                    None => Err(Unresolved::NoArea),
                    Some(pg) if !writable(pg.prot) => Err(Unresolved::Denied),
                    Some(_) => Ok(()),
                };
                let before = self.h.core.mappings(IDS[c]).iter().any(|m| m.vaddr <= p * PAGE && p * PAGE < m.vaddr + m.size.bytes());
                let area = self.h.core.layout(IDS[c]).unwrap().into_iter().find(|&(s, e, _)| s <= p * PAGE && p * PAGE < e);
                let got = self.h.write_u64(IDS[c], p * PAGE, tag);
                assert_eq!(got, want, "{op:?}");
                if got.is_ok() {
                    let pg = self.refs[c].as_mut().unwrap().get_mut(&p).unwrap();
                    match pg.cell {
                        Some(cell) => {
                            self.cells.insert(cell, tag);
                        }
                        None => pg.tag = tag,
                    }
                    if self.large && !before {
                        self.expect_large(c, p, area.unwrap());
                    }
                }
            }
            Op::Read { c, page } => {
                let Some(sp) = &self.refs[c] else { return };
                let p = self.lo + page;
                let want = match sp.get(&p) {
                    None => Err(Unresolved::NoArea),
                    Some(pg) if !readable(pg.prot) => Err(Unresolved::Denied),
                    Some(pg) => Ok(self.value(pg)),
                };
                assert_eq!(self.h.read_u64(IDS[c], p * PAGE), want, "{op:?}");
            }
            Op::Populate { c, page, n } => {
                let got = self.h.core.populate(IDS[c], self.addr(page), n * PAGE);
                let p = self.lo + page;
                let want = match &self.refs[c] {
                    None => Err(Errno::Srch),
                    Some(sp) if sp.range(p..p + n).count() as u64 == n => Ok(()),
                    Some(_) => Err(Errno::NoMem),
                };
                assert_eq!(got, want, "{op:?}");
                if got.is_ok() {
                    // Every page with some access right is now present in hardware.
                    let vs = self.h.core.vspace_of(IDS[c]).unwrap();
                    let sp = self.refs[c].as_ref().unwrap();
                    for q in p..p + n {
                        let pg = sp[&q];
                        if readable(pg.prot) {
                            assert!(self.h.core.kernel().translate(vs, q * PAGE).is_some(), "{op:?}: page {q:#x} not populated");
                        }
                    }
                }
            }
            Op::Clone { parent } => {
                let child = 1 - parent;
                let got = self.h.core.clone_space(IDS[parent], IDS[child], 1 << 24).map(|_| ());
                let want = match (&self.refs[parent], &self.refs[child]) {
                    (None, _) => Err(Errno::Srch),
                    (Some(_), Some(_)) => Err(Errno::Exist),
                    (Some(p), None) => {
                        self.refs[child] = Some(p.clone());
                        self.tainted[child] = self.tainted[parent].clone();
                        Ok(())
                    }
                };
                assert_eq!(got, want, "{op:?}");
            }
            Op::Destroy { c } => {
                let got = self.h.core.destroy_space(IDS[c]);
                let want = if self.refs[c].take().is_some() { Ok(()) } else { Err(Errno::Srch) };
                assert_eq!(got, want, "{op:?}");
                self.tainted[c].clear();
            }
            Op::Create { c } => {
                let got = self.h.core.create_space(IDS[c], mem_core::Cred { uid: 1000, gid: 1000 }, 1 << 24).map(|_| ());
                let want = if self.refs[c].is_some() {
                    Err(Errno::Exist)
                } else {
                    self.refs[c] = Some(RefSpace::new());
                    Ok(())
                };
                assert_eq!(got, want, "{op:?}");
            }
        }
    }

    /// What the first u64 of a page holds.
    fn value(&self, pg: &RefPage) -> u64 {
        match pg.cell {
            Some(cell) => self.cells.get(&cell).copied().unwrap_or(0),
            None => pg.tag,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ref_mmap(&mut self, c: usize, placement: Placement, page: u64, n: u64, prot: Prot, max: Prot, shared: bool) -> Result<u64, Errno> {
        if !max.contains(prot) {
            return Err(Errno::Acces);
        }
        let lo = self.lo;
        let align = if self.large && n >= LARGE_PAGES && !shared { LARGE_PAGES } else { 1 };
        let obj = self.next_obj;
        let sp = self.refs[c].as_mut().ok_or(Errno::Srch)?;
        let p = lo + page;
        let at = match placement {
            Placement::Fixed => p,
            Placement::FixedNoReplace if !ref_free(sp, p, n) => return Err(Errno::Exist),
            Placement::FixedNoReplace => p,
            // The hint rounds down to `p` (slack < 4096) and is used when that range is free.
            Placement::Hint if ref_free(sp, p, n) => p,
            Placement::Hint | Placement::Anywhere => ref_first_fit(sp, lo, n, align),
        };
        for q in at..at + n {
            let cell = shared.then_some((obj, q - at));
            sp.insert(q, RefPage { prot, max, tag: 0, cell });
        }
        self.next_obj += u32::from(shared);
        Ok(at)
    }

    /// A write faulted in page `p` of client `c` inside core area `area`: when the aligned
    /// 2 MiB chunk lies in the area and never held a small page, it must be a large page.
    fn expect_large(&self, c: usize, p: u64, (s, e, _): (u64, u64, Prot)) {
        let base = (p * PAGE) & !(LARGE_PAGES * PAGE - 1);
        if base < s || base + LARGE_PAGES * PAGE > e || self.tainted[c].contains(&(base >> 21)) {
            return;
        }
        let vs = self.h.core.vspace_of(IDS[c]).unwrap();
        let t = self.h.core.kernel().translate(vs, p * PAGE).expect("written page is mapped");
        assert_eq!(t.size, PageSize::Large, "write at {:#x} in an untouched 2 MiB chunk of area {s:#x}..{e:#x}", p * PAGE);
    }

    /// Compare every observable with the reference.
    fn verify(&mut self) {
        self.h.check();
        check_frames(&self.h);
        for (c, &id) in IDS.iter().enumerate() {
            let Some(sp) = &self.refs[c] else {
                assert!(!self.h.core.has_space(id), "client {id} should not exist");
                continue;
            };
            // Layout, page by page.
            let mut got: BTreeMap<u64, Prot> = BTreeMap::new();
            for (s, e, p) in self.h.core.layout(id).unwrap() {
                for a in (s..e).step_by(PAGE as usize) {
                    got.insert(a / PAGE, p);
                }
            }
            let want: BTreeMap<u64, Prot> = sp.iter().map(|(&q, pg)| (q, pg.prot)).collect();
            if got != want {
                let diff: Vec<_> = got
                    .keys()
                    .chain(want.keys())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .filter(|q| got.get(q) != want.get(q))
                    .map(|q| (q * PAGE, got.get(q).copied(), want.get(q).copied()))
                    .take(8)
                    .collect();
                panic!("client {id}: layout differs (addr, core, reference): {diff:x?}");
            }
            // Data: every written page still has a frame; everything readable in hardware
            // holds the reference contents.
            let maps = self.h.core.mappings(id);
            let vs = self.h.core.vspace_of(id).unwrap();
            let mut present = BTreeSet::new();
            for m in &maps {
                if m.size == PageSize::Small {
                    present.insert(m.vaddr / PAGE);
                } else {
                    present.extend(m.vaddr / PAGE..m.vaddr / PAGE + LARGE_PAGES);
                }
            }
            for (&q, pg) in sp {
                if pg.cell.is_none() && pg.tag != 0 {
                    assert!(present.contains(&q), "client {id}: written page {:#x} lost its frame", q * PAGE);
                }
            }
            let peek = |q: u64| -> Option<u64> {
                let t = self.h.core.kernel().translate(vs, q * PAGE)?;
                if !readable(t.prot) {
                    return None;
                }
                let mut b = [0u8; 8];
                self.h.core.kernel().user_read(vs, q * PAGE, &mut b).ok()?;
                Some(u64::from_le_bytes(b))
            };
            if self.large {
                // Large windows: peek the written pages and the first page of each mapping.
                let mut probe: BTreeSet<u64> = sp.iter().filter(|(_, pg)| self.value(pg) != 0).map(|(&q, _)| q).collect();
                probe.extend(maps.iter().map(|m| m.vaddr / PAGE));
                for q in probe {
                    if let Some(v) = peek(q) {
                        assert_eq!(v, sp.get(&q).map_or(0, |pg| self.value(pg)), "client {id}: contents of {:#x}", q * PAGE);
                    }
                }
            } else {
                for &q in &present {
                    if let Some(v) = peek(q) {
                        assert_eq!(v, sp.get(&q).map_or(0, |pg| self.value(pg)), "client {id}: contents of {:#x}", q * PAGE);
                    }
                }
            }
        }
        // Chunks holding small pages never get a large page again (their leaf table stays).
        for (c, &id) in IDS.iter().enumerate() {
            if self.refs[c].is_some() {
                for m in self.h.core.mappings(id) {
                    if m.size == PageSize::Small {
                        self.tainted[c].insert(m.vaddr >> 21);
                    }
                }
            }
        }
    }

    /// Read every page of the reference back through the CPU (faulting as needed).
    fn read_all(&mut self) {
        for (c, &id) in IDS.iter().enumerate() {
            let Some(sp) = self.refs[c].clone() else { continue };
            for (q, pg) in sp {
                let want = if readable(pg.prot) { Ok(self.value(&pg)) } else { Err(Unresolved::Denied) };
                assert_eq!(self.h.read_u64(id, q * PAGE), want, "final read of {:#x}", q * PAGE);
            }
        }
    }
}

/// Linux mprotect on the reference: page by page from the start; a hole stops with ENOMEM,
/// a protection above the max with EACCES, earlier pages keeping their new protection.
fn ref_mprotect(sp: &mut RefSpace, p: u64, n: u64, prot: Prot) -> Result<(), Errno> {
    for q in p..p + n {
        match sp.get_mut(&q) {
            None => return Err(Errno::NoMem),
            Some(pg) if !pg.max.contains(prot) => return Err(Errno::Acces),
            Some(pg) => pg.prot = prot,
        }
    }
    Ok(())
}

// ---- strategies ---------------------------------------------------------------------------

/// Protections for the page-exact properties: all eight combinations.
fn prot_bits() -> BoxedStrategy<u8> {
    (0u8..8).boxed()
}

fn page_ops(clients: usize, span: u64) -> BoxedStrategy<Op> {
    let c = 0..clients;
    let pb = prot_bits();
    prop_oneof![
        5 => (c.clone(), 0u8..4, 0..span, 0..PAGE, 1..=8u64, pb.clone(), 0u8..8, prop::bool::weighted(0.9), prop::bool::weighted(0.2), prop::bool::weighted(0.25))
            .prop_map(|(c, place, page, slack, n, prot, max, superset, populate, shared)| Op::Mmap { c, place, page, slack, n, prot, max, superset, populate, shared }),
        2 => (c.clone(), 0..span, 1..=16u64, 0..PAGE).prop_map(|(c, page, n, slack)| Op::Munmap { c, page, n, slack }),
        3 => (c.clone(), 0..span, 0..=16u64, 0..PAGE, pb).prop_map(|(c, page, n, slack, prot)| Op::Mprotect { c, page, n, slack, prot }),
        5 => (c.clone(), 0..span, 1..u64::MAX).prop_map(|(c, page, tag)| Op::Write { c, page, tag }),
        3 => (c.clone(), 0..span).prop_map(|(c, page)| Op::Read { c, page }),
        1 => (c, 0..span, 1..=16u64).prop_map(|(c, page, n)| Op::Populate { c, page, n }),
    ]
    .boxed()
}

fn clone_ops() -> BoxedStrategy<Op> {
    prop_oneof![
        12 => page_ops(2, 72),
        2 => (0..2usize).prop_map(|parent| Op::Clone { parent }),
        1 => (0..2usize).prop_map(|c| Op::Destroy { c }),
        1 => (0..2usize).prop_map(|c| Op::Create { c }),
    ]
    .boxed()
}

/// Large-page property (two clients, clone): addresses either 2 MiB aligned or anywhere,
/// lengths in 2 MiB units or small.
fn large_ops(span: u64) -> BoxedStrategy<Op> {
    let chunks = span / LARGE_PAGES;
    let page = prop_oneof![(0..chunks).prop_map(|k| k * LARGE_PAGES), 0..span];
    let len = prop_oneof![(1..=2u64).prop_map(|k| k * LARGE_PAGES), 1..=600u64];
    let pb = prop_oneof![Just(0u8), Just(1), Just(3), Just(5), Just(7)];
    let c = 0..2usize;
    prop_oneof![
        4 => (c.clone(), 0u8..3, page.clone(), len.clone(), pb.clone(), prop::bool::weighted(0.15))
            .prop_map(|(c, place, page, n, prot, populate)| Op::Mmap { c, place, page, slack: 0, n, prot, max: 7, superset: true, populate, shared: false }),
        2 => (c.clone(), page.clone(), len.clone(), 0..PAGE).prop_map(|(c, page, n, slack)| Op::Munmap { c, page, n, slack }),
        2 => (c.clone(), page.clone(), len, 0..PAGE, pb).prop_map(|(c, page, n, slack, prot)| Op::Mprotect { c, page, n, slack, prot }),
        6 => (c.clone(), 0..span, 1..u64::MAX).prop_map(|(c, page, tag)| Op::Write { c, page, tag }),
        3 => (c.clone(), 0..span).prop_map(|(c, page)| Op::Read { c, page }),
        1 => (c.clone(), page, 1..=32u64).prop_map(|(c, page, n)| Op::Populate { c, page, n }),
        1 => c.clone().prop_map(|parent| Op::Clone { parent }),
        1 => c.clone().prop_map(|c| Op::Destroy { c }),
        1 => c.prop_map(|c| Op::Create { c }),
    ]
    .boxed()
}

/// `cases` per property (`PROPTEST_CASES` overrides it for deeper local runs); no
/// regression files are written.
fn pt_config(cases: u32) -> PtConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    PtConfig { cases, failure_persistence: None, ..PtConfig::default() }
}

const WIN: u64 = 0x1000_0000;
const LWIN: u64 = 0x4000_0000;
const LSPAN: u64 = 3 * LARGE_PAGES;

proptest! {
    #![proptest_config(pt_config(256))]

    /// One client, 4 KiB pages, a 64-page window (ops reach 8 pages past it).
    #[test]
    fn single_client_matches_reference(ops in prop::collection::vec(page_ops(1, 72), 1..80), around in prop_oneof![Just(0u32), Just(3)]) {
        let mut s = Sim::new(64 * MB, WIN, false, around);
        for op in &ops {
            s.step(op);
            s.verify();
        }
        s.read_all();
        s.verify();
    }
}

proptest! {
    #![proptest_config(pt_config(256))]

    /// Two clients with clone (COW), destroy and create.
    #[test]
    fn two_clients_with_clone_match_reference(ops in prop::collection::vec(clone_ops(), 1..80), around in prop_oneof![Just(0u32), Just(2)]) {
        let mut s = Sim::new(64 * MB, WIN, false, around);
        for op in &ops {
            s.step(op);
            s.verify();
        }
        s.read_all();
        s.verify();
    }
}

proptest! {
    #![proptest_config(pt_config(96))]

    /// Large pages in a 6 MiB window (ops reach past it through long lengths), two clients
    /// with clone (COW large pages, splits of shared large pages).
    #[test]
    fn large_pages_match_reference(ops in prop::collection::vec(large_ops(LSPAN), 1..60)) {
        let mut s = Sim::new(64 * MB, LWIN, true, 0);
        for op in &ops {
            s.step(op);
            s.verify();
        }
        s.verify();
    }
}

// ---- bugs found by the properties (minimal reproductions) ---------------------------------

fn one_client(large: bool) -> H {
    let mut h = H::with(mem_model::ModelConfig::riscv64(64 * MB), |c| c.large_pages = large);
    h.client(1, 1000, 1000, 1 << 24);
    h
}

/// space.rs `split_large` maps the 512 small pages with the area's protection; for a
/// PROT_NONE area that is an empty-rights `Page_Map`, which the kernel refuses, so the
/// split fails after the large page was already released: mprotect/munmap return ENOMEM
/// and the data of the whole 2 MiB page is lost.
#[test]
fn regression_split_large_page_of_prot_none_area() {
    let mut h = one_client(true);
    let base = 0x4000_0000;
    let a = MmapArgs::anon(2 * MB, Prot::RW).at(base, Placement::Fixed);
    h.core.mmap(1, &a).unwrap();
    h.write_u64(1, base + 5 * PAGE, 0x55).unwrap();
    h.write_u64(1, base + 9 * PAGE, 0x99).unwrap();
    let vs = h.core.vspace_of(1).unwrap();
    assert_eq!(h.core.kernel().translate(vs, base).unwrap().size, PageSize::Large);
    h.core.mprotect(1, base, 2 * MB, Prot::NONE).unwrap();
    // Re-enable one page: the large page must be split.
    assert_eq!(h.core.mprotect(1, base, PAGE, Prot::READ), Ok(()));
    h.core.mprotect(1, base, 2 * MB, Prot::READ).unwrap();
    assert_eq!(h.read_u64(1, base + 5 * PAGE), Ok(0x55), "data survives the split");
    assert_eq!(h.read_u64(1, base + 9 * PAGE), Ok(0x99));
    h.check();
}

/// Same cause, through munmap of part of a PROT_NONE large page.
#[test]
fn regression_munmap_part_of_prot_none_large_page() {
    let mut h = one_client(true);
    let base = 0x4000_0000;
    let a = MmapArgs::anon(2 * MB, Prot::RW).at(base, Placement::Fixed);
    h.core.mmap(1, &a).unwrap();
    h.write_u64(1, base + 9 * PAGE, 0x99).unwrap();
    h.core.mprotect(1, base, 2 * MB, Prot::NONE).unwrap();
    assert_eq!(h.core.munmap(1, base, PAGE), Ok(()));
    h.core.mprotect(1, base + PAGE, 2 * MB - PAGE, Prot::READ).unwrap();
    assert_eq!(h.read_u64(1, base + 9 * PAGE), Ok(0x99));
    h.check();
}

/// space.rs `hw_rights` drops WRITE from a copy-on-write page, so a COW page of a
/// write-only area (`Prot::WRITE`) gets empty rights. clone.rs `clone_page` then calls
/// `Page_Map` with empty rights for the parent's downgrade, the kernel refuses, and the
/// whole clone fails with ENOMEM.
#[test]
fn regression_clone_write_only_page() {
    let mut h = one_client(false);
    let mut a = MmapArgs::anon(PAGE, Prot::WRITE).at(0x1000_0000, Placement::Fixed);
    a.max_prot = Prot::RWX;
    h.core.mmap(1, &a).unwrap();
    h.write_u64(1, 0x1000_0000, 7).unwrap();
    assert_eq!(h.core.clone_space(1, 2, 1 << 20).map(|_| ()), Ok(()));
    assert_eq!(h.read_u64(2, 0x1000_0000), Ok(7));
    assert_eq!(h.read_u64(1, 0x1000_0000), Ok(7));
    h.check();
}

/// Same cause, for WRITE|EXEC: the COW page is mapped EXEC only. A read (allowed: write
/// implies read) faults, fault.rs takes the "spurious" path, remaps with the same rights and
/// reports success: the client faults forever.
#[test]
fn regression_cow_write_exec_page_read_livelock() {
    let mut h = one_client(false);
    let mut a = MmapArgs::anon(PAGE, Prot::WRITE.union(Prot::EXEC)).at(0x1000_0000, Placement::Fixed);
    a.max_prot = Prot::RWX;
    h.core.mmap(1, &a).unwrap();
    h.write_u64(1, 0x1000_0000, 7).unwrap();
    h.core.clone_space(1, 2, 1 << 20).unwrap();
    for c in [1, 2] {
        let r = h.core.handle_fault(c, 0x1000_0000, Access::Read);
        assert!(r.is_ok(), "a read of a writable area is allowed");
        assert!(h.accessible(c, 0x1000_0000, Access::Read), "client {c}: fault reported resolved but the page is still unreadable");
    }
}

/// Same cause, through mprotect: after a clone, mprotect(PROT_WRITE) of a COW page unmaps
/// it (empty rights) and every read fault is then "resolved" by unmapping it again.
#[test]
fn regression_mprotect_write_only_cow_page_read_livelock() {
    let mut h = one_client(false);
    let a = MmapArgs::anon(PAGE, Prot::RW).at(0x1000_0000, Placement::Fixed);
    h.core.mmap(1, &a).unwrap();
    h.write_u64(1, 0x1000_0000, 7).unwrap();
    h.core.clone_space(1, 2, 1 << 20).unwrap();
    h.core.mprotect(1, 0x1000_0000, PAGE, Prot::WRITE).unwrap();
    let r = h.core.handle_fault(1, 0x1000_0000, Access::Read);
    assert!(r.is_ok());
    assert!(h.accessible(1, 0x1000_0000, Access::Read), "fault reported resolved but the page is still unreadable");
}
