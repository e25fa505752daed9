//! One client's address space and the two primitives every operation is built from:
//! [`map_page`] (record and map one frame, charging the quota) and [`release_page`] (unmap
//! one mapping and drop its frame reference).
//!
//! Releases cannot fail from the caller's point of view: if seL4 refuses an unmap or a cap
//! delete (only possible under failure injection or a server bug), the release is queued in
//! `Deferred` and retried before the next operation; the frame is not reused meanwhile, so a
//! stale mapping never exposes another client's data. Neighbours: `pagetable.rs` (record),
//! `res.rs` (frames, slots), the operation files (`mmap.rs`, `munmap.rs`, `fault.rs`, …).

use alloc::vec::Vec;
use mem_protocol::{Errno, PageSize, Prot};

use crate::area::AreaMap;
use crate::kernel::{Kernel, Slot};
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
    /// Frame budget in 4 KiB pages.
    pub quota: u64,
    /// Pages charged: private pages mapped here, page tables, objects created by this client.
    pub charged: u64,
    pub faults: u64,
    pub unresolved: u64,
}

impl Space {
    /// Would charging `pages` more exceed the quota?
    pub fn over_quota(&self, pages: u64) -> bool {
        self.charged.saturating_add(pages) > self.quota
    }
}

/// A release seL4 refused; retried by [`Deferred::flush`].
#[derive(Clone, Copy, Debug)]
pub struct PendingRelease {
    /// Cap to delete (a copy) or to unmap (the original, `delete == false`).
    pub map_slot: Slot,
    pub delete: bool,
    /// Frame reference to drop once the cap is gone (None: a bare slot).
    pub frame: Option<(Slot, PageSize)>,
}

/// Releases waiting for the kernel to accept them.
#[derive(Debug, Default)]
pub struct Deferred(pub Vec<PendingRelease>);

impl Deferred {
    /// Retry every pending release; returns how many are still pending.
    pub fn flush<K: Kernel>(&mut self, k: &mut K, res: &mut Res) -> usize {
        let pending = core::mem::take(&mut self.0);
        for p in pending {
            finish_release(k, res, self, p);
        }
        self.0.len()
    }
}

fn finish_release<K: Kernel>(k: &mut K, res: &mut Res, d: &mut Deferred, p: PendingRelease) {
    let ok = if p.delete { k.cap_delete(p.map_slot).is_ok() } else { k.page_unmap(p.map_slot).is_ok() };
    if !ok {
        d.0.push(p);
        return;
    }
    if p.delete {
        res.slots.free(p.map_slot);
    }
    if let Some((f, size)) = p.frame {
        res.frame_unref(f, size);
    }
}

/// Drop a cap used for a mapping that is already unmapped or being replaced: delete it if
/// it is a copy, then drop the frame reference (deferred if the kernel refuses).
pub fn finish_release_pub<K: Kernel>(k: &mut K, res: &mut Res, d: &mut Deferred, map_slot: Slot, delete: bool, frame: Slot, size: PageSize) {
    if delete {
        finish_release(k, res, d, PendingRelease { map_slot, delete: true, frame: Some((frame, size)) });
    } else {
        res.frame_unref(frame, size);
    }
}

/// Hardware rights for a page of an area with `prot`.
pub fn hw_rights(prot: Prot, cow: bool) -> Prot {
    if cow {
        prot.without(Prot::WRITE)
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
    if sp.over_quota(pages + missing_tables(&sp.pt, m.vaddr, m.size)) {
        return Err(Errno::NoMem);
    }
    let created = sp.pt.ensure_tables(k, res, m.vaddr, m.size)?;
    sp.charged += u64::from(created);
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
    if k.page_map(map_slot, sp.pt.vspace(), m.vaddr, hw_rights(m.prot, m.cow)).is_err() {
        if !m.use_original {
            finish_release(k, res, d, PendingRelease { map_slot, delete: true, frame: None });
        }
        return Err(Errno::NoMem);
    }
    sp.pt.set(m.vaddr, m.size, Pte::new(m.frame, map_slot, m.cow, m.nocharge));
    sp.charged += pages;
    Ok(())
}

/// Tables `ensure_tables` would have to create for a page of `size` at `vaddr`.
pub fn missing_tables(pt: &PageTree, vaddr: u64, size: PageSize) -> u64 {
    u64::from(pt.missing_on_path(vaddr, size))
}

/// Unmap and forget the mapping at `base` (size `size`, entry `pte`), dropping its frame
/// reference and its charge.
pub fn release_page<K: Kernel>(k: &mut K, res: &mut Res, d: &mut Deferred, sp: &mut Space, base: u64, size: PageSize, pte: Pte) {
    sp.pt.clear(base, size);
    if !pte.nocharge() {
        sp.charged -= pages_of(size);
    }
    let delete = pte.map_slot() != pte.frame();
    finish_release(k, res, d, PendingRelease { map_slot: pte.map_slot(), delete, frame: Some((pte.frame(), size)) });
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

/// Replace the large page covering `vaddr` by small pages holding the same bytes for the
/// parts of it inside `keep` ranges of its area (the rest is dropped), so that a range
/// boundary inside it can be honoured. Used by munmap and mprotect.
pub fn split_large<K: Kernel>(
    k: &mut K,
    res: &mut Res,
    d: &mut Deferred,
    sp: &mut Space,
    vaddr: u64,
    prot: Prot,
) -> Result<(), Errno> {
    let Some((pte, PageSize::Large, base)) = sp.pt.lookup(vaddr) else { return Ok(()) };
    // The 512 small pages replace the large one's charge; only a new leaf table is extra.
    if sp.over_quota(1) {
        return Err(Errno::NoMem);
    }
    // Copy the 512 small pages first; only when all exist is the large page replaced.
    let mut smalls: Vec<Slot> = Vec::new();
    smalls.try_reserve_exact(512).map_err(|_| Errno::NoMem)?;
    for i in 0..512u64 {
        let f = match res.alloc_frame(k, PageSize::Small) {
            Ok(f) => f,
            Err(e) => {
                for &f in &smalls {
                    res.frame_unref(f, PageSize::Small);
                }
                return Err(e);
            }
        };
        smalls.push(f);
        if k.frame_copy(pte.frame(), i * 4096, f, 0, 4096).is_err() {
            for &f in &smalls {
                res.frame_unref(f, PageSize::Small);
            }
            return Err(Errno::NoMem);
        }
    }
    // The large mapping is released (its 512-page charge dropped) and small pages mapped
    // in its place; the small leaf table is created under the now-empty entry.
    release_page(k, res, d, sp, base, PageSize::Large, pte);
    let cow = false;
    for (i, &f) in smalls.iter().enumerate() {
        let m = MapReq { vaddr: base + i as u64 * 4096, size: PageSize::Small, frame: f, use_original: true, prot, cow, nocharge: pte.nocharge() };
        if let Err(e) = map_page(k, res, d, sp, m) {
            // The bytes of the remaining pages are lost with the large page; the range
            // reads back as zero-filled lazy memory. Free what was not mapped.
            for &f in &smalls[i..] {
                res.frame_unref(f, PageSize::Small);
            }
            return Err(e);
        }
    }
    Ok(())
}
