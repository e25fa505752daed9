//! The server's CNode: one [`Cap`] per slot, and the untyped nodes behind untyped caps.
//!
//! Caps are a `Vec` indexed by slot. Frame caps carry their own mapping record (seL4's
//! `capFMappedASID`/`capFMappedAddress`), because seL4 allows one mapping per frame *cap*.
//! Page-table and VSpace mapping state lives in the object (`objects.rs`): seL4 only lets
//! mapped/assigned ones be copied and only the final cap be unmapped, so all caps of such
//! an object always agree. Untyped nodes model the part of seL4's derivation tree that
//! matters: how many caps descend from an untyped (an untyped with none is reset to empty
//! at its next retype). Neighbours: `retype.rs`, `caps.rs`, `vspace.rs`, `inspect.rs`.

use mem_core::Slot;

use crate::objects::ObjectId;

/// A capability in a CNode slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cap {
    Null,
    /// Index of an untyped node.
    Untyped(u32),
    /// A frame cap; `asid == 0` means the cap records no mapping.
    Frame { obj: ObjectId, asid: u32, vaddr: u64 },
    PageTable(ObjectId),
    VSpace(ObjectId),
}

/// Public view of a slot's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapKind {
    Untyped,
    SmallPage,
    LargePage,
    PageTable,
    VSpace,
}

/// The state of one untyped cap.
#[derive(Clone, Debug)]
pub(crate) struct UtNode {
    pub paddr: u64,
    pub size_bits: u8,
    pub device: bool,
    /// Bytes from `paddr` up to which memory has been handed out (seL4's free index).
    pub watermark: u64,
    /// Caps derived from this untyped: caps of objects retyped from it (copies included)
    /// and copies of this untyped cap.
    pub children: u32,
    /// The untyped this one is a copy of.
    pub parent: Option<u32>,
}

impl UtNode {
    pub(crate) fn size(&self) -> u64 {
        1u64 << self.size_bits
    }
}

/// Caps by slot plus the untyped nodes.
#[derive(Debug)]
pub(crate) struct CSpace {
    caps: Vec<Cap>,
    occupied: usize,
    uts: Vec<Option<UtNode>>,
    ut_free: Vec<u32>,
}

impl CSpace {
    pub(crate) fn new(slots: u32) -> Self {
        CSpace { caps: vec![Cap::Null; slots as usize], occupied: 0, uts: Vec::new(), ut_free: Vec::new() }
    }

    /// Number of slots (`0 .. len`).
    pub(crate) fn len(&self) -> u64 {
        self.caps.len() as u64
    }

    /// The cap in `slot`, or `None` if the slot does not exist.
    #[inline]
    pub(crate) fn get(&self, slot: Slot) -> Option<Cap> {
        self.caps.get(slot as usize).copied()
    }

    #[inline]
    pub(crate) fn is_empty(&self, slot: Slot) -> bool {
        matches!(self.caps.get(slot as usize), Some(Cap::Null))
    }

    /// Store `cap` in an existing slot, keeping the occupancy count.
    #[inline]
    pub(crate) fn set(&mut self, slot: Slot, cap: Cap) {
        let c = &mut self.caps[slot as usize];
        match (*c == Cap::Null, cap == Cap::Null) {
            (true, false) => self.occupied += 1,
            (false, true) => self.occupied -= 1,
            _ => {}
        }
        *c = cap;
    }

    pub(crate) fn occupied(&self) -> usize {
        self.occupied
    }

    pub(crate) fn new_ut(&mut self, node: UtNode) -> u32 {
        match self.ut_free.pop() {
            Some(i) => {
                self.uts[i as usize] = Some(node);
                i
            }
            None => {
                self.uts.push(Some(node));
                (self.uts.len() - 1) as u32
            }
        }
    }

    pub(crate) fn free_ut(&mut self, i: u32) -> UtNode {
        self.ut_free.push(i);
        self.uts[i as usize].take().expect("model invariant: untyped node freed twice")
    }

    #[inline]
    pub(crate) fn ut(&self, i: u32) -> &UtNode {
        self.uts[i as usize].as_ref().expect("model invariant: dead untyped node")
    }

    #[inline]
    pub(crate) fn ut_mut(&mut self, i: u32) -> &mut UtNode {
        self.uts[i as usize].as_mut().expect("model invariant: dead untyped node")
    }

    pub(crate) fn uts_mut(&mut self) -> impl Iterator<Item = &mut UtNode> + '_ {
        self.uts.iter_mut().flatten()
    }
}
