//! SysV shared memory: shmget / shmat / shmdt / shmctl with Linux semantics.
//!
//! The registry maps ids to segments; a segment's pages live in a `MemObject` the registry
//! holds until IPC_RMID. Keys: `Key(k)` segments are system-wide; `Private` segments are
//! per-client (as in axmem): only the creator and its clones see them, and they are marked
//! removed when all of those are gone. Permission checks follow Linux `ipcperms` (owner,
//! group, other bits; uid 0 bypasses), in Linux's order of checks (an existing key: EEXIST,
//! then the size, then the permission; shmat: the address, then the id, then the
//! permission). IPC_RMID marks the segment (its key is freed at once); it stays attachable
//! by id and is destroyed with its last attachment (`nattch` = areas mapping it, as Linux
//! counts VMAs: munmap and mprotect splits count, a clone adds its copies, and pieces of an
//! attachment are never merged back, except that mprotect of one end of a piece next to a
//! piece of the same attachment with the new protection moves the boundary between them,
//! as Linux does, instead of splitting: `boundary_shift`). shmdt follows Linux `shmdt`: the
//! first shm area at or above the address whose offset in its segment equals its distance
//! from the address names the segment, and every such piece of that segment within the
//! segment's size from the address goes (so an attachment whose first pages were unmapped
//! or replaced still detaches).
//!
//! Accounting: a segment is paid in full at `shmget` — its pages and metadata by the
//! creating client while it exists (ENOMEM over budget), and its pages and count by the
//! creator's uid (`ShmLimits::per_uid_pages` / `per_uid_segments`, ENOSPC) and the system
//! (`total_pages`, `max_segments`, ENOSPC) until it is destroyed. So a segment that
//! outlives its creator stays charged to that user, and one user cannot fill the system
//! limits for others beyond its own per-user share. Neighbours: `objects.rs`, `munmap.rs`,
//! `area.rs`, `lifecycle.rs`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use mem_protocol::{Errno, Prot, ShmKey, ShmStat, PAGE_SIZE};

use crate::area::{Area, AreaKind};
use crate::check;
use crate::kernel::Kernel;
use crate::ledger::cost;
use crate::objects::{self, ObjId};
use crate::space::{Cred, Space};
use crate::MemCore;

#[derive(Clone, Debug)]
struct Segment {
    key: Option<u32>,
    obj: ObjId,
    size: u64,
    /// Pages the segment holds against its uid and the system limit.
    pages: u64,
    /// The client paying for it (its creator, while it exists).
    payer: Option<u32>,
    uid: u32,
    gid: u32,
    cuid: u32,
    cgid: u32,
    mode: u16,
    removed: bool,
    cpid: u32,
    lpid: u32,
    /// For `Private` segments: the clients that may use the id.
    private_to: Option<Vec<u32>>,
}

/// All shm segments.
#[derive(Debug, Default)]
pub struct Registry {
    segs: BTreeMap<u32, Segment>,
    keys: BTreeMap<u32, u32>,
    by_obj: BTreeMap<ObjId, u32>,
    next_id: u32,
    pages: u64,
    /// Per creator uid: (pages, segments) of its live segments.
    uids: BTreeMap<u32, (u64, u32)>,
}

impl Registry {
    pub fn len(&self) -> usize {
        self.segs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }
    /// Is `obj` a segment's object?
    pub fn owns_object(&self, obj: ObjId) -> bool {
        self.by_obj.contains_key(&obj)
    }
    /// Pages of all live segments (the SHMALL count).
    pub fn total_pages(&self) -> u64 {
        self.pages
    }
    /// (pages, segments) held by segments created by `uid`.
    pub fn uid_usage(&self, uid: u32) -> (u64, u32) {
        self.uids.get(&uid).copied().unwrap_or((0, 0))
    }
}

/// Linux `ipcperms`: may `cred` access with the `requested` rwx bits (octal 0o7 scale)?
fn permitted(cred: Cred, s: &Segment, requested: u16) -> bool {
    if cred.uid == 0 {
        return true;
    }
    let granted = if cred.uid == s.cuid || cred.uid == s.uid {
        s.mode >> 6
    } else if cred.gid == s.cgid || cred.gid == s.gid {
        s.mode >> 3
    } else {
        s.mode
    };
    requested & !granted & 0o7 == 0
}

fn owner_or_root(cred: Cred, s: &Segment) -> bool {
    cred.uid == 0 || cred.uid == s.uid || cred.uid == s.cuid
}

impl<K: Kernel> MemCore<K> {
    fn seg_visible(&self, client: u32, shmid: u32) -> Result<&Segment, Errno> {
        let s = self.shm.segs.get(&shmid).ok_or(Errno::Inval)?;
        match &s.private_to {
            Some(v) if !v.contains(&client) => Err(Errno::Inval),
            _ => Ok(s),
        }
    }

    fn cred_of(&self, client: u32) -> Result<Cred, Errno> {
        Ok(self.spaces.get(&client).ok_or(Errno::Srch)?.cred)
    }

    /// shmget: find or create a segment of at least `size` bytes; returns its id.
    pub fn shmget(&mut self, client: u32, key: ShmKey, size: u64, create: bool, exclusive: bool, mode: u16) -> Result<u32, Errno> {
        self.settle();
        let cred = self.cred_of(client)?;
        if let ShmKey::Key(k) = key {
            if let Some(&id) = self.shm.keys.get(&k) {
                if create && exclusive {
                    return Err(Errno::Exist);
                }
                let s = &self.shm.segs[&id];
                if size > s.size {
                    return Err(Errno::Inval);
                }
                if !permitted(cred, s, (mode >> 6) | (mode >> 3) | mode) {
                    return Err(Errno::Acces);
                }
                return Ok(id);
            }
            if !create {
                return Err(Errno::NoEnt);
            }
        }
        let lim = self.cfg.shm;
        if size < lim.min_bytes || size > lim.max_bytes {
            return Err(Errno::Inval);
        }
        let pages = check::page_len(size)? / PAGE_SIZE;
        let (uid_pages, uid_segs) = self.shm.uid_usage(cred.uid);
        if self.shm.segs.len() as u32 >= lim.max_segments
            || self.shm.pages + pages > lim.total_pages
            || uid_pages + pages > lim.per_uid_pages
            || uid_segs >= lim.per_uid_segments
        {
            return Err(Errno::NoSpc);
        }
        let (obj_pages, obj_meta) = objects::charge_of(pages, 0, true);
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        if sp.budget.segments >= self.cfg.limits.max_segments {
            return Err(Errno::NoSpc);
        }
        if sp.over_quota(obj_pages) {
            return Err(Errno::NoMem);
        }
        sp.meta_room(obj_meta + cost::SEGMENT)?;
        let obj = self.objs.create(pages, Some(client), 1, true)?;
        let sp = self.space_mut(client)?;
        sp.charged += obj_pages;
        sp.budget.obj_meta += obj_meta + cost::SEGMENT;
        sp.budget.segments += 1;
        let mut id = self.shm.next_id;
        while self.shm.segs.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.shm.next_id = id.wrapping_add(1);
        let key_val = match key {
            ShmKey::Key(k) => Some(k),
            ShmKey::Private => None,
        };
        let seg = Segment {
            key: key_val,
            obj,
            size,
            pages,
            payer: Some(client),
            uid: cred.uid,
            gid: cred.gid,
            cuid: cred.uid,
            cgid: cred.gid,
            mode: mode & 0o777,
            removed: false,
            cpid: client,
            lpid: 0,
            private_to: key_val.is_none().then(|| alloc::vec![client]),
        };
        if let Some(k) = key_val {
            self.shm.keys.insert(k, id);
        }
        self.shm.by_obj.insert(obj, id);
        self.shm.segs.insert(id, seg);
        self.shm.pages += pages;
        let u = self.shm.uids.entry(cred.uid).or_insert((0, 0));
        u.0 += pages;
        u.1 += 1;
        Ok(id)
    }

    /// shmat: attach segment `shmid` at `addr` (page aligned, must be free) or anywhere.
    /// A segment marked for removal stays attachable by id while it exists (Linux).
    pub fn shmat(&mut self, client: u32, shmid: u32, addr: Option<u64>, readonly: bool) -> Result<u64, Errno> {
        self.settle();
        let cred = self.cred_of(client)?;
        if addr.is_some_and(|a| !check::is_aligned(a)) {
            return Err(Errno::Inval);
        }
        let s = self.seg_visible(client, shmid)?;
        let want = if readonly { 0o4 } else { 0o6 };
        if !permitted(cred, s, want) {
            return Err(Errno::Acces);
        }
        let len = check::page_len(s.size)?;
        let obj = s.obj;
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        let start = match addr {
            Some(a) => {
                let r = check::fixed_range(a, len, self.cfg.user_lo, self.cfg.user_hi).map_err(|_| Errno::Inval)?;
                if sp.areas.overlaps(r.start, r.end) {
                    return Err(Errno::Inval);
                }
                r.start
            }
            None => sp.areas.find_free(len, PAGE_SIZE, self.cfg.user_lo).ok_or(Errno::NoMem)?,
        };
        sp.area_room(1, self.cfg.limits.max_map_count)?;
        let prot = if readonly { Prot::READ } else { Prot::RW };
        let area = Area { end: start + len, prot, max_prot: prot.union(Prot::EXEC), kind: AreaKind::Shared { obj, offset: 0 }, attach: Some(start), system: false };
        self.space_mut(client)?.areas.insert(start, area);
        if let Some(o) = self.objs.get_mut(obj) {
            o.add_area(client);
        }
        if let Some(s) = self.shm.segs.get_mut(&shmid) {
            s.lpid = client;
        }
        Ok(start)
    }

    /// shmdt as Linux does it (see the module docs).
    pub fn shmdt(&mut self, client: u32, addr: u64) -> Result<(), Errno> {
        crate::step::to_the_end(|| self.shmdt_step(client, addr))
    }

    /// One step of shmdt (`step.rs`): the pieces of the attachment go in bounded steps,
    /// each from its end, so the first piece keeps its start until it is gone and sending
    /// the request again (`EAGAIN`) finds what is left.
    pub fn shmdt_step(&mut self, client: u32, addr: u64) -> Result<(), Errno> {
        self.settle();
        if !check::is_aligned(addr) {
            return Err(Errno::Inval);
        }
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        let is_piece = |s: u64, a: &Area| -> Option<(ObjId, u64)> {
            match (a.attach, a.kind) {
                (Some(_), AreaKind::Shared { obj, offset }) if s >= addr && s - addr == offset => Some((obj, offset)),
                _ => None,
            }
        };
        // The first piece: the first area ending above `addr` that qualifies.
        let first = match sp.areas.find(addr) {
            Some((s, _)) => s,
            None => addr,
        };
        let Some((s0, e0, obj)) = sp.areas.iter_from(first).find_map(|(s, a)| is_piece(s, a).map(|(obj, _)| (s, a.end, obj))) else {
            return Err(Errno::Inval);
        };
        let size = check::page_len(self.objs.get(obj).map_or(PAGE_SIZE, |o| o.size()).max(1)).unwrap_or(PAGE_SIZE);
        if let Some(&id) = self.shm.by_obj.get(&obj) {
            if let Some(seg) = self.shm.segs.get_mut(&id) {
                seg.lpid = client;
            }
        }
        let mut st = crate::step::Step::new();
        if !self.remove_range_budget(client, s0, e0, &mut st)? {
            return Err(Errno::Again);
        }
        // Every later piece of the same segment within `size` of `addr`.
        let mut at = e0;
        loop {
            let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
            let next = sp
                .areas
                .iter_from(at)
                .take_while(|(_, a)| a.end - addr <= size)
                .find_map(|(s, a)| is_piece(s, a).filter(|&(o, _)| o == obj).map(|_| (s, a.end)));
            let Some((s, e)) = next else { break };
            if !self.remove_range_budget(client, s, e, &mut st)? {
                return Err(Errno::Again);
            }
            at = e;
        }
        Ok(())
    }

    /// shmctl IPC_STAT.
    pub fn shm_stat(&mut self, client: u32, shmid: u32) -> Result<ShmStat, Errno> {
        let cred = self.cred_of(client)?;
        let s = self.seg_visible(client, shmid)?;
        if !permitted(cred, s, 0o4) {
            return Err(Errno::Acces);
        }
        let nattch = self.objs.get(s.obj).map_or(0, |o| o.area_refs);
        Ok(ShmStat {
            key: s.key,
            size: s.size,
            uid: s.uid,
            gid: s.gid,
            cuid: s.cuid,
            cgid: s.cgid,
            mode: s.mode,
            nattch,
            removed: s.removed,
            cpid: s.cpid,
            lpid: s.lpid,
        })
    }

    /// shmctl IPC_RMID: mark for removal; destroyed when the last attachment goes.
    pub fn shm_remove(&mut self, client: u32, shmid: u32) -> Result<(), Errno> {
        self.settle();
        let cred = self.cred_of(client)?;
        let s = self.seg_visible(client, shmid)?;
        if !owner_or_root(cred, s) {
            return Err(Errno::Perm);
        }
        self.mark_removed(shmid);
        Ok(())
    }

    /// shmctl IPC_SET: new owner uid/gid and permission bits.
    pub fn shm_set(&mut self, client: u32, shmid: u32, uid: u32, gid: u32, mode: u16) -> Result<(), Errno> {
        let cred = self.cred_of(client)?;
        let s = self.seg_visible(client, shmid)?;
        if !owner_or_root(cred, s) {
            return Err(Errno::Perm);
        }
        let s = self.shm.segs.get_mut(&shmid).ok_or(Errno::Inval)?;
        s.uid = uid;
        s.gid = gid;
        s.mode = mode & 0o777;
        Ok(())
    }

    fn mark_removed(&mut self, shmid: u32) {
        let Some(s) = self.shm.segs.get_mut(&shmid) else { return };
        if s.removed {
            return;
        }
        s.removed = true;
        if let Some(k) = s.key.take() {
            self.shm.keys.remove(&k);
        }
        let obj = s.obj;
        if let Some(o) = self.objs.get_mut(obj) {
            o.holders -= 1;
        }
        self.release_obj_if_unused(obj);
    }

    /// An object was destroyed: drop the segment that owned it and its charges (the
    /// object's own pages and metadata were uncharged by `release_obj_if_unused`).
    /// The object of a segment is gone: the segment leaves the registry now (its id and
    /// key are free); what it counts against the limits and its payer (`SegCharge`) is
    /// returned by the caller once the object's frames are released (`dying.rs`).
    pub(crate) fn shm_unregister(&mut self, obj: ObjId) -> Option<SegCharge> {
        let id = self.shm.by_obj.remove(&obj)?;
        let s = self.shm.segs.remove(&id)?;
        Some(SegCharge { pages: s.pages, cuid: s.cuid, payer: s.payer })
    }

    /// Give back what a segment whose frames are all released counted.
    pub(crate) fn shm_uncharge(&mut self, s: SegCharge) {
        self.shm.pages -= s.pages;
        if let Some(u) = self.shm.uids.get_mut(&s.cuid) {
            u.0 -= s.pages;
            u.1 -= 1;
            if *u == (0, 0) {
                self.shm.uids.remove(&s.cuid);
            }
        }
        if let Some(sp) = s.payer.and_then(|c| self.spaces.get_mut(&c)) {
            sp.budget.segments -= 1;
            sp.budget.put_meta(cost::SEGMENT);
        }
    }

    /// `child` (a clone of `parent`) may use `parent`'s private segments.
    pub(crate) fn shm_share_private(&mut self, parent: u32, child: u32) {
        for s in self.shm.segs.values_mut() {
            if let Some(v) = &mut s.private_to {
                if v.contains(&parent) && !v.contains(&child) {
                    v.push(child);
                }
            }
        }
    }
}

/// What a removed segment counts against the shm limits and its payer's budget until its
/// frames are released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegCharge {
    pub pages: u64,
    pub cuid: u32,
    pub payer: Option<u32>,
}

/// mprotect of `[start, end)`, inside one area, to `new`: if that area is a piece of an
/// shm attachment, only one end of the piece changes, and the neighbour at that end is a
/// piece of the same attachment that already has `new`, Linux moves the boundary between
/// the two VMAs instead of splitting (no VMA is created or deleted, nattch stays); it never
/// merges a whole shm VMA away (`vm_ops->close`). Returns the start of the left one of the
/// two areas `merge_pieces` joins once mprotect has split and changed the range.
/// `(s, a)` is that area (its start and itself), as the caller found it.
pub(crate) fn boundary_shift(sp: &Space, (s, a): (u64, &Area), start: u64, end: u64, new: Prot) -> Option<u64> {
    a.attach?;
    let a = Area { prot: new, ..*a };
    let same = |x: &Area, xs: u64, y: &Area, ys: u64| {
        x.attach == y.attach && x.prot == y.prot && x.max_prot == y.max_prot && x.end == ys && y.kind == x.kind.advanced(ys - xs)
    };
    match (start == s, end == a.end) {
        (true, false) => {
            let (ps, p) = sp.areas.find(s.checked_sub(1)?)?;
            same(p, ps, &a, s).then_some(ps)
        }
        (false, true) => same(&a, s, sp.areas.get(a.end)?, a.end).then_some(start),
        _ => None,
    }
}

/// Join the area at `left` with the one after it (see `boundary_shift`); returns the object
/// whose area reference the join dropped.
pub(crate) fn merge_pieces(sp: &mut Space, left: u64) -> Option<ObjId> {
    let a = sp.areas.remove(left)?;
    let b = sp.areas.remove(a.end)?;
    sp.areas.insert(left, Area { end: b.end, ..a });
    b.kind.object()
}

/// `client` is gone: the segments it paid for are paid by its uid alone from now on (they
/// stay within that user's limits), and its private segments lose it and are removed when
/// nobody is left.
pub(crate) fn forget_client<K: Kernel>(core: &mut MemCore<K>, client: u32) {
    let mut orphaned = Vec::new();
    let mut unpaid = Vec::new();
    for (&id, s) in core.shm.segs.iter_mut() {
        if s.payer == Some(client) {
            s.payer = None;
            unpaid.push(s.obj);
        }
        if let Some(v) = &mut s.private_to {
            v.retain(|&c| c != client);
            if v.is_empty() {
                orphaned.push(id);
            }
        }
    }
    for obj in unpaid {
        let (pages, meta) = match core.objs.get_mut(obj) {
            Some(o) => {
                o.owner = None;
                o.charge()
            }
            None => continue,
        };
        if let Some(sp) = core.spaces.get_mut(&client) {
            sp.charged = sp.charged.saturating_sub(pages);
            sp.budget.put_meta(meta + cost::SEGMENT);
            sp.budget.segments -= 1;
        }
    }
    for id in orphaned {
        core.mark_removed(id);
    }
}
