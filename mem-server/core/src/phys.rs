//! Physical (device) memory mappings, authority-checked.
//!
//! Only memory inside a device untyped handed to the server can be mapped by physical
//! address (mapping RAM that way would break isolation: EPERM), and only by an administrator
//! or a client holding a grant for the range (`Config::device_grants`). Device frames are
//! retyped once, in order, and each mapping uses its own cap copy. Pages are mapped eagerly,
//! uncached ([`Caching::Uncached`](crate::Caching), from `Res::caching` of the frame, which
//! every later remap — mprotect, a clone's copy, a re-fault — uses as well) and never
//! executable (EINVAL: instructions are not fetched from device registers). Nothing is
//! charged to the quota (device frames are not RAM); each mapping's cap copy is a slot of
//! the client's.
//! Neighbours: `res.rs` (device frames), `mmap.rs` (placement), `fault.rs`.

use mem_protocol::{Backing, Errno, PageSize, Placement, Prot, PAGE_SIZE};

use crate::area::{Area, AreaKind};
use crate::check;
use crate::kernel::Kernel;
use crate::mmap::MmapArgs;
use crate::space::{map_page, MapReq};
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// May `client` map `[paddr, paddr + len)`?
    pub fn may_map_phys(&self, client: u32, paddr: u64, len: u64) -> bool {
        self.is_admin(client)
            || self.cfg.device_grants.iter().any(|&(c, p, l)| {
                c == client && paddr >= p && paddr.checked_add(len).is_some_and(|e| e <= p + l)
            })
    }

    /// Map the physical range `[paddr, paddr + len)` at `addr` (per `placement`) into
    /// `client`'s own space, on its own authority.
    pub fn map_phys(&mut self, client: u32, addr: u64, placement: Placement, paddr: u64, len: u64, prot: Prot) -> Result<u64, Errno> {
        self.map_phys_by(client, client, addr, placement, paddr, len, prot)
    }

    /// `map_phys` into `client`'s space on `caller`'s authority: an administrator maps a
    /// device into a driver that holds no grant of its own (`MapPhys` with
    /// `Target::Client`); anyone else only into its own space, within its grants.
    #[allow(clippy::too_many_arguments)]
    pub fn map_phys_by(&mut self, caller: u32, client: u32, addr: u64, placement: Placement, paddr: u64, len: u64, prot: Prot) -> Result<u64, Errno> {
        self.settle();
        let len = check::page_len(len)?;
        if !check::is_aligned(paddr) || prot.is_empty() || prot.executable() {
            return Err(Errno::Inval);
        }
        if !self.spaces.contains_key(&client) {
            return Err(Errno::Srch);
        }
        let authority = self.is_admin(caller) || (caller == client && self.may_map_phys(client, paddr, len));
        if self.res.device_for(paddr, len).is_none() || !authority {
            return Err(Errno::Perm);
        }
        let a = MmapArgs { addr, len, prot, max_prot: prot, placement, shared: true, backing: Backing::Anonymous, populate: false };
        let r = self.place(client, &a, len)?;
        let splits = if placement == Placement::Fixed { self.splits_needed(client, r.start, r.end) } else { 0 };
        self.spaces.get(&client).ok_or(Errno::Srch)?.area_room(1 + splits, self.cfg.limits.max_map_count)?;
        if placement == Placement::Fixed {
            self.remove_range(client, r.start, r.end)?;
        }
        let sp = self.space_mut(client)?;
        sp.areas.insert(r.start, Area { end: r.end, prot, max_prot: prot, kind: AreaKind::Phys { paddr }, attach: None, system: false });
        let mut at = r.start;
        while at < r.end {
            if let Err(e) = self.map_phys_page(client, prot, paddr + (at - r.start), at) {
                self.remove_range(client, r.start, r.end)?;
                return Err(e);
            }
            at += PAGE_SIZE;
        }
        Ok(r.start)
    }

    /// Map the device page at `paddr` at `vaddr`.
    pub(crate) fn map_phys_page(&mut self, client: u32, prot: Prot, paddr: u64, vaddr: u64) -> Result<(), Errno> {
        let dev = self.res.device_for(paddr, PAGE_SIZE).ok_or(Errno::Perm)?;
        let page = (paddr - self.res.devices[dev].desc.paddr) / PAGE_SIZE;
        let MemCore { k, res, spaces, deferred, .. } = self;
        let frame = res.device_frame(k, dev, page)?;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        res.frame_ref(frame);
        let m = MapReq { vaddr, size: PageSize::Small, frame, use_original: false, prot, cow: false, nocharge: true };
        map_page(k, res, deferred, sp, m).inspect_err(|_| res.frame_unref(frame, PageSize::Small))
    }
}
