//! Cap-slot allocator for the server's CNode.
//!
//! Slots `[lo, hi)` are the server's to use. Batches for `Untyped_Retype` need contiguous
//! slots, so fresh slots come from a bump pointer and single freed slots go to a free list
//! (reused for single objects and cap copies). Neighbours: `res.rs` (object pools) and every
//! operation that copies a frame cap for an extra mapping.

use alloc::vec::Vec;
use mem_protocol::Errno;

use crate::kernel::Slot;

#[derive(Clone, Debug)]
pub struct SlotAlloc {
    next: Slot,
    hi: Slot,
    free: Vec<Slot>,
    in_use: u32,
    total: u32,
}

impl SlotAlloc {
    pub fn new(lo: Slot, hi: Slot) -> Self {
        let lo = lo.max(1); // slot 0 is the null slot
        SlotAlloc { next: lo, hi, free: Vec::new(), in_use: 0, total: hi.saturating_sub(lo) }
    }

    /// One slot.
    pub fn alloc(&mut self) -> Result<Slot, Errno> {
        if let Some(s) = self.free.pop() {
            self.in_use += 1;
            return Ok(s);
        }
        self.alloc_contig(1)
    }

    /// `n` contiguous slots (from the never-used part of the range).
    pub fn alloc_contig(&mut self, n: u32) -> Result<Slot, Errno> {
        if n == 0 || self.hi - self.next < n {
            return Err(Errno::NoMem);
        }
        let s = self.next;
        self.next += n;
        self.in_use += n;
        Ok(s)
    }

    /// How many contiguous fresh slots are left.
    pub fn contig_left(&self) -> u32 {
        self.hi - self.next
    }

    /// Return a slot (it must be empty in the CNode by now).
    pub fn free(&mut self, s: Slot) {
        debug_assert!(s != 0);
        self.in_use -= 1;
        if s + 1 == self.next {
            self.next -= 1;
        } else {
            self.free.push(s);
        }
    }

    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    pub fn free_count(&self) -> u32 {
        self.total - self.in_use
    }
}
