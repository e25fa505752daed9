//! Pagers: faults on pages of a pager-backed area go to a client that serves them (like
//! Linux `userfaultfd` or Zircon's pager), instead of being zero-filled by the server.
//!
//! Authority: a client creates a pager (`PagerCreate`) and only it may wait for its faults
//! and answer them. Who may *map* an area served by a pager is the pager's `mode`, checked
//! like a file's write bits against the mapper's uid/gid (owner, group, other; uid 0 and
//! the administrator bypass): a pager that lets a client map its areas is trusted by that
//! client to supply its pages, nothing more. A pager learns the faulting client's id, the
//! page's offset in the area and the access, never an address or anything of other areas.
//!
//! The fault path: a fault on a page not present in an area `Pager { pager, offset }` saves
//! the faulting thread's reply cap (`Kernel::save_caller`, into a slot charged to the
//! faulting client with a small metadata charge), records a *pending* fault (one per
//! client and page: a second thread faulting on the same page waits on the same record,
//! the pager is asked once) and queues it for the pager; the thread stays blocked. If the
//! pager is waiting (`PagerWait`, whose reply cap was saved the same way, charged to the
//! pager), it is answered with the oldest queued fault at once. The pager answers
//! (`PagerReply`) with the page's bytes (from its shared buffer), a zero page, or `Fail`;
//! the server maps the page in the faulting client (charged to it, as any of its private
//! pages) and resumes every thread waiting on it (`Kernel::reply_saved`, empty message: the
//! access is retried and succeeds), or, for `Fail` or when the client's budget cannot take
//! the page, reports the fault (`UNRESOLVED_PAGER` / `UNRESOLVED_NO_MEMORY` note; the thread
//! stays stopped, as for any unresolved fault).
//!
//! The server never waits on a pager: every step is a record here and a non-blocking
//! `Send`. A pager that never answers leaves its clients' threads blocked (their owners
//! can destroy them); an answer for a fault no longer pending is `ENOENT`; an answer for a
//! page that went away (unmapped or re-mapped meanwhile) resumes the threads, which fault
//! again on whatever is there now. When a pager's creator is destroyed, its pending faults
//! are reported (`UNRESOLVED_PAGER`) and later faults on its areas too; when a faulting
//! client is destroyed, its pending faults are dropped. Populate skips pager-backed areas
//! (their pages come only from faults). After a clone the child's pager areas are served
//! by the same pager (the child is a client of it like its parent).
//! Neighbours: `fault.rs` (the fault path calls [`MemCore::pager_fault`]), `dispatch.rs`,
//! `lifecycle.rs` (deaths), `mmap.rs` (`Backing::Pager`).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use mem_protocol::system::{UNRESOLVED_NO_MEMORY, UNRESOLVED_PAGER};
use mem_protocol::{Access, Errno, PageSize, PagerAnswer, PagerFault, Reply, Value, PAGE_SIZE};

use crate::area::AreaKind;
use crate::kernel::{Kernel, Slot};
use crate::ledger::cost;
use crate::space::{map_page, Cred, MapReq};
use crate::{MemCore, Unresolved};

/// Most pagers one client may own.
pub const MAX_PAGERS: u32 = 16;

#[derive(Debug)]
struct Pager {
    owner: u32,
    cred: Cred,
    mode: u16,
    /// The reply cap of the owner's thread blocked in `PagerWait`.
    waiter: Option<Slot>,
    /// Pending faults not handed out yet, oldest first.
    queue: VecDeque<u32>,
}

#[derive(Debug)]
struct Pending {
    pager: u32,
    client: u32,
    page: u64,
    offset: u64,
    access: Access,
    /// Reply caps of the client's threads blocked on this page.
    waiters: Vec<Slot>,
}

/// Every pager and pending fault.
#[derive(Debug, Default)]
pub struct Pagers {
    by_id: BTreeMap<u32, Pager>,
    next_id: u32,
    pending: BTreeMap<u32, Pending>,
    /// (client, page) → token of its pending fault.
    by_page: BTreeMap<(u32, u64), u32>,
    /// (pager, token) of every pending fault: a pager's faults without a scan.
    by_pager: alloc::collections::BTreeSet<(u32, u32)>,
    next_token: u32,
}

impl Pagers {
    /// Does pager `id` exist?
    pub fn exists(&self, id: u32) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Pending faults (queued or handed out) of the pagers `client` owns.
    pub fn pending_for_owner(&self, client: u32) -> u64 {
        self.pending.values().filter(|p| self.by_id.get(&p.pager).is_some_and(|g| g.owner == client)).count() as u64
    }

    /// Pending faults in all.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Pending faults of `client` (threads of it blocked on a pager).
    pub fn pending_of_client(&self, client: u32) -> usize {
        self.pending.values().filter(|p| p.client == client).count()
    }

    /// Saved reply caps charged to `client`: its threads blocked on pagers, and its own
    /// threads waiting in `PagerWait`.
    pub fn saved_slots_of(&self, client: u32) -> u64 {
        let faults: usize = self.pending.values().filter(|p| p.client == client).map(|p| p.waiters.len()).sum();
        let waiting = self.by_id.values().filter(|p| p.owner == client && p.waiter.is_some()).count();
        (faults + waiting) as u64
    }

    /// Pagers `client` owns.
    pub fn owned_by(&self, client: u32) -> Vec<u32> {
        self.by_id.iter().filter(|(_, p)| p.owner == client).map(|(&id, _)| id).collect()
    }

    /// The indexes agree (`invariants.rs`): every queued token is pending, for that pager,
    /// queued once; `by_page` names exactly the pending faults.
    pub(crate) fn check(&self) -> Result<(), alloc::string::String> {
        let mut queued = alloc::collections::BTreeSet::new();
        for (&id, g) in &self.by_id {
            for &t in &g.queue {
                match self.pending.get(&t) {
                    Some(p) if p.pager == id => {}
                    _ => return Err(alloc::format!("pager {id}: queued token {t} is not one of its pending faults")),
                }
                if !queued.insert(t) {
                    return Err(alloc::format!("pager token {t} queued twice"));
                }
            }
        }
        if self.by_pager.len() != self.pending.len() || self.by_pager.iter().any(|&(g, t)| self.pending.get(&t).is_none_or(|p| p.pager != g)) {
            return Err(alloc::format!("pager index: {} entries for {} pending faults, or one names the wrong pager", self.by_pager.len(), self.pending.len()));
        }
        if self.by_page.len() != self.pending.len() {
            return Err(alloc::format!("{} pages index {} pending faults", self.by_page.len(), self.pending.len()));
        }
        for (&(client, page), t) in &self.by_page {
            match self.pending.get(t) {
                Some(p) if p.client == client && p.page == page => {}
                _ => return Err(alloc::format!("pager page index ({client}, {page:#x}) -> {t} does not match its fault")),
            }
        }
        Ok(())
    }

    fn fault_info(&self, token: u32) -> Option<PagerFault> {
        let p = self.pending.get(&token)?;
        Some(PagerFault { token, pager: p.pager, client: p.client, offset: p.offset, access: p.access })
    }
}

impl<K: Kernel> MemCore<K> {
    /// `PagerCreate`: a pager owned by `client`. → its id.
    pub fn pager_create(&mut self, client: u32, mode: u16) -> Result<u32, Errno> {
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        if sp.budget.pagers >= MAX_PAGERS {
            return Err(Errno::NFile);
        }
        sp.meta_room(cost::PAGER)?;
        let cred = sp.cred;
        let g = &mut self.pagers;
        let mut id = g.next_id;
        while g.by_id.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        g.next_id = id.wrapping_add(1);
        g.by_id.insert(id, Pager { owner: client, cred, mode: mode & 0o777, waiter: None, queue: VecDeque::new() });
        let sp = self.space_mut(client)?;
        sp.budget.pagers += 1;
        sp.budget.obj_meta += cost::PAGER;
        Ok(id)
    }

    /// May `client` map areas served by pager `id`? (`mmap.rs`) ENOENT / EACCES.
    pub(crate) fn pager_may_map(&self, client: u32, id: u32) -> Result<(), Errno> {
        let p = self.pagers.by_id.get(&id).ok_or(Errno::NoEnt)?;
        if self.is_admin(client) || p.owner == client {
            return Ok(());
        }
        let cred = self.spaces.get(&client).map(|sp| sp.cred).ok_or(Errno::Srch)?;
        let granted = if cred.uid == 0 {
            0o7
        } else if cred.uid == p.cred.uid {
            p.mode >> 6
        } else if cred.gid == p.cred.gid {
            p.mode >> 3
        } else {
            p.mode
        };
        if granted & 0o2 == 0 {
            return Err(Errno::Acces);
        }
        Ok(())
    }

    /// The fault path (`fault.rs`): page `page` (not present) of `client`'s area served by
    /// `pager`, at byte `offset` of it. Saves the faulting thread's reply cap and hands the
    /// fault to the pager: `Deferred` (no reply now). `Pager` if the pager is gone,
    /// `NoMemory` if the client's budget cannot hold the record.
    pub(crate) fn pager_fault(&mut self, client: u32, pager: u32, page: u64, offset: u64, access: Access) -> Result<u32, Unresolved> {
        if !self.pagers.exists(pager) {
            return Err(Unresolved::Pager);
        }
        let existing = self.pagers.by_page.get(&(client, page)).copied();
        let meta = if existing.is_some() { 0 } else { cost::PENDING };
        let sp = self.spaces.get_mut(&client).ok_or(Unresolved::NoSpace)?;
        sp.meta_room(meta).map_err(|_| Unresolved::NoMemory)?;
        sp.budget.take_slots(1).map_err(|_| Unresolved::NoMemory)?;
        let slot = match self.res.slots.alloc() {
            Ok(s) => s,
            Err(_) => {
                self.uncharge_waiter(client);
                return Err(Unresolved::NoMemory);
            }
        };
        if self.k.save_caller(slot).is_err() {
            self.res.slots.free(slot);
            self.uncharge_waiter(client);
            return Err(Unresolved::NoMemory);
        }
        if let Some(sp) = self.spaces.get_mut(&client) {
            sp.budget.obj_meta += meta;
        }
        let g = &mut self.pagers;
        if let Some(token) = existing {
            if let Some(p) = g.pending.get_mut(&token) {
                p.waiters.push(slot);
            }
            return Err(Unresolved::Deferred);
        }
        let token = next_token(g);
        g.pending.insert(token, Pending { pager, client, page, offset, access, waiters: alloc::vec![slot] });
        g.by_page.insert((client, page), token);
        g.by_pager.insert((pager, token));
        if let Some(p) = g.by_id.get_mut(&pager) {
            p.queue.push_back(token);
        }
        self.pager_deliver(pager);
        Err(Unresolved::Deferred)
    }

    /// `PagerWait`: the oldest queued fault of pager `id`, or — none queued — save the
    /// caller's reply cap (`Ok(None)`: no reply now; the fault goes to it when one comes).
    pub fn pager_wait(&mut self, client: u32, id: u32) -> Result<Option<PagerFault>, Errno> {
        let p = self.pagers.by_id.get_mut(&id).ok_or(Errno::NoEnt)?;
        if p.owner != client {
            return Err(Errno::Perm);
        }
        if p.waiter.is_some() {
            return Err(Errno::Busy);
        }
        // The oldest queued fault still pending (a token whose fault went meanwhile is
        // skipped: answering `None` here would leave the caller without a reply).
        while let Some(token) = self.pagers.by_id.get_mut(&id).and_then(|p| p.queue.pop_front()) {
            if let Some(f) = self.pagers.fault_info(token) {
                return Ok(Some(f));
            }
        }
        let sp = self.spaces.get_mut(&client).ok_or(Errno::Srch)?;
        sp.budget.take_slots(1)?;
        let slot = match self.res.slots.alloc() {
            Ok(s) => s,
            Err(e) => {
                self.uncharge_waiter(client);
                return Err(e);
            }
        };
        if self.k.save_caller(slot).is_err() {
            self.res.slots.free(slot);
            self.uncharge_waiter(client);
            return Err(Errno::NoMem);
        }
        if let Some(p) = self.pagers.by_id.get_mut(&id) {
            p.waiter = Some(slot);
        }
        Ok(None)
    }

    /// Hand the oldest queued fault of `pager` to its waiting owner, if it waits.
    fn pager_deliver(&mut self, pager: u32) {
        let Some(p) = self.pagers.by_id.get_mut(&pager) else { return };
        if p.waiter.is_none() || p.queue.is_empty() {
            return;
        }
        let (Some(slot), Some(token)) = (p.waiter.take(), p.queue.pop_front()) else { return };
        let owner = p.owner;
        if let Some(info) = self.pagers.fault_info(token) {
            let reply = Reply::Ok(Value::PagerFault(info));
            if self.k.reply_saved(slot, Some(&reply)).is_err() {
                // The waiter is gone (its thread was deleted): the fault waits for the
                // next `PagerWait`.
                if let Some(p) = self.pagers.by_id.get_mut(&pager) {
                    p.queue.push_front(token);
                }
            }
        }
        self.drop_saved(slot);
        self.uncharge_waiter(owner);
    }

    /// `PagerReply`: answer fault `token` of one of `client`'s pagers; `bytes` are the
    /// page's contents for `Copy` (the buffer range the request named).
    pub fn pager_reply(&mut self, client: u32, token: u32, answer: PagerAnswer, bytes: &[u8]) -> Result<(), Errno> {
        let p = self.pagers.pending.get(&token).ok_or(Errno::NoEnt)?;
        let owner = self.pagers.by_id.get(&p.pager).map(|g| g.owner);
        if owner != Some(client) {
            return Err(Errno::Perm);
        }
        if matches!(answer, PagerAnswer::Copy(_)) && bytes.len() as u64 != PAGE_SIZE {
            return Err(Errno::Inval);
        }
        let p = self.take_pending(token).ok_or(Errno::NoEnt)?;
        // Is the page still absent, at the same offset of an area of this pager? Else the
        // threads retry (and fault on whatever is there now).
        let still = self.spaces.get(&p.client).and_then(|sp| {
            let (start, a) = sp.areas.find(p.page)?;
            let here = matches!(a.kind, AreaKind::Pager { pager, offset } if pager == p.pager && offset + (p.page - start) == p.offset);
            (here && sp.pt.lookup(p.page).is_none()).then_some(a.prot)
        });
        let Some(prot) = still else {
            self.resume(&p);
            return Err(Errno::NoEnt);
        };
        if matches!(answer, PagerAnswer::Fail) {
            self.report(&p, UNRESOLVED_PAGER);
            return Ok(());
        }
        match self.pager_map(&p, prot, answer, bytes) {
            Ok(()) => {
                if let Some(sp) = self.spaces.get_mut(&p.client) {
                    sp.faults += 1;
                }
                self.faults += 1;
                self.resume(&p);
                Ok(())
            }
            Err(e) => {
                self.report(&p, UNRESOLVED_NO_MEMORY);
                Err(e)
            }
        }
    }

    /// Map the supplied page of pending fault `p` (charged to its client).
    fn pager_map(&mut self, p: &Pending, prot: mem_protocol::Prot, answer: PagerAnswer, bytes: &[u8]) -> Result<(), Errno> {
        let MemCore { k, res, spaces, deferred, .. } = self;
        let sp = spaces.get_mut(&p.client).ok_or(Errno::Srch)?;
        if sp.over_quota(1) {
            return Err(Errno::NoMem);
        }
        let frame = match answer {
            PagerAnswer::Copy(_) => {
                let f = res.alloc_frame_to_overwrite(k, PageSize::Small)?;
                if k.frame_write(f, 0, bytes).is_err() {
                    res.frame_unref(f, PageSize::Small);
                    return Err(Errno::NoMem);
                }
                f
            }
            _ => res.alloc_frame(k, PageSize::Small)?,
        };
        let m = MapReq { vaddr: p.page, size: PageSize::Small, frame, use_original: true, prot, cow: false, nocharge: false };
        map_page(k, res, deferred, sp, m).inspect_err(|_| res.frame_unref(frame, PageSize::Small))
    }

    /// Remove pending fault `token` from every index and its client's charge for the
    /// record (the waiters' slots stay charged until each is dropped).
    fn take_pending(&mut self, token: u32) -> Option<Pending> {
        let g = &mut self.pagers;
        let p = g.pending.remove(&token)?;
        g.by_page.remove(&(p.client, p.page));
        g.by_pager.remove(&(p.pager, token));
        if let Some(pg) = g.by_id.get_mut(&p.pager) {
            // Faults usually go in the order they came: the oldest is at the front.
            if pg.queue.front() == Some(&token) {
                pg.queue.pop_front();
            } else if let Some(i) = pg.queue.iter().position(|&t| t == token) {
                pg.queue.remove(i);
            }
        }
        if let Some(sp) = self.spaces.get_mut(&p.client) {
            sp.budget.obj_meta = sp.budget.obj_meta.saturating_sub(cost::PENDING);
        }
        Some(p)
    }

    /// Resume every thread waiting on `p` (empty reply: the access is retried).
    fn resume(&mut self, p: &Pending) {
        for &slot in &p.waiters {
            let _ = self.k.reply_saved(slot, None);
            self.drop_saved(slot);
            self.uncharge_waiter(p.client);
        }
    }

    /// Report `p`'s fault as unresolved (`reason`): its threads stay stopped.
    fn report(&mut self, p: &Pending, reason: u64) {
        for &slot in &p.waiters {
            self.drop_saved(slot);
            self.uncharge_waiter(p.client);
        }
        if let Some(sp) = self.spaces.get_mut(&p.client) {
            sp.unresolved += 1;
        }
        self.unresolved += 1;
        self.note_unresolved(p.client, p.page, reason as u8);
        self.notes_raised = true;
    }

    /// Delete a saved reply cap (if still there) and free its slot; a delete the kernel
    /// refuses is retried later (`settle`), the slot freed only then.
    pub(crate) fn drop_saved(&mut self, slot: Slot) {
        if self.k.cap_delete(slot).is_ok() {
            self.res.slots.free(slot);
        } else {
            self.deferred.0.push(crate::space::PendingRelease::Mapping { map_slot: slot, delete: true, frame: None });
        }
    }

    /// Give back one saved-reply slot charged to `client`.
    fn uncharge_waiter(&mut self, client: u32) {
        if let Some(sp) = self.spaces.get_mut(&client) {
            sp.budget.slots = sp.budget.slots.saturating_sub(1);
        }
    }

    /// `client` is being destroyed: its pagers die (their pending faults are reported,
    /// their owner's waiting thread dropped) and its own pending faults are dropped. At
    /// most `budget` pending faults a call (`DestroySpace` steps): `false` while some are
    /// left.
    pub(crate) fn pagers_client_gone_step(&mut self, client: u32, mut budget: usize) -> bool {
        for id in self.pagers.owned_by(client) {
            loop {
                let next = self.pagers.by_pager.range((id, 0)..=(id, u32::MAX)).next().map(|&(_, t)| t);
                let Some(t) = next else { break };
                if budget == 0 {
                    return false;
                }
                budget -= 1;
                if let Some(p) = self.take_pending(t) {
                    self.report(&p, UNRESOLVED_PAGER);
                }
            }
            if let Some(p) = self.pagers.by_id.remove(&id) {
                if let Some(w) = p.waiter {
                    self.drop_saved(w);
                    self.uncharge_waiter(client);
                }
            }
            if let Some(sp) = self.spaces.get_mut(&client) {
                sp.budget.pagers = sp.budget.pagers.saturating_sub(1);
                sp.budget.obj_meta = sp.budget.obj_meta.saturating_sub(cost::PAGER);
            }
        }
        loop {
            let next = self.pagers.by_page.range((client, 0)..=(client, u64::MAX)).next().map(|(_, &t)| t);
            let Some(t) = next else { break };
            if budget == 0 {
                return false;
            }
            budget -= 1;
            if let Some(p) = self.take_pending(t) {
                for &slot in &p.waiters {
                    self.drop_saved(slot);
                    self.uncharge_waiter(client);
                }
            }
        }
        true
    }

    /// A note was queued outside the fault path (a pager's answer): the seL4 side signals
    /// the administrator when this says so.
    pub fn take_notes_raised(&mut self) -> bool {
        core::mem::take(&mut self.notes_raised)
    }
}

fn next_token(g: &mut Pagers) -> u32 {
    let mut t = g.next_token;
    while g.pending.contains_key(&t) {
        t = t.wrapping_add(1);
    }
    g.next_token = t.wrapping_add(1);
    t
}
