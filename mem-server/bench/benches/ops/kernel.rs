//! The model kernel behind a thin wrapper that marks every call as "model" for the counting
//! allocator (`count.rs`), so heap growth is split between core and model. The wrapper costs
//! two thread-local writes per kernel call, included in the measured times.

use mem_core::{KResult, Kernel, ObjectType, Prot, Slot};
use mem_model::{ModelConfig, ModelKernel};

use crate::count::as_model;

pub struct Attributed(pub ModelKernel);

impl Attributed {
    pub fn new(cfg: ModelConfig) -> Self {
        Attributed(as_model(|| ModelKernel::new(cfg)))
    }
}

impl Drop for Attributed {
    fn drop(&mut self) {
        // Free the model's memory as model memory.
        let k = std::mem::replace(&mut self.0, as_model(|| ModelKernel::new(tiny())));
        as_model(|| drop(k));
    }
}

/// The smallest valid model (used only to swap out the real one on drop).
fn tiny() -> ModelConfig {
    let mut c = ModelConfig::riscv64(1 << 16);
    c.cnode_slots = 64;
    c
}

impl Kernel for Attributed {
    fn untyped_retype(&mut self, untyped: Slot, ty: ObjectType, dest: Slot, count: u32) -> KResult {
        as_model(|| self.0.untyped_retype(untyped, ty, dest, count))
    }
    fn asid_assign(&mut self, vspace: Slot) -> KResult {
        as_model(|| self.0.asid_assign(vspace))
    }
    fn page_table_map(&mut self, table: Slot, vspace: Slot, vaddr: u64) -> KResult {
        as_model(|| self.0.page_table_map(table, vspace, vaddr))
    }
    fn page_table_unmap(&mut self, table: Slot) -> KResult {
        as_model(|| self.0.page_table_unmap(table))
    }
    fn page_map(&mut self, frame: Slot, vspace: Slot, vaddr: u64, prot: Prot) -> KResult {
        as_model(|| self.0.page_map(frame, vspace, vaddr, prot))
    }
    fn page_unmap(&mut self, frame: Slot) -> KResult {
        as_model(|| self.0.page_unmap(frame))
    }
    fn page_paddr(&mut self, frame: Slot) -> KResult<u64> {
        as_model(|| self.0.page_paddr(frame))
    }
    fn cap_copy(&mut self, src: Slot, dest: Slot) -> KResult {
        as_model(|| self.0.cap_copy(src, dest))
    }
    fn cap_delete(&mut self, slot: Slot) -> KResult {
        as_model(|| self.0.cap_delete(slot))
    }
    fn cap_revoke(&mut self, slot: Slot) -> KResult {
        as_model(|| self.0.cap_revoke(slot))
    }
    fn server_map(&mut self, frame: Slot, vaddr: u64) -> KResult {
        as_model(|| self.0.server_map(frame, vaddr))
    }
    fn server_table_map(&mut self, table: Slot, vaddr: u64) -> KResult {
        as_model(|| self.0.server_table_map(table, vaddr))
    }
    fn direct_map(&mut self, frame: Slot, copy: Slot, vaddr: u64) -> KResult {
        as_model(|| self.0.direct_map(frame, copy, vaddr))
    }
    fn direct_unmap(&mut self, frame: Slot, copy: Slot) -> KResult {
        as_model(|| self.0.direct_unmap(frame, copy))
    }
    fn save_caller(&mut self, slot: Slot) -> KResult {
        as_model(|| self.0.save_caller(slot))
    }
    fn reply_saved(&mut self, slot: Slot, reply: Option<&mem_protocol::Reply>) -> KResult {
        as_model(|| self.0.reply_saved(slot, reply))
    }
    fn frame_zero(&mut self, frame: Slot) -> KResult {
        as_model(|| self.0.frame_zero(frame))
    }
    fn frame_copy(&mut self, src: Slot, src_offset: u64, dst: Slot, dst_offset: u64, len: u64) -> KResult {
        as_model(|| self.0.frame_copy(src, src_offset, dst, dst_offset, len))
    }
    fn frame_write(&mut self, frame: Slot, offset: u64, data: &[u8]) -> KResult {
        as_model(|| self.0.frame_write(frame, offset, data))
    }
    fn frame_read(&mut self, frame: Slot, offset: u64, buf: &mut [u8]) -> KResult {
        as_model(|| self.0.frame_read(frame, offset, buf))
    }
}
