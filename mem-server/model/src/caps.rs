//! `CNode_Copy` and `CNode_Delete` in the model, and object destruction.
//!
//! Copy follows `decodeCNodeInvocation` + `deriveCap`: destination checked first
//! (`FailedLookup` outside the CNode or slot 0, `DeleteFirst` if occupied), then the source
//! (`FailedLookup` if outside or empty), then derivation: a frame copy records no mapping;
//! an unmapped page table or a VSpace without ASID cannot be copied (`IllegalOperation`);
//! an untyped can be copied only without children (`RevokeFirst`), and the original then
//! counts as full (seL4's `setUntypedCapAsFull`).
//!
//! Delete follows `finaliseCap`: a frame cap's mapping is removed (every cap, final or
//! not); the final cap of a mapped page table unmaps it; the final cap of a VSpace frees its
//! ASID (its mappings vanish with it); the last cap destroys the object (a frame's memory is
//! not returned to the untyped; the untyped is reset at its next retype once no cap derived
//! from it remains). Deleting an untyped cap hands its children to its parent, as the
//! derivation tree does. Neighbours: `vspace.rs` (unmapping), `cspace.rs`, `objects.rs`.

use mem_core::{KResult, KernelError, Slot};

use crate::cspace::{Cap, UtNode};
use crate::model::{ModelKernel, ASID_BASE};
use crate::objects::ObjectId;

impl ModelKernel {
    /// `CNode_Copy` with all rights.
    pub(crate) fn cap_copy_impl(&mut self, src: Slot, dest: Slot) -> KResult {
        if dest == 0 || u64::from(dest) >= self.cs.len() {
            return Err(KernelError::FailedLookup);
        }
        if !self.cs.is_empty(dest) {
            return Err(KernelError::DeleteFirst);
        }
        let cap = match self.cs.get(src) {
            None | Some(Cap::Null) => return Err(KernelError::FailedLookup),
            Some(c) => c,
        };
        let new = match cap {
            Cap::Null => unreachable!(),
            Cap::Untyped(u) => {
                let node = self.cs.ut(u);
                if node.children > 0 {
                    return Err(KernelError::RevokeFirst);
                }
                let copy = UtNode { children: 0, parent: Some(u), ..node.clone() };
                let node = self.cs.ut_mut(u);
                node.watermark = node.size();
                node.children += 1;
                Cap::Untyped(self.cs.new_ut(copy))
            }
            Cap::Frame { obj, .. } => {
                self.add_cap(obj);
                Cap::Frame { obj, asid: 0, vaddr: 0 }
            }
            Cap::PageTable(obj) => {
                if self.objs.table(obj).mapped.is_none() {
                    return Err(KernelError::IllegalOperation);
                }
                self.add_cap(obj);
                cap
            }
            Cap::VSpace(obj) => {
                if self.objs.table(obj).asid.is_none() {
                    return Err(KernelError::IllegalOperation);
                }
                self.add_cap(obj);
                cap
            }
        };
        self.cs.set(dest, new);
        Ok(())
    }

    fn add_cap(&mut self, obj: ObjectId) {
        let o = self.objs.live_mut(obj);
        o.caps += 1;
        if let Some(u) = o.ut {
            self.cs.ut_mut(u).children += 1;
        }
    }

    /// `CNode_Delete`.
    pub(crate) fn cap_delete_impl(&mut self, slot: Slot) -> KResult {
        let Some(cap) = self.cs.get(slot) else {
            return Err(KernelError::FailedLookup);
        };
        match cap {
            Cap::Null => return Ok(()),
            Cap::Frame { obj, asid, vaddr } => {
                if asid != 0 {
                    self.unmap_page(obj, asid, vaddr);
                }
            }
            Cap::PageTable(obj) => {
                let o = self.objs.live(obj);
                if let (1, Some((asid, vaddr))) = (o.caps, self.objs.table(obj).mapped) {
                    self.unmap_page_table(asid, vaddr, obj);
                }
            }
            Cap::VSpace(obj) => {
                if let (1, Some(asid)) = (self.objs.live(obj).caps, self.objs.table(obj).asid) {
                    self.asids[(asid - ASID_BASE) as usize] = None;
                }
            }
            Cap::Untyped(u) => {
                self.cs.set(slot, Cap::Null);
                self.delete_untyped(u);
                return Ok(());
            }
        }
        self.cs.set(slot, Cap::Null);
        let (Cap::Frame { obj, .. } | Cap::PageTable(obj) | Cap::VSpace(obj)) = cap else { unreachable!() };
        self.release(obj);
        Ok(())
    }

    /// `CNode_Revoke`: every other cap of the same object goes (the model does not record
    /// which copy was derived from which; the server only revokes originals, from which
    /// all its copies derive).
    pub(crate) fn cap_revoke_impl(&mut self, slot: Slot) -> KResult {
        let Some(cap) = self.cs.get(slot) else {
            return Err(KernelError::FailedLookup);
        };
        let obj = match cap {
            Cap::Frame { obj, .. } | Cap::PageTable(obj) | Cap::VSpace(obj) => obj,
            Cap::Null | Cap::Untyped(_) => return Ok(()),
        };
        if self.objs.live(obj).caps <= 1 {
            return Ok(());
        }
        for other in 0..self.cs.len() as Slot {
            if other == slot {
                continue;
            }
            let same = match self.cs.get(other) {
                Some(Cap::Frame { obj: o, .. } | Cap::PageTable(o) | Cap::VSpace(o)) => o == obj,
                _ => false,
            };
            if same {
                self.cap_delete_impl(other)?;
            }
        }
        Ok(())
    }

    /// One cap of `obj` is gone; destroy the object with its last cap.
    fn release(&mut self, obj: ObjectId) {
        let o = self.objs.live_mut(obj);
        o.caps -= 1;
        let (left, ut) = (o.caps, o.ut);
        if let Some(u) = ut {
            self.cs.ut_mut(u).children -= 1;
        }
        if left == 0 {
            let dead = self.objs.remove(obj).expect("model invariant: live object");
            if dead.frame().is_some() {
                self.frames_changed();
            }
        }
    }

    /// An untyped cap was deleted: its derived caps become children of its parent (or of
    /// nothing). Rare, so a scan over all objects is fine.
    fn delete_untyped(&mut self, u: u32) {
        let node = self.cs.free_ut(u);
        let parent = node.parent;
        if let Some(p) = parent {
            let pn = self.cs.ut_mut(p);
            pn.children = pn.children - 1 + node.children;
        }
        if node.children > 0 {
            for o in self.objs.iter_mut() {
                if o.ut == Some(u) {
                    o.ut = parent;
                }
            }
            for n in self.cs.uts_mut() {
                if n.parent == Some(u) {
                    n.parent = parent;
                }
            }
        }
    }
}
