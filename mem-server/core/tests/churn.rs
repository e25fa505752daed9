//! Churn and quotas.
//!
//! - 1,000+ address spaces created and destroyed (each with a few mmaps, faults, an shm
//!   attach/detach; one in ten cloned): the server's frame and slot counters return exactly
//!   to their starting values before `trim`, and after `trim` the model's CNode and untyped
//!   memory are as at the start.
//! - Quotas: a client exhausting its budget gets `Unresolved::NoMemory` / ENOMEM, its charge
//!   never exceeds the quota, and another client keeps working.
mod common;
use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Cred, Errno, ObjectType, Prot, Stats, Unresolved};
use mem_model::ModelConfig;
use mem_protocol::{Placement, ShmKey};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;

/// The counters that must come back.
fn counters(s: &Stats) -> (u64, u64, u64, u64) {
    (s.frames_in_use, s.frames_free, s.slots_in_use, s.slots_free)
}


/// One client's life: a few mmaps and faults, an shm attach/write/detach.
fn populate_client(h: &mut H, c: u32, shm: u32, rng: &mut Rng) {
    let a = h.core.mmap(c, &MmapArgs::anon((4 + rng.below(12)) * PAGE, Prot::RW)).unwrap();
    for i in 0..3 {
        h.write_u64(c, a + i * PAGE, u64::from(c) << 8 | i).unwrap();
    }
    let r = h.core.mmap(c, &MmapArgs::anon(16 * PAGE, Prot::READ)).unwrap();
    assert_eq!(h.read_u64(c, r + rng.below(16) * PAGE), Ok(0));
    // A fixed mapping at a random spot (may replace part of the others), partly unmapped.
    let f = 0x2000_0000 + rng.below(64) * PAGE;
    h.core.mmap(c, &MmapArgs::anon(8 * PAGE, Prot::RW).at(f, Placement::Fixed)).unwrap();
    h.write_u64(c, f + 2 * PAGE, 7).unwrap();
    h.core.munmap(c, f + PAGE, 2 * PAGE).unwrap();
    h.core.mprotect(c, f + 4 * PAGE, PAGE, Prot::READ).unwrap();
    let mut sh = MmapArgs::anon(2 * PAGE, Prot::RW);
    sh.shared = true;
    let s = h.core.mmap(c, &sh).unwrap();
    h.write_u64(c, s + PAGE, 1).unwrap();
    // shm attach, write, read back, detach.
    let at = h.core.shmat(c, shm, None, false).unwrap();
    h.write_u64(c, at + (u64::from(c) % 4) * PAGE, u64::from(c)).unwrap();
    assert_eq!(h.read_u64(c, at + (u64::from(c) % 4) * PAGE), Ok(u64::from(c)));
    h.core.shmdt(c, at).unwrap();
}

#[test]
fn thousand_spaces_leave_no_trace() {
    let mcfg = ModelConfig::riscv64(128 * MB);
    let mut h = H::with(mcfg, |_| {});
    let start = std::time::Instant::now();
    let initial = h.core.stats(None).unwrap();
    let occupied = h.core.kernel().occupied_slots();
    assert_eq!(initial.frames_in_use, 0);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cred = Cred { uid: 1000, gid: 1000 };
    let mut created = 0;
    const ROUNDS: u32 = 10;
    const PER_ROUND: u32 = 100;
    for round in 0..ROUNDS {
        let mut live: Vec<u32> = Vec::new();
        let first = 1 + round * 1000;
        // The round's shm segment, created by its first client.
        h.core.create_space(first, cred, 1 << 16).unwrap();
        let shm = h.core.shmget(first, ShmKey::Key(77), 4 * PAGE, true, true, 0o666).unwrap();
        for i in 0..PER_ROUND {
            let c = first + i;
            if i > 0 {
                h.core.create_space(c, cred, 1 << 16).unwrap();
            }
            created += 1;
            live.push(c);
            populate_client(&mut h, c, shm, &mut rng);
            if i % 10 == 9 {
                // Clone one of the live spaces; both sides write (COW), the clone attaches shm.
                let parent = live[rng.below(live.len() as u64) as usize];
                let child = c + 500;
                h.core.clone_space(parent, child, 1 << 16).unwrap();
                created += 1;
                live.push(child);
                let lay = h.core.layout(child).unwrap();
                let (s, _, _) = *lay.iter().find(|a| a.2 == Prot::RW).unwrap();
                h.write_u64(child, s, 0xc0ffee).unwrap();
                h.write_u64(parent, s, 0xbeef).unwrap();
                assert_eq!(h.read_u64(child, s), Ok(0xc0ffee));
                let at = h.core.shmat(child, shm, None, true).unwrap();
                // Page k of the segment holds the id of the last client c with c % 4 == k.
                let k = u64::from(c) % 4;
                assert_eq!(h.read_u64(child, at + k * PAGE), Ok(u64::from(c)));
                h.core.shmdt(child, at).unwrap();
            }
        }
        if round % 3 == 0 {
            h.check();
            check_frames(&h);
        }
        h.core.shm_remove(first, shm).unwrap();
        // Destroy in a random order.
        while !live.is_empty() {
            let c = live.swap_remove(rng.below(live.len() as u64) as usize);
            h.core.destroy_space(c).unwrap();
        }
        if round % 2 == 1 {
            h.core.maintain(64);
        }
        h.core.check_invariants().unwrap();
        let s = h.core.stats(None).unwrap();
        assert_eq!((s.spaces, s.shm_segments, s.frames_in_use, s.slots_in_use), (0, 0, 0, 0), "round {round}: {s:?}");
    }
    assert!(created >= 1000, "{created} spaces");
    assert_eq!(h.core.deferred_count(), 0);
    let end = h.core.stats(None).unwrap();
    assert_eq!(counters(&end), counters(&initial), "counters before trim: {end:?} vs start {initial:?}");
    h.core.trim();
    let trimmed = h.core.stats(None).unwrap();
    assert_eq!(counters(&trimmed), counters(&initial), "counters after trim");
    let k = h.core.kernel();
    assert_eq!(k.occupied_slots(), occupied, "CNode slots after trim");
    for t in [ObjectType::SmallPage, ObjectType::LargePage, ObjectType::PageTable, ObjectType::VSpace] {
        assert_eq!(k.live_objects(t), 0, "{t:?} objects after trim");
    }
    for u in h.cfg.ram_untypeds() {
        // No children: seL4 resets the untyped (free = its whole size) at its next retype.
        assert_eq!(k.untyped_has_children(u.slot), Some(false), "untyped {} after trim", u.slot);
    }
    // The untypeds really are whole again: the next retypes start from their bottom.
    h.client(1, 0, 0, 1 << 16);
    let a = h.core.mmap(1, &MmapArgs::anon(PAGE, Prot::RW)).unwrap();
    h.write_u64(1, a, 1).unwrap();
    for u in h.cfg.ram_untypeds() {
        let free = h.core.kernel().untyped_free_bytes(u.slot).unwrap();
        if h.core.kernel().untyped_has_children(u.slot) == Some(false) {
            continue;
        }
        assert!(free >= u.bytes().saturating_sub(512 * PAGE), "untyped {} was not reset: {free} of {} free", u.slot, u.bytes());
    }
    eprintln!("churn: {created} spaces in {:?}", start.elapsed());
}

/// Client 1 exhausts its quota through faults, populate and a clone; its charge never
/// exceeds the quota; client 2 keeps working; freeing memory lets client 1 work again.
#[test]
fn quota_exhaustion_is_contained() {
    const Q: u64 = 48;
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |_| {});
    h.client(1, 1000, 1000, Q);
    h.client(2, 1001, 1001, Q);
    let charged = |h: &H, c: u32| h.core.stats(Some(c)).unwrap().charged_pages;
    let a = h.core.mmap(1, &MmapArgs::anon(256 * PAGE, Prot::RW)).unwrap();
    let mut written = 0;
    let mut denied = None;
    for i in 0..256 {
        match h.write_u64(1, a + i * PAGE, i + 1) {
            Ok(()) => written += 1,
            Err(e) => {
                denied = Some((i, e));
                break;
            }
        }
        assert!(charged(&h, 1) <= Q, "charge {} over quota {Q}", charged(&h, 1));
    }
    let (stop, e) = denied.expect("the quota stops client 1");
    assert_eq!(e, Unresolved::NoMemory);
    assert!(written > 0 && written < Q, "{written} pages written");
    assert!(charged(&h, 1) <= Q);
    // Further faults, populate and MAP_POPULATE stay within the quota.
    assert_eq!(h.write_u64(1, a + (stop + 3) * PAGE, 1), Err(Unresolved::NoMemory));
    assert_eq!(h.core.populate(1, a + stop * PAGE, 16 * PAGE), Err(Errno::NoMem));
    let mut p = MmapArgs::anon(64 * PAGE, Prot::RW);
    p.populate = true;
    let pm = h.core.mmap(1, &p).expect("MAP_POPULATE is best effort");
    assert!(charged(&h, 1) <= Q);
    // A shared mapping's pages are charged to its creator, and so refused too.
    let mut sh = MmapArgs::anon(4 * PAGE, Prot::RW);
    sh.shared = true;
    let s = h.core.mmap(1, &sh).unwrap();
    assert_eq!(h.write_u64(1, s, 1), Err(Unresolved::NoMemory));
    // Large pages need 513 free pages of quota: none here.
    let l = h.core.mmap(1, &MmapArgs::anon(4 * MB, Prot::RW)).unwrap();
    assert_eq!(h.write_u64(1, l, 1), Err(Unresolved::NoMemory));
    assert!(charged(&h, 1) <= Q);
    // A clone whose quota cannot hold the private pages fails and leaves no trace.
    let before = h.core.stats(None).unwrap();
    assert_eq!(h.core.clone_space(1, 3, 8).map(|_| ()), Err(Errno::NoMem));
    assert!(!h.core.has_space(3));
    let after = h.core.stats(None).unwrap();
    assert_eq!(counters(&after), counters(&before), "failed clone leaves no trace");
    h.check();
    // Client 2 is unaffected.
    let b = h.core.mmap(2, &MmapArgs::anon(32 * PAGE, Prot::RW)).unwrap();
    for i in 0..32 {
        h.write_u64(2, b + i * PAGE, 1000 + i).unwrap();
    }
    for i in 0..32 {
        assert_eq!(h.read_u64(2, b + i * PAGE), Ok(1000 + i));
    }
    assert!(charged(&h, 2) <= Q);
    // Client 1's data is intact; freeing pages lets it fault again.
    for i in 0..written {
        assert_eq!(h.read_u64(1, a + i * PAGE), Ok(i + 1));
    }
    h.core.munmap(1, pm, 64 * PAGE).unwrap();
    h.core.munmap(1, a, 8 * PAGE).unwrap();
    h.write_u64(1, a + (stop + 3) * PAGE, 5).unwrap();
    assert_eq!(h.read_u64(1, a + (stop + 3) * PAGE), Ok(5));
    assert!(charged(&h, 1) <= Q);
    h.check();
    // Everything comes back.
    h.core.destroy_space(1).unwrap();
    h.core.destroy_space(2).unwrap();
    let s = h.core.stats(None).unwrap();
    assert_eq!((s.frames_in_use, s.slots_in_use), (0, 0), "{s:?}");
}

mod quota_prop {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Q {
        Mmap { c: usize, pages: u64, write: bool, shared: bool, populate: bool },
        Write { c: usize, area: usize, page: u64, v: u64 },
        Populate { c: usize, area: usize },
        Munmap { c: usize, area: usize, page: u64, n: u64 },
        Mprotect { c: usize, area: usize, write: bool },
        Clone { parent: usize, quota: u64 },
        Destroy { c: usize },
        Create { c: usize, quota: u64 },
    }

    const IDS: [u32; 2] = [1, 2];

    fn ops() -> impl Strategy<Value = Q> {
        let c = 0..2usize;
        let pages = prop_oneof![1..=16u64, Just(512u64), Just(1024u64)];
        prop_oneof![
            3 => (c.clone(), pages, prop::bool::weighted(0.8), prop::bool::weighted(0.3), prop::bool::weighted(0.2))
                .prop_map(|(c, pages, write, shared, populate)| Q::Mmap { c, pages, write, shared, populate }),
            6 => (c.clone(), 0..8usize, 0..1024u64, 1..u64::MAX).prop_map(|(c, area, page, v)| Q::Write { c, area, page, v }),
            1 => (c.clone(), 0..8usize).prop_map(|(c, area)| Q::Populate { c, area }),
            2 => (c.clone(), 0..8usize, 0..1024u64, 1..=8u64).prop_map(|(c, area, page, n)| Q::Munmap { c, area, page, n }),
            1 => (c.clone(), 0..8usize, any::<bool>()).prop_map(|(c, area, write)| Q::Mprotect { c, area, write }),
            1 => (c.clone(), 4..600u64).prop_map(|(parent, quota)| Q::Clone { parent, quota }),
            1 => c.clone().prop_map(|c| Q::Destroy { c }),
            1 => (c, 4..600u64).prop_map(|(c, quota)| Q::Create { c, quota }),
        ]
    }

    /// Page `page` (modulo its size) of the `area`-th area of client `c`.
    fn pick(h: &H, c: u32, area: usize, page: u64) -> Option<(u64, u64, Prot)> {
        let lay = h.core.layout(c).ok()?;
        if lay.is_empty() {
            return None;
        }
        let (s, e, p) = lay[area % lay.len()];
        Some((s + (page % ((e - s) / PAGE)) * PAGE, e, p))
    }

    fn step(h: &mut H, op: &Q) {
        let cred = Cred { uid: 1000, gid: 1000 };
        match *op {
            Q::Mmap { c, pages, write, shared, populate } => {
                let mut a = MmapArgs::anon(pages * PAGE, if write { Prot::RW } else { Prot::READ });
                a.shared = shared;
                a.populate = populate;
                let r = h.core.mmap(IDS[c], &a);
                assert!(h.core.has_space(IDS[c]) == r.is_ok(), "{op:?}: {r:?}");
            }
            Q::Write { c, area, page, v } => {
                let Some((a, _, p)) = pick(h, IDS[c], area, page) else { return };
                match h.write_u64(IDS[c], a, v) {
                    Ok(()) => assert_eq!(h.read_u64(IDS[c], a), Ok(v)),
                    Err(e) => {
                        // A shared object whose owner went and that no mapper had room for is
                        // destroyed: its areas are dead (no page there any more); a write
                        // to a read-only one is refused first, as on Linux.
                        let dead = h.core.area_kind(IDS[c], a) == Some(mem_protocol::AreaKindCode::Dead);
                        let want = if !p.writable() {
                            Unresolved::Denied
                        } else if dead {
                            Unresolved::NoArea
                        } else {
                            Unresolved::NoMemory
                        };
                        assert_eq!(e, want, "{op:?}");
                    }
                }
            }
            Q::Populate { c, area } => {
                let Some((a, e, _)) = pick(h, IDS[c], area, 0) else { return };
                let r = h.core.populate(IDS[c], a, e - a);
                assert!(matches!(r, Ok(()) | Err(Errno::NoMem)), "{op:?}: {r:?}");
            }
            Q::Munmap { c, area, page, n } => {
                let Some((a, _, _)) = pick(h, IDS[c], area, page) else { return };
                // Unmapping part of a large page splits it: ENOMEM when the leaf table needed
                // does not fit in the quota (split_large), as Linux may fail a VMA split.
                let r = h.core.munmap(IDS[c], a, n * PAGE);
                assert!(matches!(r, Ok(()) | Err(Errno::NoMem)), "{op:?}: {r:?}");
            }
            Q::Mprotect { c, area, write } => {
                let Some((a, e, _)) = pick(h, IDS[c], area, 0) else { return };
                let r = h.core.mprotect(IDS[c], a, e - a, if write { Prot::RW } else { Prot::READ });
                // Splitting a large page needs one page of quota for the new table.
                assert!(matches!(r, Ok(()) | Err(Errno::NoMem)), "{op:?}: {r:?}");
            }
            Q::Clone { parent, quota } => {
                let child = IDS[1 - parent];
                if h.core.has_space(child) || !h.core.has_space(IDS[parent]) {
                    return;
                }
                let before = counters(&h.core.stats(None).unwrap());
                match h.core.clone_space(IDS[parent], child, quota) {
                    Ok(_) => {}
                    Err(e) => {
                        assert_eq!(e, Errno::NoMem, "{op:?}");
                        assert!(!h.core.has_space(child));
                        // The parent's pages may now be COW but nothing else remains.
                        let after = counters(&h.core.stats(None).unwrap());
                        assert_eq!((after.0, after.2), (before.0, before.2), "failed clone leaves no frames or slots");
                    }
                }
            }
            Q::Destroy { c } => {
                let _ = h.core.destroy_space(IDS[c]);
            }
            Q::Create { c, quota } => {
                let _ = h.core.create_space(IDS[c], cred, quota);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96), failure_persistence: None, ..ProptestConfig::default() })]

        /// Random operations under small quotas: no client's charge ever exceeds its quota
        /// (except by shared memory it inherited when the owner went away, which only goes
        /// down from there: nothing new can be charged past the quota), refusals are
        /// NoMemory/ENOMEM, the core stays consistent, and all comes back.
        #[test]
        fn charge_never_exceeds_quota(q1 in 4..600u64, ops in prop::collection::vec(ops(), 1..60)) {
            let mut h = H::with(ModelConfig::riscv64(64 * MB), |_| {});
            h.client(IDS[0], 1000, 1000, q1);
            // Per client: the charge allowed (its quota, or what it inherited past it).
            let mut allowed: std::collections::BTreeMap<u32, u64> = std::collections::BTreeMap::new();
            for op in &ops {
                step(&mut h, op);
                for c in h.clients() {
                    let s = h.core.stats(Some(c)).unwrap();
                    let limit = allowed.entry(c).or_insert(s.quota_pages);
                    if matches!(op, Q::Destroy { .. }) {
                        *limit = (*limit).max(s.charged_pages);
                    }
                    prop_assert!(s.charged_pages <= *limit, "after {:?}: client {} charged {} > {}", op, c, s.charged_pages, *limit);
                    if s.charged_pages <= s.quota_pages {
                        *limit = s.quota_pages;
                    } else {
                        *limit = s.charged_pages;
                    }
                }
                allowed.retain(|c, _| h.core.has_space(*c));
                h.core.check_invariants().unwrap();
                h.check();
            }
            for c in h.clients() {
                h.core.destroy_space(c).unwrap();
            }
            let s = h.core.stats(None).unwrap();
            prop_assert_eq!((s.frames_in_use, s.slots_in_use), (0, 0));
        }
    }
}
