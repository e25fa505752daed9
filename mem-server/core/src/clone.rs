//! clone: a new address space that shares every private page of its source copy-on-write,
//! made in bounded steps.
//!
//! Every area is copied. Private pages (anonymous, private backend copies) become COW in
//! both spaces: the source's mapping is downgraded to read-only and the child maps the same
//! frame through a cap copy; the frame's reference count (32 bits) records the sharing and
//! the first write on either side copies (`fault.rs`). Shared areas (shm, shared mappings,
//! device memory) stay shared. The child is charged for the private pages it maps, like an
//! RSS limit, and for its areas, tables and cap copies, so a clone that would exceed the
//! child's budget fails with ENOMEM and leaves no trace. A pinned page (`pin.rs`) is not
//! shared: the child gets its own copy at once.
//!
//! Steps (`step.rs`): the copy goes in address order, at most `STEP_AREAS` areas and
//! `STEP_PAGES / CLONE_PAGE_COST` pages per step, and how far it came is kept in the child
//! ([`Cloning`]); a step with more to do is answered `EAGAIN` and the administrator sends
//! the same `Clone` again; the last one answers with the child's VSpace. The parent is
//! *frozen* meanwhile (`freeze.rs`): its own requests wait (held, then sent again), the
//! administrator's on it or on the child are EBUSY, so no area of it changes under the
//! copy. Its threads' faults are still served: a page written (copied) or filled below the
//! copy's progress stays the parent's, one above it is copied as it is by then — as on
//! Linux, where other threads' stores during a fork race with the copy. Nobody can use the
//! child before the end. A clone that fails (the child's budget, the pools, the parent
//! destroyed meanwhile: ESRCH) has its child destroyed in the following steps, then the
//! error is the answer: nothing is left behind; destroying the child ends the clone.
//! Neighbours: `space.rs`, `fault.rs` (`break_cow`), `shm.rs` (private segments),
//! `freeze.rs`, `admin.rs` (the request, the child's own shared buffer).

use mem_protocol::{Errno, PageSize};

use crate::kernel::{Caching, Kernel, Slot};
use crate::pagetable::Pte;
use crate::space::{hw_rights, map_page, record_page, MapReq};
use crate::step::{Step, STEP_AREAS, STEP_PAGES};
use crate::MemCore;

/// Page entries one cloned page counts for in a step: a downgrade of the parent's mapping,
/// a cap copy and a map in the child (and now and then a page table), about four unmaps' worth.
pub const CLONE_PAGE_COST: u64 = 4;

/// A clone in progress, kept in the child's space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cloning {
    /// The space being copied.
    pub parent: u32,
    /// Every area of the parent that starts below `at` is in the child, and so is every
    /// page below `at`.
    pub at: u64,
    /// `at` lies in an area already copied (its pages from `at` on still to do).
    pub in_area: bool,
    /// The clone failed: the child is being destroyed, then this is the answer.
    pub failed: Option<Errno>,
}

impl<K: Kernel> MemCore<K> {
    /// Create `child`'s space as a copy-on-write clone of `parent`'s, with `quota` pages:
    /// every step until done.
    pub fn clone_space(&mut self, parent: u32, child: u32, quota: u64) -> Result<Slot, Errno> {
        crate::step::to_the_end(|| self.clone_step(parent, child, quota, false))
    }

    /// One step of a clone (`EAGAIN` until the child is complete, then its VSpace).
    /// `new_buffer`: replace the child's copy of the parent's shared buffer by one of its
    /// own (`admin.rs`) before it is complete.
    pub fn clone_step(&mut self, parent: u32, child: u32, quota: u64, new_buffer: bool) -> Result<Slot, Errno> {
        self.settle();
        let c = match self.spaces.get(&child) {
            None => self.clone_start(parent, child, quota)?,
            Some(sp) => match sp.cloning {
                Some(c) if c.parent == parent => c,
                _ if !self.spaces.contains_key(&parent) => return Err(Errno::Srch),
                _ => return Err(Errno::Exist),
            },
        };
        if let Some(e) = c.failed {
            // Destroying the child, a step at a time; then the error.
            return match self.destroy_space_step(child) {
                Err(Errno::Again) => Err(Errno::Again),
                _ => Err(e),
            };
        }
        let mut st = Step::new();
        let skip = if new_buffer { self.cfg.buffer.map(|b| b.vaddr) } else { None };
        let r = match self.clone_some(parent, child, &mut st, skip) {
            Ok(false) => return Err(Errno::Again),
            // The child's own buffer is made in steps of their own.
            Ok(true) if new_buffer && (st.pages < STEP_PAGES || st.areas < STEP_AREAS) => return Err(Errno::Again),
            Ok(true) if new_buffer => self.setup_buffer_step(child),
            Ok(true) => Ok(true),
            Err(e) => Err(e),
        };
        match r {
            Ok(true) => Ok(self.clone_finish(parent, child)),
            Ok(false) => Err(Errno::Again),
            Err(e) => {
                self.clone_fail(child, e);
                Err(Errno::Again)
            }
        }
    }

    /// The first step: the child's empty space, the parent frozen.
    fn clone_start(&mut self, parent: u32, child: u32, quota: u64) -> Result<Cloning, Errno> {
        let psp = self.spaces.get(&parent).ok_or(Errno::Srch)?;
        if psp.frozen_for.is_some() || psp.cloning.is_some() {
            return Err(Errno::Busy);
        }
        let (cred, n) = (psp.cred, psp.areas.len() as u64);
        self.create_space(child, cred, quota)?;
        let room = self.spaces.get(&child).ok_or(Errno::Srch)?.area_room(n, self.cfg.limits.max_map_count);
        if let Err(e) = room {
            let _ = self.destroy_space(child); // empty: one step
            return Err(e);
        }
        let c = Cloning { parent, at: 0, in_area: false, failed: None };
        self.space_mut(child)?.cloning = Some(c);
        self.space_mut(parent)?.frozen_for = Some(child);
        self.cloning_now += 1;
        Ok(c)
    }

    /// Copy what `st` allows: `true` when the whole parent is in the child. The area that
    /// starts at `skip` (the parent's shared buffer) is left out.
    fn clone_some(&mut self, parent: u32, child: u32, st: &mut Step, skip: Option<u64>) -> Result<bool, Errno> {
        loop {
            let c = self.spaces.get(&child).and_then(|sp| sp.cloning).ok_or(Errno::Srch)?;
            let (s, end, prot) = if c.in_area {
                let (s, a) = self.spaces.get(&child).and_then(|sp| sp.areas.find(c.at)).ok_or(Errno::Busy)?;
                (s, a.end, a.prot)
            } else {
                let Some((s, a)) = self.next_area(parent, c.at) else { return Ok(true) };
                if st.areas == 0 {
                    return Ok(false);
                }
                st.areas -= 1;
                if skip == Some(s) && a.system {
                    self.set_cloning(child, a.end, false);
                    continue;
                }
                self.spaces.get(&child).ok_or(Errno::Srch)?.area_room(1, self.cfg.limits.max_map_count)?;
                if let Some(obj) = a.kind.object() {
                    if let Some(o) = self.objs.get_mut(obj) {
                        o.add_area(child);
                    }
                }
                let csp = self.space_mut(child)?;
                csp.areas.insert(s, a);
                csp.cloning = Some(Cloning { at: s, in_area: true, ..c });
                (s, a.end, a.prot)
            };
            let mut at = c.at.max(s);
            while let Some((base, pte, size)) = self.spaces.get(&parent).ok_or(Errno::Srch)?.pt.next_mapped(at, end) {
                if st.pages < CLONE_PAGE_COST {
                    self.set_cloning(child, at, true);
                    return Ok(false);
                }
                st.pages -= CLONE_PAGE_COST;
                if pte.pinned() {
                    self.clone_pinned(child, base, pte, prot)?;
                } else {
                    self.clone_page(parent, child, base, size, pte, prot)?;
                }
                at = base + size.bytes();
                self.set_cloning(child, at, true);
            }
            self.set_cloning(child, end, false);
        }
    }

    fn set_cloning(&mut self, child: u32, at: u64, in_area: bool) {
        if let Some(c) = self.spaces.get_mut(&child).and_then(|sp| sp.cloning.as_mut()) {
            c.at = at;
            c.in_area = in_area;
        }
    }

    /// The end: the parent's private shm segments are the child's too, the parent thaws;
    /// the child's VSpace.
    fn clone_finish(&mut self, parent: u32, child: u32) -> Slot {
        self.shm_share_private(parent, child);
        let mut vspace = 0;
        if let Some(csp) = self.spaces.get_mut(&child) {
            csp.cloning = None;
            vspace = csp.pt.vspace();
        }
        self.unfreeze(parent);
        vspace
    }

    /// The clone of `child` failed with `e` (first failure wins): the parent thaws, the
    /// child goes in the next steps.
    pub(crate) fn clone_fail(&mut self, child: u32, e: Errno) {
        let Some(c) = self.spaces.get_mut(&child).and_then(|sp| sp.cloning.as_mut()) else { return };
        if c.failed.is_some() {
            return;
        }
        c.failed = Some(e);
        let parent = c.parent;
        self.unfreeze(parent);
    }

    /// `client` is being destroyed: a clone it is part of ends (as parent, the clone fails
    /// with ESRCH; as the child being made, the clone is over).
    pub(crate) fn clone_abandon(&mut self, client: u32) {
        let Some(sp) = self.spaces.get(&client) else { return };
        if let Some(child) = sp.frozen_for {
            self.clone_fail(child, Errno::Srch);
        }
        self.clone_fail(client, Errno::Srch);
    }

    fn next_area(&self, client: u32, from: u64) -> Option<(u64, crate::area::Area)> {
        self.spaces.get(&client)?.areas.iter_from(from).next().map(|(s, a)| (s, *a))
    }

    /// The child's own copy of a pinned (small, private) page of the parent.
    fn clone_pinned(&mut self, child: u32, base: u64, pte: Pte, prot: mem_protocol::Prot) -> Result<(), Errno> {
        let MemCore { k, res, spaces, deferred, .. } = self;
        let csp = spaces.get_mut(&child).ok_or(Errno::Srch)?;
        crate::space::check_room(csp, base, PageSize::Small, 1, false)?;
        let f = res.alloc_frame_to_overwrite(k, PageSize::Small)?;
        if k.frame_copy(pte.frame(), 0, f, 0, mem_protocol::PAGE_SIZE).is_err() {
            res.frame_unref(f, PageSize::Small);
            return Err(Errno::NoMem);
        }
        let m = MapReq { vaddr: base, size: PageSize::Small, frame: f, use_original: true, prot, cow: false, nocharge: false };
        if hw_rights(prot, false).is_empty() {
            return record_page(k, res, csp, base, PageSize::Small, Pte::new(f, f, false, false)).inspect_err(|_| res.frame_unref(f, PageSize::Small));
        }
        map_page(k, res, deferred, csp, m).inspect_err(|_| res.frame_unref(f, PageSize::Small))
    }

    fn clone_page(&mut self, parent: u32, child: u32, base: u64, size: PageSize, pte: Pte, prot: mem_protocol::Prot) -> Result<(), Errno> {
        let MemCore { k, res, spaces, deferred, .. } = self;
        let shared = pte.nocharge();
        let cow = !shared;
        if cow && !pte.cow() {
            // Downgrade the parent's mapping to read-only COW.
            let psp = spaces.get_mut(&parent).ok_or(Errno::Srch)?;
            if !pte.unmapped() {
                // Copy-on-write pages are RAM (device pages are shared): cached.
                k.page_map(pte.map_slot(), psp.pt.vspace(), base, hw_rights(prot, true), Caching::Cached).map_err(|_| Errno::NoMem)?;
            }
            psp.pt.update(base, size, pte.with_cow(true));
        }
        let csp = spaces.get_mut(&child).ok_or(Errno::Srch)?;
        res.frame_ref(pte.frame());
        if hw_rights(prot, cow).is_empty() {
            // PROT_NONE page: recorded through its own (unmapped) cap copy.
            if let Err(e) = crate::space::check_room(csp, base, size, if shared { 0 } else { crate::res::pages_of(size) }, true) {
                res.frame_unref(pte.frame(), size);
                return Err(e);
            }
            let s = res.slots.alloc().inspect_err(|_| res.frame_unref(pte.frame(), size))?;
            let copy = k.cap_copy(pte.frame(), s).map_err(|_| Errno::NoMem);
            let r = copy.and_then(|_| record_page(k, res, csp, base, size, Pte::new(pte.frame(), s, cow, shared)));
            if let Err(e) = r {
                let _ = k.cap_delete(s);
                res.slots.free(s);
                res.frame_unref(pte.frame(), size);
                return Err(e);
            }
            return Ok(());
        }
        let m = MapReq { vaddr: base, size, frame: pte.frame(), use_original: false, prot, cow, nocharge: shared };
        map_page(k, res, deferred, csp, m).inspect_err(|_| res.frame_unref(pte.frame(), size))
    }
}
