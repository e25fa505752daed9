//! mmap: create an area (anonymous or backend-backed, private or shared) at a fixed,
//! hinted or first-fit address.
//!
//! Placement follows Linux: `Fixed` replaces whatever overlaps (atomically: the new area is
//! fully validated before the old mappings go), `FixedNoReplace` fails with EEXIST on any
//! overlap, `Hint` uses the address (rounded down to a page) when that range is free and
//! falls back to first-fit (Linux would fall back top-down: a deliberate difference),
//! `Anywhere` is first-fit (2 MiB aligned for large anonymous areas so they can use large
//! pages). Pages are not allocated here (lazy) unless `populate` asks (`populate.rs`).
//! Neighbours: `munmap.rs` (removal for `Fixed`), `area.rs`, `objects.rs`, `backend.rs`.

use mem_protocol::{Backing, Errno, Placement, Prot, LARGE_PAGE_SIZE, PAGE_SIZE};

use crate::area::{Area, AreaKind};
use crate::check::{self, PageRange};
use crate::kernel::Kernel;
use crate::MemCore;

/// Arguments of an mmap, as the client alleged them.
#[derive(Clone, Copy, Debug)]
pub struct MmapArgs {
    pub addr: u64,
    pub len: u64,
    pub prot: Prot,
    /// Highest protection mprotect may later grant; must contain `prot`.
    pub max_prot: Prot,
    pub placement: Placement,
    pub shared: bool,
    pub backing: Backing,
    pub populate: bool,
}

impl MmapArgs {
    /// A private anonymous mapping placed anywhere with `prot` (max protection RWX).
    pub fn anon(len: u64, prot: Prot) -> Self {
        MmapArgs {
            addr: 0,
            len,
            prot,
            max_prot: Prot::RWX,
            placement: Placement::Anywhere,
            shared: false,
            backing: Backing::Anonymous,
            populate: false,
        }
    }
    pub fn at(mut self, addr: u64, placement: Placement) -> Self {
        self.addr = addr;
        self.placement = placement;
        self
    }
}

impl<K: Kernel> MemCore<K> {
    /// Map a new area into `client`'s space and merge it with equal neighbours; returns its
    /// start address.
    pub fn mmap(&mut self, client: u32, a: &MmapArgs) -> Result<u64, Errno> {
        crate::step::to_the_end(|| self.mmap_step(client, a))
    }

    /// One step of mmap (`step.rs`): a `Fixed` mapping over many pages or areas removes
    /// what it replaces in bounded steps (`EAGAIN` until that is done; the new area is made
    /// in the last step, so a request given up half way leaves a hole, as a munmap would).
    pub fn mmap_step(&mut self, client: u32, a: &MmapArgs) -> Result<u64, Errno> {
        self.mmap_inner(client, a, true)
    }

    /// Merge the area starting at `start` with its neighbours where they are equal in
    /// everything but position (`AreaMap::try_merge_next`), dropping the object reference
    /// each merge of an object's pieces makes redundant. Needs no memory.
    pub(crate) fn merge_neighbours(&mut self, client: u32, start: u64) {
        let Some(sp) = self.spaces.get_mut(&client) else { return };
        self.objs.merged_away(client, sp.areas.merge_around(start));
    }

    /// Map a new area as its own area (no merge): for callers that still have work to do
    /// on exactly that area (`region.rs`, the shared buffer).
    pub(crate) fn mmap_unmerged(&mut self, client: u32, a: &MmapArgs) -> Result<u64, Errno> {
        self.mmap_inner(client, a, false)
    }

    /// `mmap`, merging at once (before `populate`) if `merge`.
    fn mmap_inner(&mut self, client: u32, a: &MmapArgs, merge: bool) -> Result<u64, Errno> {
        self.settle();
        let len = check::page_len(a.len)?;
        if !a.max_prot.contains(a.prot) {
            return Err(Errno::Acces);
        }
        if !self.spaces.contains_key(&client) {
            return Err(Errno::Srch);
        }
        // Validate the backing before anything changes.
        let mut max_prot = a.max_prot;
        let mut pager = None;
        let kind_obj = match a.backing {
            Backing::Anonymous => None,
            Backing::Pager { id } => {
                if a.shared {
                    return Err(Errno::Inval);
                }
                self.pager_may_map(client, id)?;
                pager = Some(id);
                None
            }
            Backing::Backend { id, offset } => {
                if !check::is_aligned(offset) {
                    return Err(Errno::Inval);
                }
                let size = self.backends.size(id)?;
                let end = offset.checked_add(len).ok_or(Errno::Overflow)?;
                if end > size {
                    return Err(Errno::Overflow);
                }
                max_prot = self.backend_may_map(client, id, a.shared, a.prot, a.max_prot)?;
                Some((self.backends.cache_obj(id)?, offset))
            }
        };
        let range = self.place(client, a, len)?;
        // Room for the new area and what a Fixed mapping splits off, and an object record.
        let splits = if a.placement == Placement::Fixed { self.splits_needed(client, range.start, range.end) } else { 0 };
        let new_obj = kind_obj.is_none() && a.shared;
        let obj_meta = if new_obj { crate::objects::charge_of(range.pages(), 0, false).1 } else { 0 };
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        // The area's kind, but for a new shared object (which never merges).
        let known_kind = match (kind_obj, a.shared) {
            (None, false) => Some(match pager {
                Some(pager) => AreaKind::Pager { pager, offset: 0 },
                None => AreaKind::Anon,
            }),
            (None, true) => None,
            (Some((obj, offset)), true) => Some(AreaKind::Shared { obj, offset }),
            (Some((obj, offset)), false) => Some(AreaKind::PrivateBackend { obj, offset }),
        };
        // An area placed next to an equal one needs no new area (Linux merges before it
        // counts). Known before anything changes for placements that remove nothing; after
        // a Fixed mapping removed what it covers, its new neighbours are tried anyway.
        let merges = merge
            && a.placement != Placement::Fixed
            && known_kind.is_some_and(|kind| sp.areas.would_merge(range.start, &Area { end: range.end, prot: a.prot, max_prot, kind, attach: None, system: false }));
        let new_areas = u64::from(!merges) + splits;
        sp.area_room(new_areas, self.cfg.limits.max_map_count)?;
        sp.meta_room(new_areas * crate::ledger::cost::AREA + obj_meta)?;
        if a.placement == Placement::Fixed
            && !self.remove_range_budget(client, range.start, range.end, &mut crate::step::Step::new())?
        {
            return Err(Errno::Again);
        }
        let kind = match known_kind {
            Some(kind) => kind,
            None => {
                let obj = self.objs.create(range.pages(), Some(client), 0, false)?;
                self.space_mut(client)?.budget.obj_meta += obj_meta;
                AreaKind::Shared { obj, offset: 0 }
            }
        };
        if let Some(obj) = kind.object() {
            if let Some(o) = self.objs.get_mut(obj) {
                o.add_area(client);
            }
        }
        let sp = self.space_mut(client)?;
        sp.areas.insert(range.start, Area { end: range.end, prot: a.prot, max_prot, kind, attach: None, system: false });
        sp.last_map_start = range.start;
        if merges || (merge && a.placement == Placement::Fixed && known_kind.is_some()) {
            self.merge_neighbours(client, range.start);
        }
        if a.populate {
            // Like MAP_POPULATE: best effort, the mapping stands even if memory runs out;
            // a few pages at most (the client library populates the rest).
            let end = range.end.min(range.start + mem_protocol::MMAP_POPULATE_PAGES * PAGE_SIZE);
            let _ = self.populate_range(client, range.start, end);
        }
        Ok(range.start)
    }

    /// Choose the range for a new area of `len` bytes.
    pub(crate) fn place(&self, client: u32, a: &MmapArgs, len: u64) -> Result<PageRange, Errno> {
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        let (lo, hi) = (self.cfg.user_lo, self.cfg.user_hi);
        match a.placement {
            Placement::Fixed => check::fixed_range(a.addr, len, lo, hi),
            Placement::FixedNoReplace => {
                let r = check::fixed_range(a.addr, len, lo, hi)?;
                if sp.areas.overlaps(r.start, r.end) {
                    return Err(Errno::Exist);
                }
                Ok(r)
            }
            Placement::Hint | Placement::Anywhere => {
                if len > hi - lo {
                    return Err(Errno::NoMem);
                }
                if a.placement == Placement::Hint && a.addr != 0 {
                    // Linux `round_hint_to_min`: round down, raise to the lowest user address.
                    let s = (a.addr & !(PAGE_SIZE - 1)).max(lo);
                    if s.checked_add(len).is_some_and(|e| e <= hi) && sp.areas.is_free(s, len) {
                        return Ok(PageRange { start: s, end: s + len });
                    }
                }
                let large = self.cfg.large_pages && len >= LARGE_PAGE_SIZE && matches!(a.backing, Backing::Anonymous) && !a.shared;
                let start = large
                    .then(|| sp.areas.find_free(len, LARGE_PAGE_SIZE, lo))
                    .flatten()
                    .or_else(|| sp.areas.find_free(len, PAGE_SIZE, lo))
                    .ok_or(Errno::NoMem)?;
                Ok(PageRange { start, end: start + len })
            }
        }
    }
}
