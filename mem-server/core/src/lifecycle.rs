//! Creating and destroying address spaces.
//!
//! `create_space` reserves the new space's whole metadata budget in the server heap
//! (`ledger.rs`: the sum of all reservations never exceeds `Limits::meta_capacity`, so no
//! client can exhaust the heap another one needs) and charges the VSpace root to it.
//!
//! `destroy_space` gives everything back, exactly: the shared buffer and the server's view
//! of it, every area (and so every page), pinned frames (after revoking every cap derived
//! from them, so a TCB that still names one as its IPC buffer loses it before the frame is
//! reused), the objects the client owned (a backend dies with its owner and its pages are
//! taken from every space mapping it; a shared object still mapped elsewhere is handed to
//! a space mapping it *that has room for it* — its pages within its quota, its metadata
//! within its own budget — which pays from then on; if none has room the object is
//! destroyed like a backend, its pages taken from every space mapping it; shm segments
//! follow `shm.rs`), the page tables, and the VSpace (revoked too: no stale VSpace cap
//! survives into the next use).
//!
//! The hand-over rule is what keeps budgets from being escaped: no client is ever charged
//! past its quota or its metadata budget, so however clones are made, objects shared and
//! owners destroyed, the clients alive never hold more than the sum of their quotas (the
//! chain "clone; the child fills a new shared object; the parent exits; repeat" leaves the
//! survivor at most its quota, and objects nobody has room for go). The spaces mapping an
//! object come from its reverse map (`objects.rs`), never from a scan of every space.
//! Neighbours: `lib.rs` (the state), `admin.rs` (the requests), `reset.rs`, `pin.rs`.

use mem_protocol::Errno;

use crate::area::AreaMap;
use crate::gaps::splitmix64;
use crate::kernel::{Kernel, Slot};
use crate::ledger::{cost, Budget};
use crate::objects::ObjId;
use crate::pagetable::PageTree;
use crate::space::{self, Cred, PendingRelease, Space};
use crate::MemCore;

/// Frames (4 KiB units) a VSpace root costs (`res::Res::alloc_vspace`).
pub const VSPACE_PAGES: u64 = 2;

/// Pending pager faults one step of `DestroySpace` settles (each a note, a saved reply cap
/// deleted).
pub const PAGER_STEP: usize = 32;

/// Page tables one step of `DestroySpace` gives back (an unmap and the kernel clearing the
/// table each: about 6,000 instructions).
pub const TABLE_STEP: usize = 12;

impl<K: Kernel> MemCore<K> {
    /// Create the address space of `client` with a budget derived from `quota` pages.
    pub fn create_space(&mut self, client: u32, cred: Cred, quota: u64) -> Result<Slot, Errno> {
        self.settle();
        if self.spaces.contains_key(&client) {
            return Err(Errno::Exist);
        }
        if self.spaces.len() as u32 >= self.cfg.max_spaces {
            return Err(Errno::NFile);
        }
        let budget = Budget::new(&self.cfg.limits, quota);
        let base = cost::SPACE + self.cfg.geometry.entries(0) as u64 * 8;
        if budget.meta_limit < base || quota < VSPACE_PAGES {
            return Err(Errno::NoMem);
        }
        let reserved = self.reserved_meta.checked_add(budget.meta_limit).ok_or(Errno::NoMem)?;
        if reserved > self.cfg.limits.meta_capacity {
            return Err(Errno::NoMem);
        }
        let vspace = self.res.alloc_vspace(&mut self.k)?;
        self.created += 1;
        let seed = splitmix64(self.cfg.seed ^ self.created.rotate_left(17) ^ u64::from(client) << 32);
        let sp = Space {
            id: client,
            cred,
            areas: AreaMap::new(self.cfg.user_lo, self.cfg.user_hi, seed),
            pt: PageTree::new(self.cfg.geometry, vspace),
            budget,
            charged: VSPACE_PAGES,
            faults: 0,
            unresolved: 0,
            server_buffer: None,
            view: alloc::vec::Vec::new(),
            pinned_detached: alloc::vec::Vec::new(),
            pinned: 0,
            populate_next: (0, 0, 0),
            last_map_start: 0,
            building: false,
            cloning: None,
            destroying: false,
            teardown: None,
            frozen_for: None,
            held: alloc::vec::Vec::new(),
        };
        self.spaces.insert(client, sp);
        self.reserved_meta = reserved;
        Ok(vspace)
    }

    /// Destroy `client`'s address space, releasing every page, table and attachment, and
    /// settling what it owned (see the module docs): every step until done.
    pub fn destroy_space(&mut self, client: u32) -> Result<(), Errno> {
        crate::step::to_the_end(|| self.destroy_space_step(client))
    }

    /// One step of destroying `client`'s space (`step.rs`): its areas go a step at a time
    /// (`EAGAIN` while some are left), then what it owned, then its page tables
    /// [`TABLE_STEP`] a step, then, in the last step, the VSpace.
    pub fn destroy_space_step(&mut self, client: u32) -> Result<(), Errno> {
        self.settle();
        let sp = self.space_mut(client)?;
        if !sp.destroying {
            sp.destroying = true;
            self.clone_abandon(client);
            self.release_shared_buffer(client);
        }
        // Its pagers' pending faults (reported) and its own (dropped), a bounded number a
        // step; finds nothing once done.
        if !self.pagers_client_gone_step(client, PAGER_STEP) {
            return Err(Errno::Again);
        }
        if self.spaces.get(&client).ok_or(Errno::Srch)?.teardown.is_none() {
            let (lo, hi) = self.spaces.get(&client).ok_or(Errno::Srch)?.areas.user_range();
            if !self.remove_range_budget(client, lo, hi, &mut crate::step::Step::new())? {
                return Err(Errno::Again);
            }
            self.release_pins(client);
            self.owner_gone(client);
            crate::shm::forget_client(self, client);
            self.dying_forget(client);
            self.notes.forget(client);
            let sp = self.space_mut(client)?;
            let tables = sp.pt.take_tables();
            sp.teardown = Some(tables);
            return Err(Errno::Again);
        }
        // Tables, a step at a time; any the kernel refuses wait in `deferred`.
        let MemCore { k, res, deferred, spaces, .. } = self;
        let sp = spaces.get_mut(&client).ok_or(Errno::Srch)?;
        for _ in 0..TABLE_STEP {
            let Some(t) = sp.teardown.as_mut().and_then(|t| t.pop()) else { break };
            space::finish_release(k, res, deferred, PendingRelease::Table(t));
            sp.charged -= 1;
        }
        if sp.teardown.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(Errno::Again);
        }
        let sp = self.spaces.remove(&client).ok_or(Errno::Srch)?;
        self.reserved_meta -= sp.budget.meta_limit;
        // The VSpace after its tables (any the kernel refused are queued before it, so
        // it is never reused with a stale table in it).
        let vspace = sp.pt.vspace();
        // Caps handed out for it (the administrator's copy, a TCB's) must not survive into
        // its next use.
        let _ = self.k.cap_revoke(vspace);
        space::finish_release(&mut self.k, &mut self.res, &mut self.deferred, PendingRelease::VSpace(vspace));
        Ok(())
    }

    /// The objects `client` owned: backends die with it, other objects still mapped go to
    /// a space that maps them and has room (`hand_over`).
    fn owner_gone(&mut self, client: u32) {
        for id in self.backends.owned_by(client) {
            self.backend_revoke(id);
        }
        for obj in self.objs.owned_by(client) {
            if self.objs.get(obj).is_none() || self.shm.owns_object(obj) {
                continue; // gone meanwhile, or shm.rs decides (`forget_client`)
            }
            if self.backends.is_cache(obj) {
                // A destroyed backend's cache, still mapped somewhere: it dies too.
                self.kill_object(obj);
            } else if !self.backends.is_backend_object(obj) {
                self.hand_over(obj, client);
            }
        }
    }

    /// Give object `obj` (owned by `from`, which is going away) to a space that maps it and
    /// has room for it (its pages within its quota, its metadata within its budget); it
    /// pays from then on. If spaces map it but none has room, the object is destroyed
    /// (`kill_object`: their mappings of it lose its pages). If no other space maps it, it
    /// has no owner any more (released as soon as nothing holds it).
    pub(crate) fn hand_over(&mut self, obj: ObjId, from: u32) {
        let Some(o) = self.objs.get(obj) else { return };
        let (pages, meta) = o.charge();
        if let Some(sp) = self.spaces.get_mut(&from) {
            sp.charged = sp.charged.saturating_sub(pages);
            sp.budget.put_meta(meta);
        }
        let Some(o) = self.objs.get_mut(obj) else { return };
        o.owner = None;
        let mapped_elsewhere = o.mappers().iter().any(|&(c, _)| c != from);
        let spaces = &self.spaces;
        let heir = o
            .mappers()
            .iter()
            .map(|&(c, _)| c)
            .find(|&c| c != from && spaces.get(&c).is_some_and(|sp| !sp.over_quota(pages) && sp.meta_room(meta).is_ok()));
        match heir {
            Some(c) => {
                o.owner = Some(c);
                if let Some(sp) = self.spaces.get_mut(&c) {
                    sp.charged += pages;
                    sp.budget.obj_meta += meta;
                }
            }
            None if mapped_elsewhere => self.kill_object(obj),
            None => self.release_obj_if_unused(obj),
        }
    }

    /// Destroy object `obj` now: every area mapping it, in every space, loses its shared
    /// pages and becomes [`crate::area::AreaKind::Dead`] (private pages already copied from
    /// it stay), so the object's last references go and it is released.
    pub(crate) fn kill_object(&mut self, obj: ObjId) {
        let MemCore { k, res, spaces, deferred, objs, .. } = self;
        // The spaces that map it, from its reverse map (a handful of entries).
        let mappers: alloc::vec::Vec<u32> = match objs.get(obj) {
            Some(o) => o.mappers().iter().map(|&(c, _)| c).collect(),
            None => return,
        };
        for c in mappers {
            let Some(sp) = spaces.get_mut(&c) else { continue };
            let mut at = 0u64;
            loop {
                let Some((s, a)) = sp.areas.iter_from(at).find(|(_, a)| a.kind.object() == Some(obj)).map(|(s, a)| (s, *a)) else {
                    break;
                };
                if let crate::area::AreaKind::Shared { .. } = a.kind {
                    space::release_range(k, res, deferred, sp, s, a.end);
                }
                if let Some(area) = sp.areas.get_mut(s) {
                    area.kind = crate::area::AreaKind::Dead;
                }
                if let Some(o) = objs.get_mut(obj) {
                    o.drop_area(c);
                }
                at = a.end;
            }
        }
        self.release_obj_if_unused(obj);
    }
}
