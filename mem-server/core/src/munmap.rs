//! munmap: remove any sub-range of any number of areas.
//!
//! Areas overlapping the range are split (into up to three pieces) so that exactly the range
//! goes; its pages are unmapped and their frames freed, or their reference dropped when
//! shared. A large page straddling a boundary is first split into small pages
//! (`space::split_large`). Objects lose one area reference per removed piece and are
//! destroyed with the last one when nothing else holds them. Also used by mmap `Fixed`,
//! shmdt and reset.
//!
//! Budget: splitting adds up to two areas, checked before anything changes (ENOMEM, as
//! Linux fails a munmap that would exceed `vm.max_map_count`); the removal itself walks the
//! areas one by one and needs no memory however many areas the range covers.
//! Neighbours: `space.rs`, `area.rs`, `objects.rs`, `shm.rs`.

use mem_protocol::{Errno, PageSize};

use crate::kernel::Kernel;
use crate::objects::ObjId;
use crate::space::{release_range, split_large};
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// Unmap `[addr, addr + len)` (length rounded up to pages) in `client`'s space: every
    /// step (`step.rs`, `munmap_step`) until done.
    pub fn munmap(&mut self, client: u32, addr: u64, len: u64) -> Result<(), Errno> {
        crate::step::to_the_end(|| self.munmap_step(client, addr, len))
    }

    /// Remove every area piece in `[start, end)` (page aligned).
    pub(crate) fn remove_range(&mut self, client: u32, start: u64, end: u64) -> Result<(), Errno> {
        if self.remove_within_one_area(client, start, end)? {
            return Ok(());
        }
        self.split_boundaries(client, start, end)?;
        loop {
            let MemCore { k, res, spaces, deferred, .. } = self;
            let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
            let Some((s, _)) = sp.areas.first_overlapping(start, end) else { break };
            let area = sp.areas.remove(s).ok_or(Errno::Fault)?;
            release_range(k, res, deferred, sp, s, area.end);
            if let Some(obj) = area.kind.object() {
                self.drop_area_ref(obj, client);
            }
        }
        Ok(())
    }

    /// The common munmaps, with one lookup: exactly one whole area (removed), or one end
    /// of one area (the tail a merged mmap added, a heap's top: cut off in place instead of
    /// splitting and removing a piece). `false` if `[start, end)` is neither (nothing
    /// changed then).
    fn remove_within_one_area(&mut self, client: u32, start: u64, end: u64) -> Result<bool, Errno> {
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        let Some((s, a)) = sp.areas.find(start).map(|(s, a)| (s, *a)) else { return Ok(false) };
        if end > a.end {
            return Ok(false);
        }
        if s == start && a.end == end {
            let area = sp.areas.remove(s).ok_or(Errno::Fault)?;
            release_range(k, res, deferred, sp, s, area.end);
            if let Some(obj) = area.kind.object() {
                self.drop_area_ref(obj, client);
            }
            return Ok(true);
        }
        if s != start && a.end != end {
            return Ok(false);
        }
        // The boundary inside the area must be a page boundary.
        let inner = if s == start { end } else { start };
        if let Some((_, PageSize::Large, base)) = sp.pt.lookup(inner) {
            if base != inner {
                split_large(k, res, deferred, sp, inner, a.prot)?;
            }
        }
        release_range(k, res, deferred, sp, start, end);
        sp.areas.cut_edge(s, start, end);
        Ok(true)
    }

    /// How many areas splitting at `start` and `end` would add (0 to 2).
    pub(crate) fn splits_needed(&self, client: u32, start: u64, end: u64) -> u64 {
        let Some(sp) = self.spaces.get(&client) else { return 0 };
        [start, end].iter().filter(|&&b| sp.areas.find(b).is_some_and(|(s, _)| s != b)).count() as u64
    }

    /// Make `start` and `end` area (and page) boundaries: split large pages straddling them
    /// and the areas containing them (ENOMEM first if the new areas do not fit the budget).
    pub(crate) fn split_boundaries(&mut self, client: u32, start: u64, end: u64) -> Result<(), Errno> {
        let extra = self.splits_needed(client, start, end);
        let max = self.cfg.limits.max_map_count;
        let MemCore { k, res, spaces, deferred, objs, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        sp.area_room(extra, max)?;
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
                    o.add_area(client);
                }
            }
        }
        Ok(())
    }

    /// An area referencing `obj` went away: destroy the object if it was the last user.
    pub(crate) fn drop_area_ref(&mut self, obj: ObjId, client: u32) {
        if let Some(o) = self.objs.get_mut(obj) {
            o.drop_area(client);
        }
        self.release_obj_if_unused(obj);
    }

    /// Destroy `obj` if no area and no holder refers to it; uncharge its owner.
    pub(crate) fn release_obj_if_unused(&mut self, obj: ObjId) {
        let Some(o) = self.objs.take_if_unused(obj) else { return };
        let (pages, meta) = o.charge();
        let owner = o.owner;
        let seg = self.shm_unregister(obj);
        self.release_frames(crate::dying::Release { frames: o.into_frames(), owner, pages, meta, seg });
        self.backend_object_gone(obj);
    }
}
