//! populate: allocate and map every page of a lazy range now (axmem's `manual_alloc_*`).
//!
//! The range must be covered by areas (ENOMEM otherwise, as for a hole in mlock). Areas
//! with no access rights are skipped, as Linux's MAP_POPULATE does, and so are pager-backed
//! areas (their pages come from the pager, on faults only). Used by the Populate
//! request and mmap's `populate`.
//!
//! The Populate request goes in bounded steps (`step.rs`): each maps what
//! [`POPULATE_UNITS`] of work allow (at most `STEP_PAGES` pages) and answers `EAGAIN`
//! while some of the range is left. Each step is all or nothing: it
//! counts what its part needs (private pages and cap copies of the caller, pages of each
//! shared object's owner) and fails with ENOMEM before any change if a budget cannot hold
//! it; pages it maps are marked `fresh`, and if one still cannot be had (the system out of
//! memory) every page this step mapped is released again before ENOMEM. What earlier
//! steps mapped stays, as with Linux's `MADV_POPULATE_WRITE`; a range within one
//! anonymous area that plainly exceeds what the quota has left is refused before the
//! first step. (Counting the whole range at every step would cost O(range) a step.)
//! (mmap's `populate` is best effort like MAP_POPULATE: the mapping stands, and at most
//! one step's pages are mapped with it; the client library asks for the rest.)
//! Neighbours: `fault.rs` (`fill`), `check.rs`.

use mem_protocol::{Errno, PAGE_SIZE};

use crate::area::AreaKind;
use crate::check;
use crate::kernel::Kernel;
use crate::MemCore;

/// Work one Populate step may do, in units of about 500 instructions: a page mapped costs 3
/// (10 where it is a cap copy of an object's frame), and the frames it takes cost what
/// getting them did (`res::Res::work`: 1 zeroed, 6 freshly retyped, 512 a zeroed 2 MiB
/// frame). About 70,000 instructions, and at most one retype batch more; a step maps at
/// least one page.
pub const POPULATE_UNITS: u64 = 140;

impl<K: Kernel> MemCore<K> {
    /// Populate `[addr, addr + len)` of `client`'s space: every step until done.
    pub fn populate(&mut self, client: u32, addr: u64, len: u64) -> Result<(), Errno> {
        crate::step::to_the_end(|| self.populate_step(client, addr, len))
    }

    /// One step of Populate (`EAGAIN` while some of the range is left).
    pub fn populate_step(&mut self, client: u32, addr: u64, len: u64) -> Result<(), Errno> {
        self.settle();
        let r = check::unmap_range(addr, len, self.cfg.user_hi)?;
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        if !sp.areas.fully_covered(r.start, r.end) {
            return Err(Errno::NoMem);
        }
        let from = match sp.populate_next {
            (s, e, n) if (s, e) == (r.start, r.end) && s < n && n < e => n,
            _ => r.start,
        };
        if from == r.start {
            // Plainly too big for the quota (one anonymous area with more absent pages
            // than the quota has left, whatever the caller has mapped): refused up front.
            if let Some((_, a)) = sp.areas.find(r.start) {
                let absent = ((r.end - r.start) / PAGE_SIZE).saturating_sub(sp.pt.pages);
                if a.end >= r.end && matches!(a.kind, AreaKind::Anon) && sp.over_quota(absent) {
                    return Err(Errno::NoMem);
                }
            }
        }
        let to = r.end.min(from.saturating_add(crate::step::STEP_PAGES * PAGE_SIZE));
        self.populate_fits(client, from, to)?;
        let reached = self.populate_chunk(client, from, to)?;
        let sp = self.spaces.get_mut(&client).ok_or(Errno::Srch)?;
        if reached < r.end {
            sp.populate_next = (r.start, r.end, reached);
            return Err(Errno::Again);
        }
        sp.populate_next = (0, 0, 0);
        Ok(())
    }

    /// Populate `[from, to)` or the part of it one step's work allows, all or nothing
    /// (budgets already checked); returns where it stopped.
    fn populate_chunk(&mut self, client: u32, from: u64, to: u64) -> Result<u64, Errno> {
        let result = self.populate_marked(client, from, to, true, POPULATE_UNITS);
        // Clear the marks; on failure release what this request mapped.
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        let mut at = from;
        while let Some((base, pte, size)) = sp.pt.next_mapped(at, to) {
            at = base + size.bytes();
            if !pte.fresh() {
                continue;
            }
            if result.is_ok() {
                sp.pt.update(base, size, pte.with_fresh(false));
            } else {
                crate::space::release_page(k, res, deferred, sp, base, size, pte.with_fresh(false));
            }
        }
        result
    }

    /// ENOMEM unless every budget can hold what populating `[start, end)` needs.
    fn populate_fits(&self, client: u32, start: u64, end: u64) -> Result<(), Errno> {
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        let (mut private, mut copies) = (0u64, 0u64);
        let mut owners: alloc::vec::Vec<(u32, u64)> = alloc::vec::Vec::new();
        for (s, a) in sp.areas.overlapping(start, end) {
            if a.prot.is_empty() || matches!(a.kind, AreaKind::Pager { .. }) {
                continue;
            }
            let (lo, hi) = (s.max(start), a.end.min(end));
            let mut absent = (hi - lo) / PAGE_SIZE;
            let mut at = lo;
            while let Some((base, _, size)) = sp.pt.next_mapped(at, hi) {
                let from = base.max(lo);
                absent -= (base + size.bytes()).min(hi).saturating_sub(from) / PAGE_SIZE;
                at = base + size.bytes();
            }
            match a.kind {
                AreaKind::Anon | AreaKind::PrivateBackend { .. } => private += absent,
                AreaKind::Shared { obj, offset } => {
                    copies += absent;
                    let Some(o) = self.objs.get(obj) else { continue };
                    if o.prepaid {
                        continue;
                    }
                    let (i0, i1) = ((offset + (lo - s)) / PAGE_SIZE, (offset + (hi - s)) / PAGE_SIZE);
                    let present = o.frames_from(i0).take_while(|&(i, _)| i < i1).count() as u64;
                    let need = (i1 - i0).saturating_sub(present);
                    let Some(owner) = o.owner else { return Err(Errno::NoMem) };
                    match owners.iter_mut().find(|(c, _)| *c == owner) {
                        Some((_, n)) => *n += need,
                        None => {
                            owners.try_reserve(1).map_err(|_| Errno::NoMem)?;
                            owners.push((owner, need));
                        }
                    }
                }
                AreaKind::Phys { .. } => copies += absent,
                AreaKind::Pager { .. } => {}
                AreaKind::Dead => return Err(Errno::NoMem),
            }
        }
        let own = owners.iter().find(|(c, _)| *c == client).map_or(0, |&(_, n)| n);
        if sp.over_quota(private + own) || sp.budget.slots + copies > sp.budget.slot_limit {
            return Err(Errno::NoMem);
        }
        for (owner, need) in owners {
            let o = self.spaces.get(&owner).ok_or(Errno::NoMem)?;
            let extra = if owner == client { private } else { 0 };
            if o.over_quota(need + extra) || o.meta_room(need * crate::ledger::cost::OBJ_PAGE).is_err() {
                return Err(Errno::NoMem);
            }
        }
        Ok(())
    }

    /// Populate without marks (best effort for mmap's `populate`, all of the buffer setup).
    pub(crate) fn populate_range(&mut self, client: u32, start: u64, end: u64) -> Result<(), Errno> {
        self.populate_marked(client, start, end, false, u64::MAX).map(|_| ())
    }

    /// Populate `[start, end)`, or stop early once `budget` units of work are spent
    /// (`POPULATE_UNITS`); returns where it stopped (`end` when done).
    fn populate_marked(&mut self, client: u32, start: u64, end: u64, mark: bool, budget: u64) -> Result<u64, Errno> {
        let around = self.cfg.fault_around;
        if mark {
            self.cfg.fault_around = 0;
        }
        let r = self.populate_walk(client, start, end, mark, budget);
        self.cfg.fault_around = around;
        r
    }

    fn populate_walk(&mut self, client: u32, start: u64, end: u64, mark: bool, budget: u64) -> Result<u64, Errno> {
        let work0 = self.res.work;
        let mut spent = 0u64;
        let mut at = start;
        // The area of the page before, while `at` is still inside it (one area lookup
        // per area, not per page).
        let mut cur: Option<(u64, crate::area::Area)> = None;
        while at < end {
            let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
            let (s, area) = match cur {
                Some((s, a)) if at < a.end => (s, a),
                _ => match sp.areas.find(at).map(|(s, a)| (s, *a)) {
                    Some(found) => found,
                    None => {
                        at += PAGE_SIZE;
                        continue;
                    }
                },
            };
            cur = Some((s, area));
            if area.prot.is_empty() || matches!(area.kind, AreaKind::Pager { .. }) {
                at = area.end;
                continue;
            }
            if let Some((_, size, base)) = sp.pt.lookup(at) {
                at = base + size.bytes();
                continue;
            }
            if spent + (self.res.work - work0) >= budget {
                return Ok(at);
            }
            self.fill(client, s, &area, at)?;
            // A map (and a cap copy where the page is an object's).
            spent += if matches!(area.kind, AreaKind::Anon) { 3 } else { 10 };
            if mark {
                // Fault-around is off while marking: the fill mapped exactly the page
                // (small, or a large one covering it) that `at` was missing.
                let sp = self.space_mut(client)?;
                if let Some((pte, size, base)) = sp.pt.lookup(at) {
                    sp.pt.update(base, size, pte.with_fresh(true));
                    at = base + size.bytes();
                    continue;
                }
            }
            at += PAGE_SIZE;
        }
        Ok(end)
    }
}
