//! populate: allocate and map every page of a lazy range now (axmem's `manual_alloc_*`).
//!
//! The range must be covered by areas (ENOMEM otherwise, as for a hole in mlock). Areas
//! with no access rights are skipped, as Linux's MAP_POPULATE does. Used by the Populate
//! request and mmap's `populate`. Neighbours: `fault.rs` (`fill`), `check.rs`.

use mem_protocol::{Errno, PAGE_SIZE};

use crate::check;
use crate::kernel::Kernel;
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// Populate `[addr, addr + len)` of `client`'s space.
    pub fn populate(&mut self, client: u32, addr: u64, len: u64) -> Result<(), Errno> {
        self.settle();
        let r = check::unmap_range(addr, len, self.cfg.user_hi)?;
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        if !sp.areas.fully_covered(r.start, r.end) {
            return Err(Errno::NoMem);
        }
        self.populate_range(client, r.start, r.end)
    }

    pub(crate) fn populate_range(&mut self, client: u32, start: u64, end: u64) -> Result<(), Errno> {
        let mut at = start;
        while at < end {
            let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
            let Some((s, area)) = sp.areas.find(at).map(|(s, a)| (s, *a)) else {
                at += PAGE_SIZE;
                continue;
            };
            if area.prot.is_empty() {
                at = area.end;
                continue;
            }
            if let Some((_, size, base)) = sp.pt.lookup(at) {
                at = base + size.bytes();
                continue;
            }
            self.fill(client, s, &area, at)?;
            at += PAGE_SIZE;
        }
        Ok(())
    }
}
