//! Objects whose last reference went are released a slice at a time, not in the request
//! that let go of them: a segment of 65,536 pages holds 65,536 frame references, and
//! dropping them all at once would hold the server for millions of instructions.
//!
//! An object with more than `Config::release_slice` frames goes to the *dying* queue with
//! what it counts: its owner's charge (pages and metadata), a segment's share of the shm
//! limits and its payer's budget. Those stay counted until the last frame is released, so
//! nobody can escape a quota or a limit by freeing faster than the server releases. The
//! queue is drained [`MemCore::release_step`] by [`MemCore::release_step`] calls:
//!
//! - when the server is idle (the seL4 server's zeroing thread reports in: `zeroer.rs`);
//! - under pressure: a request that fails with ENOMEM or ENOSPC while frames are dying
//!   releases one slice and is answered `EAGAIN` (sent again by the client library); a
//!   fault that cannot get memory releases one slice and is retried by its thread.
//!
//! So each step is bounded (one slice: `release_slice` frame references), and memory is
//! never refused while dying frames could serve. The host default releases at once
//! (`release_slice` unbounded). Neighbours: `munmap.rs` (`release_obj_if_unused`),
//! `shm.rs` (`SegCharge`), `dispatch.rs` and `fault.rs` (pressure), `invariants.rs`.

use alloc::collections::{BTreeMap, VecDeque};
use mem_protocol::PageSize;

use crate::kernel::{Kernel, Slot};
use crate::shm::SegCharge;
use crate::MemCore;

/// Frame references to drop, and what they count until they are dropped.
#[derive(Debug)]
pub struct Release {
    /// The frames, by page index (one reference each).
    pub frames: BTreeMap<u64, Slot>,
    /// Charged for them: `pages` and `meta` bytes (an object's charge).
    pub owner: Option<u32>,
    pub pages: u64,
    pub meta: u64,
    /// A segment's share of the shm limits.
    pub seg: Option<SegCharge>,
}

/// The dying queue.
#[derive(Debug, Default)]
pub struct Dying {
    queue: VecDeque<Release>,
    frames: u64,
}

impl Dying {
    /// Frame references waiting to be dropped.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Every entry (invariants).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Release> {
        self.queue.iter()
    }
}

impl<K: Kernel> MemCore<K> {
    /// Drop `r`'s frame references and give back what it counts: at once if it has at most
    /// one slice of frames, else later, a slice per [`MemCore::release_step`].
    pub(crate) fn release_frames(&mut self, r: Release) {
        if r.frames.len() as u64 <= self.cfg.release_slice {
            for &f in r.frames.values() {
                self.res.frame_unref(f, PageSize::Small);
            }
            self.uncharge_release(&r);
        } else {
            self.dying.frames += r.frames.len() as u64;
            self.dying.queue.push_back(r);
        }
    }

    /// Are frames waiting to be released?
    pub fn has_dying(&self) -> bool {
        !self.dying.queue.is_empty()
    }

    /// Release one slice of dying frames (at most `Config::release_slice`); `true` if more
    /// wait.
    pub fn release_step(&mut self) -> bool {
        let slice = self.cfg.release_slice;
        let MemCore { dying, res, .. } = self;
        let Some(r) = dying.queue.front_mut() else { return false };
        let mut n = 0;
        while n < slice {
            let Some((_, f)) = r.frames.pop_last() else { break };
            res.frame_unref(f, PageSize::Small);
            dying.frames -= 1;
            n += 1;
        }
        if r.frames.is_empty() {
            if let Some(r) = dying.queue.pop_front() {
                self.uncharge_release(&r);
            }
        }
        self.has_dying()
    }

    fn uncharge_release(&mut self, r: &Release) {
        if let Some(sp) = r.owner.and_then(|c| self.spaces.get_mut(&c)) {
            sp.charged = sp.charged.saturating_sub(r.pages);
            sp.budget.put_meta(r.meta);
        }
        if let Some(s) = r.seg {
            self.shm_uncharge(s);
        }
    }

    /// `client`'s space is going: what its dying frames count is charged to nobody now
    /// (the limits keep counting them until they are released).
    pub(crate) fn dying_forget(&mut self, client: u32) {
        for r in self.dying.queue.iter_mut() {
            if r.owner == Some(client) {
                r.owner = None;
            }
            if let Some(s) = &mut r.seg {
                if s.payer == Some(client) {
                    s.payer = None;
                }
            }
        }
    }
}
