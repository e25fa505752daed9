//! A space being cloned is frozen: nothing may change its areas until the copy is complete
//! (`clone.rs`), as Linux holds the parent's `mmap_lock` through a fork.
//!
//! - The frozen client's own requests that could change its space wait: the server saves
//!   the thread's reply cap (a slot charged to the client, at most [`MAX_HELD`] threads)
//!   and answers `EAGAIN` when the clone ends; the client library sends the request again
//!   (it does for every `EAGAIN`). If the client has no room for one more saved reply, the
//!   answer is `EAGAIN` at once. Requests that change nothing of the space go through:
//!   queries, statistics, Layout, shm and backend bookkeeping, a pager's own work (its
//!   clients must not wait for its fork).
//! - The administrator's requests on the parent or on the child being made (other than
//!   the `Clone` itself and `DestroySpace`) are `EBUSY`: the administrator drives the
//!   clone, so it must not wait for it.
//! - The frozen client's faults are served as always (`clone.rs` says why that is sound).
//!
//! While no clone is in progress (`cloning_now == 0`) a request costs one comparison here.
//! Neighbours: `clone.rs`, `dispatch.rs` (calls [`MemCore::clone_wait`] first), the seL4
//! server (calls it before it takes a request's bulk data from the rings), `pager.rs` (the
//! same saved-reply mechanism).

use mem_protocol::{Errno, Reply, Request, ShmCmd, Target, Value};

use crate::admin::Answer;
use crate::kernel::Kernel;
use crate::MemCore;

/// Most threads of one client whose requests wait for a clone at once.
pub const MAX_HELD: usize = 32;

/// Requests that change nothing of the sender's (or the target's) areas or pages.
fn changes_nothing(req: &Request) -> bool {
    matches!(
        req,
        Request::Nop
            | Request::Query { .. }
            | Request::Stats { .. }
            | Request::Layout { .. }
            | Request::Msync { .. }
            | Request::TakeNote
            | Request::ShmGet { .. }
            | Request::ShmCtl { cmd: ShmCmd::Stat, .. }
            | Request::BackendCreate { .. }
            | Request::BackendRead { .. }
            | Request::BackendWrite { .. }
            | Request::PagerCreate { .. }
            | Request::PagerWait { .. }
            | Request::PagerReply { .. }
    )
}

impl<K: Kernel> MemCore<K> {
    /// Is `client` frozen by a clone, or a child being made?
    pub fn busy(&self, client: u32) -> bool {
        self.spaces
            .get(&client)
            .is_some_and(|sp| sp.frozen_for.is_some() || sp.cloning.is_some_and(|c| c.failed.is_none()))
    }

    /// Must `caller`'s request wait for a clone? The answer to give now if so (held: no
    /// reply until the clone ends), `None` to serve it.
    #[inline(always)]
    pub fn clone_wait(&mut self, caller: u32, req: &Request) -> Option<Answer> {
        // (No clone under way: the common case, decided here without a call.)
        if self.cloning_now == 0 {
            return None;
        }
        self.clone_wait_slow(caller, req)
    }

    /// [`MemCore::clone_wait`] while some clone is under way.
    #[inline(never)]
    fn clone_wait_slow(&mut self, caller: u32, req: &Request) -> Option<Answer> {
        if changes_nothing(req) {
            return None;
        }
        if self.is_admin(caller) {
            if matches!(req, Request::Clone { .. } | Request::DestroySpace { .. } | Request::CreateSpace { .. }) {
                return None;
            }
            let Some(Target::Client(c)) = req.target() else { return None };
            return self.busy(c).then_some(Answer { reply: Reply::Err(Errno::Busy), cap: None, held: false });
        }
        if !self.busy(caller) {
            return None;
        }
        Some(self.hold(caller))
    }

    /// Save `client`'s caller until its clone ends (`EAGAIN` now if it has no room).
    fn hold(&mut self, client: u32) -> Answer {
        let again = Answer { reply: Reply::Err(Errno::Again), cap: None, held: false };
        let Some(sp) = self.spaces.get_mut(&client) else { return again };
        if sp.held.len() >= MAX_HELD {
            return again;
        }
        if sp.held.capacity() == 0 && (sp.meta_room(MAX_HELD as u64 * 4).is_err() || sp.held.try_reserve_exact(MAX_HELD).is_err()) {
            return again;
        }
        if sp.budget.take_slots(1).is_err() {
            return again;
        }
        let Ok(slot) = self.res.slots.alloc() else {
            self.give_slot(client);
            return again;
        };
        if self.k.save_caller(slot).is_err() {
            self.res.slots.free(slot);
            self.give_slot(client);
            return again;
        }
        if let Some(sp) = self.spaces.get_mut(&client) {
            sp.held.push(slot);
        }
        Answer { reply: Reply::Ok(Value::Unit), cap: None, held: true }
    }

    fn give_slot(&mut self, client: u32) {
        if let Some(sp) = self.spaces.get_mut(&client) {
            sp.budget.slots = sp.budget.slots.saturating_sub(1);
        }
    }

    /// The clone of `parent` ended (done or failed): it thaws, and every request that
    /// waited is answered `EAGAIN` (sent again by its client).
    pub(crate) fn unfreeze(&mut self, parent: u32) {
        let Some(sp) = self.spaces.get_mut(&parent) else { return };
        if sp.frozen_for.take().is_none() {
            return;
        }
        self.cloning_now = self.cloning_now.saturating_sub(1);
        let held = core::mem::take(&mut sp.held);
        for slot in held {
            let _ = self.k.reply_saved(slot, Some(&Reply::Err(Errno::Again)));
            self.drop_saved(slot);
            self.give_slot(parent);
        }
    }
}
