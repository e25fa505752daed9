//! The administrator's requests (the root task): creating, cloning and destroying spaces
//! with their shared buffers, and exporting frames. The seL4 side only moves caps: a
//! request may answer with one cap ([`Answer::cap`], a slot of the server's CNode) that it
//! attaches to the reply.
//!
//! - `CreateSpace`: the client id must lie in `Config::client_ids` (EINVAL before anything
//!   is created). After the space, its shared buffer ([`BufferConfig`]: a shared object
//!   mapped at `vaddr` in the client, present at once, with the server holding one
//!   reference per frame) and, on seL4, the server's view of it (cap copies mapped in the
//!   server's own VSpace at `view_base + client * view_stride`, charged to the client's
//!   slots). Answers with the VSpace cap.
//! - `Clone`: the same for the child, whose inherited mapping of the parent's buffer is
//!   removed first (the child gets a buffer of its own), in bounded steps (`clone.rs`).
//! - `DestroySpace`: the space and everything it holds (`lifecycle.rs`), in bounded steps.
//!   The freed frames stay pooled, only queued (dirty): zeroing them is idle work
//!   (`MemCore::lend_dirty`), never part of this request.
//! - `ExportFrame`: pins the page (`pin.rs`) and answers with its frame cap.
//!
//! A failure after a space was created destroys it again: a failed request leaves nothing
//! behind. Neighbours: `dispatch.rs`, `lifecycle.rs`, `pin.rs`, `mmap.rs`, `populate.rs`.

use alloc::vec::Vec;
use mem_protocol::{Backing, Errno, PageSize, Placement, Prot, Reply, PAGE_SIZE};

use crate::area::AreaKind;
use crate::kernel::{Kernel, Slot};
use crate::mmap::MmapArgs;
use crate::space::Cred;
use crate::MemCore;

/// The shared buffer every space gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferConfig {
    /// Where it is mapped in the client.
    pub vaddr: u64,
    /// Its size in pages.
    pub pages: u64,
    /// Where the server sees it: `(base, stride)`, client `c`'s at `base + c * stride`
    /// (`None`: no server view, e.g. on the host).
    pub view: Option<(u64, u64)>,
}

/// The answer to one request: the reply, and a cap to send with it; or, `held`, nothing
/// now (the caller's reply cap was saved and it is answered later: `PagerWait`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub reply: Reply,
    pub cap: Option<Slot>,
    pub held: bool,
}

impl<K: Kernel> MemCore<K> {
    fn valid_client(&self, c: u32) -> bool {
        let (lo, hi) = self.cfg.client_ids;
        c >= lo && c < hi && !self.is_admin(c)
    }

    /// `CreateSpace`: the space and its shared buffer; the VSpace cap to hand out.
    pub fn admin_create(&mut self, client: u32, cred: Cred, quota: u64) -> Result<Slot, Errno> {
        if !self.valid_client(client) {
            return Err(Errno::Inval);
        }
        let vspace = self.create_space(client, cred, quota)?;
        if let Err(e) = self.setup_shared_buffer(client) {
            let _ = self.destroy_space(client);
            return Err(e);
        }
        Ok(vspace)
    }

    /// `Clone`: the child as a copy-on-write clone of `parent`, with a shared buffer of its
    /// own; the child's VSpace cap to hand out. Every step until done.
    pub fn admin_clone(&mut self, parent: u32, child: u32, quota: u64) -> Result<Slot, Errno> {
        crate::step::to_the_end(|| self.admin_clone_step(parent, child, quota))
    }

    /// One step of `admin_clone` (`EAGAIN` until the child is complete; `clone.rs`).
    pub fn admin_clone_step(&mut self, parent: u32, child: u32, quota: u64) -> Result<Slot, Errno> {
        if !self.valid_client(child) {
            return Err(Errno::Inval);
        }
        self.clone_step(parent, child, quota, true)
    }

    /// `DestroySpace`. The freed frames stay pooled, dirty: they are zeroed off the request
    /// path (`MemCore::lend_dirty`: the seL4 server's zeroing thread, when nothing else
    /// runs), or by the fault that takes one while none is clean yet. Nothing is trimmed
    /// here (`trim` deletes every pooled object of an idle untyped, one cap deletion each,
    /// and the next retype from that untyped makes seL4 clear it: millions of instructions,
    /// far beyond one step); the pools are reused by later clients.
    pub fn admin_destroy(&mut self, client: u32) -> Result<(), Errno> {
        crate::step::to_the_end(|| self.admin_destroy_step(client))
    }

    /// One step of `admin_destroy` (`EAGAIN` while the space still has areas).
    pub fn admin_destroy_step(&mut self, client: u32) -> Result<(), Errno> {
        self.destroy_space_step(client)
    }

    /// `ExportFrame`: pin the page; its frame cap to hand out.
    pub fn admin_export(&mut self, client: u32, vaddr: u64) -> Result<Slot, Errno> {
        self.pin_page(client, vaddr)
    }

    pub(crate) fn setup_shared_buffer(&mut self, client: u32) -> Result<(), Errno> {
        let Some(b) = self.cfg.buffer else { return Ok(()) };
        let frames = self.create_shared_buffer(client, b.vaddr, b.pages)?;
        let Some((base, stride)) = b.view else { return Ok(()) };
        let at = base.checked_add(u64::from(client).checked_mul(stride).ok_or(Errno::Inval)?).ok_or(Errno::Inval)?;
        let mut view: Vec<Slot> = Vec::new();
        view.try_reserve_exact(frames.len()).map_err(|_| Errno::NoMem)?;
        for (i, &f) in frames.iter().enumerate() {
            match self.view_copy(client, f, at + i as u64 * PAGE_SIZE) {
                Ok(s) => view.push(s),
                Err(e) => {
                    self.space_mut(client)?.view = view;
                    self.release_shared_buffer(client);
                    return Err(e);
                }
            }
        }
        self.space_mut(client)?.view = view;
        Ok(())
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

    /// Create `client`'s shared buffer: `pages` pages of shared memory at `vaddr`, present
    /// at once. Returns its frames in order; the server holds a reference on each until
    /// [`MemCore::release_shared_buffer`].
    pub fn create_shared_buffer(&mut self, client: u32, vaddr: u64, pages: u64) -> Result<Vec<Slot>, Errno> {
        if self.spaces.get(&client).ok_or(Errno::Srch)?.server_buffer.is_some() {
            return Err(Errno::Exist);
        }
        let len = pages.checked_mul(PAGE_SIZE).ok_or(Errno::Inval)?;
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
        if let Err(e) = self.populate_range(client, start, start + len) {
            let _ = self.remove_range(client, start, start + len);
            return Err(e);
        }
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        let Some((_, area)) = sp.areas.find(start) else { return Err(Errno::Fault) };
        let AreaKind::Shared { obj, .. } = area.kind else { return Err(Errno::Fault) };
        let o = self.objs.get(obj).ok_or(Errno::Fault)?;
        let mut frames: Vec<Slot> = Vec::new();
        frames.try_reserve_exact(pages as usize).map_err(|_| Errno::NoMem)?;
        frames.extend((0..pages).map(|i| o.page(i).unwrap_or(0)));
        if frames.contains(&0) {
            let _ = self.remove_range(client, start, start + len);
            return Err(Errno::NoMem);
        }
        for &f in &frames {
            self.res.frame_ref(f);
        }
        let sp = self.space_mut(client)?;
        if let Some(a) = sp.areas.get_mut(start) {
            a.system = true;
        }
        sp.server_buffer = Some(frames.clone());
        Ok(frames)
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
