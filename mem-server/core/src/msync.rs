//! msync: write the cache pages of shared backend mappings back to the backend's store.
//!
//! Flags as Linux: MS_ASYNC and MS_SYNC together are EINVAL; the range must be mapped
//! (ENOMEM for a hole, EINVAL for an unaligned address). Writeback is synchronous either
//! way. Private and anonymous areas have nothing to write back, as in Linux. Writing back
//! needs write permission on the backend (EACCES), and the store pages it needs must fit
//! the backend owner's budget (ENOMEM): both checked for every area of the range before
//! any page is written. The range is walked area by area and page by page: no list is
//! built, whatever its size. Neighbours: `backend.rs` (`writeback_page`), `area.rs`.

use mem_protocol::{Errno, MsyncFlags, PAGE_SIZE};

use crate::area::AreaKind;
use crate::check;
use crate::kernel::Kernel;
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// msync `[addr, addr + len)` of `client`'s space.
    pub fn msync(&mut self, client: u32, addr: u64, len: u64, flags: MsyncFlags) -> Result<(), Errno> {
        self.settle();
        if flags.is_async() && flags.is_sync() {
            return Err(Errno::Inval);
        }
        if !check::is_aligned(addr) {
            return Err(Errno::Inval);
        }
        if len == 0 {
            return Ok(());
        }
        let r = check::unmap_range(addr, len, self.cfg.user_hi).map_err(|_| Errno::NoMem)?;
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        if !sp.areas.fully_covered(r.start, r.end) {
            return Err(Errno::NoMem);
        }
        // Permission, and room in each backend owner's budget for the store pages the
        // writeback will need, before any page is written (all or nothing).
        let mut owners: alloc::vec::Vec<(u32, u64)> = alloc::vec::Vec::new();
        for (s, a) in sp.areas.overlapping(r.start, r.end) {
            let AreaKind::Shared { obj, offset } = a.kind else { continue };
            let Some(store) = self.backends.store_of_cache(obj) else { continue };
            self.backend_may_sync(client, obj)?;
            let (Some(cache), Some(st)) = (self.objs.get(obj), self.objs.get(store)) else { continue };
            let lo = (offset + (s.max(r.start) - s)) / PAGE_SIZE;
            let hi = (offset + (a.end.min(r.end) - s)) / PAGE_SIZE;
            let need = cache.frames_from(lo).take_while(|&(i, _)| i < hi).filter(|&(i, _)| st.page(i).is_none()).count() as u64;
            let Some(owner) = st.owner else { continue };
            match owners.iter_mut().find(|(c, _)| *c == owner) {
                Some((_, n)) => *n += need,
                None => {
                    owners.try_reserve(1).map_err(|_| Errno::NoMem)?;
                    owners.push((owner, need));
                }
            }
        }
        for (owner, need) in owners {
            let o = self.spaces.get(&owner).ok_or(Errno::NoMem)?;
            if o.over_quota(need) {
                return Err(Errno::NoMem);
            }
            o.meta_room(need * crate::ledger::cost::OBJ_PAGE)?;
        }
        let mut from = r.start;
        while from < r.end {
            let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
            let Some((s, a)) = sp.areas.first_overlapping(from, r.end) else { break };
            from = a.end;
            let AreaKind::Shared { obj, offset } = a.kind else { continue };
            if self.backends.store_of_cache(obj).is_none() {
                continue;
            }
            // Only pages present in the cache can be dirty.
            let lo = (offset + (s.max(r.start) - s)) / PAGE_SIZE;
            let hi = (offset + (a.end.min(r.end) - s)) / PAGE_SIZE;
            let mut idx = lo;
            while let Some(i) = self.objs.get(obj).and_then(|o| o.frames_from(idx).next().map(|(i, _)| i)).filter(|&i| i < hi) {
                self.writeback_page(obj, i)?;
                idx = i + 1;
            }
        }
        Ok(())
    }
}
