//! ASID pool, page tables and page mappings, following seL4 16's `vspace.c` (riscv64's
//! check order where aarch64 differs).
//!
//! Tables are real entry arrays (`objects.rs`); [`ModelKernel::lookup_slot`] is seL4's
//! `lookupPTSlot`: walk down while the entry is a table, stop at the first entry that is
//! not. Unmapping mirrors `unmapPage` / `unmapPageTable`: find the VSpace through the ASID
//! recorded in the cap, walk to the recorded address and clear the entry only if it still
//! holds this very object; if anything changed meanwhile (table unmapped, VSpace destroyed)
//! nothing happens. Neighbours: `model.rs` (cap lookups), `caps.rs` (delete unmaps through
//! here), `inspect.rs` (walks the same tables for the CPU view).

use mem_core::{Caching, KResult, KernelError, ObjectType, Slot};
use mem_protocol::{PageSize, Prot};

use crate::cspace::Cap;
use crate::model::{ModelKernel, ASID_BASE, SERVER_ASID};
use crate::objects::{Entry, ObjectId};

/// Where a walk stopped: table, its level (0 = root), index and the entry found there.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlotRef {
    pub table: ObjectId,
    pub level: u8,
    pub index: usize,
    pub entry: Entry,
}

pub(crate) fn page_size_of(ty: ObjectType) -> PageSize {
    match ty {
        ObjectType::LargePage => PageSize::Large,
        _ => PageSize::Small,
    }
}

impl ModelKernel {
    /// seL4's `lookupPTSlot` from `root` for `vaddr`. A table entry naming a dead table
    /// (possible only in unreachable tables) reads as empty.
    #[inline]
    pub(crate) fn lookup_slot(&self, root: ObjectId, vaddr: u64) -> SlotRef {
        let mut table = root;
        let mut level = 0u8;
        loop {
            let index = self.geo.index(level, vaddr);
            let mut entry = self.objs.table(table).entries[index];
            if let Entry::Table(child) = entry {
                if self.objs.get(child).is_none() {
                    entry = Entry::Empty;
                } else if level + 1 < self.geo.levels {
                    table = child;
                    level += 1;
                    continue;
                }
            }
            return SlotRef { table, level, index, entry };
        }
    }

    /// `ASIDPool_Assign`.
    pub(crate) fn asid_assign_impl(&mut self, vspace: Slot) -> KResult {
        let Some(Cap::VSpace(root)) = self.cs.get(vspace) else {
            return Err(KernelError::InvalidCapability);
        };
        if self.objs.table(root).asid.is_some() {
            return Err(KernelError::InvalidCapability);
        }
        let Some(i) = self.asids.iter().position(Option::is_none) else {
            return Err(KernelError::DeleteFirst);
        };
        self.asids[i] = Some(root);
        self.objs.table_mut(root).asid = Some(ASID_BASE + i as u32);
        Ok(())
    }

    /// `PageTable_Map`.
    pub(crate) fn page_table_map_impl(&mut self, table: Slot, vspace: Slot, vaddr: u64) -> KResult {
        let pt = match self.invoked(table)? {
            Cap::PageTable(o) => o,
            _ => return Err(KernelError::IllegalOperation),
        };
        if self.objs.table(pt).mapped.is_some() {
            return Err(KernelError::InvalidCapability);
        }
        let (root, asid) = self.vspace_with_asid(vspace)?;
        if vaddr >= self.cfg.user_top {
            return Err(KernelError::InvalidArgument);
        }
        self.check_asid(root, asid)?;
        let s = self.lookup_slot(root, vaddr);
        if s.level + 1 >= self.geo.levels || s.entry != Entry::Empty {
            return Err(KernelError::DeleteFirst);
        }
        self.objs.table_mut(s.table).entries[s.index] = Entry::Table(pt);
        let base = vaddr & !((1u64 << self.geo.shift(s.level)) - 1);
        self.objs.table_mut(pt).mapped = Some((asid, base));
        Ok(())
    }

    /// `PageTable_Unmap`.
    pub(crate) fn page_table_unmap_impl(&mut self, table: Slot) -> KResult {
        let pt = match self.invoked(table)? {
            Cap::PageTable(o) => o,
            _ => return Err(KernelError::IllegalOperation),
        };
        if self.objs.live(pt).caps > 1 {
            return Err(KernelError::RevokeFirst);
        }
        if let Some((asid, vaddr)) = self.objs.table(pt).mapped {
            self.unmap_page_table(asid, vaddr, pt);
            self.objs.table_mut(pt).entries.fill(Entry::Empty);
        }
        self.objs.table_mut(pt).mapped = None;
        Ok(())
    }

    /// seL4's `unmapPageTable`: remove the entry naming `target` on the path to `vaddr` in
    /// the VSpace of `asid`, if it is still there.
    pub(crate) fn unmap_page_table(&mut self, asid: u32, vaddr: u64, target: ObjectId) {
        let Some(root) = self.vspace_of_asid(asid) else { return };
        let mut t = root;
        let mut parent = None;
        for level in 0..self.geo.levels - 1 {
            if t == target {
                break;
            }
            let index = self.geo.index(level, vaddr);
            match self.objs.table(t).entries[index] {
                Entry::Table(c) if self.objs.get(c).is_some() => {
                    parent = Some((t, index));
                    t = c;
                }
                _ => return,
            }
        }
        if t != target {
            return;
        }
        if let Some((p, index)) = parent {
            self.objs.table_mut(p).entries[index] = Entry::Empty;
        }
    }

    /// `Page_Map`.
    pub(crate) fn page_map_impl(&mut self, frame: Slot, vspace: Slot, vaddr: u64, prot: Prot, caching: Caching) -> KResult {
        let (obj, cap_asid, cap_vaddr) = match self.invoked(frame)? {
            Cap::Frame { obj, asid, vaddr } => (obj, asid, vaddr),
            _ => return Err(KernelError::IllegalOperation),
        };
        if prot.is_empty() {
            return Err(KernelError::InvalidArgument);
        }
        let (root, asid) = self.vspace_with_asid(vspace)?;
        self.check_asid(root, asid)?;
        let bits = u32::from(self.objs.live(obj).ty.size_bits());
        let size = 1u64 << bits;
        match vaddr.checked_add(size - 1) {
            Some(top) if top < self.cfg.user_top => {}
            _ => return Err(KernelError::InvalidArgument),
        }
        if vaddr & (size - 1) != 0 {
            return Err(KernelError::AlignmentError);
        }
        let s = self.lookup_slot(root, vaddr);
        if self.geo.shift(s.level) != bits {
            return Err(KernelError::FailedLookup);
        }
        if cap_asid != 0 {
            if cap_asid != asid {
                return Err(KernelError::InvalidCapability);
            }
            if cap_vaddr != vaddr {
                return Err(KernelError::InvalidArgument);
            }
            if matches!(s.entry, Entry::Table(_)) {
                return Err(KernelError::DeleteFirst);
            }
        } else if s.entry != Entry::Empty {
            return Err(KernelError::DeleteFirst);
        }
        self.objs.table_mut(s.table).entries[s.index] = Entry::Page { frame: obj, prot, caching };
        self.cs.set(frame, Cap::Frame { obj, asid, vaddr });
        Ok(())
    }

    /// `Page_Unmap`.
    pub(crate) fn page_unmap_impl(&mut self, frame: Slot) -> KResult {
        let (obj, asid, vaddr) = match self.invoked(frame)? {
            Cap::Frame { obj, asid, vaddr } => (obj, asid, vaddr),
            _ => return Err(KernelError::IllegalOperation),
        };
        if asid != 0 {
            self.unmap_page(obj, asid, vaddr);
        }
        self.cs.set(frame, Cap::Frame { obj, asid: 0, vaddr: 0 });
        Ok(())
    }

    /// `server_map`: map a frame cap in the server's own VSpace (small frames only, at a
    /// page-aligned address, the cap unmapped, nothing mapped there yet).
    pub(crate) fn server_map_impl(&mut self, frame: Slot, vaddr: u64) -> KResult {
        let (obj, asid) = match self.invoked(frame)? {
            Cap::Frame { obj, asid, .. } => (obj, asid),
            _ => return Err(KernelError::IllegalOperation),
        };
        if asid != 0 {
            return Err(KernelError::InvalidCapability);
        }
        if vaddr & 0xfff != 0 || self.objs.live(obj).ty != ObjectType::SmallPage {
            return Err(KernelError::AlignmentError);
        }
        if self.server_view.contains_key(&vaddr) {
            return Err(KernelError::DeleteFirst);
        }
        self.server_view.insert(vaddr, obj);
        self.cs.set(frame, Cap::Frame { obj, asid: SERVER_ASID, vaddr });
        Ok(())
    }

    /// `server_table_map`: the server's own VSpace is modelled by its leaf tables (the
    /// levels above are the root task's): `DeleteFirst` if the leaf table covering `vaddr`
    /// exists.
    pub(crate) fn server_table_map_impl(&mut self, table: Slot, vaddr: u64) -> KResult {
        let pt = match self.invoked(table)? {
            Cap::PageTable(o) => o,
            _ => return Err(KernelError::IllegalOperation),
        };
        if self.objs.table(pt).mapped.is_some() {
            return Err(KernelError::InvalidCapability);
        }
        let level = self.geo.levels - 1;
        let base = vaddr & !((1u64 << self.geo.shift(level - 1)) - 1);
        if !self.server_tables.insert((level, base)) {
            return Err(KernelError::DeleteFirst);
        }
        self.objs.table_mut(pt).mapped = Some((SERVER_ASID, base));
        Ok(())
    }

    /// seL4's `unmapPage`: clear the entry at `vaddr` in the VSpace of `asid` if it maps
    /// `frame` with the frame's size.
    pub(crate) fn unmap_page(&mut self, frame: ObjectId, asid: u32, vaddr: u64) {
        if asid == SERVER_ASID {
            if self.server_view.get(&vaddr) == Some(&frame) {
                self.server_view.remove(&vaddr);
            }
            return;
        }
        let Some(root) = self.vspace_of_asid(asid) else { return };
        let bits = u32::from(self.objs.live(frame).ty.size_bits());
        let s = self.lookup_slot(root, vaddr);
        if self.geo.shift(s.level) != bits {
            return;
        }
        if let Entry::Page { frame: f, .. } = s.entry {
            if f == frame {
                self.objs.table_mut(s.table).entries[s.index] = Entry::Empty;
            }
        }
    }

    /// Does the mapping recorded in a frame cap still exist in a live VSpace?
    pub(crate) fn mapping_live(&self, frame: ObjectId, asid: u32, vaddr: u64) -> bool {
        if asid == SERVER_ASID {
            return self.server_view.get(&vaddr) == Some(&frame);
        }
        let Some(root) = self.vspace_of_asid(asid) else { return false };
        let bits = u32::from(self.objs.live(frame).ty.size_bits());
        let s = self.lookup_slot(root, vaddr);
        self.geo.shift(s.level) == bits && matches!(s.entry, Entry::Page { frame: f, .. } if f == frame)
    }

    /// `Page_GetAddress`.
    pub(crate) fn page_paddr_impl(&mut self, frame: Slot) -> KResult<u64> {
        match self.invoked(frame)? {
            Cap::Frame { obj, .. } => Ok(self.objs.live(obj).paddr),
            _ => Err(KernelError::IllegalOperation),
        }
    }
}
