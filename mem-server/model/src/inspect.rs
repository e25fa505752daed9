//! The test-side view of the model: what a CPU running in a VSpace would see, and counts.
//!
//! [`ModelKernel::translate`] walks the VSpace's tables like the MMU; `user_read` /
//! `user_write` / `user_access` honour the entry's rights (a write needs WRITE; a read
//! needs READ or WRITE, as write implies read in hardware; an instruction fetch needs
//! EXEC) and fault at the first inaccessible byte. Nothing here counts as a kernel call or
//! changes model state other than memory contents. Neighbours: `vspace.rs` (same tables),
//! `memory.rs` (bytes), `cspace.rs` / `objects.rs` (counts).

use mem_core::{Caching, ObjectType, Slot};
use mem_protocol::{Access, PageSize, Prot};

use crate::cspace::{Cap, CapKind};
use crate::model::ModelKernel;
use crate::objects::{Entry, ObjectId};
use crate::vspace::page_size_of;

/// Where a virtual address leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of the translated byte (frame base + offset in the page).
    pub paddr: u64,
    pub prot: Prot,
    pub size: PageSize,
    pub frame_object: ObjectId,
    /// The memory type the page was mapped with.
    pub caching: Caching,
}

/// A user access the page tables do not allow (no mapping, or insufficient rights).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserFault {
    /// First byte that could not be accessed.
    pub vaddr: u64,
    pub access: Access,
}

/// Does an entry with `prot` allow `access`?
pub fn allows(prot: Prot, access: Access) -> bool {
    match access {
        Access::Read => prot.readable() || prot.writable(),
        Access::Write => prot.writable(),
        Access::Exec => prot.executable(),
    }
}

impl ModelKernel {
    /// The root table of the VSpace cap in `slot`.
    fn root_of(&self, slot: Slot) -> Option<ObjectId> {
        match self.cs.get(slot) {
            Some(Cap::VSpace(o)) => Some(o),
            _ => None,
        }
    }

    /// MMU translation of `vaddr` in the VSpace whose cap is in `vspace_slot`; `None` if
    /// the slot holds no VSpace, the address is at or above `user_top`, or nothing is mapped.
    pub fn translate(&self, vspace_slot: Slot, vaddr: u64) -> Option<Translation> {
        let root = self.root_of(vspace_slot)?;
        if vaddr >= self.cfg.user_top {
            return None;
        }
        let s = self.lookup_slot(root, vaddr);
        let Entry::Page { frame, prot, caching } = s.entry else { return None };
        let f = self.objs.get(frame)?;
        let size = page_size_of(f.ty);
        Some(Translation { paddr: f.paddr + (vaddr & (size.bytes() - 1)), prot, size, frame_object: frame, caching })
    }

    /// One access at `vaddr` as the CPU would check it.
    pub fn user_access(&self, vspace_slot: Slot, vaddr: u64, access: Access) -> Result<Translation, UserFault> {
        match self.translate(vspace_slot, vaddr) {
            Some(t) if allows(t.prot, access) => Ok(t),
            _ => Err(UserFault { vaddr, access }),
        }
    }

    /// Split `[vaddr, vaddr + len)` into accessible page pieces:
    /// `(frame, offset in frame, buffer range)`, or the first fault.
    fn user_pieces(
        &self,
        vspace_slot: Slot,
        vaddr: u64,
        len: usize,
        access: Access,
    ) -> Result<Vec<(ObjectId, u64, core::ops::Range<usize>)>, UserFault> {
        let mut out = Vec::new();
        let mut done = 0usize;
        while done < len {
            let at = vaddr.checked_add(done as u64).ok_or(UserFault { vaddr: u64::MAX, access })?;
            let t = self.user_access(vspace_slot, at, access)?;
            let off = at & (t.size.bytes() - 1);
            let n = ((t.size.bytes() - off) as usize).min(len - done);
            out.push((t.frame_object, off, done..done + n));
            done += n;
        }
        Ok(out)
    }

    /// Read user memory as the CPU would. On a fault, `buf` holds the bytes before the
    /// faulting page.
    pub fn user_read(&self, vspace_slot: Slot, vaddr: u64, buf: &mut [u8]) -> Result<(), UserFault> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = vaddr.checked_add(done as u64).ok_or(UserFault { vaddr: u64::MAX, access: Access::Read })?;
            let t = self.user_access(vspace_slot, at, Access::Read)?;
            let off = at & (t.size.bytes() - 1);
            let n = ((t.size.bytes() - off) as usize).min(buf.len() - done);
            self.read_frame(t.frame_object, off, &mut buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Write user memory as the CPU would (a `memcpy` that stops at the first fault: the
    /// pages before the faulting one are written).
    pub fn user_write(&mut self, vspace_slot: Slot, vaddr: u64, data: &[u8]) -> Result<(), UserFault> {
        let mut done = 0usize;
        while done < data.len() {
            let at = vaddr.checked_add(done as u64).ok_or(UserFault { vaddr: u64::MAX, access: Access::Write })?;
            let t = self.user_access(vspace_slot, at, Access::Write)?;
            let off = at & (t.size.bytes() - 1);
            let n = ((t.size.bytes() - off) as usize).min(data.len() - done);
            self.write_frame(t.frame_object, off, &data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Like [`ModelKernel::user_write`] but all-or-nothing: nothing is written if any byte
    /// of the range faults.
    pub fn user_write_all(&mut self, vspace_slot: Slot, vaddr: u64, data: &[u8]) -> Result<(), UserFault> {
        let pieces = self.user_pieces(vspace_slot, vaddr, data.len(), Access::Write)?;
        for (frame, off, r) in pieces {
            self.write_frame(frame, off, &data[r]);
        }
        Ok(())
    }

    /// Every mapping of the VSpace in `vspace_slot` as `(vaddr of the page, translation of
    /// its first byte)`, in address order. Walks all its tables: for tests, not hot paths.
    pub fn mappings(&self, vspace_slot: Slot) -> Vec<(u64, Translation)> {
        let mut out = Vec::new();
        if let Some(root) = self.root_of(vspace_slot) {
            self.collect(root, 0, 0, &mut out);
        }
        out
    }

    fn collect(&self, table: ObjectId, level: u8, base: u64, out: &mut Vec<(u64, Translation)>) {
        let shift = self.geo.shift(level);
        for (i, e) in self.objs.table(table).entries.iter().enumerate() {
            let va = base | ((i as u64) << shift);
            match *e {
                Entry::Empty => {}
                Entry::Table(c) => {
                    if level + 1 < self.geo.levels && self.objs.get(c).is_some() {
                        self.collect(c, level + 1, va, out);
                    }
                }
                Entry::Page { frame, prot, caching } => {
                    if let Some(f) = self.objs.get(frame) {
                        out.push((va, Translation { paddr: f.paddr, prot, size: page_size_of(f.ty), frame_object: frame, caching }));
                    }
                }
            }
        }
    }

    // ---- counts and cap inspection ------------------------------------------------------

    /// Live objects of type `ty`.
    pub fn live_objects(&self, ty: ObjectType) -> usize {
        self.objs.count(ty)
    }

    /// Non-empty CNode slots (untyped caps included).
    pub fn occupied_slots(&self) -> usize {
        self.cs.occupied() + self.saved.len()
    }

    /// The thread whose message the server handles now (the tests play the kernel's part:
    /// which thread called or faulted); `save_caller` saves its reply cap, once.
    pub fn set_caller(&mut self, thread: Option<u64>) {
        self.caller = thread;
    }

    /// Replies sent on saved reply caps so far, oldest first, and forget them: `(thread,
    /// None)` resumed a faulting thread, `(thread, Some(reply))` answered a request.
    pub fn take_delivered(&mut self) -> Vec<(u64, Option<mem_protocol::Reply>)> {
        std::mem::take(&mut self.delivered)
    }

    /// Reply caps saved and not used yet.
    pub fn saved_replies(&self) -> usize {
        self.saved.len()
    }

    /// Bytes above the watermark of the untyped cap in `slot` (seL4's free index; an
    /// untyped without children is reset only at its next retype, as in seL4).
    pub fn untyped_free_bytes(&self, slot: Slot) -> Option<u64> {
        match self.cs.get(slot)? {
            Cap::Untyped(u) => {
                let n = self.cs.ut(u);
                Some(n.size() - n.watermark)
            }
            _ => None,
        }
    }

    /// Does the untyped cap in `slot` have children (caps derived from it)?
    pub fn untyped_has_children(&self, slot: Slot) -> Option<bool> {
        match self.cs.get(slot)? {
            Cap::Untyped(u) => Some(self.cs.ut(u).children > 0),
            _ => None,
        }
    }

    /// What the slot holds (`None`: empty or outside the CNode).
    pub fn cap_kind(&self, slot: Slot) -> Option<CapKind> {
        Some(match self.cs.get(slot)? {
            Cap::Null => return None,
            Cap::Untyped(_) => CapKind::Untyped,
            Cap::Frame { obj, .. } => match self.objs.live(obj).ty {
                ObjectType::LargePage => CapKind::LargePage,
                _ => CapKind::SmallPage,
            },
            Cap::PageTable(_) => CapKind::PageTable,
            Cap::VSpace(_) => CapKind::VSpace,
        })
    }

    /// The object a frame, page-table or VSpace cap names.
    pub fn cap_object(&self, slot: Slot) -> Option<ObjectId> {
        match self.cs.get(slot)? {
            Cap::Frame { obj, .. } | Cap::PageTable(obj) | Cap::VSpace(obj) => Some(obj),
            Cap::Null | Cap::Untyped(_) => None,
        }
    }

    /// Is the object alive?
    pub fn object_alive(&self, obj: ObjectId) -> bool {
        self.objs.get(obj).is_some()
    }

    /// Physical address of a live object.
    pub fn object_paddr(&self, obj: ObjectId) -> Option<u64> {
        self.objs.get(obj).map(|o| o.paddr)
    }

    /// Number of caps to `obj` (any object type; 0 once destroyed).
    pub fn frame_refcaps(&self, obj: ObjectId) -> u32 {
        self.objs.get(obj).map_or(0, |o| o.caps)
    }

    /// Is the frame cap in `frame_slot` effectively mapped: does the mapping it records
    /// still exist (not removed by a page-table unmap, table or VSpace destruction)?
    pub fn is_mapped(&self, frame_slot: Slot) -> bool {
        match self.cs.get(frame_slot) {
            Some(Cap::Frame { obj, asid, vaddr }) if asid != 0 => self.mapping_live(obj, asid, vaddr),
            _ => false,
        }
    }

    /// The mapping a frame cap *records* as `(asid, vaddr)`: what seL4 checks in
    /// `Page_Map`. It can outlive the mapping itself (see [`ModelKernel::is_mapped`]);
    /// `page_unmap` clears it.
    pub fn cap_mapping(&self, frame_slot: Slot) -> Option<(u32, u64)> {
        match self.cs.get(frame_slot)? {
            Cap::Frame { asid, vaddr, .. } if asid != 0 => Some((asid, vaddr)),
            _ => None,
        }
    }

    /// Is the page table in `slot` mapped (as its caps record)?
    pub fn page_table_mapped(&self, slot: Slot) -> Option<bool> {
        match self.cs.get(slot)? {
            Cap::PageTable(o) => Some(self.objs.table(o).mapped.is_some()),
            _ => None,
        }
    }

    /// The ASID of the VSpace in `slot`.
    pub fn vspace_asid(&self, slot: Slot) -> Option<u32> {
        match self.cs.get(slot)? {
            Cap::VSpace(o) => self.objs.table(o).asid,
            _ => None,
        }
    }

    /// ASIDs still free in the pool.
    pub fn free_asids(&self) -> usize {
        self.asids.iter().filter(|a| a.is_none()).count()
    }

    /// Read `buf.len()` bytes at `vaddr` of the server's own VSpace (its `server_map`
    /// mappings), or `None` if a page of the range is not mapped there.
    pub fn server_read(&self, vaddr: u64, buf: &mut [u8]) -> Option<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = vaddr + done as u64;
            let page = at & !0xfff;
            let obj = *self.server_view.get(&page)?;
            let off = (at - page) as usize;
            let n = (4096 - off).min(buf.len() - done);
            self.read_frame(obj, off as u64, &mut buf[done..done + n]);
            done += n;
        }
        Some(())
    }

    /// Pages mapped in the server's own VSpace through `server_map`.
    pub fn server_mappings(&self) -> usize {
        self.server_view.len()
    }
}
