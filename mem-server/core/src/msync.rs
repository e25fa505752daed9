//! msync: write the cache pages of shared backend mappings back to the backend's store.
//!
//! Flags as Linux: MS_ASYNC and MS_SYNC together are EINVAL; the range must be mapped
//! (ENOMEM for a hole, EINVAL for an unaligned address). Writeback is synchronous either
//! way. Private and anonymous areas have nothing to write back, as in Linux.
//! Neighbours: `backend.rs` (`writeback_page`), `area.rs`.

use alloc::vec::Vec;
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
        let mut work: Vec<(u32, u64)> = Vec::new();
        for (s, a) in sp.areas.overlapping(r.start, r.end) {
            let AreaKind::Shared { obj, offset } = a.kind else { continue };
            if self.backends.store_of_cache(obj).is_none() {
                continue;
            }
            let from = s.max(r.start);
            let to = a.end.min(r.end);
            let mut p = from;
            while p < to {
                work.push((obj, (offset + (p - s)) / PAGE_SIZE));
                p += PAGE_SIZE;
            }
        }
        for (obj, idx) in work {
            self.writeback_page(obj, idx)?;
        }
        Ok(())
    }
}
