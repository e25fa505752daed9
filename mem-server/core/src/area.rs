//! Areas of one address space: an ordered map of non-overlapping ranges plus the gap index.
//!
//! `AreaMap` keeps `BTreeMap<start, Area>` for O(log n) lookup and `gaps::Gaps` (the
//! complement within the user range) for O(log n) first-fit. It knows nothing about pages or
//! frames: `space.rs` and the operation files (`mmap.rs`, `munmap.rs`, `mprotect.rs`, …) unmap
//! pages and then edit areas here. Splitting an area yields pieces whose `kind` offsets are
//! adjusted; object references held by areas are counted by the caller (`objects.rs`).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use mem_protocol::Prot;

use crate::gaps::Gaps;
use crate::objects::ObjId;

/// What backs an area's pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AreaKind {
    /// Private anonymous memory: zero-filled on first touch, copy-on-write after clone.
    Anon,
    /// Pages of a shared memory object (shm segment, shared anonymous, shared backend
    /// cache), starting at byte `offset` of the object at the area's start.
    Shared { obj: ObjId, offset: u64 },
    /// A private mapping of a backend object: pages are copied from it on first touch.
    PrivateBackend { obj: ObjId, offset: u64 },
    /// Physical (device) memory starting at `paddr`, mapped eagerly.
    Phys { paddr: u64 },
    /// Private memory whose pages pager `pager` supplies on first touch (`pager.rs`); the
    /// area starts at byte `offset` of the mapping as it was created. Pages supplied are
    /// private pages of the space (copy-on-write after clone, like `Anon`).
    Pager { pager: u32, offset: u64 },
    /// The object behind this area was destroyed (a backend whose owner went away, like a
    /// truncated file on Linux): pages already private stay, any other access is an
    /// unresolved fault.
    Dead,
}

impl AreaKind {
    /// The kind of the piece of this area that starts `delta` bytes further.
    pub fn advanced(self, delta: u64) -> AreaKind {
        match self {
            AreaKind::Anon => AreaKind::Anon,
            AreaKind::Shared { obj, offset } => AreaKind::Shared { obj, offset: offset + delta },
            AreaKind::PrivateBackend { obj, offset } => {
                AreaKind::PrivateBackend { obj, offset: offset + delta }
            }
            AreaKind::Phys { paddr } => AreaKind::Phys { paddr: paddr + delta },
            AreaKind::Pager { pager, offset } => AreaKind::Pager { pager, offset: offset + delta },
            AreaKind::Dead => AreaKind::Dead,
        }
    }

    /// The object this area references, if any.
    pub fn object(self) -> Option<ObjId> {
        match self {
            AreaKind::Shared { obj, .. } | AreaKind::PrivateBackend { obj, .. } => Some(obj),
            _ => None,
        }
    }
}

/// One mapped range `[start, end)` (start is the map key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    pub end: u64,
    pub prot: Prot,
    /// Highest protection `mprotect` may grant (Zircon-style), fixed at creation.
    pub max_prot: Prot,
    pub kind: AreaKind,
    /// Shm attachment identity: the address `shmat` returned (shmdt detaches by it).
    pub attach: Option<u64>,
    /// A system area: a page the administrator exported (`pin.rs`: a thread's IPC buffer,
    /// the boot page) or the shared buffer. `Reset` keeps it, and it never merges with a
    /// neighbour (so nothing the client maps next to it survives a `Reset` with it).
    pub system: bool,
}

/// May `b`, right after `a` (which starts at `a_start`), merge into it? Equal rights and
/// max protection, the same kind continuing (same object at the next offset), neither an
/// shm attachment nor a system area.
fn mergeable(a_start: u64, a: &Area, b: &Area) -> bool {
    a.prot == b.prot
        && a.max_prot == b.max_prot
        && a.attach.is_none()
        && b.attach.is_none()
        && !a.system
        && !b.system
        && b.kind == a.kind.advanced(a.end - a_start)
}

/// An area found by its exact bounds ([`AreaMap::exact_mut`]), to change in place, and
/// what its neighbours are.
pub struct Exact<'a> {
    pub area: &'a mut Area,
    prev: Option<(u64, Area)>,
    next: Option<Area>,
}

impl Exact<'_> {
    /// Would the area (starting at `start`), as it is now, merge with a neighbour
    /// ([`AreaMap::merge_around`]'s rule)?
    pub fn would_merge(&self, start: u64) -> bool {
        let a = &*self.area;
        self.next.is_some_and(|n| mergeable(start, a, &n))
            || self.prev.is_some_and(|(ps, p)| p.end == start && mergeable(ps, &p, a))
    }
}

/// The areas of one address space and the free gaps between them.
#[derive(Clone, Debug)]
pub struct AreaMap {
    areas: BTreeMap<u64, Area>,
    gaps: Gaps,
    lo: u64,
    hi: u64,
}

impl AreaMap {
    /// An empty map over the user range `[lo, hi)` (page aligned); `seed` randomises the
    /// gap index's shape (`gaps.rs`).
    pub fn new(lo: u64, hi: u64, seed: u64) -> Self {
        let mut gaps = Gaps::new(seed);
        if hi > lo {
            gaps.insert(lo, hi - lo);
        }
        AreaMap { areas: BTreeMap::new(), gaps, lo, hi }
    }

    pub fn len(&self) -> usize {
        self.areas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.areas.is_empty()
    }

    pub fn user_range(&self) -> (u64, u64) {
        (self.lo, self.hi)
    }

    /// The area containing `vaddr`, as `(start, area)`.
    pub fn find(&self, vaddr: u64) -> Option<(u64, &Area)> {
        let (&s, a) = self.areas.range(..=vaddr).next_back()?;
        (vaddr < a.end).then_some((s, a))
    }

    /// Areas overlapping `[start, end)`, in order.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, &Area)> + '_ {
        let first = match self.areas.range(..start).next_back() {
            Some((&s, a)) if a.end > start => s,
            _ => start,
        };
        self.areas.range(first..end).map(|(&s, a)| (s, a))
    }

    /// Does any area overlap `[start, end)`?
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).next().is_some()
    }

    /// Is `[start, end)` covered by areas without holes?
    pub fn fully_covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for (s, a) in self.overlapping(start, end) {
            if s > at {
                return false;
            }
            at = a.end;
            if at >= end {
                return true;
            }
        }
        at >= end
    }

    /// Lowest free, `align`-aligned range of `len` bytes at or above `from`.
    pub fn find_free(&self, len: u64, align: u64, from: u64) -> Option<u64> {
        self.gaps.first_fit(len, align, from.max(self.lo))
    }

    /// Is `[start, start+len)` entirely free and inside the user range?
    pub fn is_free(&self, start: u64, len: u64) -> bool {
        match self.gaps.containing(start) {
            Some((s, l)) => start + len <= s + l,
            None => false,
        }
    }

    /// Insert an area over a range that must be free (checked with `is_free`).
    pub fn insert(&mut self, start: u64, area: Area) {
        let (gs, gl) = self.gaps.containing(start).expect("insert into a free range");
        let ge = gs + gl;
        debug_assert!(area.end <= ge);
        // Shrink or split the gap in place where possible (keeps the treap work minimal).
        match (gs < start, area.end < ge) {
            (false, false) => {
                self.gaps.remove(gs);
            }
            (false, true) => {
                self.gaps.reshape(gs, area.end, ge - area.end);
            }
            (true, false) => {
                self.gaps.reshape(gs, gs, start - gs);
            }
            (true, true) => {
                self.gaps.reshape(gs, gs, start - gs);
                self.gaps.insert(area.end, ge - area.end);
            }
        }
        self.areas.insert(start, area);
    }

    /// Remove the area that starts at `start`, returning it; its range becomes a gap merged
    /// with its neighbours.
    pub fn remove(&mut self, start: u64) -> Option<Area> {
        let area = self.areas.remove(&start)?;
        let prev = start.checked_sub(1).and_then(|p| self.gaps.containing(p));
        let next = self.gaps.containing(area.end).filter(|&(ns, _)| ns == area.end);
        // Grow a neighbouring gap in place; only two neighbours merging removes a node.
        match (prev, next) {
            (Some((ps, _)), None) => {
                self.gaps.reshape(ps, ps, area.end - ps);
            }
            (None, Some((ns, nl))) => {
                self.gaps.reshape(ns, start, ns + nl - start);
            }
            (Some((ps, _)), Some((ns, nl))) => {
                self.gaps.remove(ns);
                self.gaps.reshape(ps, ps, ns + nl - ps);
            }
            (None, None) => self.gaps.insert(start, area.end - start),
        }
        Some(area)
    }

    /// Cut `[from, to)` off one end of the area starting at `s` (`from == s` and `to` inside
    /// it, or `to` its end and `from` inside it): the area keeps the rest (its kind advanced
    /// when the head goes) and the range becomes a gap merged with its neighbour. No area is
    /// created, so the budget needs no room (munmap of the edge of a merged area).
    pub fn cut_edge(&mut self, s: u64, from: u64, to: u64) {
        let Some(&a) = self.areas.get(&s) else { return };
        debug_assert!(s <= from && from < to && to <= a.end && (from == s) != (to == a.end));
        if from == s {
            self.areas.remove(&s);
            self.areas.insert(to, Area { kind: a.kind.advanced(to - s), ..a });
            match s.checked_sub(1).and_then(|p| self.gaps.containing(p)) {
                Some((ps, _)) => {
                    self.gaps.reshape(ps, ps, to - ps);
                }
                None => self.gaps.insert(from, to - from),
            }
        } else {
            if let Some(x) = self.areas.get_mut(&s) {
                x.end = from;
            }
            match self.gaps.containing(a.end).filter(|&(ns, _)| ns == a.end) {
                Some((ns, nl)) => {
                    self.gaps.reshape(ns, from, ns + nl - from);
                }
                None => self.gaps.insert(from, to - from),
            }
        }
    }

    /// Split the area containing `at` (if `at` is strictly inside it) so that an area starts
    /// at `at`. Returns the kind's object if one was split (the caller counts the new
    /// reference). Gaps are unchanged.
    pub fn split_at(&mut self, at: u64) -> Option<ObjId> {
        let (s, a) = self.find(at)?;
        if s == at {
            return None;
        }
        let mut left = *a;
        let right = Area { end: left.end, kind: left.kind.advanced(at - s), ..left };
        left.end = at;
        self.areas.insert(s, left);
        self.areas.insert(at, right);
        right.kind.object()
    }

    /// Mutable access to the area starting at `start`.
    pub fn get_mut(&mut self, start: u64) -> Option<&mut Area> {
        self.areas.get_mut(&start)
    }

    pub fn get(&self, start: u64) -> Option<&Area> {
        self.areas.get(&start)
    }

    /// Starts of the areas overlapping `[start, end)`.
    pub fn starts_in(&self, start: u64, end: u64) -> Vec<u64> {
        self.overlapping(start, end).map(|(s, _)| s).collect()
    }

    /// All areas in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Area)> + '_ {
        self.areas.iter().map(|(&s, a)| (s, a))
    }

    /// One past the last address of the highest area, or 0 when there is none.
    pub fn last_end(&self) -> u64 {
        self.areas.last_key_value().map_or(0, |(_, a)| a.end)
    }

    /// The areas starting at or above `from`, in order.
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = (u64, &Area)> + '_ {
        self.areas.range(from..).map(|(&s, a)| (s, a))
    }

    /// The last area overlapping `[start, end)`, as `(start, area)`.
    pub fn last_overlapping(&self, start: u64, end: u64) -> Option<(u64, Area)> {
        let (&s, a) = self.areas.range(..end).next_back()?;
        (a.end > start).then_some((s, *a))
    }

    /// The last area starting below `at` that `keep` accepts, as `(start, end)`.
    pub fn last_below(&self, at: u64, keep: impl Fn(&Area) -> bool) -> Option<(u64, u64)> {
        self.areas.range(..at).rev().find(|(_, a)| keep(a)).map(|(&s, a)| (s, a.end))
    }

    /// The first area overlapping `[start, end)`, as `(start, area)`.
    pub fn first_overlapping(&self, start: u64, end: u64) -> Option<(u64, Area)> {
        self.overlapping(start, end).next().map(|(s, a)| (s, *a))
    }

    /// Try to merge the area at `start` with its successor if they are adjacent and
    /// identical in everything but position (keeps the map small after mprotect round trips).
    /// Returns the object whose reference the merge dropped.
    pub fn try_merge_next(&mut self, start: u64) -> Option<Option<ObjId>> {
        let a = *self.areas.get(&start)?;
        let b = *self.areas.get(&a.end)?;
        if !mergeable(start, &a, &b) {
            return None;
        }
        self.areas.remove(&a.end);
        self.areas.get_mut(&start)?.end = b.end;
        Some(b.kind.object())
    }

    /// Would an area `new` inserted at the free range starting at `start` merge with the
    /// area before or after it (`merge_around`)?
    pub fn would_merge(&self, start: u64, new: &Area) -> bool {
        let before = self.areas.range(..start).next_back().is_some_and(|(&ps, p)| p.end == start && mergeable(ps, p, new));
        before || self.areas.get(&new.end).is_some_and(|n| mergeable(start, new, n))
    }

    /// Merge the area at `start` with its predecessor and its successor where they are
    /// equal in everything but position (`try_merge_next`'s rule), with one lookup each
    /// way. Returns the objects whose references the merges dropped.
    pub fn merge_around(&mut self, start: u64) -> [Option<ObjId>; 2] {
        let Some(&a) = self.areas.get(&start) else { return [None, None] };
        self.merge_found(start, a)
    }

    /// Give the area `[start, end)` the protection `prot`, then [`AreaMap::merge_around`]
    /// it. mprotect's common case, an area that merges with neither neighbour, takes one
    /// search of the map ([`AreaMap::exact_mut`]).
    pub fn set_prot_and_merge(&mut self, start: u64, end: u64, prot: Prot) -> [Option<ObjId>; 2] {
        match self.exact_mut(start, end) {
            Ok(x) => {
                x.area.prot = prot;
                if !x.would_merge(start) {
                    return [None, None];
                }
                let a = *x.area;
                self.merge_found(start, a)
            }
            // Not an area of exactly these bounds: the general way.
            Err(_) => {
                if let Some(a) = self.areas.get_mut(&start) {
                    a.prot = prot;
                }
                self.merge_around(start)
            }
        }
    }

    /// The area of exactly the bounds `[start, end)`, if there is one, to change in place,
    /// with copies of the areas right before and right after it: one search of the map (the
    /// walk back from `end` meets the next area if it is adjacent, the area, the one before).
    /// If there is none: the area containing `start` if the search met it (what
    /// [`AreaMap::find`] would say of `start`), so that the caller need not search again.
    pub fn exact_mut(&mut self, start: u64, end: u64) -> Result<Exact<'_>, Option<(u64, Area)>> {
        let mut it = self.areas.range_mut(..=end).rev();
        let mut item = it.next().ok_or(None)?;
        let mut next = None;
        if *item.0 == end && end > start {
            next = Some(*item.1);
            item = it.next().ok_or(None)?;
        }
        if *item.0 != start || item.1.end != end {
            let (&s, a) = item;
            return Err((s <= start && start < a.end).then_some((s, *a)));
        }
        let prev = it.next().map(|(&s, p)| (s, *p));
        Ok(Exact { area: item.1, prev, next })
    }

    /// `merge_around` of the area `a` at `start`, as it is in the map.
    pub fn merge_found(&mut self, start: u64, a: Area) -> [Option<ObjId>; 2] {
        let mut dropped = [None, None];
        let mut end = a.end;
        if let Some(&b) = self.areas.get(&a.end) {
            if mergeable(start, &a, &b) {
                self.areas.remove(&a.end);
                end = b.end;
                dropped[0] = b.kind.object();
            }
        }
        let prev = self.areas.range(..start).next_back().map(|(&s, p)| (s, *p));
        match prev {
            Some((ps, p)) if p.end == start && mergeable(ps, &p, &a) => {
                self.areas.remove(&start);
                if let Some(p) = self.areas.get_mut(&ps) {
                    p.end = end;
                }
                dropped[1] = a.kind.object();
            }
            // (Its end moves only if it took in the next area.)
            _ if end != a.end => {
                if let Some(x) = self.areas.get_mut(&start) {
                    x.end = end;
                }
            }
            _ => {}
        }
        dropped
    }

    /// Height of the gap index (tests).
    pub fn gap_height(&self) -> usize {
        self.gaps.height()
    }

    /// Gaps as `(start, len)` (tests).
    pub fn gaps(&self) -> Vec<(u64, u64)> {
        self.gaps.to_vec()
    }

    /// Heap bytes used by this map (benchmarks).
    pub fn heap_bytes(&self) -> usize {
        // BTreeMap nodes hold up to 11 entries plus edges; count per entry conservatively.
        self.areas.len() * (core::mem::size_of::<(u64, Area)>() * 3 / 2) + self.gaps.heap_bytes()
    }
}
