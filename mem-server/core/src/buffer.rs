//! Every client's shared buffer (`Config::buffer`): a shared object mapped at a fixed
//! address in the client, present from the start, with the server holding one reference
//! per frame, and — on seL4 — the server's own view of it (cap copies mapped in the
//! server's VSpace at `view_base + client * view_stride`, charged to the client's slots),
//! through which bulk data and the rings pass.
//!
//! Made in bounded steps ([`BUFFER_STEP_PAGES`] pages each, after a first step that maps the
//! area), so that `CreateSpace` and the last steps of `Clone` stay within one step's bound:
//! how far it came is the number of frames recorded. A space whose buffer is incomplete
//! has no running thread yet (the administrator gets its VSpace only at the end); if a
//! step fails, the space is destroyed (`admin.rs`, `clone.rs`), and whatever part of the
//! buffer exists goes with it. Neighbours: `admin.rs`, `clone.rs`, `lifecycle.rs`
//! (`release_shared_buffer` when a space goes).

use alloc::vec::Vec;
use mem_protocol::{Backing, Errno, PageSize, Placement, Prot, PAGE_SIZE};

use crate::area::AreaKind;
use crate::kernel::{Kernel, Slot};
use crate::mmap::MmapArgs;
use crate::MemCore;

/// Buffer pages one step makes present and maps in the server (each a frame, a map in the
/// client, a cap copy and a map in the server: a few thousand instructions).
pub const BUFFER_STEP_PAGES: u64 = 8;

impl<K: Kernel> MemCore<K> {
    /// One step of giving `client` the configured shared buffer: `true` once it is
    /// complete (at once if none is configured).
    pub(crate) fn setup_buffer_step(&mut self, client: u32) -> Result<bool, Errno> {
        let Some(b) = self.cfg.buffer else { return Ok(true) };
        let view = match b.view {
            Some((base, stride)) => {
                let off = u64::from(client).checked_mul(stride).ok_or(Errno::Inval)?;
                Some(base.checked_add(off).ok_or(Errno::Inval)?)
            }
            None => None,
        };
        self.buffer_step(client, b.vaddr, b.pages, view)
    }

    /// Create `client`'s shared buffer: `pages` pages of shared memory at `vaddr`, present
    /// at once (no server view). Returns its frames in order; the server holds a reference
    /// on each until [`MemCore::release_shared_buffer`].
    pub fn create_shared_buffer(&mut self, client: u32, vaddr: u64, pages: u64) -> Result<Vec<Slot>, Errno> {
        if self.spaces.get(&client).ok_or(Errno::Srch)?.server_buffer.is_some() {
            return Err(Errno::Exist);
        }
        loop {
            match self.buffer_step(client, vaddr, pages, None) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    self.drop_buffer_area(client, vaddr, pages);
                    return Err(e);
                }
            }
        }
        Ok(self.shared_buffer(client).map(<[Slot]>::to_vec).unwrap_or_default())
    }

    /// One step of making the buffer of `pages` pages at `vaddr`, its view at `view` in the
    /// server if given: the area first, then [`BUFFER_STEP_PAGES`] pages a step.
    fn buffer_step(&mut self, client: u32, vaddr: u64, pages: u64, view: Option<u64>) -> Result<bool, Errno> {
        let len = pages.checked_mul(PAGE_SIZE).ok_or(Errno::Inval)?;
        if self.spaces.get(&client).ok_or(Errno::Srch)?.server_buffer.is_none() {
            let a = MmapArgs {
                addr: vaddr,
                len,
                prot: Prot::RW,
                max_prot: Prot::RW,
                placement: Placement::FixedNoReplace,
                shared: true,
                backing: Backing::Anonymous,
                populate: false,
            };
            let start = self.mmap_unmerged(client, &a)?;
            let mut frames: Vec<Slot> = Vec::new();
            let mut copies: Vec<Slot> = Vec::new();
            let room = frames.try_reserve_exact(pages as usize).and_then(|_| copies.try_reserve_exact(if view.is_some() { pages as usize } else { 0 }));
            if room.is_err() {
                let _ = self.remove_range(client, start, start + len);
                return Err(Errno::NoMem);
            }
            let sp = self.space_mut(client)?;
            if let Some(a) = sp.areas.get_mut(start) {
                a.system = true;
            }
            sp.server_buffer = Some(frames);
            sp.view = copies;
            return Ok(pages == 0);
        }
        for _ in 0..BUFFER_STEP_PAGES {
            let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
            let done = sp.server_buffer.as_ref().map_or(0, Vec::len) as u64;
            if done >= pages {
                return Ok(true);
            }
            let va = vaddr + done * PAGE_SIZE;
            let Some((_, area)) = sp.areas.find(va) else { return Err(Errno::Fault) };
            let AreaKind::Shared { obj, offset } = area.kind else { return Err(Errno::Fault) };
            self.populate_range(client, va, va + PAGE_SIZE)?;
            let f = self.objs.get(obj).and_then(|o| o.page(offset / PAGE_SIZE + done)).ok_or(Errno::NoMem)?;
            self.res.frame_ref(f);
            if let Some(frames) = &mut self.space_mut(client)?.server_buffer {
                frames.push(f);
            }
            if let Some(at) = view {
                let s = self.view_copy(client, f, at + done * PAGE_SIZE)?;
                self.space_mut(client)?.view.push(s);
            }
        }
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        Ok(sp.server_buffer.as_ref().map_or(0, Vec::len) as u64 >= pages)
    }

    /// Undo a buffer that could not be made (`create_shared_buffer`).
    fn drop_buffer_area(&mut self, client: u32, vaddr: u64, pages: u64) {
        self.release_shared_buffer(client);
        let _ = self.remove_range(client, vaddr, vaddr + pages * PAGE_SIZE);
    }

    /// A cap copy of `frame` mapped in the server at `vaddr`, charged to `client`'s slots.
    fn view_copy(&mut self, client: u32, frame: Slot, vaddr: u64) -> Result<Slot, Errno> {
        self.space_mut(client)?.budget.take_slots(1)?;
        let undo = |core: &mut Self| {
            if let Some(sp) = core.spaces.get_mut(&client) {
                sp.budget.put_slots(1);
            }
        };
        let s = match self.res.slots.alloc() {
            Ok(s) => s,
            Err(e) => {
                undo(self);
                return Err(e);
            }
        };
        if self.k.cap_copy(frame, s).is_err() {
            self.res.slots.free(s);
            undo(self);
            return Err(Errno::NoMem);
        }
        if self.k.server_map(s, vaddr).is_err() {
            let d = crate::space::PendingRelease::Mapping { map_slot: s, delete: true, frame: None };
            crate::space::finish_release(&mut self.k, &mut self.res, &mut self.deferred, d);
            undo(self);
            return Err(Errno::NoMem);
        }
        Ok(s)
    }

    /// The frames of `client`'s shared buffer, if it has one.
    pub fn shared_buffer(&self, client: u32) -> Option<&[Slot]> {
        self.spaces.get(&client)?.server_buffer.as_deref()
    }

    /// Does the server see `client`'s shared buffer (its view is mapped)?
    pub fn has_view(&self, client: u32) -> bool {
        self.spaces.get(&client).is_some_and(|sp| !sp.view.is_empty())
    }

    /// Remove the server's view of `client`'s buffer and its references on the frames.
    pub fn release_shared_buffer(&mut self, client: u32) {
        let MemCore { k, res, spaces, deferred, .. } = self;
        let Some(sp) = spaces.get_mut(&client) else { return };
        for s in core::mem::take(&mut sp.view) {
            // A delete seL4 refuses is retried later (`Deferred`); the slot is freed then.
            crate::space::finish_release(k, res, deferred, crate::space::PendingRelease::Mapping { map_slot: s, delete: true, frame: None });
            sp.budget.put_slots(1);
        }
        if let Some(frames) = sp.server_buffer.take() {
            for f in frames {
                res.frame_unref(f, PageSize::Small);
            }
        }
    }
}
