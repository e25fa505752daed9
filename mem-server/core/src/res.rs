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
//! fault path when possible: see `maintain`).
//!
//! Memory: the reference counts and the pools are two arrays indexed by slot, allocated
//! once at construction for the whole slot range (a pool is a linked list threaded through
//! `link`), so no client action ever grows the server's own bookkeeping here.
//! Neighbours: `slots.rs` below, `pagetable.rs`, `objects.rs` and the operation files above.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use mem_protocol::{Errno, PageSize};

use crate::kernel::{Caching, Kernel, ObjectType, Slot};
use crate::slots::SlotAlloc;
use crate::space::{Deferred, PendingRelease};

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
    /// First of `count` slots holding the direct-map copies of these frames (0: none).
    copies: Slot,
}

/// A device untyped whose frames are retyped in order as `map_phys` needs them.
#[derive(Clone, Debug)]
pub struct Device {
    pub desc: UntypedDesc,
    /// Frame caps for the first `frames.len()` pages of the device range.
    pub frames: Vec<Slot>,
}

/// A pool of objects: a stack linked through [`Res`]'s `link` array.
#[derive(Clone, Copy, Debug, Default)]
struct Pool {
    head: Slot,
    len: u32,
}

/// The pools, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Clean = 0,
    Dirty,
    LargeClean,
    LargeDirty,
    Tables,
    VSpaces,
}

const KINDS: [Kind; 6] = [Kind::Clean, Kind::Dirty, Kind::LargeClean, Kind::LargeDirty, Kind::Tables, Kind::VSpaces];

/// All kernel resources of the server.
#[derive(Debug)]
pub struct Res {
    pub slots: SlotAlloc,
    uts: Vec<Untyped>,
    batches: BTreeMap<Slot, Batch>,
    pools: [Pool; 6],
    /// Next slot in the same pool (0: end of list), by slot.
    link: Vec<Slot>,
    pub devices: Vec<Device>,
    refs: Vec<u32>,
    /// Per slot: index in `uts` of the untyped the object in it was retyped from
    /// ([`NO_UT`]: none, or not from a pooled batch). The same as looking the slot up in
    /// `batches`, in O(1): the fault path asks it for every frame it takes or frees.
    ut_of: Vec<u16>,
    batch: u32,
    /// Where small frames are mapped in the server for good (`frame slot * 4 KiB` from this
    /// base: the direct map), if they are.
    direct: Option<u64>,
    /// Slots holding direct-map copies.
    pub direct_copies: u32,
    /// Frames (in 4 KiB units) held by clients, objects and page tables.
    pub frames_in_use: u64,
    /// Dirty small frames lent out to be zeroed off the request path (`lend_dirty`) and
    /// not given back yet: free, neither pooled nor in use.
    pub lent: u64,
    /// Extra work done getting frames, in units of about one zeroing (500 instructions):
    /// a frame zeroed 1 (a 2 MiB one 512), a frame retyped 6. Bounded steps read it to stop
    /// early (`populate.rs`); it only grows.
    pub work: u64,
}

/// Up to this many objects per `Untyped_Retype` (seL4's fan-out limit is 256).
pub const MAX_BATCH: u32 = 256;

/// `Res::ut_of` of a slot that holds no pooled object.
const NO_UT: u16 = u16::MAX;
/// `Res::ut_of` of a device frame (never pooled); also one more than the most RAM untypeds
/// the server uses (seL4 hands out a few hundred at most).
const DEVICE_UT: u16 = u16::MAX - 1;

impl Res {
    pub fn new(untypeds: &[UntypedDesc], slot_lo: Slot, slot_hi: Slot, batch: u32, direct: Option<u64>) -> Self {
        let mut uts: Vec<Untyped> = untypeds
            .iter()
            .filter(|u| !u.device)
            .map(|&desc| Untyped { desc, watermark: 0, live: 0 })
            .collect();
        // Small objects come from the smallest untypeds, large ones from the largest, so
        // 2 MiB alignment rarely wastes memory.
        uts.sort_by_key(|u| (u.desc.size_bits, u.desc.paddr));
        uts.truncate(usize::from(DEVICE_UT));
        let devices = untypeds
            .iter()
            .filter(|u| u.device)
            .map(|&desc| Device { desc, frames: Vec::new() })
            .collect();
        Res {
            slots: SlotAlloc::new(slot_lo, slot_hi),
            uts,
            batches: BTreeMap::new(),
            pools: [Pool::default(); 6],
            link: alloc::vec![0; slot_hi as usize],
            devices,
            refs: alloc::vec![0; slot_hi as usize],
            ut_of: alloc::vec![NO_UT; slot_hi as usize],
            batch: batch.clamp(1, MAX_BATCH),
            direct,
            direct_copies: 0,
            frames_in_use: 0,
            lent: 0,
            work: 0,
        }
    }

    // ---- pools -------------------------------------------------------------------------

    fn push(&mut self, k: Kind, s: Slot) {
        let p = &mut self.pools[k as usize];
        self.link[s as usize] = p.head;
        p.head = s;
        p.len += 1;
    }

    fn pop(&mut self, k: Kind) -> Option<Slot> {
        let p = &mut self.pools[k as usize];
        if p.head == 0 {
            return None;
        }
        let s = p.head;
        p.head = self.link[s as usize];
        p.len -= 1;
        self.link[s as usize] = 0;
        Some(s)
    }

    /// Push the slots `first + 1 .. first + n` so that the lowest comes out first.
    fn push_batch_rest(&mut self, k: Kind, first: Slot, n: u32) {
        for s in (first + 1..first + n).rev() {
            self.push(k, s);
        }
    }

    fn pool_len(&self, k: Kind) -> u64 {
        u64::from(self.pools[k as usize].len)
    }

    // ---- retype ----------------------------------------------------------------------

    /// Have seL4 clear every untyped not used yet, now. The kernel hands out its boot
    /// untypeds as fully used and clears one whole (hundreds of MiB: up to hundreds of
    /// millions of instructions, in one system call of the server's) the first time it is
    /// retyped; one small object retyped and deleted again here leaves only 4 KiB to clear
    /// at each untyped's first real use. Call before serving anyone; returns the untypeds
    /// cleared.
    pub fn preclear<K: Kernel>(&mut self, k: &mut K) -> usize {
        let mut n = 0;
        for i in 0..self.uts.len() {
            let u = &self.uts[i];
            if u.watermark != 0 || u.live != 0 || u.desc.size_bits < 12 {
                continue;
            }
            let Ok(s) = self.slots.alloc() else { break };
            if k.untyped_retype(u.desc.slot, ObjectType::SmallPage, s, 1).is_ok() {
                if k.cap_delete(s).is_err() {
                    // Still a child: keep the slot and count the page as used.
                    self.uts[i].watermark = 4096;
                    continue;
                }
                n += 1;
            }
            self.slots.free(s);
        }
        n
    }

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
            let ut_slot = u.desc.slot;
            let (first, n) = self.slot_run(fit.min(MAX_BATCH))?;
            if k.untyped_retype(ut_slot, ty, first, n).is_err() {
                for s in (first..first + n).rev() {
                    self.slots.free(s);
                }
                return Err(Errno::NoMem);
            }
            let u = &mut self.uts[i];
            u.watermark = start + size * u64::from(n);
            let copies = if ty == ObjectType::SmallPage { self.direct_map(k, first, n) } else { 0 };
            self.batches.insert(first, Batch { ut: i as u32, count: n, copies });
            self.set_origin(first, n, i as u16);
            return Ok((first, n));
        }
        Err(Errno::NoMem)
    }

    /// Map the new small frames `first .. first + n` in the server for good (the direct
    /// map), through copies in a run of `n` slots; returns the run's first slot (0 when
    /// there is no direct map or no such run: the frames are then reached the slow way).
    /// A frame whose mapping the kernel refuses is reached the slow way too.
    fn direct_map<K: Kernel>(&mut self, k: &mut K, first: Slot, n: u32) -> Slot {
        let Some(base) = self.direct else { return 0 };
        let Ok(copies) = self.slots.alloc_contig(n) else { return 0 };
        self.direct_copies += n;
        for i in 0..n {
            let _ = k.direct_map(first + i, copies + i, base + u64::from(first + i) * 4096);
        }
        copies
    }

    /// Stop direct-mapping new frames (its tables could not be made).
    pub fn disable_direct_map(&mut self) {
        self.direct = None;
    }

    /// Map `frame` in the direct map again after a revoke deleted its copy (the copy's slot
    /// is empty then). Failure leaves it reached the slow way.
    pub fn redirect<K: Kernel>(&mut self, k: &mut K, frame: Slot) {
        let Some(base) = self.direct else { return };
        let Some((&first, b)) = self.batches.range(..=frame).next_back() else { return };
        if b.copies != 0 && frame < first + b.count {
            let _ = k.direct_map(frame, b.copies + (frame - first), base + u64::from(frame) * 4096);
        }
    }

    /// A run of at most `want` contiguous free slots: `want`, else 8, else one slot (each
    /// search bounded: `SlotAlloc::alloc_contig`), so a fragmented CNode costs a shorter
    /// batch, never a long search.
    fn slot_run(&mut self, want: u32) -> Result<(Slot, u32), Errno> {
        let n = want.min(self.slots.free_count());
        for m in [n, n.min(8)] {
            if m > 1 {
                if let Ok(first) = self.slots.alloc_contig(m) {
                    return Ok((first, m));
                }
            }
        }
        self.slots.alloc().map(|s| (s, 1))
    }

    fn origin(&self, slot: Slot) -> Option<usize> {
        match self.ut_of.get(slot as usize) {
            Some(&NO_UT) | Some(&DEVICE_UT) | None => None,
            Some(&i) => Some(usize::from(i)),
        }
    }

    /// Record that slots `first .. first + n` hold objects of untyped `ut` (or none).
    fn set_origin(&mut self, first: Slot, n: u32, ut: u16) {
        let (a, b) = (first as usize, (first + n) as usize);
        if let Some(s) = self.ut_of.get_mut(a..b) {
            s.fill(ut);
        }
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
        self.refs[slot as usize] = v;
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
            PageSize::Small => (Kind::Clean, Kind::Dirty, ObjectType::SmallPage),
            PageSize::Large => (Kind::LargeClean, Kind::LargeDirty, ObjectType::LargePage),
        };
        if let Some(s) = self.pop(clean) {
            return Ok(s);
        }
        if let Some(s) = self.pop(dirty) {
            if k.frame_zero(s).is_err() {
                self.push(dirty, s);
                return Err(Errno::NoMem);
            }
            self.work += pages_of(size);
            return Ok(s);
        }
        let want = if size == PageSize::Small { self.batch } else { 1 };
        let (first, n) = self.retype(k, ty, want)?;
        // The kernel cleans new frames from the cache; small ones are mapped in the direct
        // map too (a cap copy and a map each).
        self.work += if size == PageSize::Small { u64::from(n) * 6 } else { 512 };
        // Hand out the lowest slot; keep the rest (fresh frames are zeroed by seL4).
        self.push_batch_rest(clean, first, n);
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
                PageSize::Small => self.push(Kind::Dirty, slot),
                PageSize::Large => self.push(Kind::LargeDirty, slot),
            }
        }
    }

    /// Take up to `out.len()` dirty small frames out of the pool, to be zeroed elsewhere
    /// (the seL4 server's zeroing thread, which runs when nothing else does) and given back
    /// with [`Res::zeroed`]; returns how many. Meanwhile they count as free (and their
    /// slots as pooled), and as live for `trim` (their untyped is not reset under them).
    pub fn lend_dirty(&mut self, out: &mut [Slot]) -> usize {
        let mut n = 0;
        while n < out.len() {
            let Some(s) = self.pop(Kind::Dirty) else { break };
            self.take_live(s);
            out[n] = s;
            n += 1;
        }
        self.lent += n as u64;
        n
    }

    /// Frames lent with [`Res::lend_dirty`] come back zeroed: into the clean pool.
    pub fn zeroed(&mut self, frames: &[Slot]) {
        for &s in frames {
            self.put_live(s);
            self.push(Kind::Clean, s);
        }
        self.lent -= frames.len() as u64;
    }

    /// Frames lent with [`Res::lend_dirty`] come back as they were (not zeroed): dirty.
    pub fn unlend(&mut self, frames: &[Slot]) {
        for &s in frames {
            self.put_live(s);
            self.push(Kind::Dirty, s);
        }
        self.lent -= frames.len() as u64;
    }

    /// Zero up to `budget` dirty frames so later faults find clean ones (idle work).
    pub fn maintain<K: Kernel>(&mut self, k: &mut K, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            let Some(s) = self.pop(Kind::Dirty) else { break };
            if k.frame_zero(s).is_err() {
                self.push(Kind::Dirty, s);
                break;
            }
            self.push(Kind::Clean, s);
            done += 1;
        }
        done
    }

    // ---- page tables and vspaces ------------------------------------------------------

    /// An unmapped, empty page table (counts one frame in use).
    pub fn alloc_table<K: Kernel>(&mut self, k: &mut K) -> Result<Slot, Errno> {
        let s = match self.pop(Kind::Tables) {
            Some(s) => s,
            None => {
                let (first, n) = self.retype(k, ObjectType::PageTable, self.batch.min(16))?;
                self.push_batch_rest(Kind::Tables, first, n);
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
        self.push(Kind::Tables, s);
    }

    /// A VSpace root with an ASID, empty.
    pub fn alloc_vspace<K: Kernel>(&mut self, k: &mut K) -> Result<Slot, Errno> {
        let s = match self.pop(Kind::VSpaces) {
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
        self.push(Kind::VSpaces, s);
    }

    /// A frame of `size` whose contents the caller overwrites completely at once: like
    /// [`Res::alloc_frame`] but a dirty pooled frame is not zeroed first.
    pub fn alloc_frame_to_overwrite<K: Kernel>(&mut self, k: &mut K, size: PageSize) -> Result<Slot, Errno> {
        let (clean, dirty) = match size {
            PageSize::Small => (Kind::Clean, Kind::Dirty),
            PageSize::Large => (Kind::LargeClean, Kind::LargeDirty),
        };
        let slot = match self.pop(dirty).or_else(|| self.pop(clean)) {
            Some(s) => s,
            None => return self.alloc_frame(k, size),
        };
        self.take_live(slot);
        self.set_ref(slot, 1);
        self.frames_in_use += pages_of(size);
        Ok(slot)
    }

    fn forget_batch(&mut self, s: Slot) {
        if let Some(b) = self.batches.remove(&s) {
            debug_assert_eq!(b.count, 1);
            self.set_origin(s, b.count, NO_UT);
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

    /// How the frame whose original cap is in `frame` must be mapped: device frames
    /// uncached, RAM cached. O(1) (the fault path asks for every page it maps).
    pub fn caching(&self, frame: Slot) -> Caching {
        match self.ut_of.get(frame as usize) {
            Some(&DEVICE_UT) => Caching::Uncached,
            _ => Caching::Cached,
        }
    }

    /// The frame cap for page `page` of device `dev`, retyping frames up to it if needed.
    pub fn device_frame<K: Kernel>(&mut self, k: &mut K, dev: usize, page: u64) -> Result<Slot, Errno> {
        while self.devices[dev].frames.len() as u64 <= page {
            let have = self.devices[dev].frames.len() as u64;
            let want = (page + 1 - have).min(u64::from(MAX_BATCH)) as u32;
            let (first, n) = self.slot_run(want)?;
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
            self.set_origin(first, n, DEVICE_UT);
        }
        Ok(self.devices[dev].frames[page as usize])
    }

    // ---- trim and accounting -------------------------------------------------------------

    /// Delete every pooled object of each untyped that has no object in use, so its memory
    /// and slots return for real. Returns the number of objects deleted. A delete the
    /// kernel refuses waits in `d` (its slot is freed when it is retried successfully), and
    /// that untyped keeps its watermark: it still has a child, so seL4 does not reset it.
    pub fn trim<K: Kernel>(&mut self, k: &mut K, d: &mut Deferred) -> usize {
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
        for kind in KINDS {
            // Rebuild the list without the doomed slots, keeping the order.
            let mut keep_head: Slot = 0;
            let mut keep_tail: Slot = 0;
            let mut kept = 0u32;
            let mut at = self.pools[kind as usize].head;
            while at != 0 {
                let next = self.link[at as usize];
                self.link[at as usize] = 0;
                if !is_doomed(&at, &doomed) {
                    if keep_tail == 0 {
                        keep_head = at;
                    } else {
                        self.link[keep_tail as usize] = at;
                    }
                    keep_tail = at;
                    kept += 1;
                }
                at = next;
            }
            self.pools[kind as usize] = Pool { head: keep_head, len: kept };
        }
        let mut n = 0;
        let mut refused = alloc::vec![false; self.uts.len()];
        let later = |slot: Slot, d: &mut Deferred| {
            d.0.push(PendingRelease::Mapping { map_slot: slot, delete: true, frame: None });
        };
        for (&first, b) in &doomed {
            if b.copies != 0 {
                for i in (0..b.count).rev() {
                    if k.direct_unmap(first + i, b.copies + i).is_ok() {
                        self.slots.free(b.copies + i);
                    } else {
                        refused[b.ut as usize] = true;
                        later(b.copies + i, d);
                    }
                }
                self.direct_copies -= b.count;
            }
            for s in (first..first + b.count).rev() {
                if k.cap_delete(s).is_ok() {
                    self.slots.free(s);
                } else {
                    refused[b.ut as usize] = true;
                    later(s, d);
                }
                if let Some(r) = self.refs.get_mut(s as usize) {
                    *r = 0;
                }
                n += 1;
            }
            self.batches.remove(&first);
            self.set_origin(first, b.count, NO_UT);
        }
        for (i, u) in self.uts.iter_mut().enumerate() {
            if idle[i] && !refused[i] {
                u.watermark = 0;
            }
        }
        n
    }

    /// Frames (4 KiB units) available: pooled plus what the untypeds can still yield.
    pub fn frames_free(&self) -> u64 {
        let pooled = self.pool_len(Kind::Clean)
            + self.pool_len(Kind::Dirty)
            + 512 * (self.pool_len(Kind::LargeClean) + self.pool_len(Kind::LargeDirty))
            + self.pool_len(Kind::Tables)
            + 2 * self.pool_len(Kind::VSpaces)
            + self.lent;
        let untyped: u64 = self
            .uts
            .iter()
            .map(|u| ((1u64 << u.desc.size_bits) - u.watermark.min(1u64 << u.desc.size_bits)) >> 12)
            .sum();
        pooled + untyped
    }

    /// Slots held by pooled (reusable) objects and device frames.
    pub fn slots_pooled(&self) -> u32 {
        KINDS.iter().map(|&k| self.pools[k as usize].len).sum::<u32>()
            + self.devices.iter().map(|d| d.frames.len() as u32).sum::<u32>()
            + self.lent as u32
    }

    /// Dirty frames waiting to be zeroed (`maintain`).
    pub fn dirty_frames(&self) -> u64 {
        self.pool_len(Kind::Dirty)
    }

    /// Clean (zeroed) small frames in the pool.
    pub fn clean_frames(&self) -> u64 {
        self.pool_len(Kind::Clean)
    }

    /// Heap bytes of the frame table and pools (allocated once, for every slot).
    pub fn heap_bytes(&self) -> usize {
        self.refs.capacity() * 4 + self.link.capacity() * 4 + self.slots.heap_bytes()
    }
}

/// 4 KiB pages in a page of `size`.
pub const fn pages_of(size: PageSize) -> u64 {
    match size {
        PageSize::Small => 1,
        PageSize::Large => 512,
    }
}
