//! Translation tables and page mappings in VSpaces the root task builds (its own and the
//! server's), arch-independent through rust-sel4's `vspace_levels`.
//!
//! Level 0 is the VSpace root; level `NUM_LEVELS - 1` is the leaf table, whose entries are
//! 4 KiB pages (it spans 2 MiB on riscv64 Sv39 and on aarch64). [`Tables`] remembers which
//! tables it has mapped so that each is allocated once.

use alloc::collections::BTreeSet;

use sel4::vspace_levels::{span_bits, NUM_LEVELS};

use crate::objects::Objects;

/// Bytes in a 4 KiB page.
pub const PAGE: u64 = 4096;

/// The level of the leaf table (entries are 4 KiB pages).
pub const LEAF_LEVEL: usize = NUM_LEVELS - 1;

/// The translation tables mapped into one VSpace by the root task.
pub struct Tables {
    vspace: sel4::cap::VSpace,
    mapped: BTreeSet<(usize, u64)>,
}

impl Tables {
    pub fn new(vspace: sel4::cap::VSpace) -> Self {
        Self { vspace, mapped: BTreeSet::new() }
    }

    pub fn vspace(&self) -> sel4::cap::VSpace {
        self.vspace
    }

    /// Map the tables of levels `1..=down_to` that cover `vaddr`, unless already there.
    /// `down_to = LEAF_LEVEL` makes 4 KiB pages mappable at `vaddr`.
    pub fn ensure(&mut self, objs: &mut Objects, vaddr: u64, down_to: usize) -> sel4::Result<()> {
        for level in 1..=down_to {
            let base = vaddr & !((1u64 << span_bits(level)) - 1);
            if self.mapped.contains(&(level, base)) {
                continue;
            }
            let ty = sel4::TranslationTableObjectType::from_level(level).unwrap();
            let slot = objs.alloc_slot(ty.blueprint())?;
            let table = sel4::init_thread::Slot::<sel4::cap_type::UnspecifiedIntermediateTranslationTable>::from_index(slot).cap();
            match table.generic_intermediate_translation_table_map(
                ty,
                self.vspace,
                base as usize,
                sel4::VmAttributes::default(),
            ) {
                // Already there (e.g. the root task's own image tables): the new one is spare.
                Err(sel4::Error::DeleteFirst) => objs.delete(slot)?,
                r => r?,
            }
            self.mapped.insert((level, base));
        }
        Ok(())
    }

    /// Leaf tables for every 4 KiB page of `range` (page-aligned or not).
    pub fn ensure_range(&mut self, objs: &mut Objects, start: u64, end: u64) -> sel4::Result<()> {
        let step = 1u64 << span_bits(LEAF_LEVEL);
        let mut at = start & !(step - 1);
        while at < end {
            self.ensure(objs, at, LEAF_LEVEL)?;
            at += step;
        }
        Ok(())
    }

    /// Map the 4 KiB frame `frame` at `vaddr` (its leaf table must exist).
    pub fn map_page(
        &self,
        frame: sel4::cap::Granule,
        vaddr: u64,
        rights: sel4::CapRights,
        exec: bool,
    ) -> sel4::Result<()> {
        let attrs = if exec {
            sel4::VmAttributes::default()
        } else {
            sel4::VmAttributes::default() | sel4::VmAttributes::EXECUTE_NEVER
        };
        frame.frame_map(self.vspace, vaddr as usize, rights, attrs)
    }
}
