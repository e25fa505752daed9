//! `Untyped_Retype` in the model, following seL4 16's `decodeUntypedInvocation` /
//! `invokeUntyped_Retype`.
//!
//! Check order (each failure leaves everything unchanged): invoked cap (null/missing:
//! `InvalidCapability`, not an untyped: `IllegalOperation`, which is what seL4 answers when
//! the label reaches another object type's decoder), destination window (`RangeError` for
//! a window outside the CNode, slot 0 included, or a count of 0 or above the fan-out limit),
//! every destination slot empty (`DeleteFirst`), enough memory above the watermark aligned
//! to the object size (`NotEnoughMemory`), device untypeds only for frames
//! (`InvalidArgument`). An untyped with no children is reset first (watermark 0), exactly
//! when seL4 does: on a retype that passes these checks. Neighbours: `cspace.rs` (untyped
//! nodes), `objects.rs` (the new objects), `caps.rs` (their destruction).

use mem_core::{KResult, KernelError, ObjectType, Slot};

use crate::cspace::Cap;
use crate::model::ModelKernel;
use crate::objects::{Body, Entry, FrameBody, Object, TableBody};

impl ModelKernel {
    pub(crate) fn retype(&mut self, untyped: Slot, ty: ObjectType, dest: Slot, count: u32) -> KResult {
        let ut = match self.invoked(untyped)? {
            Cap::Untyped(u) => u,
            _ => return Err(KernelError::IllegalOperation),
        };
        let nslots = self.cs.len();
        let (dest64, count64) = (u64::from(dest), u64::from(count));
        if dest == 0 || dest64 >= nslots {
            return Err(KernelError::RangeError);
        }
        if count == 0 || count > self.cfg.fan_out_limit {
            return Err(KernelError::RangeError);
        }
        if count64 > nslots - dest64 {
            return Err(KernelError::RangeError);
        }
        if (dest..dest + count).any(|s| !self.cs.is_empty(s)) {
            return Err(KernelError::DeleteFirst);
        }
        let node = self.cs.ut(ut);
        let watermark = if node.children == 0 { 0 } else { node.watermark };
        let bits = u32::from(ty.size_bits());
        let free = node.size().saturating_sub(watermark);
        if (free >> bits) < count64 {
            return Err(KernelError::NotEnoughMemory);
        }
        let frame = matches!(ty, ObjectType::SmallPage | ObjectType::LargePage);
        if node.device && !frame {
            return Err(KernelError::InvalidArgument);
        }
        let (base, device) = (node.paddr, node.device);
        let start = (watermark + (1u64 << bits) - 1) & !((1u64 << bits) - 1);
        let node = self.cs.ut_mut(ut);
        node.watermark = start + (count64 << bits);
        node.children += count;
        for i in 0..count {
            let paddr = base + start + (u64::from(i) << bits);
            let body = match ty {
                ObjectType::SmallPage | ObjectType::LargePage => Body::Frame(FrameBody { device, chunks: Vec::new() }),
                ObjectType::PageTable => Body::Table(self.new_table(512)),
                ObjectType::VSpace => Body::Table(self.new_table(self.geo.entries(0))),
            };
            let obj = self.objs.insert(Object { ty, paddr, caps: 1, ut: Some(ut), body });
            let cap = match ty {
                ObjectType::SmallPage | ObjectType::LargePage => Cap::Frame { obj, asid: 0, vaddr: 0 },
                ObjectType::PageTable => Cap::PageTable(obj),
                ObjectType::VSpace => Cap::VSpace(obj),
            };
            self.cs.set(dest + i, cap);
        }
        if frame {
            self.frames_changed();
        }
        Ok(())
    }

    fn new_table(&self, entries: usize) -> TableBody {
        TableBody { entries: vec![Entry::Empty; entries].into_boxed_slice(), mapped: None, asid: None }
    }
}
