//! clone: a new address space that shares every private page of its source copy-on-write.
//!
//! Every area is copied. Private pages (anonymous, private backend copies) become COW in
//! both spaces: the source's mapping is downgraded to read-only and the child maps the same
//! frame through a cap copy; the frame's reference count (32 bits) records the sharing and
//! the first write on either side copies (`fault.rs`). Shared areas (shm, shared mappings,
//! device memory) stay shared. The child is charged for the private pages it maps, like an
//! RSS limit, and for its areas, tables and cap copies, so a clone that would exceed the
//! child's budget fails with ENOMEM and leaves no trace. A pinned page (`pin.rs`) is not
//! shared: the child gets its own copy at once. Neighbours: `space.rs`, `fault.rs`
//! (`break_cow`), `shm.rs` (private segments).

use mem_protocol::{Errno, PageSize};

use crate::kernel::{Caching, Kernel, Slot};
use crate::pagetable::Pte;
use crate::space::{hw_rights, map_page, record_page, MapReq};
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// Create `child`'s space as a copy-on-write clone of `parent`'s, with `quota` pages.
    pub fn clone_space(&mut self, parent: u32, child: u32, quota: u64) -> Result<Slot, Errno> {
        self.settle();
        let psp = self.spaces.get(&parent).ok_or(Errno::Srch)?;
        let cred = psp.cred;
        let vspace = self.create_space(child, cred, quota)?;
        if let Err(e) = self.clone_into(parent, child) {
            let _ = self.destroy_space(child);
            return Err(e);
        }
        self.shm_share_private(parent, child);
        Ok(vspace)
    }

    fn clone_into(&mut self, parent: u32, child: u32) -> Result<(), Errno> {
        let n = self.spaces.get(&parent).ok_or(Errno::Srch)?.areas.len() as u64;
        self.spaces.get(&child).ok_or(Errno::Srch)?.area_room(n, self.cfg.limits.max_map_count)?;
        // Areas first (object references counted), then pages; area by area, no list.
        let mut from = 0u64;
        while let Some((s, a)) = self.next_area(parent, from) {
            from = a.end;
            if let Some(obj) = a.kind.object() {
                if let Some(o) = self.objs.get_mut(obj) {
                    o.add_area(child);
                }
            }
            self.space_mut(child)?.areas.insert(s, a);
        }
        let mut from = 0u64;
        while let Some((s, a)) = self.next_area(parent, from) {
            from = a.end;
            let mut at = s;
            while let Some((base, pte, size)) = self.spaces[&parent].pt.next_mapped(at, a.end) {
                at = base + size.bytes();
                if pte.pinned() {
                    self.clone_pinned(child, base, pte, a.prot)?;
                } else {
                    self.clone_page(parent, child, base, size, pte, a.prot)?;
                }
            }
        }
        Ok(())
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
