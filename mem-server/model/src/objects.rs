//! Kernel objects of the model: frames, page tables and VSpace roots, in a generational slab.
//!
//! An [`ObjectId`] names one object for its whole life; after the object is destroyed its
//! slab slot may be reused under a new generation, so stale ids never alias. Frames own
//! their bytes for RAM (lazily, one 4 KiB chunk at a time, absent = zero); device frames
//! keep theirs in `memory.rs` keyed by physical address, so device contents outlive frame
//! objects. Tables hold real entry arrays walked by `vspace.rs` and `inspect.rs`.
//! Neighbours: `cspace.rs` (caps point here), `retype.rs` (creates), `caps.rs` (destroys).

use std::sync::Arc;

use mem_core::{Caching, ObjectType};
use mem_protocol::Prot;

/// 4 KiB.
pub(crate) const PAGE: u64 = 4096;

/// 4 KiB of RAM contents, shared copy-on-write between frames after `frame_copy` so the
/// model's own copies cost a reference count, not an allocation.
pub(crate) type Chunk = Arc<[u8; PAGE as usize]>;

/// Identity of a kernel object in the model (slab index plus generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    index: u32,
    gen: u32,
}

impl ObjectId {
    /// Slab index (reused after destruction, with a new generation).
    pub const fn index(self) -> u32 {
        self.index
    }
    /// Generation of the slab slot when the object was created.
    pub const fn generation(self) -> u32 {
        self.gen
    }
}

/// One page-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Empty,
    /// A next-level page table.
    Table(ObjectId),
    /// A frame: small at the last level, large one level above.
    Page { frame: ObjectId, prot: Prot, caching: Caching },
}

/// Per-type state.
#[derive(Debug)]
pub(crate) enum Body {
    Frame(FrameBody),
    Table(TableBody),
}

/// A frame's bytes (RAM frames only; device frames use the physical device store).
#[derive(Debug, Default)]
pub(crate) struct FrameBody {
    pub device: bool,
    /// 4 KiB chunks; an empty vector or a `None` chunk reads as zeroes.
    pub chunks: Vec<Option<Chunk>>,
}

/// A page table or VSpace root.
#[derive(Debug)]
pub(crate) struct TableBody {
    pub entries: Box<[Entry]>,
    /// Page table: `(asid, vaddr)` it was mapped at, as its caps record (seL4's
    /// `capPTMappedASID`/`capPTMappedAddress`). Stays set if the VSpace dies meanwhile.
    pub mapped: Option<(u32, u64)>,
    /// VSpace: the ASID assigned to it.
    pub asid: Option<u32>,
}

/// A live object.
#[derive(Debug)]
pub(crate) struct Object {
    pub ty: ObjectType,
    pub paddr: u64,
    /// Number of caps to it; the object is destroyed when this drops to 0.
    pub caps: u32,
    /// The untyped node (see `cspace.rs`) whose children its caps are, if still alive.
    pub ut: Option<u32>,
    pub body: Body,
}

impl Object {
    pub(crate) fn size(&self) -> u64 {
        1u64 << self.ty.size_bits()
    }
    pub(crate) fn frame(&self) -> Option<&FrameBody> {
        match &self.body {
            Body::Frame(f) => Some(f),
            Body::Table(_) => None,
        }
    }
    pub(crate) fn frame_mut(&mut self) -> Option<&mut FrameBody> {
        match &mut self.body {
            Body::Frame(f) => Some(f),
            Body::Table(_) => None,
        }
    }
    pub(crate) fn table(&self) -> Option<&TableBody> {
        match &self.body {
            Body::Table(t) => Some(t),
            Body::Frame(_) => None,
        }
    }
    pub(crate) fn table_mut(&mut self) -> Option<&mut TableBody> {
        match &mut self.body {
            Body::Table(t) => Some(t),
            Body::Frame(_) => None,
        }
    }
}

#[derive(Debug)]
struct SlabSlot {
    gen: u32,
    obj: Option<Object>,
}

/// All live objects, O(1) insert/remove/get.
#[derive(Debug, Default)]
pub(crate) struct ObjectStore {
    slots: Vec<SlabSlot>,
    free: Vec<u32>,
    live: [usize; 4],
}

fn type_index(ty: ObjectType) -> usize {
    match ty {
        ObjectType::SmallPage => 0,
        ObjectType::LargePage => 1,
        ObjectType::PageTable => 2,
        ObjectType::VSpace => 3,
    }
}

impl ObjectStore {
    pub(crate) fn insert(&mut self, obj: Object) -> ObjectId {
        self.live[type_index(obj.ty)] += 1;
        match self.free.pop() {
            Some(index) => {
                let s = &mut self.slots[index as usize];
                s.obj = Some(obj);
                ObjectId { index, gen: s.gen }
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("object slab overflow");
                self.slots.push(SlabSlot { gen: 0, obj: Some(obj) });
                ObjectId { index, gen: 0 }
            }
        }
    }

    pub(crate) fn remove(&mut self, id: ObjectId) -> Option<Object> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.gen != id.gen {
            return None;
        }
        let obj = s.obj.take()?;
        s.gen = s.gen.wrapping_add(1);
        self.free.push(id.index);
        self.live[type_index(obj.ty)] -= 1;
        Some(obj)
    }

    #[inline]
    pub(crate) fn get(&self, id: ObjectId) -> Option<&Object> {
        let s = self.slots.get(id.index as usize)?;
        if s.gen == id.gen {
            s.obj.as_ref()
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: ObjectId) -> Option<&mut Object> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.gen == id.gen {
            s.obj.as_mut()
        } else {
            None
        }
    }

    /// A live object the model's invariants guarantee (ids taken from caps).
    #[inline]
    pub(crate) fn live(&self, id: ObjectId) -> &Object {
        self.get(id).expect("model invariant: capability names a dead object")
    }

    #[inline]
    pub(crate) fn live_mut(&mut self, id: ObjectId) -> &mut Object {
        self.get_mut(id).expect("model invariant: capability names a dead object")
    }

    /// The table body of a live table (ids taken from caps or from reachable entries).
    #[inline]
    pub(crate) fn table(&self, id: ObjectId) -> &TableBody {
        self.live(id).table().expect("model invariant: not a table")
    }

    #[inline]
    pub(crate) fn table_mut(&mut self, id: ObjectId) -> &mut TableBody {
        self.live_mut(id).table_mut().expect("model invariant: not a table")
    }

    pub(crate) fn count(&self, ty: ObjectType) -> usize {
        self.live[type_index(ty)]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (ObjectId, &Object)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.obj.as_ref().map(|o| (ObjectId { index: i as u32, gen: s.gen }, o))
        })
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Object> + '_ {
        self.slots.iter_mut().filter_map(|s| s.obj.as_mut())
    }
}

/// Visit the 4 KiB pieces of the byte range `[off, off + len)`: `f(page, in_page, range)`
/// gets the page number (`off / 4096` based), the offset inside that page and the range of
/// the caller's buffer the piece covers.
pub(crate) fn for_each_piece(off: u64, len: usize, mut f: impl FnMut(u64, usize, core::ops::Range<usize>)) {
    let mut done = 0usize;
    while done < len {
        let at = off + done as u64;
        let in_page = (at % PAGE) as usize;
        let n = (PAGE as usize - in_page).min(len - done);
        f(at / PAGE, in_page, done..done + n);
        done += n;
    }
}

impl FrameBody {
    /// Read RAM bytes (bounds already checked).
    pub(crate) fn read(&self, off: u64, buf: &mut [u8]) {
        for_each_piece(off, buf.len(), |page, at, r| {
            let n = r.len();
            match self.chunks.get(page as usize).and_then(Option::as_ref) {
                Some(c) => buf[r].copy_from_slice(&c[at..at + n]),
                None => buf[r].fill(0),
            }
        });
    }

    /// Write RAM bytes (bounds already checked) into a frame of `size` bytes.
    pub(crate) fn write(&mut self, size: u64, off: u64, data: &[u8]) {
        if self.chunks.is_empty() {
            self.chunks.resize_with((size / PAGE) as usize, || None);
        }
        for_each_piece(off, data.len(), |page, at, r| {
            let n = r.len();
            let c = self.chunks[page as usize].get_or_insert_with(|| Arc::new([0u8; PAGE as usize]));
            Arc::make_mut(c)[at..at + n].copy_from_slice(&data[r]);
        });
    }
}
