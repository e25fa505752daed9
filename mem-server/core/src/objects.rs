//! Memory objects: page arrays shared between address spaces.
//!
//! A shm segment, a shared anonymous mapping and a backend object's cache and store are all
//! `MemObject`s: a lazily filled array of frames (each holding one frame reference), a
//! count of the areas that map it, and a count of other holders (the shm registry, a
//! backend). It is destroyed, its frames released, when both reach zero. Pages are charged
//! to the client that created the object while that client exists.
//! Neighbours: `area.rs` (areas name objects), `shm.rs`, `backend.rs`, `fault.rs`.

use alloc::vec::Vec;
use mem_protocol::{Errno, PageSize};

use crate::kernel::{Kernel, Slot};
use crate::res::Res;

/// Index of an object in the object table.
pub type ObjId = u32;

#[derive(Clone, Debug)]
pub struct MemObject {
    /// Frame slot per 4 KiB page; 0 = not yet allocated (reads as zero).
    pub pages: Vec<Slot>,
    /// Areas mapping (part of) this object.
    pub area_refs: u32,
    /// Other holders (shm registry entry, backend).
    pub holders: u32,
    /// Client charged for the pages, while it exists.
    pub owner: Option<u32>,
}

impl MemObject {
    pub fn size(&self) -> u64 {
        self.pages.len() as u64 * 4096
    }
    pub fn present(&self) -> u64 {
        self.pages.iter().filter(|&&s| s != 0).count() as u64
    }
}

#[derive(Debug, Default)]
pub struct Objects {
    slab: Vec<Option<MemObject>>,
    free: Vec<u32>,
    live: usize,
}

impl Objects {
    /// A new empty object of `pages` pages.
    pub fn create(&mut self, pages: u64, owner: Option<u32>, holders: u32) -> Result<ObjId, Errno> {
        let n = usize::try_from(pages).map_err(|_| Errno::NoMem)?;
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| Errno::NoMem)?;
        v.resize(n, 0);
        let obj = MemObject { pages: v, area_refs: 0, holders, owner };
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
    /// whether it was newly allocated (the caller charges the owner).
    pub fn page_frame<K: Kernel>(
        &mut self,
        k: &mut K,
        res: &mut Res,
        id: ObjId,
        page: u64,
    ) -> Result<(Slot, bool), Errno> {
        let obj = self.get_mut(id).ok_or(Errno::Idrm)?;
        let p = obj.pages.get_mut(page as usize).ok_or(Errno::Fault)?;
        if *p != 0 {
            return Ok((*p, false));
        }
        let f = res.alloc_frame(k, PageSize::Small)?;
        *p = f;
        Ok((f, true))
    }

    /// Release the object if nothing refers to it any more. Returns `(owner, pages freed)` so
    /// the caller can uncharge the owner.
    pub fn release_if_unused(&mut self, res: &mut Res, id: ObjId) -> Option<(Option<u32>, u64)> {
        let obj = self.get(id)?;
        if obj.area_refs != 0 || obj.holders != 0 {
            return None;
        }
        let obj = self.slab[id as usize].take()?;
        self.free.push(id);
        self.live -= 1;
        let mut n = 0;
        for &f in &obj.pages {
            if f != 0 {
                res.frame_unref(f, PageSize::Small);
                n += 1;
            }
        }
        Some((obj.owner, n))
    }

    /// Objects owned by `client` (to clear ownership when it goes away).
    pub fn disown(&mut self, client: u32) -> u64 {
        let mut n = 0;
        for o in self.slab.iter_mut().flatten() {
            if o.owner == Some(client) {
                o.owner = None;
                n += o.present();
            }
        }
        n
    }
}
