//! region: an area with initial contents (ELF segments), or a lazy one without.
//!
//! The bytes arrive out of band (the client's shared buffer), never in the message; the
//! server writes them into fresh frames and maps those pages, the rest of the area stays
//! lazy (zero-filled, like `.bss`). The range must be free (EEXIST otherwise). On any
//! failure the area is removed again; on success it merges with equal neighbours (a
//! loader's consecutive pieces become one area). Neighbours: `mmap.rs`, `space.rs`, `dispatch.rs`.

use mem_protocol::{Backing, Errno, PageSize, Placement, Prot, PAGE_SIZE};

use crate::kernel::Kernel;
use crate::mmap::MmapArgs;
use crate::space::{map_page, MapReq};
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// Create `[addr, addr + len)` with `prot`, its first bytes set to `data`.
    pub fn region(&mut self, client: u32, addr: u64, len: u64, prot: Prot, data: &[u8]) -> Result<u64, Errno> {
        if data.len() as u64 > len || (prot.is_empty() && !data.is_empty()) {
            return Err(Errno::Inval);
        }
        let a = MmapArgs {
            addr,
            len,
            prot,
            max_prot: Prot::RWX,
            placement: Placement::FixedNoReplace,
            shared: false,
            backing: Backing::Anonymous,
            populate: false,
        };
        // Merged with equal neighbours only once complete (as Linux merges adjacent VMAs: a
        // loader's pieces of one segment become one area, so a program's image costs a few
        // areas whatever its size), so that a failure never has to split a merged area.
        let start = self.mmap_unmerged(client, &a)?;
        if let Err(e) = self.fill_region(client, start, prot, data) {
            let _ = self.remove_range(client, start, start + crate::check::page_len(len)?);
            return Err(e);
        }
        self.merge_neighbours(client, start);
        Ok(start)
    }

    fn fill_region(&mut self, client: u32, start: u64, prot: Prot, data: &[u8]) -> Result<(), Errno> {
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        for (i, chunk) in data.chunks(PAGE_SIZE as usize).enumerate() {
            if sp.over_quota(1) {
                return Err(Errno::NoMem);
            }
            let f = res.alloc_frame(k, PageSize::Small)?;
            if k.frame_write(f, 0, chunk).is_err() {
                res.frame_unref(f, PageSize::Small);
                return Err(Errno::NoMem);
            }
            let vaddr = start + i as u64 * PAGE_SIZE;
            let m = MapReq { vaddr, size: PageSize::Small, frame: f, use_original: true, prot, cow: false, nocharge: false };
            map_page(k, res, deferred, sp, m).inspect_err(|_| res.frame_unref(f, PageSize::Small))?;
        }
        Ok(())
    }
}
