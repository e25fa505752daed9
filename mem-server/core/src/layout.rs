//! layout: the areas of an address space, like `/proc/self/maps` (`Request::Layout`).
//!
//! From address `from` on, one [`LayoutEntry`] per area (start, end, protection, maximum
//! protection, what backs it, pages present) is written into the caller's buffer, as many
//! as fit, 64 at most; the answer says where to continue. The work per request is bounded
//! by those entries and by the pages the space has mapped in their areas (counted by
//! skipping empty page-table subtrees), which the client's own limits bound. Read only.
//! Neighbours: `mem_protocol::layout` (wire form), `area.rs`, `pagetable.rs`.

use mem_protocol::{AreaKindCode, Errno, LayoutEntry, LayoutInfo};

use crate::area::{Area, AreaKind};
use crate::kernel::Kernel;
use crate::space::Space;
use crate::MemCore;

fn kind_code(k: AreaKind) -> AreaKindCode {
    match k {
        AreaKind::Anon => AreaKindCode::Anon,
        AreaKind::Shared { .. } => AreaKindCode::Shared,
        AreaKind::PrivateBackend { .. } => AreaKindCode::PrivateBackend,
        AreaKind::Phys { .. } => AreaKindCode::Phys,
        AreaKind::Pager { .. } => AreaKindCode::Pager,
        AreaKind::Dead => AreaKindCode::Dead,
    }
}

/// Pages of `[start, area.end)` mapped in `sp` now.
fn resident(sp: &Space, start: u64, area: &Area) -> u32 {
    let mut n: u64 = 0;
    let mut at = start;
    while let Some((base, _, size)) = sp.pt.next_mapped(at, area.end) {
        let bytes = size.bytes();
        // A large page starting below the area counts for the part inside it.
        let lo = base.max(start);
        let hi = (base + bytes).min(area.end);
        n += (hi - lo) / mem_protocol::PAGE_SIZE;
        at = base + bytes;
    }
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<K: Kernel> MemCore<K> {
    /// What backs the area of `client` containing `vaddr`, if any (tests).
    pub fn area_kind(&self, client: u32, vaddr: u64) -> Option<AreaKindCode> {
        let (_, a) = self.spaces.get(&client)?.areas.find(vaddr)?;
        Some(kind_code(a.kind))
    }

    /// Write the entries of `client`'s areas that end above `from` into `out` (as many as
    /// fit, [`LayoutEntry::BYTES`] each); what was written and where to go on.
    pub fn layout_page(&self, client: u32, from: u64, out: &mut [u8]) -> Result<LayoutInfo, Errno> {
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        // At most one step's worth of entries per request (each counts its area's resident
        // pages): the answer says where to go on, as for a full buffer.
        let fit = (out.len() / LayoutEntry::BYTES).min(crate::step::STEP_AREAS as usize * 4);
        let max_va = sp.areas.last_end();
        let mut info = LayoutInfo { max_va, areas: sp.areas.len() as u64, written: 0, next: 0 };
        // The area containing `from` (if any) first, then those starting above it.
        let first = sp.areas.find(from).map(|(s, _)| s).unwrap_or(from);
        for (start, area) in sp.areas.iter_from(first) {
            let n = info.written as usize;
            if n == fit {
                info.next = start;
                break;
            }
            let e = LayoutEntry {
                start,
                end: area.end,
                prot: area.prot,
                max_prot: area.max_prot,
                kind: kind_code(area.kind),
                resident_pages: resident(sp, start, area),
            };
            out[n * LayoutEntry::BYTES..(n + 1) * LayoutEntry::BYTES].copy_from_slice(&e.to_bytes());
            info.written += 1;
        }
        Ok(info)
    }
}
