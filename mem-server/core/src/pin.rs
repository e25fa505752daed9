//! Pinned frames: frames the kernel uses outside any mapping.
//!
//! The administrator hands a client's IPC-buffer frame to the kernel (`ExportFrame`: a cap
//! copy that ends up in the client's TCB). The kernel then reads and writes that frame
//! whatever the client's address space says, so the frame must stay the client's for as
//! long as the space lives: it is *pinned*.
//!
//! - Only a small page of a private anonymous area can be pinned (EINVAL otherwise); it is
//!   first made present and private (a copy-on-write page is copied, an absent one filled).
//!   It becomes an area of its own, marked *system* (`Area::system`): `Reset` keeps it,
//!   and nothing the client maps next to it merges with it. The launcher exports a
//!   client's IPC buffers and its boot page this way: the pages the system set up for the
//!   program to run, which survive a `Reset` (an exec) while everything else goes.
//! - munmap and a `Fixed` mmap over it unmap it from the client but never free it: the
//!   space keeps the frame (still charged) until it is destroyed. mprotect only changes
//!   the rights of the mapping. `Clone` gives the child a private copy at once instead of
//!   sharing the frame copy-on-write, so the parent's frame is never shared or moved.
//! - When the space is destroyed, every cap derived from a pinned frame is revoked (the
//!   administrator's copy and the TCB's IPC-buffer cap with it) before the frame goes back
//!   to the pool, so a TCB that was not deleted can never use a frame another client gets.
//!
//! What a client sees: after unmapping its own IPC-buffer page it simply has no mapping
//! there any more (its next access to that address faults like any unmapped address);
//! its messages keep going through the pinned frame. Neighbours: `space.rs`
//! (`release_page` keeps pinned frames), `clone.rs`, `lifecycle.rs`, `admin.rs`.

use mem_protocol::{Access, Errno, PageSize, PAGE_SIZE};

use crate::area::AreaKind;
use crate::kernel::{Kernel, Slot};
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// Pin the page at `vaddr` of `client` (making it present and private first); returns
    /// the slot of its frame's original cap.
    pub fn pin_page(&mut self, client: u32, vaddr: u64) -> Result<Slot, Errno> {
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        let (_, area) = sp.areas.find(vaddr).ok_or(Errno::Fault)?;
        let area = *area;
        if area.kind != AreaKind::Anon || area.prot.is_empty() {
            return Err(Errno::Inval);
        }
        let needs_fault = match sp.pt.lookup(vaddr) {
            None => true,
            Some((_, PageSize::Large, _)) => return Err(Errno::Inval),
            Some((pte, _, _)) => pte.cow(),
        };
        // The page becomes an area of its own (ENOMEM before anything changes if the up to
        // two new areas do not fit); undone below if pinning fails.
        let page = vaddr & !(PAGE_SIZE - 1);
        self.split_boundaries(client, page, page + PAGE_SIZE)?;
        let r = self.pin_isolated(client, page, area.prot, needs_fault);
        if r.is_err() {
            self.merge_neighbours(client, page);
        }
        r
    }

    /// `pin_page` once the page at `page` is an area of its own.
    fn pin_isolated(&mut self, client: u32, page: u64, prot: mem_protocol::Prot, needs_fault: bool) -> Result<Slot, Errno> {
        if needs_fault {
            // A write fault fills or copies the page; it must leave a small private page.
            let access = if prot.writable() { Access::Write } else { Access::Read };
            self.handle_fault(client, page, access).map_err(|_| Errno::NoMem)?;
        }
        let sp = self.spaces.get_mut(&client).ok_or(Errno::Srch)?;
        let Some((pte, PageSize::Small, base)) = sp.pt.lookup(page) else { return Err(Errno::Inval) };
        if pte.cow() {
            return Err(Errno::NoMem);
        }
        if !pte.pinned() {
            // Room to keep the frame once it is unmapped (`space::release_page`).
            sp.meta_room(4)?;
            sp.pinned_detached.try_reserve(1).map_err(|_| Errno::NoMem)?;
            sp.pt.update(base, PageSize::Small, pte.with_pinned(true));
            sp.pinned += 1;
        }
        if let Some(a) = sp.areas.get_mut(page) {
            a.system = true;
        }
        Ok(pte.frame())
    }

    /// `client` is being destroyed and its areas are gone: revoke every cap derived from
    /// its pinned frames, then let the frames go.
    pub(crate) fn release_pins(&mut self, client: u32) {
        let MemCore { k, res, spaces, .. } = self;
        let Some(sp) = spaces.get_mut(&client) else { return };
        for f in core::mem::take(&mut sp.pinned_detached) {
            let _ = k.cap_revoke(f);
            // The revoke took the frame's direct-map copy too.
            res.redirect(k, f);
            res.frame_unref(f, PageSize::Small);
            sp.charged = sp.charged.saturating_sub(1);
        }
        sp.pinned = 0;
    }
}
