//! Shared helpers for the model's integration tests: a small configuration and an [`Env`]
//! that hands out slots and builds VSpaces, tables and mapped frames. Used by every file
//! in `tests/`.
#![allow(dead_code)]

use mem_core::{Caching, Geometry, Kernel, ObjectType, Slot};
use mem_model::{ModelConfig, ModelKernel, UntypedSpec};
use mem_protocol::Prot;

pub const RAM: Slot = 1;
pub const DEV: Slot = 2;
pub const RAM_BASE: u64 = 0x8000_0000;
pub const RAM_BITS: u8 = 24; // 16 MiB
pub const DEV_BASE: u64 = 0x1000_0000;
pub const MIB2: u64 = 2 << 20;

/// riscv64 geometry, one 16 MiB RAM untyped in slot 1, one 16 MiB device untyped in slot 2.
pub fn config() -> ModelConfig {
    config_with(Geometry::RISCV64_SV39, ModelConfig::RISCV64_USER_TOP)
}

pub fn config_with(geometry: Geometry, user_top: u64) -> ModelConfig {
    ModelConfig {
        geometry,
        cnode_slots: 4096,
        untypeds: vec![
            UntypedSpec { slot: RAM, paddr: RAM_BASE, size_bits: RAM_BITS, device: false },
            UntypedSpec { slot: DEV, paddr: DEV_BASE, size_bits: 24, device: true },
        ],
        asid_pool_size: 512,
        fan_out_limit: 256,
        user_top,
    }
}

/// A model plus a bump slot allocator.
pub struct Env {
    pub k: ModelKernel,
    pub next: Slot,
}

impl Env {
    pub fn new() -> Self {
        Self::from(config())
    }

    pub fn from(cfg: ModelConfig) -> Self {
        let next = cfg.first_free_slot();
        Env { k: ModelKernel::new(cfg), next }
    }

    pub fn slot(&mut self) -> Slot {
        self.next += 1;
        self.next - 1
    }

    /// Retype one object of `ty` from the RAM untyped.
    pub fn obj(&mut self, ty: ObjectType) -> Slot {
        let s = self.slot();
        self.k.untyped_retype(RAM, ty, s, 1).expect("retype");
        s
    }

    /// A VSpace with an ASID.
    pub fn vspace(&mut self) -> Slot {
        let v = self.obj(ObjectType::VSpace);
        self.k.asid_assign(v).expect("asid");
        v
    }

    /// Map page tables until a small page can be mapped at `vaddr`.
    pub fn tables_for_small(&mut self, vs: Slot, vaddr: u64) -> Vec<Slot> {
        let levels = self.k.config().geometry.levels;
        let mut out = Vec::new();
        for _ in 1..levels {
            let pt = self.obj(ObjectType::PageTable);
            match self.k.page_table_map(pt, vs, vaddr) {
                Ok(()) => out.push(pt),
                Err(mem_core::KernelError::DeleteFirst) => {
                    self.k.cap_delete(pt).unwrap();
                    break;
                }
                Err(e) => panic!("page_table_map: {e:?}"),
            }
        }
        out
    }

    /// Map page tables down to the large-page level at `vaddr`.
    pub fn tables_for_large(&mut self, vs: Slot, vaddr: u64) -> Vec<Slot> {
        let levels = self.k.config().geometry.levels;
        let mut out = Vec::new();
        for _ in 2..levels {
            let pt = self.obj(ObjectType::PageTable);
            self.k.page_table_map(pt, vs, vaddr).expect("pt map");
            out.push(pt);
        }
        out
    }

    /// A fresh small frame mapped at `vaddr` (tables created as needed).
    pub fn map_small(&mut self, vs: Slot, vaddr: u64, prot: Prot) -> Slot {
        self.tables_for_small(vs, vaddr);
        let f = self.obj(ObjectType::SmallPage);
        self.k.page_map(f, vs, vaddr, prot, Caching::Cached).expect("page_map");
        f
    }
}
