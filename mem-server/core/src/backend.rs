//! Backend objects: file-like memory with a backing store, for file-style mappings.
//!
//! A backend has a fixed size, a *store* (the "disk": what `backend_read`/`backend_write`
//! access) and a *cache* (the pages mappings see). A shared mapping maps cache pages, which
//! are filled from the store on first touch; `msync` writes cache pages back to the store
//! (`msync.rs`). A private mapping gets its own copy of the current cache or store page on
//! first touch.
//!
//! Ownership and permissions, like a file: a backend belongs to the creating client and
//! carries its uid/gid and permission bits (`mode`, checked like `ipcperms`: owner, group,
//! other; uid 0 and the administrator bypass). Reading (`BackendRead`, any mapping) needs
//! read permission; writing (`BackendWrite`, `Msync`) needs write permission; a shared
//! mapping that could write (its protection) needs write permission, and without it the
//! mapping's max protection loses write (so a later mprotect to write fails with EACCES,
//! as for a read-only file on Linux); destroying needs the owner, uid 0 or the
//! administrator (EPERM). All failures are EACCES/EPERM before anything changes.
//!
//! Accounting: the backend record and its two object records are charged to the owner at
//! creation (at most `Limits::max_backends` per client, ENFILE beyond); store and cache
//! pages are charged to the owner as they appear. `BackendDestroy` drops the id (live
//! mappings keep the pages, the owner keeps paying, like an unlinked file); when the
//! owner's space is destroyed its backends die with it: their pages are taken from every
//! space mapping them, whose areas become dead (`lifecycle.rs`, `kill_object`).
//! Neighbours: `objects.rs`, `fault.rs`, `mmap.rs`, `msync.rs`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use mem_protocol::{Errno, PageSize, Prot, PAGE_SIZE};

use crate::check;
use crate::kernel::{Kernel, Slot};
use crate::ledger::cost;
use crate::objects::{self, ObjId, Objects};
use crate::space::Cred;
use crate::MemCore;

#[derive(Clone, Copy, Debug)]
struct Backend {
    size: u64,
    cache: ObjId,
    store: ObjId,
    owner: u32,
    cred: Cred,
    mode: u16,
}

/// All backend objects.
#[derive(Debug, Default)]
pub struct Backends {
    by_id: BTreeMap<u32, Backend>,
    /// cache object → store object, while the cache lives.
    stores: BTreeMap<ObjId, ObjId>,
    next_id: u32,
}

impl Backends {
    pub fn size(&self, id: u32) -> Result<u64, Errno> {
        self.by_id.get(&id).map(|b| b.size).ok_or(Errno::NoEnt)
    }
    pub fn cache_obj(&self, id: u32) -> Result<ObjId, Errno> {
        self.by_id.get(&id).map(|b| b.cache).ok_or(Errno::NoEnt)
    }
    /// The store behind a cache object.
    pub fn store_of_cache(&self, cache: ObjId) -> Option<ObjId> {
        self.stores.get(&cache).copied()
    }
    /// The frame holding the current contents of page `idx` (cache first, then store).
    pub fn current_page(&self, objs: &Objects, cache: ObjId, idx: u64) -> Option<Slot> {
        let pick = |o: ObjId| objs.get(o).and_then(|o| o.page(idx));
        pick(cache).or_else(|| self.store_of_cache(cache).and_then(pick))
    }
    /// Is `obj` a backend's cache (of a live or destroyed backend) or store?
    pub fn is_backend_object(&self, obj: ObjId) -> bool {
        self.stores.contains_key(&obj) || self.stores.values().any(|&s| s == obj)
    }
    /// Is `obj` a backend cache?
    pub fn is_cache(&self, obj: ObjId) -> bool {
        self.stores.contains_key(&obj)
    }
    /// Ids of the backends `client` owns.
    pub fn owned_by(&self, client: u32) -> Vec<u32> {
        self.by_id.iter().filter(|(_, b)| b.owner == client).map(|(&i, _)| i).collect()
    }
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Read, write: the `ipcperms`-style permission bits.
const READ: u16 = 0o4;
const WRITE: u16 = 0o2;

impl<K: Kernel> MemCore<K> {
    /// Create a backend of `size` bytes (rounded up to pages), owned by `client`, with
    /// permission bits `mode`.
    pub fn backend_create(&mut self, client: u32, size: u64, mode: u16) -> Result<u32, Errno> {
        self.settle();
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        let cred = sp.cred;
        let pages = check::page_len(size)? / PAGE_SIZE;
        if sp.budget.backends >= self.cfg.limits.max_backends {
            return Err(Errno::NFile);
        }
        let obj_meta = 2 * objects::charge_of(pages, 0, false).1;
        sp.meta_room(cost::BACKEND + obj_meta)?;
        let store = self.objs.create(pages, Some(client), 2, false)?;
        let cache = self.objs.create(pages, Some(client), 1, false)?;
        let sp = self.space_mut(client)?;
        sp.budget.backends += 1;
        sp.budget.obj_meta += cost::BACKEND + obj_meta;
        let mut id = self.backends.next_id;
        while self.backends.by_id.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.backends.next_id = id.wrapping_add(1);
        let b = Backend { size: pages * PAGE_SIZE, cache, store, owner: client, cred, mode: mode & 0o777 };
        self.backends.by_id.insert(id, b);
        self.backends.stores.insert(cache, store);
        Ok(id)
    }

    /// Does `client` have the `want` bits (READ / WRITE) on backend `b`?
    fn backend_permits(&self, client: u32, b: &Backend, want: u16) -> bool {
        if self.is_admin(client) {
            return true;
        }
        let Some(cred) = self.spaces.get(&client).map(|sp| sp.cred) else { return false };
        if cred.uid == 0 {
            return true;
        }
        let granted = if cred.uid == b.cred.uid {
            b.mode >> 6
        } else if cred.gid == b.cred.gid {
            b.mode >> 3
        } else {
            b.mode
        };
        want & !granted & 0o7 == 0
    }

    /// Backend `id`, if `client` has the `want` permission bits on it (EACCES otherwise).
    fn backend_for(&self, client: u32, id: u32, want: u16) -> Result<Backend, Errno> {
        let b = *self.backends.by_id.get(&id).ok_or(Errno::NoEnt)?;
        if !self.backend_permits(client, &b, want) {
            return Err(Errno::Acces);
        }
        Ok(b)
    }

    /// May `client` map backend `id` (`shared`, protection `prot`)? Returns the max
    /// protection the mapping may have (write removed for a shared mapping of a backend the
    /// client may not write).
    pub(crate) fn backend_may_map(&self, client: u32, id: u32, shared: bool, prot: Prot, max_prot: Prot) -> Result<Prot, Errno> {
        let b = self.backend_for(client, id, READ)?;
        if !shared || self.backend_permits(client, &b, WRITE) {
            return Ok(max_prot);
        }
        if prot.writable() {
            return Err(Errno::Acces);
        }
        Ok(max_prot.without(Prot::WRITE))
    }

    /// May `client` write cache pages of the backend behind cache object `cache` back to its
    /// store (msync)? Backends already destroyed (or dying) have nothing to write to.
    pub(crate) fn backend_may_sync(&self, client: u32, cache: ObjId) -> Result<(), Errno> {
        match self.backends.by_id.values().find(|b| b.cache == cache) {
            Some(b) if !self.backend_permits(client, b, WRITE) => Err(Errno::Acces),
            _ => Ok(()),
        }
    }

    fn io_range(b: &Backend, offset: u64, len: usize) -> Result<(), Errno> {
        let end = offset.checked_add(len as u64).ok_or(Errno::Overflow)?;
        if end > b.size {
            return Err(Errno::Overflow);
        }
        Ok(())
    }

    /// Write `data` into the backend's store at `offset`. All or nothing: the pages it needs
    /// are checked against the owner's budget and allocated before any byte is written.
    pub fn backend_write(&mut self, client: u32, id: u32, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.settle();
        let b = self.backend_for(client, id, WRITE)?;
        Self::io_range(&b, offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        let first = offset / PAGE_SIZE;
        let last = (offset + data.len() as u64 - 1) / PAGE_SIZE;
        let store = self.objs.get(b.store).ok_or(Errno::Idrm)?;
        let absent = (first..=last).filter(|&i| store.page(i).is_none()).count() as u64;
        let owner = self.spaces.get(&b.owner).ok_or(Errno::Srch)?;
        if owner.over_quota(absent) {
            return Err(Errno::NoMem);
        }
        owner.meta_room(absent * cost::OBJ_PAGE)?;
        let mut fresh: Vec<u64> = Vec::new();
        fresh.try_reserve_exact(absent as usize).map_err(|_| Errno::NoMem)?;
        for i in first..=last {
            let had = self.objs.get(b.store).is_some_and(|o| o.page(i).is_some());
            match self.object_page(b.store, i) {
                Ok(_) if !had => fresh.push(i),
                Ok(_) => {}
                Err(e) => {
                    self.drop_store_pages(b.store, b.owner, &fresh);
                    return Err(e);
                }
            }
        }
        let mut at = offset;
        for chunk in chunks_by_page(offset, data) {
            let f = self.objs.get(b.store).and_then(|o| o.page(at / PAGE_SIZE)).ok_or(Errno::Fault)?;
            self.k.frame_write(f, at % PAGE_SIZE, chunk).map_err(|_| Errno::NoMem)?;
            at += chunk.len() as u64;
        }
        Ok(())
    }

    /// Undo the pages `fresh` a failed write allocated in `store` (charged to `owner`).
    fn drop_store_pages(&mut self, store: ObjId, owner: u32, fresh: &[u64]) {
        for &i in fresh {
            if let Some(f) = self.objs.get_mut(store).and_then(|o| o.take_page(i)) {
                self.res.frame_unref(f, PageSize::Small);
                if let Some(sp) = self.spaces.get_mut(&owner) {
                    sp.charged -= 1;
                    sp.budget.put_meta(cost::OBJ_PAGE);
                }
            }
        }
    }

    /// Read from the backend's store at `offset` into `buf` (absent pages read as zero).
    pub fn backend_read(&mut self, client: u32, id: u32, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let b = self.backend_for(client, id, READ)?;
        Self::io_range(&b, offset, buf.len())?;
        let mut at = offset;
        let mut done = 0usize;
        while done < buf.len() {
            let idx = at / PAGE_SIZE;
            let in_page = (PAGE_SIZE - at % PAGE_SIZE) as usize;
            let n = in_page.min(buf.len() - done);
            match self.objs.get(b.store).and_then(|o| o.page(idx)) {
                None => buf[done..done + n].fill(0),
                Some(f) => self.k.frame_read(f, at % PAGE_SIZE, &mut buf[done..done + n]).map_err(|_| Errno::Fault)?,
            }
            done += n;
            at += n as u64;
        }
        Ok(())
    }

    /// Destroy backend `id`: its id goes; live mappings keep its pages (and the owner keeps
    /// paying for them until they are unmapped).
    pub fn backend_destroy(&mut self, client: u32, id: u32) -> Result<(), Errno> {
        self.settle();
        let b = *self.backends.by_id.get(&id).ok_or(Errno::NoEnt)?;
        let root = self.spaces.get(&client).is_some_and(|sp| sp.cred.uid == 0);
        if b.owner != client && !root && !self.is_admin(client) {
            return Err(Errno::Perm);
        }
        self.drop_backend(id);
        Ok(())
    }

    /// Remove backend `id`'s record and the holds it has on its objects.
    fn drop_backend(&mut self, id: u32) {
        let Some(b) = self.backends.by_id.remove(&id) else { return };
        for o in [b.cache, b.store] {
            if let Some(obj) = self.objs.get_mut(o) {
                obj.holders -= 1;
            }
        }
        if let Some(sp) = self.spaces.get_mut(&b.owner) {
            sp.budget.backends -= 1;
            sp.budget.put_meta(cost::BACKEND);
        }
        self.release_obj_if_unused(b.store);
        self.release_obj_if_unused(b.cache);
    }

    /// The owner of backend `id` is going away: the backend dies with it, its pages are
    /// taken from every space mapping it.
    pub(crate) fn backend_revoke(&mut self, id: u32) {
        let Some(b) = self.backends.by_id.get(&id).copied() else { return };
        self.drop_backend(id);
        if self.objs.get(b.cache).is_some() {
            self.kill_object(b.cache);
        }
    }

    /// Write cache page `idx` back to the store.
    pub(crate) fn writeback_page(&mut self, cache: ObjId, idx: u64) -> Result<(), Errno> {
        let Some(store) = self.backends.store_of_cache(cache) else { return Ok(()) };
        let Some(src) = self.objs.get(cache).and_then(|o| o.page(idx)) else { return Ok(()) };
        let dst = self.object_page(store, idx)?;
        self.k.frame_copy(src, 0, dst, 0, PAGE_SIZE).map_err(|_| Errno::NoMem)
    }

    /// A destroyed object may be a backend cache: its store loses that holder.
    pub(crate) fn backend_object_gone(&mut self, obj: ObjId) {
        if let Some(store) = self.backends.stores.remove(&obj) {
            if let Some(o) = self.objs.get_mut(store) {
                o.holders -= 1;
            }
            self.release_obj_if_unused(store);
        }
    }
}

/// Split `data`, which starts at byte `offset` of an object, at page boundaries.
fn chunks_by_page(offset: u64, data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    let mut at = offset;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(rest.len());
        let (a, b) = rest.split_at(n);
        rest = b;
        at += n as u64;
        Some(a)
    })
}
