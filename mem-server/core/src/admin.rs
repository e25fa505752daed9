//! The administrator's requests (the root task): creating, cloning and destroying spaces
//! with their shared buffers, and exporting frames. The seL4 side only moves caps: a
//! request may answer with one cap ([`Answer::cap`], a slot of the server's CNode) that it
//! attaches to the reply.
//!
//! - `CreateSpace`: the client id must lie in `Config::client_ids` (EINVAL before anything
//!   is created). After the space, its shared buffer ([`BufferConfig`], `buffer.rs`: a
//!   shared object mapped at `vaddr` in the client, present at once, with the server
//!   holding one reference per frame) and, on seL4, the server's view of it, in bounded
//!   steps (`EAGAIN` until done). Answers with the VSpace cap.
//! - `Clone`: the same for the child, whose inherited mapping of the parent's buffer is
//!   removed first (the child gets a buffer of its own), in bounded steps (`clone.rs`).
//! - `DestroySpace`: the space and everything it holds (`lifecycle.rs`), in bounded steps.
//!   The freed frames stay pooled, only queued (dirty): zeroing them is idle work
//!   (`MemCore::lend_dirty`), never part of this request.
//! - `ExportFrame`: pins the page (`pin.rs`) and answers with its frame cap.
//!
//! A failure after a space was created destroys it again: a failed request leaves nothing
//! behind. Neighbours: `dispatch.rs`, `lifecycle.rs`, `pin.rs`, `mmap.rs`, `populate.rs`.

use mem_protocol::{Errno, Reply};

use crate::kernel::{Kernel, Slot};
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

impl Answer {
    /// An answer to fill in (`MemCore::dispatch_into`).
    pub const EMPTY: Answer = Answer { reply: Reply::Ok(mem_protocol::Value::Unit), cap: None, held: false };
}

impl<K: Kernel> MemCore<K> {
    fn valid_client(&self, c: u32) -> bool {
        let (lo, hi) = self.cfg.client_ids;
        c >= lo && c < hi && !self.is_admin(c)
    }

    /// `CreateSpace`: the space and its shared buffer; the VSpace cap to hand out. Every
    /// step until done.
    pub fn admin_create(&mut self, client: u32, cred: Cred, quota: u64) -> Result<Slot, Errno> {
        crate::step::to_the_end(|| self.admin_create_step(client, cred, quota))
    }

    /// One step of `admin_create` (`EAGAIN` until the shared buffer is complete,
    /// `buffer.rs`). The request sent again goes on with the space it began (its `cred`
    /// and `quota` are those of the first step).
    pub fn admin_create_step(&mut self, client: u32, cred: Cred, quota: u64) -> Result<Slot, Errno> {
        if !self.valid_client(client) {
            return Err(Errno::Inval);
        }
        match self.spaces.get(&client) {
            None => {
                self.create_space(client, cred, quota)?;
                self.space_mut(client)?.building = true;
            }
            Some(sp) if sp.building => {}
            Some(_) => return Err(Errno::Exist),
        }
        match self.setup_buffer_step(client) {
            Ok(true) => {
                let sp = self.space_mut(client)?;
                sp.building = false;
                Ok(sp.pt.vspace())
            }
            Ok(false) => Err(Errno::Again),
            Err(e) => {
                let _ = self.destroy_space(client);
                Err(e)
            }
        }
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
}
