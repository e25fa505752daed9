//! SysV shared memory: shmget / shmat / shmdt / shmctl with Linux semantics.
//!
//! The registry maps ids to segments; a segment's pages live in a `MemObject` the registry
//! holds until IPC_RMID. Keys: `Key(k)` segments are system-wide; `Private` segments are
//! per-client (as in axmem): only the creator and its clones see them, and they are marked
//! removed when all of those are gone. Permission checks follow Linux `ipcperms` (owner,
//! group, other bits; uid 0 bypasses). IPC_RMID marks the segment (its key is freed at
//! once, new attaches get EIDRM) and it is destroyed with its last attachment (`nattch` =
//! areas mapping it, as Linux counts VMAs). Detach is by the address shmat returned, also
//! for attachments split by munmap/mprotect. Neighbours: `objects.rs`, `munmap.rs`, `area.rs`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use mem_protocol::{Errno, Prot, ShmKey, ShmStat, PAGE_SIZE};

use crate::area::{Area, AreaKind};
use crate::check;
use crate::kernel::Kernel;
use crate::objects::ObjId;
use crate::space::Cred;
use crate::MemCore;

#[derive(Clone, Debug)]
struct Segment {
    key: Option<u32>,
    obj: ObjId,
    size: u64,
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
}

impl Registry {
    pub fn len(&self) -> usize {
        self.segs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
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
                if !permitted(cred, s, (mode >> 6) | (mode >> 3) | mode) {
                    return Err(Errno::Acces);
                }
                if size > s.size {
                    return Err(Errno::Inval);
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
        if self.shm.segs.len() as u32 >= lim.max_segments || self.shm.pages + pages > lim.total_pages {
            return Err(Errno::NoSpc);
        }
        let obj = self.objs.create(pages, Some(client), 1)?;
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
        Ok(id)
    }

    /// shmat: attach segment `shmid` at `addr` (page aligned, must be free) or anywhere.
    pub fn shmat(&mut self, client: u32, shmid: u32, addr: Option<u64>, readonly: bool) -> Result<u64, Errno> {
        self.settle();
        let cred = self.cred_of(client)?;
        let s = self.seg_visible(client, shmid)?;
        if s.removed {
            return Err(Errno::Idrm);
        }
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
        let prot = if readonly { Prot::READ } else { Prot::RW };
        let area = Area { end: start + len, prot, max_prot: prot.union(Prot::EXEC), kind: AreaKind::Shared { obj, offset: 0 }, attach: Some(start) };
        self.space_mut(client)?.areas.insert(start, area);
        if let Some(o) = self.objs.get_mut(obj) {
            o.area_refs += 1;
        }
        if let Some(s) = self.shm.segs.get_mut(&shmid) {
            s.lpid = client;
        }
        Ok(start)
    }

    /// shmdt: detach the attachment made at `addr` (every piece of it still mapped).
    pub fn shmdt(&mut self, client: u32, addr: u64) -> Result<(), Errno> {
        self.settle();
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        let (s, a) = sp.areas.find(addr).ok_or(Errno::Inval)?;
        if s != addr || a.attach != Some(addr) {
            return Err(Errno::Inval);
        }
        let AreaKind::Shared { obj, .. } = a.kind else { return Err(Errno::Inval) };
        let size = self.objs.get(obj).map_or(0, |o| o.size());
        let pieces: Vec<(u64, u64)> = sp
            .areas
            .overlapping(addr, addr + size)
            .filter(|(_, p)| p.attach == Some(addr) && p.kind.object() == Some(obj))
            .map(|(ps, p)| (ps, p.end))
            .collect();
        if let Some(&id) = self.shm.by_obj.get(&obj) {
            if let Some(seg) = self.shm.segs.get_mut(&id) {
                seg.lpid = client;
            }
        }
        for (ps, pe) in pieces {
            self.remove_range(client, ps, pe)?;
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

    /// An object was destroyed: drop the segment that owned it.
    pub(crate) fn shm_object_gone(&mut self, obj: ObjId) {
        if let Some(id) = self.shm.by_obj.remove(&obj) {
            if let Some(s) = self.shm.segs.remove(&id) {
                self.shm.pages -= check::page_len(s.size).unwrap_or(0) / PAGE_SIZE;
            }
        }
        self.backend_object_gone(obj);
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

/// `client` is gone: its private segments lose it and are removed when nobody is left.
pub(crate) fn forget_client<K: Kernel>(core: &mut MemCore<K>, client: u32) {
    let mut orphaned = Vec::new();
    for (&id, s) in core.shm.segs.iter_mut() {
        if let Some(v) = &mut s.private_to {
            v.retain(|&c| c != client);
            if v.is_empty() {
                orphaned.push(id);
            }
        }
    }
    for id in orphaned {
        core.mark_removed(id);
    }
}
