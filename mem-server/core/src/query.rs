//! query: what backs a virtual address (physical address, rights, page size, sharing).
//!
//! An address in no area is EFAULT; an address in an area whose page is not present yet
//! (lazy) is ENOENT. Neighbours: `pagetable.rs` (lookup), the kernel's `page_paddr`.

use mem_protocol::{Errno, QueryInfo};

use crate::area::AreaKind;
use crate::kernel::Kernel;
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// What backs `vaddr`: the page's base and physical address, the area's protection, the
    /// page size and whether the page is shared or copy-on-write.
    pub fn query(&mut self, client: u32, vaddr: u64) -> Result<QueryInfo, Errno> {
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        let (_, area) = sp.areas.find(vaddr).ok_or(Errno::Fault)?;
        let prot = area.prot;
        let shared = matches!(area.kind, AreaKind::Shared { .. } | AreaKind::Phys { .. });
        let (pte, size, base) = sp.pt.lookup(vaddr).ok_or(Errno::NoEnt)?;
        let pa = self.k.page_paddr(pte.frame()).map_err(|_| Errno::Fault)?;
        Ok(QueryInfo { vaddr: base, paddr: pa, prot, page_size: size, shared, cow: pte.cow() })
    }
}
