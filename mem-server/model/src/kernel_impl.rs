//! `impl Kernel for ModelKernel`: every call is counted, may be failed by injection before
//! it has any effect, and is then dispatched to the operation's file (`retype.rs`,
//! `vspace.rs`, `caps.rs`). The frame data operations (zero/copy/write/read), which the
//! seL4 server performs through a mapping window rather than an invocation, are here too:
//! a slot that is empty, missing or not a frame is `InvalidCapability`, a range outside the
//! frame is `RangeError`, and `frame_copy` needs 4 KiB-aligned offsets and length
//! (`AlignmentError`). Neighbours: `stats.rs` (counters, injector), `memory.rs` (bytes).

use mem_core::{Caching, KResult, Kernel, KernelError, ObjectType, Slot};
use mem_protocol::Prot;

use crate::cspace::Cap;
use crate::model::{ModelKernel, SERVER_ASID};
use crate::objects::{ObjectId, PAGE};
use crate::stats::Op;

impl ModelKernel {
    /// Count a call of `op`; fail it here if an injection says so.
    #[inline]
    fn enter(&mut self, op: Op) -> KResult {
        if !self.inject.is_empty() {
            if let Some(e) = self.inject.check(&self.stats, op) {
                self.stats.bump(op);
                self.stats.injected += 1;
                self.stats.errors += 1;
                self.last_error = Some((op, e));
                return Err(e);
            }
        }
        self.stats.bump(op);
        Ok(())
    }

    /// Record the outcome of a call.
    #[inline]
    fn exit<T>(&mut self, op: Op, r: KResult<T>) -> KResult<T> {
        if let Err(e) = &r {
            self.stats.errors += 1;
            self.last_error = Some((op, *e));
        }
        r
    }

    /// A frame cap for the data operations: `(object, size in bytes)`.
    fn data_frame(&self, slot: Slot) -> KResult<(ObjectId, u64)> {
        match self.cs.get(slot) {
            Some(Cap::Frame { obj, .. }) => {
                if let Some(&(copy, vaddr)) = self.direct.get(&slot) {
                    let ok = matches!(self.cs.get(copy), Some(Cap::Frame { obj: o, asid: SERVER_ASID, vaddr: v }) if o == obj && v == vaddr)
                        && self.server_view.get(&vaddr) == Some(&obj);
                    assert!(ok, "model: the direct map of slot {slot} at {vaddr:#x} is stale (the seL4 server would fault)");
                }
                Ok((obj, self.objs.live(obj).size()))
            }
            _ => Err(KernelError::InvalidCapability),
        }
    }

    /// Is the frame in `slot` reached through the direct map (a valid record)?
    pub fn direct_mapped(&self, slot: Slot) -> bool {
        self.direct.contains_key(&slot)
    }

    fn frame_zero_impl(&mut self, frame: Slot) -> KResult {
        let (obj, _) = self.data_frame(frame)?;
        self.zero_frame(obj);
        Ok(())
    }

    fn frame_copy_impl(&mut self, src: Slot, src_off: u64, dst: Slot, dst_off: u64, len: u64) -> KResult {
        let (s, s_size) = self.data_frame(src)?;
        let (d, d_size) = self.data_frame(dst)?;
        if !(src_off | dst_off | len).is_multiple_of(PAGE) {
            return Err(KernelError::AlignmentError);
        }
        let fits = |off: u64, size: u64| off.checked_add(len).is_some_and(|end| end <= size);
        if !fits(src_off, s_size) || !fits(dst_off, d_size) {
            return Err(KernelError::RangeError);
        }
        if len > 0 {
            self.copy_frame(s, src_off, d, dst_off, len);
        }
        Ok(())
    }

    fn frame_write_impl(&mut self, frame: Slot, offset: u64, data: &[u8]) -> KResult {
        let (obj, size) = self.data_frame(frame)?;
        match offset.checked_add(data.len() as u64) {
            Some(end) if end <= size => {}
            _ => return Err(KernelError::RangeError),
        }
        self.write_frame(obj, offset, data);
        Ok(())
    }

    fn frame_read_impl(&mut self, frame: Slot, offset: u64, buf: &mut [u8]) -> KResult {
        let (obj, size) = self.data_frame(frame)?;
        match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= size => {}
            _ => return Err(KernelError::RangeError),
        }
        self.read_frame(obj, offset, buf);
        Ok(())
    }
}

impl Kernel for ModelKernel {
    fn untyped_retype(&mut self, untyped: Slot, ty: ObjectType, dest: Slot, count: u32) -> KResult {
        self.enter(Op::UntypedRetype)?;
        let r = self.retype(untyped, ty, dest, count);
        self.exit(Op::UntypedRetype, r)
    }

    fn asid_assign(&mut self, vspace: Slot) -> KResult {
        self.enter(Op::AsidAssign)?;
        let r = self.asid_assign_impl(vspace);
        self.exit(Op::AsidAssign, r)
    }

    fn page_table_map(&mut self, table: Slot, vspace: Slot, vaddr: u64) -> KResult {
        self.enter(Op::PageTableMap)?;
        let r = self.page_table_map_impl(table, vspace, vaddr);
        self.exit(Op::PageTableMap, r)
    }

    fn page_table_unmap(&mut self, table: Slot) -> KResult {
        self.enter(Op::PageTableUnmap)?;
        let r = self.page_table_unmap_impl(table);
        self.exit(Op::PageTableUnmap, r)
    }

    fn page_map(&mut self, frame: Slot, vspace: Slot, vaddr: u64, prot: Prot, caching: Caching) -> KResult {
        self.enter(Op::PageMap)?;
        let r = self.page_map_impl(frame, vspace, vaddr, prot, caching);
        self.exit(Op::PageMap, r)
    }

    fn page_unmap(&mut self, frame: Slot) -> KResult {
        self.enter(Op::PageUnmap)?;
        let r = self.page_unmap_impl(frame);
        self.exit(Op::PageUnmap, r)
    }

    fn page_paddr(&mut self, frame: Slot) -> KResult<u64> {
        self.enter(Op::PagePaddr)?;
        let r = self.page_paddr_impl(frame);
        self.exit(Op::PagePaddr, r)
    }

    fn cap_copy(&mut self, src: Slot, dest: Slot) -> KResult {
        self.enter(Op::CapCopy)?;
        let r = self.cap_copy_impl(src, dest);
        self.exit(Op::CapCopy, r)
    }

    fn cap_delete(&mut self, slot: Slot) -> KResult {
        self.enter(Op::CapDelete)?;
        let r = if self.saved.remove(&slot).is_some() { Ok(()) } else { self.cap_delete_impl(slot) };
        if r.is_ok() {
            self.direct.remove(&slot);
        }
        self.exit(Op::CapDelete, r)
    }

    fn cap_revoke(&mut self, slot: Slot) -> KResult {
        // As the seL4 server: a revoke takes the direct-map copy with the rest.
        self.direct.remove(&slot);
        self.enter(Op::CapRevoke)?;
        let r = self.cap_revoke_impl(slot);
        self.exit(Op::CapRevoke, r)
    }

    fn server_map(&mut self, frame: Slot, vaddr: u64) -> KResult {
        self.enter(Op::ServerMap)?;
        let r = self.server_map_impl(frame, vaddr);
        self.exit(Op::ServerMap, r)
    }

    fn server_table_map(&mut self, table: Slot, vaddr: u64) -> KResult {
        self.enter(Op::ServerTableMap)?;
        let r = self.server_table_map_impl(table, vaddr);
        self.exit(Op::ServerTableMap, r)
    }

    fn direct_map(&mut self, frame: Slot, copy: Slot, vaddr: u64) -> KResult {
        self.enter(Op::DirectMap)?;
        let r = self.cap_copy_impl(frame, copy).and_then(|()| {
            self.server_map_impl(copy, vaddr).inspect_err(|_| {
                let _ = self.cap_delete_impl(copy);
            })
        });
        if r.is_ok() {
            self.direct.insert(frame, (copy, vaddr));
        }
        self.exit(Op::DirectMap, r)
    }

    fn direct_unmap(&mut self, frame: Slot, copy: Slot) -> KResult {
        self.enter(Op::DirectUnmap)?;
        if self.direct.get(&frame).is_some_and(|&(c, _)| c == copy) {
            self.direct.remove(&frame);
        }
        let r = self.cap_delete_impl(copy);
        self.exit(Op::DirectUnmap, r)
    }

    fn save_caller(&mut self, slot: Slot) -> KResult {
        self.enter(Op::SaveCaller)?;
        let r = match self.cs.get(slot) {
            None => Err(KernelError::RangeError),
            Some(Cap::Null) if !self.saved.contains_key(&slot) => {
                // As seL4: success with nothing saved when there is no caller.
                if let Some(t) = self.caller.take() {
                    self.saved.insert(slot, t);
                }
                Ok(())
            }
            Some(_) => Err(KernelError::DeleteFirst),
        };
        self.exit(Op::SaveCaller, r)
    }

    fn reply_saved(&mut self, slot: Slot, reply: Option<&mem_protocol::Reply>) -> KResult {
        self.enter(Op::ReplySaved)?;
        let r = match self.saved.remove(&slot) {
            Some(t) => {
                self.delivered.push((t, reply.copied()));
                Ok(())
            }
            None => Err(KernelError::InvalidCapability),
        };
        self.exit(Op::ReplySaved, r)
    }

    fn frame_zero(&mut self, frame: Slot) -> KResult {
        self.enter(Op::FrameZero)?;
        let r = self.frame_zero_impl(frame);
        self.exit(Op::FrameZero, r)
    }

    fn frame_copy(&mut self, src: Slot, src_offset: u64, dst: Slot, dst_offset: u64, len: u64) -> KResult {
        self.enter(Op::FrameCopy)?;
        let r = self.frame_copy_impl(src, src_offset, dst, dst_offset, len);
        self.exit(Op::FrameCopy, r)
    }

    fn frame_write(&mut self, frame: Slot, offset: u64, data: &[u8]) -> KResult {
        self.enter(Op::FrameWrite)?;
        let r = self.frame_write_impl(frame, offset, data);
        self.exit(Op::FrameWrite, r)
    }

    fn frame_read(&mut self, frame: Slot, offset: u64, buf: &mut [u8]) -> KResult {
        self.enter(Op::FrameRead)?;
        let r = self.frame_read_impl(frame, offset, buf);
        self.exit(Op::FrameRead, r)
    }
}
