//! VM faults: decide and resolve, or report the fault as unresolvable.
//!
//! - no page, anonymous area: a zeroed frame (a 2 MiB one when the aligned 2 MiB chunk lies
//!   in the area and nothing is mapped under it), mapped with its original cap, plus up to
//!   `fault_around` following lazy pages when the access looks sequential;
//! - no page, shared object area: the object's frame (allocated on first touch, filled from
//!   the backend store for backend caches), mapped through a cap copy;
//! - no page, private backend area: a private copy of the backend page;
//! - write to a copy-on-write page: take the frame over when this is its last reference,
//!   else copy it;
//! - an access the area's rights forbid, or an address in no area: unresolved.
//!
//! - an area whose object was destroyed (`AreaKind::Dead`), or a page past the end of a
//!   revoked object: unresolved, like a truncated file mapping on Linux.
//! - no page, pager-backed area: the fault goes to the pager (`pager.rs`) and is answered
//!   later (`Unresolved::Deferred`).
//!
//! Every page, table and cap copy is checked against the budget of whoever pays for it
//! before it is allocated (`space::map_page`; an object's page against its owner's).
//! The common case (anonymous page, clean frame in the pool) costs one `Page_Map`.
//! Neighbours: `space.rs` (map/release), `objects.rs`, `backend.rs`, `res.rs`.

use mem_protocol::{Access, Errno, PageSize, Prot, LARGE_PAGE_SIZE, PAGE_SIZE};

use crate::area::{Area, AreaKind};
use crate::kernel::{Caching, Kernel};
use crate::pagetable::Pte;
use crate::space::{hw_rights, map_page, MapReq};
use crate::{MemCore, Unresolved};

/// Does `prot` allow `access`? (Write implies read in hardware.)
pub fn allows(prot: Prot, access: Access) -> bool {
    match access {
        Access::Read => prot.readable() || prot.writable(),
        Access::Write => prot.writable(),
        Access::Exec => prot.executable(),
    }
}

impl<K: Kernel> MemCore<K> {
    /// Resolve a fault of `client` at `vaddr`; returns the number of pages mapped (0 for a
    /// spurious fault on a page that is already accessible).
    pub fn handle_fault(&mut self, client: u32, vaddr: u64, access: Access) -> Result<u32, Unresolved> {
        if !self.deferred.0.is_empty() {
            self.settle();
        }
        let mut r = self.fault_inner(client, vaddr, access);
        if r == Err(Unresolved::NoMemory) && self.has_dying() {
            // Release a slice of dead objects' frames (`dying.rs`); the thread retries.
            self.release_step();
            r = Ok(0);
        }
        match r {
            Ok(_) => {
                self.faults += 1;
                if let Some(sp) = self.spaces.get_mut(&client) {
                    sp.faults += 1;
                }
            }
            // Counted when the pager answers (`pager.rs`).
            Err(Unresolved::Deferred) => {}
            Err(_) => {
                self.unresolved += 1;
                if let Some(sp) = self.spaces.get_mut(&client) {
                    sp.unresolved += 1;
                }
            }
        }
        r
    }

    fn fault_inner(&mut self, client: u32, vaddr: u64, access: Access) -> Result<u32, Unresolved> {
        let sp = self.spaces.get(&client).ok_or(Unresolved::NoSpace)?;
        let (start, area) = sp.areas.find(vaddr).map(|(s, a)| (s, *a)).ok_or(Unresolved::NoArea)?;
        if !allows(area.prot, access) {
            return Err(Unresolved::Denied);
        }
        let page = vaddr & !(PAGE_SIZE - 1);
        match sp.pt.lookup(vaddr) {
            None => match area.kind {
                AreaKind::Pager { pager, offset } => self.pager_fault(client, pager, page, offset + (page - start), access),
                _ => self.fill(client, start, &area, page).map_err(|e| match e {
                    Errno::Fault | Errno::Idrm => Unresolved::NoArea,
                    _ => Unresolved::NoMemory,
                }),
            },
            Some((pte, size, base)) => {
                if access == Access::Write && pte.cow() {
                    self.break_cow(client, &area, base, size, pte).map_err(|_| Unresolved::NoMemory)?;
                    return Ok(1);
                }
                // Spurious (already accessible), or recorded but unmapped (a refused map):
                // map again with the area's rights.
                let rights = hw_rights(area.prot, pte.cow());
                if !allows(rights, access) {
                    return Err(Unresolved::Denied);
                }
                let MemCore { k, res, spaces, .. } = self;
                let sp = spaces.get_mut(&client).ok_or(Unresolved::NoSpace)?;
                let p = crate::mprotect::set_rights(k, res, sp.pt.vspace(), base, pte, rights).map_err(|_| Unresolved::NoMemory)?;
                sp.pt.update(base, size, p);
                Ok(0)
            }
        }
    }

    /// Map a page at `page` (not present) in the area starting at `start`.
    pub(crate) fn fill(&mut self, client: u32, start: u64, area: &Area, page: u64) -> Result<u32, Errno> {
        match area.kind {
            AreaKind::Anon => {
                if self.cfg.large_pages {
                    if let Some(n) = self.try_large(client, start, area, page)? {
                        return Ok(n);
                    }
                }
                self.fill_anon(client, area, page)?;
                let mut n = 1;
                let around = self.around(client, start, page);
                let mut next = page + PAGE_SIZE;
                while n <= around && next < area.end {
                    let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
                    if sp.pt.lookup(next).is_some() || sp.over_quota(1) {
                        break;
                    }
                    if self.fill_anon(client, area, next).is_err() {
                        break;
                    }
                    n += 1;
                    next += PAGE_SIZE;
                }
                Ok(n as u32)
            }
            AreaKind::Shared { obj, offset } => {
                let idx = (offset + (page - start)) / PAGE_SIZE;
                self.fill_shared(client, area.prot, obj, idx, page)?;
                Ok(1)
            }
            AreaKind::PrivateBackend { obj, offset } => {
                let idx = (offset + (page - start)) / PAGE_SIZE;
                self.fill_private_copy(client, area.prot, obj, idx, page)?;
                Ok(1)
            }
            AreaKind::Phys { paddr } => {
                self.map_phys_page(client, area.prot, paddr + (page - start), page)?;
                Ok(1)
            }
            AreaKind::Dead => Err(Errno::Fault),
            // Pages of pager-backed areas come from the pager, through the fault path only
            // (populate skips these areas).
            AreaKind::Pager { .. } => Err(Errno::Fault),
        }
    }

    /// How many pages after `page` (just mapped, in the area starting at `start`) to map
    /// as well: `Config::fault_around`, and with `fault_around_sequential` only when the
    /// access looks sequential (the page before is mapped, in the same area) and the quota
    /// has room to spare. The first page of an area, and the first page of the latest
    /// mapping even where it merged with the area before it (a heap's large block placed
    /// after its populated segments), is a fresh start: one page.
    fn around(&self, client: u32, start: u64, page: u64) -> u64 {
        let around = u64::from(self.cfg.fault_around);
        if around == 0 || !self.cfg.fault_around_sequential {
            return around;
        }
        if page == start {
            return 0;
        }
        match self.spaces.get(&client) {
            Some(sp)
                if page != sp.last_map_start
                    && !sp.over_quota(2 * around)
                    && sp.pt.lookup(page - PAGE_SIZE).is_some() =>
            {
                around
            }
            _ => 0,
        }
    }

    fn fill_anon(&mut self, client: u32, area: &Area, page: u64) -> Result<(), Errno> {
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        if sp.over_quota(1) {
            return Err(Errno::NoMem);
        }
        let f = res.alloc_frame(k, PageSize::Small)?;
        let m = MapReq { vaddr: page, size: PageSize::Small, frame: f, use_original: true, prot: area.prot, cow: false, nocharge: false };
        map_page(k, res, deferred, sp, m).inspect_err(|_| res.frame_unref(f, PageSize::Small))
    }

    /// A large page for the 2 MiB chunk around `page`, if the chunk qualifies.
    fn try_large(&mut self, client: u32, start: u64, area: &Area, page: u64) -> Result<Option<u32>, Errno> {
        let base = page & !(LARGE_PAGE_SIZE - 1);
        if base < start || base + LARGE_PAGE_SIZE > area.end {
            return Ok(None);
        }
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        if !sp.pt.large_slot_free(base) || sp.over_quota(512 + 1) {
            return Ok(None);
        }
        let Ok(f) = res.alloc_frame(k, PageSize::Large) else { return Ok(None) };
        let m = MapReq { vaddr: base, size: PageSize::Large, frame: f, use_original: true, prot: area.prot, cow: false, nocharge: false };
        match map_page(k, res, deferred, sp, m) {
            Ok(()) => Ok(Some(512)),
            Err(_) => {
                res.frame_unref(f, PageSize::Large);
                Ok(None)
            }
        }
    }

    /// Map page `idx` of object `obj` at `page`, allocating it (charged to the object's
    /// owner) on first touch.
    pub(crate) fn fill_shared(&mut self, client: u32, prot: Prot, obj: u32, idx: u64, page: u64) -> Result<(), Errno> {
        let frame = self.object_page(obj, idx)?;
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        res.frame_ref(frame);
        let m = MapReq { vaddr: page, size: PageSize::Small, frame, use_original: false, prot, cow: false, nocharge: true };
        map_page(k, res, deferred, sp, m).inspect_err(|_| res.frame_unref(frame, PageSize::Small))
    }

    /// The frame of page `idx` of `obj`, allocated if absent (charged to the owner unless
    /// the object was paid in full; an object nobody pays for gets no new pages); a
    /// backend cache page is filled from the backend's store.
    pub(crate) fn object_page(&mut self, obj: u32, idx: u64) -> Result<u32, Errno> {
        let o = self.objs.get(obj).ok_or(Errno::Idrm)?;
        if idx >= o.npages {
            return Err(Errno::Fault);
        }
        if let Some(cur) = o.page(idx) {
            return Ok(cur);
        }
        let owner = if o.prepaid { None } else { Some(o.owner.ok_or(Errno::NoMem)?) };
        if let Some(sp) = owner.and_then(|c| self.spaces.get(&c)) {
            if sp.over_quota(1) {
                return Err(Errno::NoMem);
            }
            sp.meta_room(crate::ledger::cost::OBJ_PAGE)?;
        }
        let (f, _) = self.objs.page_frame(&mut self.k, &mut self.res, obj, idx)?;
        if let Some(store) = self.backends.store_of_cache(obj) {
            let src = self.objs.get(store).and_then(|s| s.page(idx));
            if src.is_some_and(|src| self.k.frame_copy(src, 0, f, 0, PAGE_SIZE).is_err()) {
                if let Some(o) = self.objs.get_mut(obj) {
                    o.take_page(idx);
                }
                self.res.frame_unref(f, PageSize::Small);
                return Err(Errno::NoMem);
            }
        }
        if let Some(sp) = owner.and_then(|c| self.spaces.get_mut(&c)) {
            sp.charged += 1;
            sp.budget.obj_meta += crate::ledger::cost::OBJ_PAGE;
        }
        Ok(f)
    }

    fn fill_private_copy(&mut self, client: u32, prot: Prot, obj: u32, idx: u64, page: u64) -> Result<(), Errno> {
        if self.objs.get(obj).is_none_or(|o| idx >= o.npages) {
            return Err(Errno::Fault);
        }
        let src = self.backends.current_page(&self.objs, obj, idx);
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        if sp.over_quota(1) {
            return Err(Errno::NoMem);
        }
        let f = match src {
            Some(_) => res.alloc_frame_to_overwrite(k, PageSize::Small)?,
            None => res.alloc_frame(k, PageSize::Small)?,
        };
        if let Some(src) = src {
            if k.frame_copy(src, 0, f, 0, PAGE_SIZE).is_err() {
                res.frame_unref(f, PageSize::Small);
                return Err(Errno::NoMem);
            }
        }
        let m = MapReq { vaddr: page, size: PageSize::Small, frame: f, use_original: true, prot, cow: false, nocharge: false };
        map_page(k, res, deferred, sp, m).inspect_err(|_| res.frame_unref(f, PageSize::Small))
    }

    /// Resolve a write to a copy-on-write page at `base`.
    fn break_cow(&mut self, client: u32, area: &Area, base: u64, size: PageSize, pte: Pte) -> Result<(), Errno> {
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        let vspace = sp.pt.vspace();
        if res.frame_refs(pte.frame()) == 1 {
            // Last reference: take the frame over, just restore write access.
            k.page_map(pte.map_slot(), vspace, base, area.prot, Caching::Cached).map_err(|_| Errno::NoMem)?;
            sp.pt.update(base, size, pte.with_cow(false).with_unmapped(false));
            return Ok(());
        }
        let f = res.alloc_frame_to_overwrite(k, size)?;
        let undo = |res: &mut crate::res::Res| res.frame_unref(f, size);
        if k.frame_copy(pte.frame(), 0, f, 0, size.bytes()).is_err() || k.page_unmap(pte.map_slot()).is_err() {
            undo(res);
            return Err(Errno::NoMem);
        }
        if k.page_map(f, vspace, base, area.prot, Caching::Cached).is_err() {
            // Put the shared page back so the client keeps its data.
            if !pte.unmapped() {
                let _ = k.page_map(pte.map_slot(), vspace, base, hw_rights(area.prot, true), Caching::Cached);
            }
            undo(res);
            return Err(Errno::NoMem);
        }
        sp.pt.update(base, size, Pte::new(f, f, false, pte.nocharge()));
        // Drop the old mapping's cap and frame reference (the charge moves to the copy).
        let delete = pte.map_slot() != pte.frame();
        if delete {
            sp.budget.put_slots(1);
        }
        crate::space::finish_release_pub(k, res, deferred, pte.map_slot(), delete, pte.frame(), size);
        Ok(())
    }
}
