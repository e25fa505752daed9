//! Memory objects: page arrays shared between address spaces.
//!
//! A shm segment, a shared anonymous mapping and a backend object's cache and store are all
//! `MemObject`s: a lazily filled array of frames (each holding one frame reference), a
//! count of the areas that map it, and a count of other holders (the shm registry, a
//! backend). It is destroyed, its frames released, when both reach zero.
//!
//! Every object has an owner who pays for it (`ledger.rs`): its record ([`cost::OBJECT`])
//! and, per page, the frame and an entry of the page map ([`cost::OBJ_PAGE`]). A shm
//! segment is paid in full when it is created (`prepaid`); other objects are paid page by
//! page as pages appear. When the owner goes away an object that is still mapped is handed
//! to one of the spaces mapping it that has room for it, which pays from then on, or else
//! destroyed (`lifecycle.rs`); an orphaned shm segment is paid by its creator's uid
//! (`shm.rs`).
//!
//! Each object keeps a reverse map: which spaces map it and with how many areas
//! (`mappers`), so the server finds them without looking at every space's areas (hand-over,
//! destroying an object). Its entries are charged with the areas that make them
//! (`ledger::cost::AREA`).
//! Neighbours: `area.rs` (areas name objects), `shm.rs`, `backend.rs`, `fault.rs`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use mem_protocol::{Errno, PageSize};

use crate::kernel::{Kernel, Slot};
use crate::ledger::cost;
use crate::res::Res;

/// Index of an object in the object table.
pub type ObjId = u32;

#[derive(Clone, Debug)]
pub struct MemObject {
    /// Size in 4 KiB pages.
    pub npages: u64,
    /// Frame slot of each page present; absent pages read as zero. Sparse, so a huge
    /// object costs nothing until touched (and touching is bounded by budgets).
    pages: BTreeMap<u64, Slot>,
    /// Areas mapping (part of) this object (the sum of `mappers`).
    pub area_refs: u32,
    /// The reverse map: `(client, areas of it mapping this object)`, each client once.
    mappers: Vec<(u32, u32)>,
    /// Other holders (shm registry entry, backend).
    pub holders: u32,
    /// Client charged for the object, while one is.
    pub owner: Option<u32>,
    /// Paid in full at creation (shm segments): pages charged = `npages`.
    pub prepaid: bool,
}

/// What an object costs its owner: `(pages, metadata bytes)`.
pub fn charge_of(npages: u64, present: u64, prepaid: bool) -> (u64, u64) {
    let pages = if prepaid { npages } else { present };
    (pages, cost::OBJECT + pages * cost::OBJ_PAGE)
}

impl MemObject {
    pub fn size(&self) -> u64 {
        self.npages * 4096
    }
    /// Pages present.
    pub fn present(&self) -> u64 {
        self.pages.len() as u64
    }
    /// The frame of page `idx`, if present.
    pub fn page(&self, idx: u64) -> Option<Slot> {
        self.pages.get(&idx).copied()
    }
    /// Frames present, by page index.
    pub fn frames(&self) -> impl Iterator<Item = (u64, Slot)> + '_ {
        self.pages.iter().map(|(&i, &s)| (i, s))
    }
    /// Frames present at index `idx` and above, in order.
    pub fn frames_from(&self, idx: u64) -> impl Iterator<Item = (u64, Slot)> + '_ {
        self.pages.range(idx..).map(|(&i, &s)| (i, s))
    }
    /// Forget page `idx` (the caller owns the frame reference it held).
    pub fn take_page(&mut self, idx: u64) -> Option<Slot> {
        self.pages.remove(&idx)
    }
    /// What the owner currently pays for this object: `(pages, metadata bytes)`.
    pub fn charge(&self) -> (u64, u64) {
        charge_of(self.npages, self.present(), self.prepaid)
    }
    /// Its frames, by page index (the references they hold go with them).
    pub fn into_frames(self) -> BTreeMap<u64, Slot> {
        self.pages
    }
    /// One more area of `client` maps this object.
    pub fn add_area(&mut self, client: u32) {
        self.area_refs += 1;
        match self.mappers.iter_mut().find(|(c, _)| *c == client) {
            Some((_, n)) => *n += 1,
            None => self.mappers.push((client, 1)),
        }
    }
    /// One area of `client` mapping this object went (or merged with another of its own).
    pub fn drop_area(&mut self, client: u32) {
        self.area_refs -= 1;
        if let Some(i) = self.mappers.iter().position(|(c, _)| *c == client) {
            self.mappers[i].1 -= 1;
            if self.mappers[i].1 == 0 {
                self.mappers.swap_remove(i);
            }
        }
    }
    /// The spaces mapping this object, with how many areas each.
    pub fn mappers(&self) -> &[(u32, u32)] {
        &self.mappers
    }
}

#[derive(Debug, Default)]
pub struct Objects {
    slab: Vec<Option<MemObject>>,
    free: Vec<u32>,
    live: usize,
}

impl Objects {
    /// A new empty object of `pages` pages (the caller has checked and charges the owner).
    pub fn create(&mut self, pages: u64, owner: Option<u32>, holders: u32, prepaid: bool) -> Result<ObjId, Errno> {
        let obj = MemObject { npages: pages, pages: BTreeMap::new(), area_refs: 0, mappers: Vec::new(), holders, owner, prepaid };
        self.live += 1;
        Ok(match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(obj);
                i
            }
            None => {
                self.slab.push(Some(obj));
                (self.slab.len() - 1) as u32
            }
        })
    }

    pub fn get(&self, id: ObjId) -> Option<&MemObject> {
        self.slab.get(id as usize)?.as_ref()
    }

    /// Areas of `client` that referenced these objects merged into areas that still
    /// reference them (`AreaMap::merge_around`): one reference fewer each. The merged area
    /// keeps the object alive, so none goes here.
    pub(crate) fn merged_away(&mut self, client: u32, dropped: [Option<ObjId>; 2]) {
        for obj in dropped.into_iter().flatten() {
            if let Some(o) = self.get_mut(obj) {
                o.drop_area(client);
            }
        }
    }

    pub fn get_mut(&mut self, id: ObjId) -> Option<&mut MemObject> {
        self.slab.get_mut(id as usize)?.as_mut()
    }

    /// Every live object.
    pub fn iter(&self) -> impl Iterator<Item = (ObjId, &MemObject)> + '_ {
        self.slab.iter().enumerate().filter_map(|(i, o)| o.as_ref().map(|o| (i as ObjId, o)))
    }

    pub fn live(&self) -> usize {
        self.live
    }

    /// The frame for page `page`, allocating a zeroed one if absent. Returns the frame and
    /// whether it was newly allocated (the caller charges the owner unless prepaid).
    pub fn page_frame<K: Kernel>(
        &mut self,
        k: &mut K,
        res: &mut Res,
        id: ObjId,
        page: u64,
    ) -> Result<(Slot, bool), Errno> {
        let obj = self.get_mut(id).ok_or(Errno::Idrm)?;
        if page >= obj.npages {
            return Err(Errno::Fault);
        }
        if let Some(f) = obj.page(page) {
            return Ok((f, false));
        }
        let f = res.alloc_frame(k, PageSize::Small)?;
        obj.pages.insert(page, f);
        Ok((f, true))
    }

    /// Release every page of `id` (frames unreferenced) and make it empty: nothing can be
    /// faulted from it any more (`npages` 0). Returns `(pages, meta)` the owner paid for the
    /// pages (the record stays charged while the object lives).
    pub fn revoke_pages(&mut self, res: &mut Res, id: ObjId) -> (u64, u64) {
        let Some(obj) = self.get_mut(id) else { return (0, 0) };
        let before = obj.charge();
        for (_, f) in core::mem::take(&mut obj.pages) {
            res.frame_unref(f, PageSize::Small);
        }
        obj.npages = 0;
        obj.prepaid = false;
        let after = obj.charge();
        (before.0 - after.0, before.1 - after.1)
    }

    /// Take the object out if nothing refers to it any more (its id is free again); the
    /// caller releases its frames (`dying.rs`) and uncharges its owner.
    pub fn take_if_unused(&mut self, id: ObjId) -> Option<MemObject> {
        let obj = self.get(id)?;
        if obj.area_refs != 0 || obj.holders != 0 {
            return None;
        }
        let obj = self.slab[id as usize].take()?;
        self.free.push(id);
        self.live -= 1;
        if self.live == 0 {
            // Give the slab's memory back once every object is gone.
            self.slab = Vec::new();
            self.free = Vec::new();
        }
        Some(obj)
    }

    /// Objects owned by `client`.
    pub fn owned_by(&self, client: u32) -> Vec<ObjId> {
        self.iter().filter(|(_, o)| o.owner == Some(client)).map(|(i, _)| i).collect()
    }
}
