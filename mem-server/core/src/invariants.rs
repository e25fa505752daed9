//! Self-check: recompute every count the core maintains incrementally and compare.
//!
//! Frame reference counts (from all page-table records, objects, pinned frames and device
//! tables), each space's charges (pages: private pages + page tables + VSpace + pinned +
//! objects it owns; cap copies; object metadata) and that its metadata stays within its
//! budget, the sum of reservations, frames in use, and the area/gap partition of each
//! space. Tests call [`MemCore::check_invariants`] after
//! every step of random operation sequences and after injected kernel failures. It also
//! lists every mapping ([`MemCore::mappings`]) so tests can compare with the kernel model.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use mem_protocol::{PageSize, Prot};

use crate::kernel::{Kernel, Slot};
use crate::res::pages_of;
use crate::space::{hw_rights, PendingRelease};
use crate::MemCore;

/// One recorded mapping, as the kernel should have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub vaddr: u64,
    pub size: PageSize,
    /// Slot of the frame's original cap.
    pub frame: Slot,
    /// Slot of the cap used for this mapping.
    pub map_slot: Slot,
    pub cow: bool,
    /// Rights the hardware mapping must have (empty: not mapped in hardware).
    pub rights: Prot,
}

impl<K: Kernel> MemCore<K> {
    /// Every mapping recorded for `client`, in address order.
    pub fn mappings(&self, client: u32) -> Vec<Mapping> {
        let Some(sp) = self.spaces.get(&client) else { return Vec::new() };
        let mut out = Vec::new();
        let mut at = 0;
        while let Some((base, pte, size)) = sp.pt.next_mapped(at, u64::MAX) {
            let prot = sp.areas.find(base).map(|(_, a)| a.prot).unwrap_or_default();
            out.push(Mapping {
                vaddr: base,
                size,
                frame: pte.frame(),
                map_slot: pte.map_slot(),
                cow: pte.cow(),
                rights: if pte.unmapped() { Prot::NONE } else { hw_rights(prot, pte.cow()) },
            });
            at = base + size.bytes();
        }
        out
    }

    /// Recompute and compare all incremental counts; `Err` describes the first mismatch.
    pub fn check_invariants(&self) -> Result<(), String> {
        let frozen = self.spaces.iter().filter(|(_, s)| s.frozen_for.is_some()).count() as u32;
        if frozen != self.cloning_now {
            return Err(format!("{frozen} spaces frozen, count says {}", self.cloning_now));
        }
        let mut refs: BTreeMap<Slot, (u32, PageSize)> = BTreeMap::new();
        let mut in_use: u64 = 0;
        let mut charged: BTreeMap<u32, u64> = BTreeMap::new();
        let mut obj_meta: BTreeMap<u32, u64> = BTreeMap::new();
        let mut reserved = 0u64;
        for (id, sp) in self.spaces.iter() {
            let tearing = sp.teardown.as_ref().map_or(0, |t| t.len() as u64);
            let mut c = sp.pt.table_count() as u64 + tearing + crate::lifecycle::VSPACE_PAGES;
            in_use += sp.pt.table_count() as u64 + tearing + 2;
            reserved += sp.budget.meta_limit;
            let mut at = 0;
            let mut pages = 0;
            let mut large = 0u64;
            let mut copies = sp.view.len() as u64;
            let mut pinned = sp.pinned_detached.len() as u64;
            c += pinned;
            for &f in &sp.pinned_detached {
                refs.entry(f).or_insert((0, PageSize::Small)).0 += 1;
            }
            while let Some((base, pte, size)) = sp.pt.next_mapped(at, u64::MAX) {
                let (_, a) = sp.areas.find(base).ok_or_else(|| format!("client {id}: page {base:#x} outside every area"))?;
                if base + size.bytes() > a.end {
                    return Err(format!("client {id}: page {base:#x} crosses its area end"));
                }
                if !pte.unmapped() && hw_rights(a.prot, pte.cow()).is_empty() {
                    return Err(format!("client {id}: page {base:#x} marked mapped with no rights"));
                }
                refs.entry(pte.frame()).or_insert((0, size)).0 += 1;
                if !pte.nocharge() {
                    c += pages_of(size);
                }
                if pte.map_slot() != pte.frame() {
                    copies += 1;
                }
                if pte.pinned() {
                    pinned += 1;
                }
                if pte.fresh() {
                    return Err(format!("client {id}: page {base:#x} still marked fresh"));
                }
                pages += pages_of(size);
                large += u64::from(size == PageSize::Large);
                at = base + size.bytes();
            }
            if pages != sp.pt.pages {
                return Err(format!("client {id}: {pages} pages mapped, record says {}", sp.pt.pages));
            }
            if (large > 0) != sp.pt.has_large() {
                return Err(format!("client {id}: {large} large pages mapped, record says has_large {}", sp.pt.has_large()));
            }
            // Saved reply caps (pager faults of this client, its pagers' waiting thread).
            copies += self.pagers.saved_slots_of(id);
            // And requests waiting for a clone (`freeze.rs`).
            copies += sp.held.len() as u64;
            self.check_clone_links(id, sp)?;
            if copies != sp.budget.slots {
                return Err(format!("client {id}: {copies} cap copies, charge says {}", sp.budget.slots));
            }
            if sp.budget.slots > sp.budget.slot_limit {
                return Err(format!("client {id}: {} cap copies over the limit {}", sp.budget.slots, sp.budget.slot_limit));
            }
            if pinned != sp.pinned {
                return Err(format!("client {id}: {pinned} pinned frames, count says {}", sp.pinned));
            }
            if sp.meta() > sp.budget.meta_limit {
                return Err(format!("client {id}: metadata {} over its budget {}", sp.meta(), sp.budget.meta_limit));
            }
            obj_meta.insert(
                id,
                u64::from(sp.budget.segments) * crate::ledger::cost::SEGMENT
                    + u64::from(sp.budget.backends) * crate::ledger::cost::BACKEND
                    + u64::from(sp.budget.pagers) * crate::ledger::cost::PAGER
                    + self.pagers.pending_of_client(id) as u64 * crate::ledger::cost::PENDING,
            );
            charged.insert(id, c);
            for &f in sp.server_buffer.iter().flatten() {
                refs.entry(f).or_insert((0, PageSize::Small)).0 += 1;
            }
            // Areas and gaps partition the user range.
            let (lo, hi) = sp.areas.user_range();
            let mut pieces: Vec<(u64, u64)> = sp.areas.iter().map(|(s, a)| (s, a.end)).collect();
            pieces.extend(sp.areas.gaps().into_iter().map(|(s, l)| (s, s + l)));
            pieces.sort_unstable();
            let mut expect = lo;
            for (s, e) in pieces {
                if s != expect || e <= s {
                    return Err(format!("client {id}: areas/gaps broken at {s:#x} (expected {expect:#x})"));
                }
                expect = e;
            }
            if expect != hi {
                return Err(format!("client {id}: areas/gaps end at {expect:#x}, not {hi:#x}"));
            }
            // Adjacent gaps must be merged.
            let g = sp.areas.gaps();
            if g.windows(2).any(|w| w[0].0 + w[0].1 == w[1].0) {
                return Err(format!("client {id}: unmerged adjacent gaps"));
            }
        }
        for (id, obj) in self.objs.iter() {
            let mut area_refs = 0;
            for (c, sp) in self.spaces.iter() {
                let n = sp.areas.iter().filter(|(_, a)| a.kind.object() == Some(id)).count() as u32;
                area_refs += n;
                let listed = obj.mappers().iter().find(|&&(m, _)| m == c).map_or(0, |&(_, k)| k);
                if listed != n {
                    return Err(format!("object {id}: {n} areas of client {c} map it, its reverse map says {listed}"));
                }
            }
            if obj.mappers().iter().any(|&(c, k)| k == 0 || !self.spaces.contains_key(&c)) {
                return Err(format!("object {id}: reverse map {:?} names a space without areas of it", obj.mappers()));
            }
            if area_refs != obj.area_refs {
                return Err(format!("object {id}: {area_refs} areas map it, count says {}", obj.area_refs));
            }
            for (_, f) in obj.frames() {
                refs.entry(f).or_insert((0, PageSize::Small)).0 += 1;
            }
            if let Some(o) = obj.owner {
                let (pages, meta) = obj.charge();
                *charged.entry(o).or_insert(0) += pages;
                *obj_meta.entry(o).or_insert(0) += meta;
                if !self.spaces.contains_key(&o) {
                    return Err(format!("object {id}: owned by {o}, which has no space"));
                }
            }
        }
        for r in self.dying.iter() {
            for &f in r.frames.values() {
                refs.entry(f).or_insert((0, PageSize::Small)).0 += 1;
            }
            if let Some(o) = r.owner {
                *charged.entry(o).or_insert(0) += r.pages;
                *obj_meta.entry(o).or_insert(0) += r.meta;
            }
        }
        if self.dying.iter().map(|r| r.frames.len() as u64).sum::<u64>() != self.dying.frames() {
            return Err(format!("dying frames: recount differs from {}", self.dying.frames()));
        }
        self.pagers.check()?;
        if reserved != self.reserved_meta {
            return Err(format!("reserved metadata: recount {reserved}, counter {}", self.reserved_meta));
        }
        for d in &self.res.devices {
            for &f in &d.frames {
                refs.entry(f).or_insert((0, PageSize::Small)).0 += 1;
            }
        }
        for p in &self.deferred.0 {
            match *p {
                PendingRelease::Mapping { frame: Some((f, size)), .. } => refs.entry(f).or_insert((0, size)).0 += 1,
                PendingRelease::Mapping { frame: None, .. } => {}
                PendingRelease::Table(_) => in_use += 1,
                PendingRelease::VSpace(_) => in_use += 2,
            }
        }
        let device_slots: Vec<Slot> = self.res.devices.iter().flat_map(|d| d.frames.iter().copied()).collect();
        for (&f, &(n, size)) in &refs {
            let have = self.res.frame_refs(f);
            if have != n {
                return Err(format!("frame {f}: {n} references found, count says {have}"));
            }
            if !device_slots.contains(&f) {
                in_use += pages_of(size);
            }
        }
        in_use += self.server_pages;
        if in_use != self.res.frames_in_use {
            return Err(format!("frames in use: recount {in_use}, counter {}", self.res.frames_in_use));
        }
        for (id, sp) in self.spaces.iter() {
            let c = charged.get(&id).copied().unwrap_or(0);
            if c != sp.charged {
                return Err(format!("client {id}: charge recount {c}, counter {}", sp.charged));
            }
            let m = obj_meta.get(&id).copied().unwrap_or(0);
            if m != sp.budget.obj_meta {
                return Err(format!("client {id}: object metadata recount {m}, counter {}", sp.budget.obj_meta));
            }
        }
        Ok(())
    }
}

impl<K: Kernel> MemCore<K> {
    /// A frozen parent and the child being made name each other, waiting requests exist
    /// only while frozen, and the count of clones in progress is right.
    fn check_clone_links(&self, id: u32, sp: &crate::space::Space) -> Result<(), String> {
        if !sp.held.is_empty() && sp.frozen_for.is_none() {
            return Err(format!("client {id}: {} requests held but not frozen", sp.held.len()));
        }
        if let Some(child) = sp.frozen_for {
            let c = self.spaces.get(&child).and_then(|c| c.cloning);
            if !c.is_some_and(|c| c.parent == id && c.failed.is_none()) {
                return Err(format!("client {id}: frozen for {child}, which is not its clone in progress ({c:?})"));
            }
        }
        if let Some(c) = sp.cloning {
            let frozen = self.spaces.get(&c.parent).and_then(|p| p.frozen_for) == Some(id);
            if frozen == c.failed.is_some() {
                return Err(format!("client {id}: clone of {} {c:?}, parent frozen: {frozen}", c.parent));
            }
            if c.in_area && c.failed.is_none() && sp.areas.find(c.at).is_none() {
                return Err(format!("client {id}: clone progress {:#x} in no area", c.at));
            }
        }
        Ok(())
    }
}
