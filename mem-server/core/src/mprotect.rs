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

use crate::area::Area;
use crate::check;
use crate::kernel::Kernel;
use crate::pagetable::{PageTree, Pte};
use crate::res::Res;
use crate::shm;
use crate::space::{hw_rights, split_large, Space};
use crate::MemCore;

/// What [`MemCore::protect_one_area`] made of a request.
enum OneArea {
    /// It was the common case, served.
    Done(Result<(), Errno>),
    /// It was not; nothing changed. The area containing the range's start, if the search
    /// met it.
    Not(Option<(u64, Area)>),
}

impl<K: Kernel> MemCore<K> {
    /// Set the protection of `[addr, addr + len)` in `client`'s space to `prot`.
    pub fn mprotect(&mut self, client: u32, addr: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        self.settle();
        let range = check::protect_range(addr, len, self.cfg.user_hi)?;
        if !self.spaces.contains_key(&client) {
            return Err(Errno::Srch);
        }
        let Some((r, clamped)) = range else { return Ok(()) };
        // The common case first; if it is not that, the area its search met at the start.
        let mut first = None;
        if !clamped {
            match self.protect_one_area(client, r.start, r.end, prot) {
                OneArea::Done(done) => return done,
                OneArea::Not(found) => first = found,
            }
        }
        let mut at = r.start;
        while at < r.end {
            let sp = self.space_mut(client)?;
            let found = match first.take() {
                Some(f) => Some(f),
                None => sp.areas.find(at).map(|(s, a)| (s, *a)),
            };
            let Some((s, area)) = found else { return Err(Errno::NoMem) };
            if !area.max_prot.contains(prot) {
                return Err(Errno::Acces);
            }
            let piece_end = area.end.min(r.end);
            if area.prot != prot {
                self.protect_piece(client, (s, &area), at, piece_end, prot)?;
            }
            debug_assert!(s <= at);
            at = piece_end;
        }
        if clamped {
            return Err(Errno::NoMem);
        }
        Ok(())
    }

    /// mprotect's common case with one search of the area map: `[start, end)` is exactly
    /// one area, not a piece of an shm attachment, in a space without large pages. The same
    /// checks in the same order and the same result as the general way (the loop above with
    /// `protect_piece` of a whole area).
    fn protect_one_area(&mut self, client: u32, start: u64, end: u64, prot: Prot) -> OneArea {
        let max_map_count = self.cfg.limits.max_map_count;
        let MemCore { k, res, spaces, objs, .. } = self;
        let Some(sp) = spaces.get_mut(&client) else { return OneArea::Not(None) };
        if sp.pt.has_large() {
            return OneArea::Not(None);
        }
        // `protect_piece`'s room checks (no split: no area, no table), decided now and
        // applied where it applies them: the map is borrowed below.
        let room = sp.area_room(0, max_map_count).and_then(|()| sp.meta_room(2 * cost::TABLE));
        let Space { areas, pt, .. } = sp;
        let x = match areas.exact_mut(start, end) {
            Ok(x) => x,
            Err(found) => return OneArea::Not(found),
        };
        if x.area.attach.is_some() {
            return OneArea::Not(Some((start, *x.area)));
        }
        if !x.area.max_prot.contains(prot) {
            return OneArea::Done(Err(Errno::Acces));
        }
        let old = x.area.prot;
        if old == prot {
            return OneArea::Done(Ok(()));
        }
        if let Err(e) = room.and_then(|()| remap_range(k, res, pt, start, end, old, prot)) {
            return OneArea::Done(Err(e));
        }
        x.area.prot = prot;
        if x.would_merge(start) {
            let a = *x.area;
            objs.merged_away(client, areas.merge_found(start, a));
        }
        OneArea::Done(Ok(()))
    }

    /// Change `[start, end)`, inside the area `(s, area)` (its start and itself), to `new`.
    /// A piece that is the whole area keeps its bounds (no area to split).
    fn protect_piece(&mut self, client: u32, (s, area): (u64, &Area), start: u64, end: u64, new: Prot) -> Result<(), Errno> {
        let old = area.prot;
        let whole = s == start && area.end == end;
        let splits = if whole { 0 } else { self.splits_needed(client, start, end) };
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        // A piece of an shm attachment may move a boundary instead of splitting (`shm.rs`).
        let shift = shm::boundary_shift(sp, (s, area), start, end, new);
        sp.area_room(splits.saturating_sub(u64::from(shift.is_some())), self.cfg.limits.max_map_count)?;
        // Splitting a large page at either end needs a leaf table.
        sp.meta_room(2 * cost::TABLE)?;
        {
            let MemCore { k, res, spaces, deferred, .. } = self;
            let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
            let ends = if sp.pt.has_large() { &[start, end][..] } else { &[] };
            for &b in ends {
                if let Some((_, PageSize::Large, base)) = sp.pt.lookup(b) {
                    if base != b {
                        split_large(k, res, deferred, sp, b, old)?;
                    }
                }
            }
            remap_range(k, res, &mut sp.pt, start, end, old, new)?;
        }
        if !whole {
            self.split_boundaries(client, start, end)?;
        }
        let MemCore { spaces, objs, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        if let Some(left) = shift {
            if let Some(a) = sp.areas.get_mut(start) {
                a.prot = new;
            }
            objs.merged_away(client, [shm::merge_pieces(sp, left), None]);
            self.merge_neighbours(client, start);
            return Ok(());
        }
        // The new protection, then a merge with equal neighbours, as Linux merges VMAs (not
        // shm pieces: `try_merge_next`), in one pass over the area map.
        objs.merged_away(client, sp.areas.set_prot_and_merge(start, end, new));
        Ok(())
    }
}

/// Give every present page in `[start, end)` the rights of `new`; on a kernel refusal put
/// the pages done so far back to their rights under `old` and fail with ENOMEM. The pages
/// are changed in address order, so the ones done before a refusal are exactly the present
/// pages below it: undoing walks them again and needs no list however many the range
/// holds (and the common case, no refusal, walks the range once).
fn remap_range<K: Kernel>(k: &mut K, res: &Res, pt: &mut PageTree, start: u64, end: u64, old: Prot, new: Prot) -> Result<(), Errno> {
    let vspace = pt.vspace();
    let mut at = start;
    let mut failed = None;
    while let Some((base, pte, size)) = pt.next_mapped(at, end) {
        at = base + size.bytes();
        match set_rights(k, res, vspace, base, pte, hw_rights(new, pte.cow())) {
            Ok(p) => pt.update(base, size, p),
            Err(_) => {
                failed = Some(base);
                break;
            }
        }
    }
    let Some(stop) = failed else { return Ok(()) };
    let mut at = start;
    while let Some((base, pte, size)) = pt.next_mapped(at, stop) {
        at = base + size.bytes();
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
        pt.update(base, size, restored);
    }
    Err(Errno::NoMem)
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
