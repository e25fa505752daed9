//! mprotect: change the protection of a range, splitting areas at its ends.
//!
//! Pages already present are remapped with the new rights (one `Page_Map` each; unmapped
//! while the protection is `NONE`, their frames kept); lazy pages stay lazy. Asking for more
//! than an area's max protection is EACCES. As in Linux, the range is processed area by
//! area and a hole stops it with ENOMEM (earlier areas keep their new protection). Each
//! area piece is changed atomically: its pages are remapped first and restored if the
//! kernel refuses one, and only then is the area split and updated. The up to two areas a
//! piece splits off are checked against the budget before anything changes (ENOMEM).
//! Neighbours: `munmap.rs` (`split_boundaries`), `space.rs`, `area.rs`, `shm.rs` (pieces of
//! an attachment move a boundary instead of splitting where Linux does).

use mem_protocol::{Errno, PageSize, Prot};

use crate::ledger::cost;

use crate::check;
use crate::kernel::Kernel;
use crate::pagetable::Pte;
use crate::res::Res;
use crate::shm;
use crate::space::{hw_rights, split_large, Space};
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// Set the protection of `[addr, addr + len)` in `client`'s space to `prot`.
    pub fn mprotect(&mut self, client: u32, addr: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        self.settle();
        let range = check::protect_range(addr, len, self.cfg.user_hi)?;
        if !self.spaces.contains_key(&client) {
            return Err(Errno::Srch);
        }
        let Some((r, clamped)) = range else { return Ok(()) };
        let mut at = r.start;
        while at < r.end {
            let sp = self.space_mut(client)?;
            let (s, area) = match sp.areas.find(at) {
                Some((s, a)) => (s, *a),
                None => return Err(Errno::NoMem),
            };
            if !area.max_prot.contains(prot) {
                return Err(Errno::Acces);
            }
            let piece_end = area.end.min(r.end);
            if area.prot != prot {
                let whole = s == at && area.end == piece_end;
                self.protect_piece(client, at, piece_end, area.prot, prot, whole)?;
            }
            debug_assert!(s <= at);
            at = piece_end;
        }
        if clamped {
            return Err(Errno::NoMem);
        }
        Ok(())
    }

    /// Change `[start, end)`, inside one area whose protection is `old`, to `new`; `whole`:
    /// the piece is the whole area, which keeps its bounds (no area to split).
    fn protect_piece(&mut self, client: u32, start: u64, end: u64, old: Prot, new: Prot, whole: bool) -> Result<(), Errno> {
        let splits = if whole { 0 } else { self.splits_needed(client, start, end) };
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        // A piece of an shm attachment may move a boundary instead of splitting (`shm.rs`).
        let shift = shm::boundary_shift(sp, start, end, new);
        sp.area_room(splits.saturating_sub(u64::from(shift.is_some())), self.cfg.limits.max_map_count)?;
        // Splitting a large page at either end needs a leaf table.
        sp.meta_room(2 * cost::TABLE)?;
        {
            let MemCore { k, res, spaces, deferred, .. } = self;
            let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
            for b in [start, end] {
                if let Some((_, PageSize::Large, base)) = sp.pt.lookup(b) {
                    if base != b {
                        split_large(k, res, deferred, sp, b, old)?;
                    }
                }
            }
            remap_range(k, res, sp, start, end, old, new)?;
        }
        if !whole {
            self.split_boundaries(client, start, end)?;
        }
        let MemCore { spaces, objs, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        if let Some(a) = sp.areas.get_mut(start) {
            a.prot = new;
        }
        if let Some(obj) = shift.and_then(|left| shm::merge_pieces(sp, left)) {
            if let Some(o) = objs.get_mut(obj) {
                o.drop_area(client);
            }
        }
        // Merge with equal neighbours, as Linux merges VMAs (not shm pieces: `try_merge_next`).
        self.merge_neighbours(client, start);
        Ok(())
    }
}

/// Give every present page in `[start, end)` the rights of `new`; on a kernel refusal put
/// the pages done so far back to their rights under `old` and fail with ENOMEM. Pages
/// changed so far are marked `fresh` (and the mark cleared at the end), so undoing needs
/// no list however many pages the range holds.
fn remap_range<K: Kernel>(k: &mut K, res: &Res, sp: &mut Space, start: u64, end: u64, old: Prot, new: Prot) -> Result<(), Errno> {
    let vspace = sp.pt.vspace();
    let mut at = start;
    let mut failed = None;
    while let Some((base, pte, size)) = sp.pt.next_mapped(at, end) {
        at = base + size.bytes();
        match set_rights(k, res, vspace, base, pte, hw_rights(new, pte.cow())) {
            Ok(p) => sp.pt.update(base, size, p.with_fresh(true)),
            Err(_) => {
                failed = Some(base);
                break;
            }
        }
    }
    let stop = failed.unwrap_or(end);
    let mut at = start;
    while let Some((base, pte, size)) = sp.pt.next_mapped(at, stop) {
        at = base + size.bytes();
        if !pte.fresh() {
            continue;
        }
        let pte = pte.with_fresh(false);
        if failed.is_none() {
            sp.pt.update(base, size, pte);
            continue;
        }
        // Undo: the rights under `old` (a page unmapped under `old` had no rights).
        let rights = if old.is_empty() { Prot::NONE } else { hw_rights(old, pte.cow()) };
        let restored = match set_rights(k, res, vspace, base, pte, rights) {
            Ok(p) => p,
            // Refused again: at least take the page out of the hardware; the fault path
            // maps it back with the area's rights.
            Err(_) => {
                let _ = k.page_unmap(pte.map_slot());
                pte.with_unmapped(true)
            }
        };
        sp.pt.update(base, size, restored);
    }
    match failed {
        Some(_) => Err(Errno::NoMem),
        None => Ok(()),
    }
}

/// Map (or remap) the cap of `pte` at `base` with `rights` (and the frame's memory type),
/// or unmap it for no rights; returns the entry with its hardware state updated.
pub(crate) fn set_rights<K: Kernel>(k: &mut K, res: &Res, vspace: u32, base: u64, pte: Pte, rights: Prot) -> Result<Pte, crate::KernelError> {
    if rights.is_empty() {
        k.page_unmap(pte.map_slot())?;
    } else {
        k.page_map(pte.map_slot(), vspace, base, rights, res.caching(pte.frame()))?;
    }
    Ok(pte.with_unmapped(rights.is_empty()))
}
