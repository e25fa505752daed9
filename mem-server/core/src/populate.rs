//! populate: allocate and map every page of a lazy range now (axmem's `manual_alloc_*`).
//!
//! The range must be covered by areas (ENOMEM otherwise, as for a hole in mlock). Areas
//! with no access rights are skipped, as Linux's MAP_POPULATE does. Used by the Populate
//! request and mmap's `populate`.
//!
//! The Populate request is all or nothing: pages it maps are marked `fresh`, and if one
//! cannot be had (budget, memory) every page this request mapped is released again before
//! ENOMEM. (mmap's `populate` is best effort like MAP_POPULATE: the mapping stands.)
//! Neighbours: `fault.rs` (`fill`), `check.rs`.

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
        let result = self.populate_marked(client, r.start, r.end, true);
        // Clear the marks; on failure release what this request mapped.
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        let mut at = r.start;
        while let Some((base, pte, size)) = sp.pt.next_mapped(at, r.end) {
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

    /// Populate without marks (best effort for mmap's `populate`, all of the buffer setup).
    pub(crate) fn populate_range(&mut self, client: u32, start: u64, end: u64) -> Result<(), Errno> {
        self.populate_marked(client, start, end, false)
    }

    fn populate_marked(&mut self, client: u32, start: u64, end: u64, mark: bool) -> Result<(), Errno> {
        let around = self.cfg.fault_around;
        if mark {
            self.cfg.fault_around = 0;
        }
        let r = self.populate_walk(client, start, end, mark);
        self.cfg.fault_around = around;
        r
    }

    fn populate_walk(&mut self, client: u32, start: u64, end: u64, mark: bool) -> Result<(), Errno> {
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
        Ok(())
    }
}
