//! munmap: remove any sub-range of any number of areas.
//!
//! Areas overlapping the range are split (into up to three pieces) so that exactly the range
//! goes; its pages are unmapped and their frames freed, or their reference dropped when
//! shared. A large page straddling a boundary is first split into small pages
//! (`space::split_large`). Objects lose one area reference per removed piece and are
//! destroyed with the last one when nothing else holds them. Also used by mmap `Fixed`,
//! shmdt and reset. Neighbours: `space.rs`, `area.rs`, `objects.rs`, `shm.rs`.

use mem_protocol::{Errno, PageSize};

use crate::check;
use crate::kernel::Kernel;
use crate::objects::ObjId;
use crate::space::{release_range, split_large};
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// Unmap `[addr, addr + len)` (length rounded up to pages) in `client`'s space.
    pub fn munmap(&mut self, client: u32, addr: u64, len: u64) -> Result<(), Errno> {
        self.settle();
        let r = check::unmap_range(addr, len, self.cfg.user_hi)?;
        if !self.spaces.contains_key(&client) {
            return Err(Errno::Srch);
        }
        self.remove_range(client, r.start, r.end)
    }

    /// Remove every area piece in `[start, end)` (page aligned).
    pub(crate) fn remove_range(&mut self, client: u32, start: u64, end: u64) -> Result<(), Errno> {
        self.split_boundaries(client, start, end)?;
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        let mut dropped: alloc::vec::Vec<ObjId> = alloc::vec::Vec::new();
        for s in sp.areas.starts_in(start, end) {
            let area = sp.areas.remove(s).expect("listed area");
            release_range(k, res, deferred, sp, s, area.end);
            if let Some(obj) = area.kind.object() {
                dropped.push(obj);
            }
        }
        for obj in dropped {
            self.drop_area_ref(obj);
        }
        Ok(())
    }

    /// Make `start` and `end` area (and page) boundaries: split large pages straddling them
    /// and the areas containing them.
    pub(crate) fn split_boundaries(&mut self, client: u32, start: u64, end: u64) -> Result<(), Errno> {
        let MemCore { k, res, spaces, deferred, objs, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        for b in [start, end] {
            if let Some((_, PageSize::Large, base)) = sp.pt.lookup(b) {
                if base != b {
                    let prot = sp.areas.find(b).map(|(_, a)| a.prot).unwrap_or_default();
                    split_large(k, res, deferred, sp, b, prot)?;
                }
            }
        }
        for b in [start, end] {
            if let Some(obj) = sp.areas.split_at(b) {
                if let Some(o) = objs.get_mut(obj) {
                    o.area_refs += 1;
                }
            }
        }
        Ok(())
    }

    /// An area referencing `obj` went away: destroy the object if it was the last user.
    pub(crate) fn drop_area_ref(&mut self, obj: ObjId) {
        if let Some(o) = self.objs.get_mut(obj) {
            o.area_refs -= 1;
        }
        self.release_obj_if_unused(obj);
    }

    /// Destroy `obj` if no area and no holder refers to it; uncharge its owner.
    pub(crate) fn release_obj_if_unused(&mut self, obj: ObjId) {
        if let Some((owner, pages)) = self.objs.release_if_unused(&mut self.res, obj) {
            if let Some(sp) = owner.and_then(|c| self.spaces.get_mut(&c)) {
                sp.charged -= pages;
            }
            self.shm_object_gone(obj);
        }
    }
}
