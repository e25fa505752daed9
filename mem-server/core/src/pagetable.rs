//! Shadow page tables: the server's record of what is mapped in one VSpace.
//!
//! A radix tree with the hardware's geometry (`kernel::Geometry`), so it also records which
//! seL4 page-table objects exist on each path. Each mapped page costs one 8-byte [`Pte`] in a
//! leaf table; together with the 4-byte frame reference count in `res.rs` that is 12 bytes of
//! metadata per mapped 4 KiB page. Tables live in a slab and are addressed by index.
//!
//! This module only keeps the record and creates missing seL4 page tables on demand
//! (`ensure_tables`); mapping frames and dropping references is done by `space.rs`.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use mem_protocol::{Errno, PageSize};

use crate::kernel::{Geometry, Kernel, Slot};
use crate::res::Res;

/// log2 of the bytes one leaf table (of 4 KiB entries) covers, and of a small page.
const LEAF_SPAN: u32 = 21;
const PAGE_BYTES: u64 = 4096;

const LEAF: u64 = 1 << 63;
const COW: u64 = 1 << 62;
const NOCHARGE: u64 = 1 << 61;
const UNMAPPED: u64 = 1 << 60;
const PINNED: u64 = 1 << 59;
const FRESH: u64 = 1 << 58;
const SLOT_BITS: u32 = 29;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

/// Highest slot number a PTE can name.
pub const MAX_SLOT: Slot = (1 << SLOT_BITS) - 1;

/// One mapped page: the frame (slot of its original cap), the cap slot used for this mapping
/// (the original itself, or a copy when the frame is mapped more than once), and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pte(u64);

impl Pte {
    pub fn new(frame: Slot, map_slot: Slot, cow: bool, nocharge: bool) -> Pte {
        debug_assert!(frame <= MAX_SLOT && map_slot <= MAX_SLOT && frame != 0);
        let mut v = LEAF | u64::from(frame) | (u64::from(map_slot) << SLOT_BITS);
        if cow {
            v |= COW;
        }
        if nocharge {
            v |= NOCHARGE;
        }
        Pte(v)
    }
    /// Slot of the frame's original cap (its identity in the frame table).
    pub fn frame(self) -> Slot {
        (self.0 & SLOT_MASK) as Slot
    }
    /// Slot of the cap this mapping uses.
    pub fn map_slot(self) -> Slot {
        ((self.0 >> SLOT_BITS) & SLOT_MASK) as Slot
    }
    /// Mapped read-only because the frame is shared copy-on-write.
    pub fn cow(self) -> bool {
        self.0 & COW != 0
    }
    /// Not charged to this space's quota (shared object or device page).
    pub fn nocharge(self) -> bool {
        self.0 & NOCHARGE != 0
    }
    pub fn with_cow(self, cow: bool) -> Pte {
        Pte(if cow { self.0 | COW } else { self.0 & !COW })
    }
    /// Recorded (frame held) but not mapped in hardware: PROT_NONE, or a map the kernel
    /// refused; the fault path maps it when the area allows the access.
    pub fn unmapped(self) -> bool {
        self.0 & UNMAPPED != 0
    }
    pub fn with_unmapped(self, unmapped: bool) -> Pte {
        Pte(if unmapped { self.0 | UNMAPPED } else { self.0 & !UNMAPPED })
    }
    /// The kernel uses this frame outside the mapping (an IPC buffer): it is never freed,
    /// moved or shared while the space lives (`pin.rs`).
    pub fn pinned(self) -> bool {
        self.0 & PINNED != 0
    }
    pub fn with_pinned(self, pinned: bool) -> Pte {
        Pte(if pinned { self.0 | PINNED } else { self.0 & !PINNED })
    }
    /// Mapped by the request in progress (rolled back if that request fails).
    pub fn fresh(self) -> bool {
        self.0 & FRESH != 0
    }
    pub fn with_fresh(self, fresh: bool) -> Pte {
        Pte(if fresh { self.0 | FRESH } else { self.0 & !FRESH })
    }
    pub fn with_map_slot(self, s: Slot) -> Pte {
        Pte((self.0 & !(SLOT_MASK << SLOT_BITS)) | (u64::from(s) << SLOT_BITS))
    }
}

#[derive(Clone, Debug)]
struct Table {
    /// seL4 page-table cap (0 for the root, whose cap is the VSpace).
    cap: Slot,
    /// Non-empty entries.
    used: u32,
    /// 0 = empty; a leaf entry has the LEAF bit; otherwise child table index + 1.
    entries: Box<[u64]>,
}

/// The shadow tree of one VSpace.
#[derive(Clone, Debug)]
pub struct PageTree {
    geo: Geometry,
    vspace: Slot,
    tables: Vec<Table>,
    free: Vec<u32>,
    /// Mapped pages (4 KiB units).
    pub pages: u64,
    /// Mapped large pages (so that a range operation on a space without any skips looking
    /// for one to split at its ends).
    large: u64,
    /// The last leaf table (4 KiB entries) a walk reached: `(vaddr >> 21) + 1` of the
    /// 2 MiB range it covers (0: none) and its index in `tables`. Faults and range
    /// operations touch neighbouring pages, so most walks end in the same table; a leaf
    /// table, once made, stays until `take_tables`, which clears this.
    hint: Cell<(u64, u32)>,
}

impl PageTree {
    pub fn new(geo: Geometry, vspace: Slot) -> Self {
        let root = Table { cap: 0, used: 0, entries: vec![0; geo.entries(0)].into_boxed_slice() };
        PageTree { geo, vspace, tables: vec![root], free: Vec::new(), pages: 0, large: 0, hint: Cell::new((0, 0)) }
    }

    /// Index of the leaf table covering `vaddr`, if it is the hinted one.
    #[inline]
    fn hinted(&self, vaddr: u64) -> Option<usize> {
        let (tag, t) = self.hint.get();
        (tag == (vaddr >> LEAF_SPAN) + 1).then_some(t as usize)
    }

    #[inline]
    fn remember(&self, vaddr: u64, t: usize) {
        self.hint.set(((vaddr >> LEAF_SPAN) + 1, t as u32));
    }

    /// Is any large page mapped?
    pub fn has_large(&self) -> bool {
        self.large > 0
    }

    pub fn vspace(&self) -> Slot {
        self.vspace
    }

    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// The leaf covering `vaddr`: its entry, size, and the page's base address.
    pub fn lookup(&self, vaddr: u64) -> Option<(Pte, PageSize, u64)> {
        let small = self.geo.leaf_level(PageSize::Small);
        if let Some(t) = self.hinted(vaddr) {
            let e = self.tables[t].entries[self.geo.index(small, vaddr)];
            return (e & LEAF != 0).then_some((Pte(e), PageSize::Small, vaddr & !(PAGE_BYTES - 1)));
        }
        let mut t = 0usize;
        for level in 0..self.geo.levels {
            if level == small {
                self.remember(vaddr, t);
            }
            let e = self.tables[t].entries[self.geo.index(level, vaddr)];
            if e == 0 {
                return None;
            }
            if e & LEAF != 0 {
                let size = if level == self.geo.leaf_level(PageSize::Small) {
                    PageSize::Small
                } else {
                    PageSize::Large
                };
                return Some((Pte(e), size, vaddr & !(size.bytes() - 1)));
            }
            t = (e - 1) as usize;
        }
        None
    }

    /// Create the seL4 page tables needed to map a page of `size` at `vaddr`. Returns the
    /// number of tables created (each one frame, for the caller to charge) — also when a
    /// later level fails, since the tables created before stay recorded.
    pub fn ensure_tables<K: Kernel>(
        &mut self,
        k: &mut K,
        res: &mut Res,
        vaddr: u64,
        size: PageSize,
    ) -> (u32, Result<(), Errno>) {
        let leaf = self.geo.leaf_level(size);
        if size == PageSize::Small && self.hinted(vaddr).is_some() {
            return (0, Ok(()));
        }
        let mut t = 0usize;
        let mut created = 0;
        for level in 0..leaf {
            let i = self.geo.index(level, vaddr);
            let e = self.tables[t].entries[i];
            if e & LEAF != 0 {
                return (created, Err(Errno::Exist));
            }
            if e != 0 {
                t = (e - 1) as usize;
                continue;
            }
            let cap = match res.alloc_table(k) {
                Ok(c) => c,
                Err(e) => return (created, Err(e)),
            };
            if k.page_table_map(cap, self.vspace, vaddr).is_err() {
                // Never mapped, so it goes straight back to the pool.
                res.free_table(cap);
                return (created, Err(Errno::NoMem));
            }
            let child = Table { cap, used: 0, entries: vec![0; 512].into_boxed_slice() };
            let idx = match self.free.pop() {
                Some(f) => {
                    self.tables[f as usize] = child;
                    f as usize
                }
                None => {
                    self.tables.push(child);
                    self.tables.len() - 1
                }
            };
            self.tables[t].entries[i] = idx as u64 + 1;
            self.tables[t].used += 1;
            t = idx;
            created += 1;
        }
        (created, Ok(()))
    }

    fn leaf_slot(&mut self, vaddr: u64, size: PageSize) -> Option<(usize, usize)> {
        let leaf = self.geo.leaf_level(size);
        if size == PageSize::Small {
            if let Some(t) = self.hinted(vaddr) {
                return Some((t, self.geo.index(leaf, vaddr)));
            }
        }
        let mut t = 0usize;
        for level in 0..leaf {
            let e = self.tables[t].entries[self.geo.index(level, vaddr)];
            if e == 0 || e & LEAF != 0 {
                return None;
            }
            t = (e - 1) as usize;
        }
        if size == PageSize::Small {
            self.remember(vaddr, t);
        }
        Some((t, self.geo.index(leaf, vaddr)))
    }

    /// Record a mapping (the tables must exist and the entry be empty).
    pub fn set(&mut self, vaddr: u64, size: PageSize, pte: Pte) {
        let (t, i) = self.leaf_slot(vaddr, size).expect("tables exist");
        let tab = &mut self.tables[t];
        if tab.entries[i] == 0 {
            tab.used += 1;
            self.pages += crate::res::pages_of(size);
            self.large += u64::from(size == PageSize::Large);
        }
        tab.entries[i] = pte.0;
    }

    /// Replace the entry of an existing mapping.
    pub fn update(&mut self, vaddr: u64, size: PageSize, pte: Pte) {
        let (t, i) = self.leaf_slot(vaddr, size).expect("mapped");
        debug_assert!(self.tables[t].entries[i] & LEAF != 0);
        self.tables[t].entries[i] = pte.0;
    }

    /// Remove the record of the mapping at `vaddr` of `size`.
    pub fn clear(&mut self, vaddr: u64, size: PageSize) -> Option<Pte> {
        let (t, i) = self.leaf_slot(vaddr, size)?;
        let e = self.tables[t].entries[i];
        if e & LEAF == 0 {
            return None;
        }
        self.tables[t].entries[i] = 0;
        self.tables[t].used -= 1;
        self.pages -= crate::res::pages_of(size);
        self.large -= u64::from(size == PageSize::Large);
        Some(Pte(e))
    }

    /// The first mapped page whose base is in `[from, end)`, skipping empty subtrees:
    /// `(base, pte, size)`. A large page that starts below `from` but covers it is returned
    /// too (its base is then below `from`).
    pub fn next_mapped(&self, from: u64, end: u64) -> Option<(u64, Pte, PageSize)> {
        if from >= end {
            return None;
        }
        // Inside the hinted leaf table's 2 MiB: scan its entries only.
        if let Some(t) = self.hinted(from) {
            let span_end = ((from >> LEAF_SPAN) + 1) << LEAF_SPAN;
            if end <= span_end {
                let leaf = self.geo.leaf_level(PageSize::Small);
                let (i0, i1) = (self.geo.index(leaf, from), self.geo.index(leaf, end - 1));
                let base = from & !((1u64 << LEAF_SPAN) - 1);
                let tab = &self.tables[t];
                return (i0..=i1).find_map(|i| {
                    let e = tab.entries[i];
                    (e & LEAF != 0).then(|| (base + i as u64 * PAGE_BYTES, Pte(e), PageSize::Small))
                });
            }
        }
        self.walk(0, 0, 0, from, end)
    }

    fn walk(&self, t: usize, level: u8, base: u64, from: u64, end: u64) -> Option<(u64, Pte, PageSize)> {
        let shift = self.geo.shift(level);
        let span = 1u64 << shift;
        let tab = &self.tables[t];
        if tab.used == 0 {
            return None;
        }
        let n = self.geo.entries(level) as u64;
        let first = if from > base { (from - base) >> shift } else { 0 };
        for i in first..n {
            let b = base + i * span;
            if b >= end {
                break;
            }
            let e = tab.entries[i as usize];
            if e == 0 {
                continue;
            }
            if e & LEAF != 0 {
                let size = if level == self.geo.leaf_level(PageSize::Small) {
                    PageSize::Small
                } else {
                    PageSize::Large
                };
                return Some((b, Pte(e), size));
            }
            if let Some(r) = self.walk((e - 1) as usize, level + 1, b, from.max(b), end) {
                return Some(r);
            }
        }
        None
    }

    /// The last mapped page that starts in `[start, end)`, if any: `(base, pte, size)`
    /// (`next_mapped` backwards; empty subtrees are skipped whole).
    pub fn prev_mapped(&self, start: u64, end: u64) -> Option<(u64, Pte, PageSize)> {
        if start >= end {
            return None;
        }
        self.walk_back(0, 0, 0, start, end)
    }

    fn walk_back(&self, t: usize, level: u8, base: u64, start: u64, end: u64) -> Option<(u64, Pte, PageSize)> {
        let shift = self.geo.shift(level);
        let span = 1u64 << shift;
        let tab = &self.tables[t];
        if tab.used == 0 {
            return None;
        }
        let n = self.geo.entries(level) as u64;
        // Entries whose span starts before `end` (and ends after `start`), last first.
        let last = if end > base { ((end - 1 - base) >> shift).min(n - 1) } else { return None };
        let mut i = last + 1;
        while i > 0 {
            i -= 1;
            let b = base + i * span;
            if b.saturating_add(span) <= start {
                break;
            }
            let e = tab.entries[i as usize];
            if e == 0 {
                continue;
            }
            if e & LEAF != 0 {
                if b < start {
                    // A large page starting before `start` does not start in the range.
                    return None;
                }
                let size = if level == self.geo.leaf_level(PageSize::Small) { PageSize::Small } else { PageSize::Large };
                return Some((b, Pte(e), size));
            }
            if let Some(r) = self.walk_back((e - 1) as usize, level + 1, b, start.max(b), end.min(b.saturating_add(span))) {
                return Some(r);
            }
        }
        None
    }

    /// Drop every table record, returning the seL4 table caps (deepest first) so the
    /// caller can unmap and pool them. Mapped pages must have been cleared before.
    pub fn take_tables(&mut self) -> Vec<Slot> {
        debug_assert_eq!(self.pages, 0);
        // Slab entries on the free list have cap 0.
        let mut caps: Vec<Slot> = self.tables.iter().skip(1).map(|t| t.cap).filter(|&c| c != 0).collect();
        caps.reverse();
        let root = Table { cap: 0, used: 0, entries: vec![0; self.geo.entries(0)].into_boxed_slice() };
        self.tables = vec![root];
        self.free.clear();
        self.hint.set((0, 0));
        caps
    }

    /// Tables missing on the path to the leaf entry for a page of `size` at `vaddr`.
    pub fn missing_on_path(&self, vaddr: u64, size: PageSize) -> u32 {
        let leaf = self.geo.leaf_level(size);
        if size == PageSize::Small && self.hinted(vaddr).is_some() {
            return 0;
        }
        let mut t = 0usize;
        for level in 0..leaf {
            let e = self.tables[t].entries[self.geo.index(level, vaddr)];
            if e == 0 {
                return u32::from(leaf - level);
            }
            if e & LEAF != 0 {
                return 0;
            }
            t = (e - 1) as usize;
        }
        0
    }

    /// Can a large page be recorded at `vaddr` (no table or page below that entry)?
    pub fn large_slot_free(&self, vaddr: u64) -> bool {
        let leaf = self.geo.leaf_level(PageSize::Large);
        let mut t = 0usize;
        for level in 0..leaf {
            let e = self.tables[t].entries[self.geo.index(level, vaddr)];
            if e == 0 {
                return true;
            }
            if e & LEAF != 0 {
                return false;
            }
            t = (e - 1) as usize;
        }
        self.tables[t].entries[self.geo.index(leaf, vaddr)] == 0
    }

    /// Heap bytes of the root shadow table.
    pub fn root_bytes(&self) -> u64 {
        self.geo.entries(0) as u64 * 8
    }

    /// Number of seL4 page tables in use below the root.
    pub fn table_count(&self) -> usize {
        self.tables.len() - 1 - self.free.len()
    }

    /// Heap bytes of the tree (benchmarks).
    pub fn heap_bytes(&self) -> usize {
        self.tables.iter().map(|t| t.entries.len() * 8 + core::mem::size_of::<Table>()).sum::<usize>()
            + self.free.capacity() * 4
    }
}
