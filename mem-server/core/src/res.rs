//! Kernel resources: untyped memory, pools of retyped objects, frame reference counts.
//!
//! Objects are retyped from untyped memory in batches and kept in pools when freed, because
//! seL4 cannot return one object to its untyped. `trim` gives memory back for real: when no
//! object of an untyped is in use, their caps are deleted and the untyped's watermark
//! resets (seL4 resets an untyped that has no children at its next retype).
//!
//! Frames carry a 32-bit reference count indexed by the slot of their original cap: every
//! page-table entry that maps a frame and every memory object that holds it counts one.
//! At zero the frame goes back to the pool as "dirty" (zeroed again before reuse, off the
//! fault path when possible: see `maintain`). Neighbours: `slots.rs` below, `pagetable.rs`,
//! `objects.rs` and the operation files above.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use mem_protocol::{Errno, PageSize};

use crate::kernel::{Kernel, ObjectType, Slot};
use crate::slots::SlotAlloc;

/// An untyped capability handed to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UntypedDesc {
    pub slot: Slot,
    pub paddr: u64,
    pub size_bits: u8,
    pub device: bool,
}

#[derive(Clone, Debug)]
struct Untyped {
    desc: UntypedDesc,
    watermark: u64,
    /// Objects from this untyped currently out of the pools.
    live: u32,
}

#[derive(Clone, Copy, Debug)]
struct Batch {
    ut: u32,
    count: u32,
}

/// A device untyped whose frames are retyped in order as `map_phys` needs them.
#[derive(Clone, Debug)]
pub struct Device {
    pub desc: UntypedDesc,
    /// Frame caps for the first `frames.len()` pages of the device range.
    pub frames: Vec<Slot>,
}

/// All kernel resources of the server.
#[derive(Debug)]
pub struct Res {
    pub slots: SlotAlloc,
    uts: Vec<Untyped>,
    batches: BTreeMap<Slot, Batch>,
    clean: Vec<Slot>,
    dirty: Vec<Slot>,
    large_clean: Vec<Slot>,
    large_dirty: Vec<Slot>,
    tables: Vec<Slot>,
    vspaces: Vec<Slot>,
    pub devices: Vec<Device>,
    refs: Vec<u32>,
    batch: u32,
    /// Frames (in 4 KiB units) held by clients, objects and page tables.
    pub frames_in_use: u64,
}

/// Up to this many objects per `Untyped_Retype` (seL4's fan-out limit is 256).
pub const MAX_BATCH: u32 = 256;

impl Res {
    pub fn new(untypeds: &[UntypedDesc], slot_lo: Slot, slot_hi: Slot, batch: u32) -> Self {
        let mut uts: Vec<Untyped> = untypeds
            .iter()
            .filter(|u| !u.device)
            .map(|&desc| Untyped { desc, watermark: 0, live: 0 })
            .collect();
        // Small objects come from the smallest untypeds, large ones from the largest, so
        // 2 MiB alignment rarely wastes memory.
        uts.sort_by_key(|u| (u.desc.size_bits, u.desc.paddr));
        let devices = untypeds
            .iter()
            .filter(|u| u.device)
            .map(|&desc| Device { desc, frames: Vec::new() })
            .collect();
        Res {
            slots: SlotAlloc::new(slot_lo, slot_hi),
            uts,
            batches: BTreeMap::new(),
            clean: Vec::new(),
            dirty: Vec::new(),
            large_clean: Vec::new(),
            large_dirty: Vec::new(),
            tables: Vec::new(),
            vspaces: Vec::new(),
            devices,
            refs: Vec::new(),
            batch: batch.clamp(1, MAX_BATCH),
            frames_in_use: 0,
        }
    }

    // ---- retype ----------------------------------------------------------------------

    /// Retype up to `want` objects of `ty` into fresh contiguous slots; returns (first, n).
    fn retype<K: Kernel>(&mut self, k: &mut K, ty: ObjectType, want: u32) -> Result<(Slot, u32), Errno> {
        let size = 1u64 << ty.size_bits();
        let order: Vec<usize> = if ty == ObjectType::LargePage {
            (0..self.uts.len()).rev().collect()
        } else {
            (0..self.uts.len()).collect()
        };
        for i in order {
            let u = &self.uts[i];
            let total = 1u64 << u.desc.size_bits;
            let start = (u.watermark + size - 1) & !(size - 1);
            if start + size > total {
                continue;
            }
            let fit = ((total - start) / size).min(u64::from(want)) as u32;
            let n = fit.min(self.slots.contig_left()).min(MAX_BATCH);
            if n == 0 {
                return Err(Errno::NoMem);
            }
            let first = self.slots.alloc_contig(n)?;
            if k.untyped_retype(u.desc.slot, ty, first, n).is_err() {
                for s in (first..first + n).rev() {
                    self.slots.free(s);
                }
                return Err(Errno::NoMem);
            }
            let u = &mut self.uts[i];
            u.watermark = start + size * u64::from(n);
            self.batches.insert(first, Batch { ut: i as u32, count: n });
            return Ok((first, n));
        }
        Err(Errno::NoMem)
    }

    fn origin(&self, slot: Slot) -> Option<usize> {
        let (&first, b) = self.batches.range(..=slot).next_back()?;
        (slot < first + b.count).then_some(b.ut as usize)
    }

    fn take_live(&mut self, slot: Slot) {
        if let Some(i) = self.origin(slot) {
            self.uts[i].live += 1;
        }
    }

    fn put_live(&mut self, slot: Slot) {
        if let Some(i) = self.origin(slot) {
            self.uts[i].live -= 1;
        }
    }

    fn set_ref(&mut self, slot: Slot, v: u32) {
        let i = slot as usize;
        if self.refs.len() <= i {
            self.refs.resize(i + 1 + i / 4, 0);
        }
        self.refs[i] = v;
    }

    // ---- frames ----------------------------------------------------------------------

    /// A zeroed frame of `size`, with reference count 1.
    pub fn alloc_frame<K: Kernel>(&mut self, k: &mut K, size: PageSize) -> Result<Slot, Errno> {
        let slot = self.alloc_frame_inner(k, size)?;
        self.take_live(slot);
        self.set_ref(slot, 1);
        self.frames_in_use += pages_of(size);
        Ok(slot)
    }

    fn alloc_frame_inner<K: Kernel>(&mut self, k: &mut K, size: PageSize) -> Result<Slot, Errno> {
        let (clean, dirty, ty) = match size {
            PageSize::Small => (&mut self.clean, &mut self.dirty, ObjectType::SmallPage),
            PageSize::Large => (&mut self.large_clean, &mut self.large_dirty, ObjectType::LargePage),
        };
        if let Some(s) = clean.pop() {
            return Ok(s);
        }
        if let Some(s) = dirty.pop() {
            if k.frame_zero(s).is_err() {
                dirty.push(s);
                return Err(Errno::NoMem);
            }
            return Ok(s);
        }
        let want = if size == PageSize::Small { self.batch } else { 1 };
        let (first, n) = self.retype(k, ty, want)?;
        let pool = if size == PageSize::Small { &mut self.clean } else { &mut self.large_clean };
        // Hand out the lowest slot; keep the rest (fresh frames are zeroed by seL4).
        pool.extend((first + 1..first + n).rev());
        Ok(first)
    }

    /// Add a reference to a frame.
    pub fn frame_ref(&mut self, slot: Slot) {
        self.refs[slot as usize] += 1;
    }

    /// Current reference count of a frame.
    pub fn frame_refs(&self, slot: Slot) -> u32 {
        self.refs.get(slot as usize).copied().unwrap_or(0)
    }

    /// Drop a reference; at zero the frame (its original cap unmapped) returns to the pool.
    pub fn frame_unref(&mut self, slot: Slot, size: PageSize) {
        let r = &mut self.refs[slot as usize];
        debug_assert!(*r > 0, "frame {slot} over-released");
        *r -= 1;
        if *r == 0 {
            self.put_live(slot);
            self.frames_in_use -= pages_of(size);
            match size {
                PageSize::Small => self.dirty.push(slot),
                PageSize::Large => self.large_dirty.push(slot),
            }
        }
    }

    /// Zero up to `budget` dirty frames so later faults find clean ones (idle work).
    pub fn maintain<K: Kernel>(&mut self, k: &mut K, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            let Some(s) = self.dirty.pop() else { break };
            if k.frame_zero(s).is_err() {
                self.dirty.push(s);
                break;
            }
            self.clean.push(s);
            done += 1;
        }
        done
    }

    // ---- page tables and vspaces ------------------------------------------------------

    /// An unmapped, empty page table (counts one frame in use).
    pub fn alloc_table<K: Kernel>(&mut self, k: &mut K) -> Result<Slot, Errno> {
        let s = match self.tables.pop() {
            Some(s) => s,
            None => {
                let (first, n) = self.retype(k, ObjectType::PageTable, self.batch.min(16))?;
                self.tables.extend((first + 1..first + n).rev());
                first
            }
        };
        self.take_live(s);
        self.frames_in_use += 1;
        Ok(s)
    }

    /// Return a page table that the caller has unmapped (seL4 cleared it).
    pub fn free_table(&mut self, s: Slot) {
        self.put_live(s);
        self.frames_in_use -= 1;
        self.tables.push(s);
    }

    /// A VSpace root with an ASID, empty.
    pub fn alloc_vspace<K: Kernel>(&mut self, k: &mut K) -> Result<Slot, Errno> {
        let s = match self.vspaces.pop() {
            Some(s) => s,
            None => {
                let (s, _) = self.retype(k, ObjectType::VSpace, 1)?;
                if k.asid_assign(s).is_err() {
                    // No ASID: give the object back to the pool of unassigned ones by
                    // deleting it (its memory returns on trim).
                    let _ = k.cap_delete(s);
                    self.forget_batch(s);
                    self.slots.free(s);
                    return Err(Errno::NFile);
                }
                s
            }
        };
        self.take_live(s);
        self.frames_in_use += 2;
        Ok(s)
    }

    /// Return an empty VSpace (everything in it unmapped) to the pool; it keeps its ASID.
    pub fn free_vspace(&mut self, s: Slot) {
        self.put_live(s);
        self.frames_in_use -= 2;
        self.vspaces.push(s);
    }

    fn forget_batch(&mut self, s: Slot) {
        if let Some(b) = self.batches.remove(&s) {
            debug_assert_eq!(b.count, 1);
        }
    }

    // ---- device memory -----------------------------------------------------------------

    /// The device region containing `[paddr, paddr + len)`, if any.
    pub fn device_for(&self, paddr: u64, len: u64) -> Option<usize> {
        self.devices.iter().position(|d| {
            let end = d.desc.paddr + (1u64 << d.desc.size_bits);
            paddr >= d.desc.paddr && paddr.checked_add(len).is_some_and(|e| e <= end)
        })
    }

    /// The frame cap for page `page` of device `dev`, retyping frames up to it if needed.
    pub fn device_frame<K: Kernel>(&mut self, k: &mut K, dev: usize, page: u64) -> Result<Slot, Errno> {
        while self.devices[dev].frames.len() as u64 <= page {
            let have = self.devices[dev].frames.len() as u64;
            let n = (page + 1 - have).min(u64::from(MAX_BATCH)) as u32;
            let n = n.min(self.slots.contig_left());
            if n == 0 {
                return Err(Errno::NoMem);
            }
            let first = self.slots.alloc_contig(n)?;
            let ut = self.devices[dev].desc.slot;
            if k.untyped_retype(ut, ObjectType::SmallPage, first, n).is_err() {
                for s in (first..first + n).rev() {
                    self.slots.free(s);
                }
                return Err(Errno::NoMem);
            }
            self.devices[dev].frames.extend(first..first + n);
            // The device table holds one reference forever: device frames never reach a pool.
            for s in first..first + n {
                self.set_ref(s, 1);
            }
        }
        Ok(self.devices[dev].frames[page as usize])
    }

    // ---- trim and accounting -------------------------------------------------------------

    /// Delete every pooled object of each untyped that has no object in use, so its memory
    /// and slots return for real. Returns the number of objects deleted.
    pub fn trim<K: Kernel>(&mut self, k: &mut K) -> usize {
        let idle: Vec<bool> = self.uts.iter().map(|u| u.live == 0).collect();
        let mut doomed = BTreeMap::new();
        for (&first, b) in &self.batches {
            if idle[b.ut as usize] {
                doomed.insert(first, *b);
            }
        }
        if doomed.is_empty() {
            return 0;
        }
        let is_doomed = |s: &Slot, doomed: &BTreeMap<Slot, Batch>| {
            doomed.range(..=*s).next_back().is_some_and(|(&f, b)| *s < f + b.count)
        };
        for pool in [
            &mut self.clean,
            &mut self.dirty,
            &mut self.large_clean,
            &mut self.large_dirty,
            &mut self.tables,
            &mut self.vspaces,
        ] {
            pool.retain(|s| !is_doomed(s, &doomed));
        }
        let mut n = 0;
        for (&first, b) in &doomed {
            for s in (first..first + b.count).rev() {
                let _ = k.cap_delete(s);
                self.slots.free(s);
                if let Some(r) = self.refs.get_mut(s as usize) {
                    *r = 0;
                }
                n += 1;
            }
            self.batches.remove(&first);
        }
        for (i, u) in self.uts.iter_mut().enumerate() {
            if idle[i] {
                u.watermark = 0;
            }
        }
        n
    }

    /// Frames (4 KiB units) available: pooled plus what the untypeds can still yield.
    pub fn frames_free(&self) -> u64 {
        let pooled = (self.clean.len() + self.dirty.len()) as u64
            + 512 * (self.large_clean.len() + self.large_dirty.len()) as u64
            + self.tables.len() as u64
            + 2 * self.vspaces.len() as u64;
        let untyped: u64 = self
            .uts
            .iter()
            .map(|u| ((1u64 << u.desc.size_bits) - u.watermark.min(1u64 << u.desc.size_bits)) >> 12)
            .sum();
        pooled + untyped
    }

    /// Slots held by pooled (reusable) objects and device frames.
    pub fn slots_pooled(&self) -> u32 {
        (self.clean.len()
            + self.dirty.len()
            + self.large_clean.len()
            + self.large_dirty.len()
            + self.tables.len()
            + self.vspaces.len()
            + self.devices.iter().map(|d| d.frames.len()).sum::<usize>()) as u32
    }

    /// Heap bytes of the frame table (benchmarks).
    pub fn heap_bytes(&self) -> usize {
        self.refs.capacity() * 4
            + (self.clean.capacity() + self.dirty.capacity() + self.tables.capacity()) * 4
    }
}

/// 4 KiB pages in a page of `size`.
pub const fn pages_of(size: PageSize) -> u64 {
    match size {
        PageSize::Small => 1,
        PageSize::Large => 512,
    }
}
