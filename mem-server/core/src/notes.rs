//! Notes about client faults the server could not resolve, for the administrator.
//!
//! The faulting thread is never answered (it stays stopped); the seL4 side calls
//! [`MemCore::note_unresolved`] and signals the administrator's notification, which is
//! never lost whether or not the administrator is waiting at that moment; the
//! administrator then takes the notes with `TakeNote` requests. A client has at most one
//! note queued: later faults of the same client only raise its count. The queue is bounded
//! by the number of spaces (and, for notes of clients already destroyed, by twice that:
//! the oldest go first). Only the first `Config::log_unresolved` faults of a client are
//! printed. Neighbours: `dispatch.rs` (`TakeNote`), `lifecycle.rs`.

use alloc::collections::{BTreeMap, VecDeque};
use mem_protocol::FaultNote;

use crate::kernel::Kernel;
use crate::MemCore;

/// The queue of notes and the per-client counts.
#[derive(Debug, Default)]
pub struct Notes {
    queue: VecDeque<FaultNote>,
    counts: BTreeMap<u32, u32>,
}

impl Notes {
    /// Forget the count of a destroyed client (a queued note stays until taken).
    pub fn forget(&mut self, client: u32) {
        self.counts.remove(&client);
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

impl<K: Kernel> MemCore<K> {
    /// Record that a fault of `client` at `addr` stays unresolved for `reason` (one of
    /// `mem_protocol::system::UNRESOLVED_*`). Returns whether to print it.
    pub fn note_unresolved(&mut self, client: u32, addr: u64, reason: u8) -> bool {
        let bound = 2 * self.cfg.max_spaces as usize + 2;
        let known = self.spaces.contains_key(&client);
        let n = &mut self.notes;
        let count = match n.counts.get_mut(&client) {
            Some(c) => {
                *c = c.saturating_add(1);
                *c
            }
            None if known => {
                n.counts.insert(client, 1);
                1
            }
            // A badge without a space: noted, but nothing kept per badge.
            None => 1,
        };
        if let Some(q) = n.queue.iter_mut().find(|q| q.client == client) {
            q.count = count;
        } else {
            if n.queue.len() >= bound {
                n.queue.pop_front();
            }
            n.queue.push_back(FaultNote { client, addr, reason, count });
        }
        count <= self.cfg.log_unresolved
    }

    /// The oldest queued note, if any.
    pub fn take_note(&mut self) -> Option<FaultNote> {
        self.notes.queue.pop_front()
    }

    /// Notes waiting to be taken.
    pub fn notes_pending(&self) -> usize {
        self.notes.len()
    }
}
