//! The model kernel behind a thin wrapper that marks every call as "model" for the counting
//! allocator (`count.rs`), so heap growth is split between core and model. The wrapper costs
//! two thread-local writes per kernel call, included in the measured times.

use mem_core::KResult;
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

impl mem_model::Around for Attributed {
    fn around<T>(&mut self, _: mem_model::Op, f: impl FnOnce(&mut ModelKernel) -> KResult<T>) -> KResult<T> {
        as_model(|| f(&mut self.0))
    }
}

mem_model::kernel_via_around!(Attributed);
