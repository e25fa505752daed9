//! Backend objects: file-like memory with a backing store, for file-style mappings.
//!
//! A backend has a fixed size, a *store* (the "disk": what `backend_read`/`backend_write`
//! access) and a *cache* (the pages mappings see). A shared mapping maps cache pages, which
//! are filled from the store on first touch; `msync` writes cache pages back to the store
//! (`msync.rs`). A private mapping gets its own copy of the current cache or store page on
//! first touch. Both objects are charged to the creating client. Only the creator (or an
//! administrator) writes or destroys a backend; any client may map and read it.
//! Destroying a backend drops its ids; live mappings keep the cache (and store) alive.
//! Neighbours: `objects.rs`, `fault.rs`, `mmap.rs`, `msync.rs`.

use alloc::collections::BTreeMap;
use mem_protocol::{Errno, PAGE_SIZE};

use crate::check;
use crate::kernel::{Kernel, Slot};
use crate::objects::{ObjId, Objects};
use crate::MemCore;

#[derive(Clone, Copy, Debug)]
struct Backend {
    size: u64,
    cache: ObjId,
    store: ObjId,
    owner: u32,
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
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

impl<K: Kernel> MemCore<K> {
    /// Create a backend of `size` bytes (rounded up to pages), owned by `client`.
    pub fn backend_create(&mut self, client: u32, size: u64) -> Result<u32, Errno> {
        self.settle();
        if !self.spaces.contains_key(&client) {
            return Err(Errno::Srch);
        }
        let pages = check::page_len(size)? / PAGE_SIZE;
        if self.backends.by_id.len() as u32 >= self.cfg.max_backends {
            return Err(Errno::NFile);
        }
        let store = self.objs.create(pages, Some(client), 2)?;
        let cache = match self.objs.create(pages, Some(client), 1) {
            Ok(c) => c,
            Err(e) => {
                if let Some(o) = self.objs.get_mut(store) {
                    o.holders = 0;
                }
                self.objs.release_if_unused(&mut self.res, store);
                return Err(e);
            }
        };
        let mut id = self.backends.next_id;
        while self.backends.by_id.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.backends.next_id = id.wrapping_add(1);
        self.backends.by_id.insert(id, Backend { size: pages * PAGE_SIZE, cache, store, owner: client });
        self.backends.stores.insert(cache, store);
        Ok(id)
    }

    fn backend_for(&self, client: u32, id: u32, write: bool) -> Result<Backend, Errno> {
        let b = *self.backends.by_id.get(&id).ok_or(Errno::NoEnt)?;
        if write && b.owner != client && !self.is_admin(client) {
            return Err(Errno::Perm);
        }
        Ok(b)
    }

    fn io_range(b: &Backend, offset: u64, len: usize) -> Result<(), Errno> {
        let end = offset.checked_add(len as u64).ok_or(Errno::Overflow)?;
        if end > b.size {
            return Err(Errno::Overflow);
        }
        Ok(())
    }

    /// Write `data` into the backend's store at `offset`.
    pub fn backend_write(&mut self, client: u32, id: u32, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.settle();
        let b = self.backend_for(client, id, true)?;
        Self::io_range(&b, offset, data.len())?;
        let mut at = offset;
        for chunk in chunks_by_page(offset, data) {
            let idx = at / PAGE_SIZE;
            let f = self.object_page(b.store, idx)?;
            self.k.frame_write(f, at % PAGE_SIZE, chunk).map_err(|_| Errno::NoMem)?;
            at += chunk.len() as u64;
        }
        Ok(())
    }

    /// Read from the backend's store at `offset` into `buf` (absent pages read as zero).
    pub fn backend_read(&mut self, client: u32, id: u32, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let b = self.backend_for(client, id, false)?;
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

    /// Destroy backend `id`: its id goes; live mappings keep its pages.
    pub fn backend_destroy(&mut self, client: u32, id: u32) -> Result<(), Errno> {
        self.settle();
        let b = self.backend_for(client, id, true)?;
        self.backends.by_id.remove(&id);
        for o in [b.cache, b.store] {
            if let Some(obj) = self.objs.get_mut(o) {
                obj.holders -= 1;
            }
        }
        self.release_obj_if_unused(b.store);
        self.release_obj_if_unused(b.cache);
        Ok(())
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
