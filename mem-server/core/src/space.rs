//! One client's address space and the two primitives every operation is built from:
//! [`map_page`] (record and map one frame, charging the quota) and [`release_page`] (unmap
//! one mapping and drop its frame reference).
//!
//! Releases cannot fail from the caller's point of view: if seL4 refuses an unmap or a cap
//! delete (only possible under failure injection or a server bug), the release is queued in
//! `Deferred` and retried before the next operation; the frame is not reused meanwhile, so a
//! stale mapping never exposes another client's data.
//!
//! Budgets (`ledger.rs`): `map_page` checks the page quota, the metadata of new shadow
//! tables and the cap slot of a copy before it changes anything; `release_page` gives them
//! back. A pinned page (`pin.rs`) is different on release: its frame stays held by the
//! space (still charged) until the space is destroyed. Neighbours: `pagetable.rs`
//! (record), `res.rs` (frames, slots), the operation files (`mmap.rs`, `munmap.rs`, …).

use alloc::vec::Vec;
use mem_protocol::{Errno, PageSize, Prot};

use crate::area::AreaMap;
use crate::kernel::{Caching, Kernel, Slot};
use crate::ledger::{cost, Budget};
use crate::pagetable::{PageTree, Pte};
use crate::res::{pages_of, Res};

/// Credentials of a client, for shm permission checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
}

/// One client's address space.
#[derive(Debug)]
pub struct Space {
    pub id: u32,
    pub cred: Cred,
    pub areas: AreaMap,
    pub pt: PageTree,
    /// Limits and the charges not counted from the structures (`ledger.rs`).
    pub budget: Budget,
    /// Pages charged: private pages mapped here, page tables, objects owned, pinned frames.
    pub charged: u64,
    pub faults: u64,
    pub unresolved: u64,
    /// Frames of the shared buffer the server maps too (one reference each).
    pub server_buffer: Option<Vec<Slot>>,
    /// The server's own mappings of those frames (cap copies mapped in the server).
    pub view: Vec<Slot>,
    /// Pinned frames no longer mapped in the space (still held and charged).
    pub pinned_detached: Vec<Slot>,
    /// Pinned frames in all (mapped or detached).
    pub pinned: u64,
    /// Where a stepped Populate of `[.0, .1)` goes on (`.2`), so the request sent again
    /// after `EAGAIN` does not walk what it already did (`populate.rs`, `step.rs`).
    pub populate_next: (u64, u64, u64),
    /// Where the latest `mmap` placed its area (`fault.rs`): the first touch of a fresh
    /// mapping gets no fault-around even when the area merged with a neighbour.
    pub last_map_start: u64,
    /// Being made by `CreateSpace` (its shared buffer not complete yet, `buffer.rs`).
    pub building: bool,
    /// Being destroyed (`lifecycle.rs`): the first step's work is done.
    pub destroying: bool,
    /// Being destroyed, its areas gone: the page tables still to give back.
    pub teardown: Option<Vec<Slot>>,
    /// Being made as a clone (`clone.rs`): how far the copy has come.
    pub cloning: Option<crate::clone::Cloning>,
    /// Being cloned into this child: the space's own requests wait (`freeze.rs`).
    pub frozen_for: Option<u32>,
    /// Reply caps of this client's threads whose requests wait for the clone to finish.
    pub held: Vec<Slot>,
}

impl Space {
    /// Would charging `pages` more exceed the quota?
    pub fn over_quota(&self, pages: u64) -> bool {
        self.charged.saturating_add(pages) > self.budget.quota
    }

    /// Server heap bytes held for this space (`ledger.rs`): counted from its structures
    /// plus the objects it is charged for.
    pub fn meta(&self) -> u64 {
        cost::SPACE
            + self.pt.root_bytes()
            + self.areas.len() as u64 * cost::AREA
            + self.pt.table_count() as u64 * cost::TABLE
            + self.pinned_detached.capacity() as u64 * 4
            + self.held.capacity() as u64 * 4
            + self.budget.obj_meta
    }

    /// ENOMEM unless `extra` more bytes of metadata fit the budget.
    pub fn meta_room(&self, extra: u64) -> Result<(), Errno> {
        if self.meta().saturating_add(extra) > self.budget.meta_limit {
            return Err(Errno::NoMem);
        }
        Ok(())
    }

    /// ENOMEM unless `n` more areas fit (the area count limit and the metadata budget).
    pub fn area_room(&self, n: u64, max_map_count: u32) -> Result<(), Errno> {
        if self.areas.len() as u64 + n > u64::from(max_map_count) {
            return Err(Errno::NoMem);
        }
        self.meta_room(n * cost::AREA)
    }
}

/// A release seL4 refused; retried by [`Deferred::flush`].
#[derive(Clone, Copy, Debug)]
pub enum PendingRelease {
    /// A mapping's cap: delete it (a copy) or unmap it (the original), then drop the frame
    /// reference it held (`None`: a bare cap copy).
    Mapping { map_slot: Slot, delete: bool, frame: Option<(Slot, PageSize)> },
    /// A page table to unmap and return to the pool.
    Table(Slot),
    /// A VSpace to return to the pool (queued after its tables).
    VSpace(Slot),
}

/// Releases waiting for the kernel to accept them.
#[derive(Debug, Default)]
pub struct Deferred(pub Vec<PendingRelease>);

impl Deferred {
    /// Retry every pending release in order; returns how many are still pending.
    pub fn flush<K: Kernel>(&mut self, k: &mut K, res: &mut Res) -> usize {
        if self.0.is_empty() {
            return 0;
        }
        let pending = core::mem::take(&mut self.0);
        for p in pending {
            finish_release(k, res, self, p);
        }
        self.0.len()
    }

    /// Is a release of the VSpace's tables still pending (so it must wait too)?
    pub fn has_tables(&self) -> bool {
        self.0.iter().any(|p| matches!(p, PendingRelease::Table(_)))
    }
}

/// Carry out a release now, or queue it if the kernel refuses.
pub fn finish_release<K: Kernel>(k: &mut K, res: &mut Res, d: &mut Deferred, p: PendingRelease) {
    match p {
        PendingRelease::Mapping { map_slot, delete, frame } => {
            let ok = if delete { k.cap_delete(map_slot).is_ok() } else { k.page_unmap(map_slot).is_ok() };
            if !ok {
                d.0.push(p);
                return;
            }
            if delete {
                res.slots.free(map_slot);
            }
            if let Some((f, size)) = frame {
                res.frame_unref(f, size);
            }
        }
        PendingRelease::Table(t) => {
            if k.page_table_unmap(t).is_err() {
                d.0.push(p);
                return;
            }
            res.free_table(t);
        }
        PendingRelease::VSpace(v) => {
            // Only once every table of it is back (they are queued before it).
            if d.has_tables() {
                d.0.push(p);
                return;
            }
            res.free_vspace(v);
        }
    }
}

/// Drop a cap used for a mapping that is already unmapped or being replaced: delete it if
/// it is a copy, then drop the frame reference (deferred if the kernel refuses).
pub fn finish_release_pub<K: Kernel>(k: &mut K, res: &mut Res, d: &mut Deferred, map_slot: Slot, delete: bool, frame: Slot, size: PageSize) {
    if delete {
        finish_release(k, res, d, PendingRelease::Mapping { map_slot, delete: true, frame: Some((frame, size)) });
    } else {
        res.frame_unref(frame, size);
    }
}

/// Hardware rights for a page of an area with `prot`. A copy-on-write page loses write
/// access but stays readable when the area is writable (write implies read).
pub fn hw_rights(prot: Prot, cow: bool) -> Prot {
    if cow && prot.writable() {
        prot.without(Prot::WRITE).union(Prot::READ)
    } else {
        prot
    }
}

/// How a frame is being mapped.
#[derive(Clone, Copy, Debug)]
pub struct MapReq {
    pub vaddr: u64,
    pub size: PageSize,
    /// Slot of the frame's original cap; the caller holds one reference, which the mapping
    /// takes over on success (on failure the caller still owns it).
    pub frame: Slot,
    /// Map the original cap (only for a frame nobody else maps) instead of a copy.
    pub use_original: bool,
    pub prot: Prot,
    pub cow: bool,
    /// Not charged to this space (object or device page).
    pub nocharge: bool,
}

/// Map one frame into `sp` and record it. Charges the page (unless `nocharge`) and any new
/// page tables to the space; `Err(NoMem)` over quota. On error nothing changed except page
/// tables that were created (kept: they stay charged and are reused).
pub fn map_page<K: Kernel>(k: &mut K, res: &mut Res, d: &mut Deferred, sp: &mut Space, m: MapReq) -> Result<(), Errno> {
    let pages = if m.nocharge { 0 } else { pages_of(m.size) };
    check_room(sp, m.vaddr, m.size, pages, !m.use_original)?;
    let (created, r) = sp.pt.ensure_tables(k, res, m.vaddr, m.size);
    sp.charged += u64::from(created);
    r?;
    let map_slot = if m.use_original {
        m.frame
    } else {
        let s = res.slots.alloc()?;
        if k.cap_copy(m.frame, s).is_err() {
            res.slots.free(s);
            return Err(Errno::NoMem);
        }
        s
    };
    // Device frames are never charged: a charged page is RAM (no lookup on the fault path).
    let caching = if m.nocharge { res.caching(m.frame) } else { Caching::Cached };
    if k.page_map(map_slot, sp.pt.vspace(), m.vaddr, hw_rights(m.prot, m.cow), caching).is_err() {
        if !m.use_original {
            finish_release(k, res, d, PendingRelease::Mapping { map_slot, delete: true, frame: None });
        }
        return Err(Errno::NoMem);
    }
    if !m.use_original {
        sp.budget.slots += 1;
    }
    sp.pt.set(m.vaddr, m.size, Pte::new(m.frame, map_slot, m.cow, m.nocharge));
    sp.charged += pages;
    Ok(())
}

/// ENOMEM unless a page of `size` at `vaddr` fits: `pages` of quota plus the seL4 and
/// shadow tables on its path, and one cap slot if `copy`.
pub fn check_room(sp: &Space, vaddr: u64, size: PageSize, pages: u64, copy: bool) -> Result<(), Errno> {
    let tables = missing_tables(&sp.pt, vaddr, size);
    if sp.over_quota(pages + tables) {
        return Err(Errno::NoMem);
    }
    sp.meta_room(tables * cost::TABLE)?;
    if copy && sp.budget.slots >= sp.budget.slot_limit {
        return Err(Errno::NoMem);
    }
    Ok(())
}

/// Tables `ensure_tables` would have to create for a page of `size` at `vaddr`.
pub fn missing_tables(pt: &PageTree, vaddr: u64, size: PageSize) -> u64 {
    u64::from(pt.missing_on_path(vaddr, size))
}

/// Unmap and forget the mapping at `base` (size `size`, entry `pte`), dropping its frame
/// reference and its charge. A pinned frame is only unmapped: the space keeps holding it
/// (and paying for it) until it is destroyed.
pub fn release_page<K: Kernel>(k: &mut K, res: &mut Res, d: &mut Deferred, sp: &mut Space, base: u64, size: PageSize, pte: Pte) {
    sp.pt.clear(base, size);
    let delete = pte.map_slot() != pte.frame();
    if delete {
        sp.budget.put_slots(1);
    }
    if pte.pinned() {
        // Unmap (or delete the copy) but keep the frame reference: the list has room
        // reserved since the page was pinned (`pin.rs`).
        finish_release(k, res, d, PendingRelease::Mapping { map_slot: pte.map_slot(), delete, frame: None });
        sp.pinned_detached.push(pte.frame());
        return;
    }
    if !pte.nocharge() {
        sp.charged -= pages_of(size);
    }
    finish_release(k, res, d, PendingRelease::Mapping { map_slot: pte.map_slot(), delete, frame: Some((pte.frame(), size)) });
}

/// Release every mapping whose page lies in `[start, end)`. Large pages that straddle the
/// boundary must have been split by the caller (see `split_large`). Returns pages released.
pub fn release_range<K: Kernel>(k: &mut K, res: &mut Res, d: &mut Deferred, sp: &mut Space, start: u64, end: u64) -> u64 {
    let mut n = 0;
    let mut at = start;
    while let Some((base, pte, size)) = sp.pt.next_mapped(at, end) {
        release_page(k, res, d, sp, base, size, pte);
        n += pages_of(size);
        at = base + size.bytes();
    }
    n
}

/// Record a mapping of `frame` (a cap `map_slot`, the caller's reference) without mapping
/// it in hardware (PROT_NONE pages): charged like `map_page`; the fault path or mprotect
/// maps it later.
pub fn record_page<K: Kernel>(k: &mut K, res: &mut Res, sp: &mut Space, vaddr: u64, size: PageSize, pte: Pte) -> Result<(), Errno> {
    let pages = if pte.nocharge() { 0 } else { pages_of(size) };
    let copy = pte.map_slot() != pte.frame();
    check_room(sp, vaddr, size, pages, copy)?;
    let (created, r) = sp.pt.ensure_tables(k, res, vaddr, size);
    sp.charged += u64::from(created);
    r?;
    if copy {
        sp.budget.slots += 1;
    }
    sp.pt.set(vaddr, size, pte.with_unmapped(true));
    sp.charged += pages;
    Ok(())
}

/// Replace the large page covering `vaddr` by 512 small pages holding the same bytes, so a
/// range boundary inside it can be honoured (munmap, mprotect). Never loses data: either
/// the large page stays as it was (error), or every byte lives on in a small page, mapped
/// with `prot` or, if the kernel refuses a map, recorded for the fault path to map.
pub fn split_large<K: Kernel>(
    k: &mut K,
    res: &mut Res,
    d: &mut Deferred,
    sp: &mut Space,
    vaddr: u64,
    prot: Prot,
) -> Result<(), Errno> {
    let Some((pte, PageSize::Large, base)) = sp.pt.lookup(vaddr) else { return Ok(()) };
    // The small pages take over the large one's charge; only a new leaf table is extra.
    if sp.over_quota(1) {
        return Err(Errno::NoMem);
    }
    sp.meta_room(cost::TABLE)?;
    let mut smalls: Vec<Slot> = Vec::new();
    smalls.try_reserve_exact(512).map_err(|_| Errno::NoMem)?;
    let drop_smalls = |res: &mut Res, smalls: &[Slot]| {
        for &f in smalls {
            res.frame_unref(f, PageSize::Small);
        }
    };
    for i in 0..512u64 {
        match res.alloc_frame_to_overwrite(k, PageSize::Small) {
            Ok(f) => smalls.push(f),
            Err(e) => {
                drop_smalls(res, &smalls);
                return Err(e);
            }
        }
        if k.frame_copy(pte.frame(), i * 4096, smalls[i as usize], 0, 4096).is_err() {
            drop_smalls(res, &smalls);
            return Err(Errno::NoMem);
        }
    }
    // Take the large page out of the hardware and the record, keeping its reference.
    if k.page_unmap(pte.map_slot()).is_err() {
        drop_smalls(res, &smalls);
        return Err(Errno::NoMem);
    }
    sp.pt.clear(base, PageSize::Large);
    let vspace = sp.pt.vspace();
    let (created, r) = sp.pt.ensure_tables(k, res, base, PageSize::Small);
    sp.charged += u64::from(created);
    if let Err(e) = r {
        // Put the large page back as it was (recorded unmapped if even that is refused).
        let rights = hw_rights(prot, pte.cow());
        // Large pages are RAM (device frames are small): cached.
        let mapped = !pte.unmapped() && !rights.is_empty() && k.page_map(pte.map_slot(), vspace, base, rights, Caching::Cached).is_ok();
        let (created, r) = sp.pt.ensure_tables(k, res, base, PageSize::Large);
        sp.charged += u64::from(created);
        debug_assert!(r.is_ok(), "the large entry was just emptied");
        sp.pt.set(base, PageSize::Large, pte.with_unmapped(!mapped));
        drop_smalls(res, &smalls);
        return Err(e);
    }
    let rights = hw_rights(prot, false);
    for (i, &f) in smalls.iter().enumerate() {
        let va = base + i as u64 * 4096;
        let mapped = !rights.is_empty() && k.page_map(f, vspace, va, rights, Caching::Cached).is_ok();
        sp.pt.set(va, PageSize::Small, Pte::new(f, f, false, pte.nocharge()).with_unmapped(!mapped));
    }
    // The charge is unchanged: 512 small pages for one large page, mapped by their own
    // original caps.
    let delete = pte.map_slot() != pte.frame();
    if delete {
        sp.budget.put_slots(1);
    }
    finish_release_pub(k, res, d, pte.map_slot(), delete, pte.frame(), PageSize::Large);
    Ok(())
}
