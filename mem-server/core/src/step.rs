//! Bounded steps: the long operations a client or the administrator can ask for — munmap,
//! an mmap `Fixed` over what is there, populate, reset, shmdt, destroying a space — are
//! done in steps of at most [`STEP_PAGES`] page entries and [`STEP_AREAS`] areas, so no
//! request holds the server longer than one step whatever the sizes (a page entry costs
//! the server about a thousand instructions with its `Page_Unmap`, a cap copy's twice).
//! Populate counts work instead (`populate.rs`), Clone, CreateSpace and the end of
//! DestroySpace have steps of their own (`clone.rs`, `buffer.rs`, `lifecycle.rs`), and
//! dead objects' frames go a slice at a time (`dying.rs`).
//!
//! A request that still has work after one step is answered `EAGAIN` (`Errno::Again`);
//! the client library sends it again, unchanged, and meanwhile the server serves
//! everybody else's messages (another client's fault waits for at most one step). The
//! requester pays for its own operation in its own time, as seL4 itself restarts a
//! preempted system call. No state is kept between steps: each step leaves the space as
//! the whole operation could have left it part way — a munmap removes its range from the
//! end backwards, so what is left is always `[start, m)` and sending the request again
//! goes on from there; a populate maps the next absent pages; a destroy clears areas
//! before it releases the rest. What one step did stays done if the requester sends
//! something else instead (its other threads may also see a munmap part way, as they may
//! on Linux while one runs). The host API (`MemCore::munmap` and the others) runs the
//! steps to the end itself; `dispatch` runs one step per request.
//!
//! Not split yet, and so bounded only by the sizes involved (say so when you measure):
//! destroying a shared object that other spaces map (`kill_object`), `Layout` of very
//! large areas (resident pages are counted), `MapPhys` of a large device range
//! (administrator or grant holder only), splitting a 2 MiB page at a boundary (512 maps,
//! once per boundary), a 2 MiB frame zeroed on a fault. Neighbours: `munmap.rs`,
//! `reset.rs`, `lifecycle.rs`, `populate.rs`, `shm.rs`, `dispatch.rs`, `clone.rs`.

use mem_protocol::{Errno, PageSize, PAGE_SIZE};

use crate::kernel::Kernel;
use crate::MemCore;

/// Most page entries one step releases or maps (the protocol's).
pub const STEP_PAGES: u64 = mem_protocol::STEP_PAGES;
/// Most areas one step removes.
pub const STEP_AREAS: u64 = 16;

/// What is left of one step's work.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub pages: u64,
    pub areas: u64,
}

impl Step {
    pub fn new() -> Step {
        Step { pages: STEP_PAGES, areas: STEP_AREAS }
    }

    pub fn spent(&self) -> bool {
        self.pages == 0 || self.areas == 0
    }
}

/// Run `step` until it is done (not `Again`): the host API of a stepped operation.
pub(crate) fn to_the_end<T>(mut step: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match step() {
            Err(Errno::Again) => continue,
            r => return r,
        }
    }
}

impl<K: Kernel> MemCore<K> {
    /// Remove `[start, end)` (page aligned) from the end backwards within `st`: `true` when
    /// all of it is gone, `false` when `[start, m)` is left for some `m` (then `st` is
    /// spent). Each piece goes through `remove_range` (one area, at most `st.pages` page
    /// entries), so the budget checks are those of a munmap of the whole range: only the
    /// first piece can need room for a split, and if it fails nothing changed.
    pub(crate) fn remove_range_budget(&mut self, client: u32, start: u64, end: u64, st: &mut Step) -> Result<bool, Errno> {
        // A range of no more pages (so areas) than a whole step allows is one step as it is
        // (the common munmap: one lookup, no walk).
        let pages = (end - start) / PAGE_SIZE;
        if pages <= st.pages && pages <= st.areas && st.pages == STEP_PAGES && st.areas == STEP_AREAS {
            self.remove_range(client, start, end)?;
            st.pages -= pages;
            st.areas -= pages;
            return Ok(true);
        }
        let mut hi = end;
        loop {
            let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
            let Some((s, a)) = sp.areas.last_overlapping(start, hi) else { return Ok(true) };
            if st.spent() {
                return Ok(false);
            }
            let (piece_start, piece_end) = (s.max(start), a.end.min(hi));
            // What one step may take of the piece, from its end: everything after its last
            // mapped page, and `st.pages` pages of address below that end (so at most that
            // many small page entries, or the large page `lo` falls in).
            let lo = match sp.pt.prev_mapped(piece_start, piece_end) {
                None => piece_start,
                Some((base, _, size)) => {
                    let top = (base + size.bytes()).min(piece_end);
                    let lo = top.saturating_sub(st.pages * PAGE_SIZE).max(piece_start);
                    match sp.pt.lookup(lo) {
                        Some((_, PageSize::Large, large)) if large >= piece_start && large < lo => large,
                        _ => lo,
                    }
                }
            };
            let n = (piece_end - lo).div_ceil(PAGE_SIZE).min(st.pages);
            self.remove_range(client, lo, piece_end)?;
            st.pages -= n;
            st.areas -= 1;
            if lo <= start {
                return Ok(true);
            }
            hi = lo;
        }
    }

    /// One step of munmap (`EAGAIN` while there is more): see the module docs.
    pub fn munmap_step(&mut self, client: u32, addr: u64, len: u64) -> Result<(), Errno> {
        self.settle();
        let r = crate::check::unmap_range(addr, len, self.cfg.user_hi)?;
        if !self.spaces.contains_key(&client) {
            return Err(Errno::Srch);
        }
        match self.remove_range_budget(client, r.start, r.end, &mut Step::new())? {
            true => Ok(()),
            false => Err(Errno::Again),
        }
    }

    /// One step of `Reset`: the last non-system areas first.
    pub fn reset_step(&mut self, client: u32) -> Result<(), Errno> {
        self.settle();
        let mut st = Step::new();
        let mut at = self.spaces.get(&client).ok_or(Errno::Srch)?.areas.user_range().1;
        loop {
            let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
            let Some((s, e)) = sp.areas.last_below(at, |a| !a.system) else { return Ok(()) };
            if !self.remove_range_budget(client, s, e, &mut st)? {
                return Err(Errno::Again);
            }
            at = s;
        }
    }
}
