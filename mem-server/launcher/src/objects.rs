//! Kernel objects for the root task: a slot allocator over the empty slots of its CNode
//! and an untyped allocator over the RAM untypeds it keeps for itself.
//!
//! The bootinfo untypeds are split once at start ([`split_untypeds`]): the root task keeps
//! one power-of-two block of RAM large enough for the server's CNode, image and page
//! tables and for the per-client objects; everything else (the rest of that block's parent
//! untyped, every other RAM untyped, every device untyped) goes to the memory server.
//!
//! Allocation keeps a model of each kept untyped's watermark (the kernel aligns every new
//! object to its size), used to pick an untyped that should fit; the kernel's answer is
//! authoritative: a `NotEnoughMemory` retires that untyped and the next one is tried.

use alloc::vec::Vec;
use core::ops::Range;

use sel4::{init_thread, CapTypeForObjectOfFixedSize, CapTypeForObjectOfVariableSize};

/// An untyped capability in the root task's CNode with what the kernel says about it.
#[derive(Clone, Copy, Debug)]
pub struct Untyped {
    pub slot: usize,
    pub paddr: u64,
    pub size_bits: u8,
    pub device: bool,
}

/// The root task's own CNode.
pub fn root_cnode() -> sel4::cap::CNode {
    init_thread::slot::CNODE.cap()
}

/// A slot of the root task's CNode as an absolute path (depth = word size: CPtr == slot).
pub fn root_path(slot: usize) -> sel4::AbsoluteCPtr {
    root_cnode().absolute_cptr(sel4::CPtr::from_bits(slot as u64))
}

/// Free slots of the root task's CNode: a bump range plus a free list of returned slots.
pub struct Slots {
    range: Range<usize>,
    free: Vec<usize>,
}

impl Slots {
    pub fn new(range: Range<usize>) -> Self {
        Self { range, free: Vec::new() }
    }

    /// An empty slot, or `None` when the CNode is full.
    pub fn alloc(&mut self) -> Option<usize> {
        self.free.pop().or_else(|| self.range.next())
    }

    /// Give back a slot (it must be empty again).
    pub fn free(&mut self, slot: usize) {
        self.free.push(slot);
    }
}

/// One kept untyped and the model of its watermark.
struct Pool {
    ut: Untyped,
    used: u64,
    exhausted: bool,
}

/// Allocator of kernel objects from the root task's untypeds into its own CNode.
pub struct Objects {
    pub slots: Slots,
    pools: Vec<Pool>,
}

impl Objects {
    pub fn new(slots: Slots, kept: &[Untyped]) -> Self {
        let pools = kept.iter().map(|&ut| Pool { ut, used: 0, exhausted: false }).collect();
        Self { slots, pools }
    }

    /// Retype one object of `blueprint` into a fresh slot; returns the slot.
    pub fn alloc_slot(&mut self, blueprint: sel4::ObjectBlueprint) -> sel4::Result<usize> {
        let slot = self.slots.alloc().ok_or(sel4::Error::NotEnoughMemory)?;
        match self.retype_into(blueprint, slot) {
            Ok(()) => Ok(slot),
            Err(e) => {
                self.slots.free(slot);
                Err(e)
            }
        }
    }

    /// Retype one object of `blueprint` into the empty slot `slot` of the root CNode.
    pub fn retype_into(&mut self, blueprint: sel4::ObjectBlueprint, slot: usize) -> sel4::Result<()> {
        let bits = blueprint.physical_size_bits() as u32;
        let size = 1u64 << bits;
        for pool in self.pools.iter_mut().filter(|p| !p.exhausted && !p.ut.device) {
            let start = pool.used.next_multiple_of(size);
            if start + size > 1u64 << pool.ut.size_bits {
                continue;
            }
            let ut = init_thread::Slot::<sel4::cap_type::Untyped>::from_index(pool.ut.slot).cap();
            match ut.untyped_retype(&blueprint, &root_cnode().absolute_cptr_for_self(), slot, 1) {
                Ok(()) => {
                    pool.used = start + size;
                    return Ok(());
                }
                Err(sel4::Error::NotEnoughMemory) => pool.exhausted = true,
                Err(e) => return Err(e),
            }
        }
        Err(sel4::Error::NotEnoughMemory)
    }

    /// Retype one object of `blueprint` from the untyped in root slot `ut` (not one of the
    /// kept pools: a block of the caller's) into a fresh slot; returns the slot.
    pub fn alloc_from(&mut self, ut: usize, blueprint: sel4::ObjectBlueprint) -> sel4::Result<usize> {
        let slot = self.slots.alloc().ok_or(sel4::Error::NotEnoughMemory)?;
        let cap = init_thread::Slot::<sel4::cap_type::Untyped>::from_index(ut).cap();
        match cap.untyped_retype(&blueprint, &root_cnode().absolute_cptr_for_self(), slot, 1) {
            Ok(()) => Ok(slot),
            Err(e) => {
                self.slots.free(slot);
                Err(e)
            }
        }
    }

    /// A new object of a fixed-size type.
    pub fn alloc_fixed<T: CapTypeForObjectOfFixedSize>(&mut self) -> sel4::Result<sel4::Cap<T>> {
        let slot = self.alloc_slot(T::object_blueprint())?;
        Ok(init_thread::Slot::<T>::from_index(slot).cap())
    }

    /// A new object of a variable-size type (`size_bits` as the kernel counts it).
    pub fn alloc_var<T: CapTypeForObjectOfVariableSize>(
        &mut self,
        size_bits: usize,
    ) -> sel4::Result<sel4::Cap<T>> {
        let slot = self.alloc_slot(T::object_blueprint(size_bits))?;
        Ok(init_thread::Slot::<T>::from_index(slot).cap())
    }

    /// Delete the cap in `slot` of the root CNode and give the slot back. The memory of an
    /// object from the kept pools is not reused (they are never emptied: the server's
    /// image, tables and the like live as long as the system); per-client objects come
    /// from blocks that are reused (`client.rs`).
    pub fn delete(&mut self, slot: usize) -> sel4::Result<()> {
        root_path(slot).delete()?;
        self.slots.free(slot);
        Ok(())
    }

    /// Bytes still free in the kept untypeds (model).
    pub fn free_bytes(&self) -> u64 {
        self.pools.iter().filter(|p| !p.exhausted).map(|p| (1u64 << p.ut.size_bits) - p.used).sum()
    }
}

/// Split the bootinfo untypeds: returns (kept by the root task, given to the server).
///
/// The smallest RAM untyped of at least `2^keep_bits` bytes is cut buddy-style into a
/// `2^keep_bits` block for the root task and blocks of `2^keep_bits`, `2^(keep_bits+1)`,
/// ... for the server (child untypeds, naturally aligned, so their physical addresses are
/// known). Every other untyped goes to the server as it is.
pub fn split_untypeds(
    bootinfo: &sel4::BootInfo,
    slots: &mut Slots,
    keep_bits: u8,
) -> sel4::Result<(Vec<Untyped>, Vec<Untyped>)> {
    let first = bootinfo.untyped().start();
    let all: Vec<Untyped> = bootinfo
        .untyped_list()
        .iter()
        .enumerate()
        .map(|(i, d)| Untyped {
            slot: first + i,
            paddr: d.paddr() as u64,
            size_bits: d.size_bits() as u8,
            device: d.is_device(),
        })
        .collect();
    let parent = all
        .iter()
        .filter(|u| !u.device && u.size_bits >= keep_bits)
        .min_by_key(|u| u.size_bits)
        .copied()
        .ok_or(sel4::Error::NotEnoughMemory)?;
    let mut given: Vec<Untyped> = all.iter().filter(|u| u.slot != parent.slot).copied().collect();
    if parent.size_bits == keep_bits {
        return Ok((alloc::vec![parent], given));
    }
    let ut = init_thread::Slot::<sel4::cap_type::Untyped>::from_index(parent.slot).cap();
    let mut children = Vec::new();
    let mut offset = 0u64;
    // Sizes in retype order: keep_bits (kept), then keep_bits .. size_bits-1 (given):
    // each starts where the previous ended, at a multiple of its own size.
    let sizes = core::iter::once(keep_bits).chain(keep_bits..parent.size_bits);
    for bits in sizes {
        let slot = slots.alloc().ok_or(sel4::Error::NotEnoughMemory)?;
        let bp = sel4::ObjectBlueprint::Untyped { size_bits: bits as usize };
        ut.untyped_retype(&bp, &root_cnode().absolute_cptr_for_self(), slot, 1)?;
        children.push(Untyped { slot, paddr: parent.paddr + offset, size_bits: bits, device: false });
        offset += 1u64 << bits;
    }
    debug_assert_eq!(offset, 1u64 << parent.size_bits);
    let kept = children.remove(0);
    given.extend(children);
    Ok((alloc::vec![kept], given))
}
