//! Cap-slot allocator for the server's CNode.
//!
//! Slots `[lo, hi)` are the server's to use. `Untyped_Retype` needs runs of contiguous
//! slots, so the allocator is a bitmap (one bit per slot, 32 KiB for 2^18 slots, allocated
//! once): a freed slot is simply free again and can be part of any later run, so after any
//! history of allocations and frees the server can retype as large a batch as at boot once
//! the slots are back. Single slots come from the lowest free one (a summary bitmap finds
//! it in a few word reads); runs are first-fit from a moving hint. No allocation after
//! construction. Neighbours: `res.rs` (object pools) and every operation that copies a
//! frame cap for an extra mapping.

use alloc::vec;
use alloc::vec::Vec;
use mem_protocol::Errno;

use crate::kernel::Slot;

/// Most bitmap words (64 slots each) one search for a run reads.
pub const MAX_RUN_SCAN: usize = 256;

#[derive(Clone, Debug)]
pub struct SlotAlloc {
    lo: Slot,
    hi: Slot,
    /// Bit `i` of word `w`: slot `lo + 64 * w + i` is in use. Bits past `hi` are set.
    used: Vec<u64>,
    /// Bit `j` of summary word `s`: `used[64 * s + j]` has a free bit.
    summary: Vec<u64>,
    /// Where the next search for a run starts (a word index).
    hint: usize,
    in_use: u32,
    total: u32,
}

impl SlotAlloc {
    pub fn new(lo: Slot, hi: Slot) -> Self {
        let lo = lo.max(1); // slot 0 is the null slot
        let hi = hi.max(lo);
        let total = hi - lo;
        let words = (total as usize).div_ceil(64).max(1);
        let mut used = vec![0u64; words];
        let tail = total as usize % 64;
        if tail != 0 {
            used[words - 1] = !0u64 << tail;
        } else if total == 0 {
            used[0] = !0;
        }
        let mut summary = vec![0u64; words.div_ceil(64)];
        for (w, &u) in used.iter().enumerate() {
            if u != !0 {
                summary[w / 64] |= 1 << (w % 64);
            }
        }
        SlotAlloc { lo, hi, used, summary, hint: 0, in_use: 0, total }
    }

    fn set_used(&mut self, w: usize, bits: u64) {
        self.used[w] |= bits;
        if self.used[w] == !0 {
            self.summary[w / 64] &= !(1 << (w % 64));
        }
    }

    fn set_free(&mut self, w: usize, bits: u64) {
        self.used[w] &= !bits;
        self.summary[w / 64] |= 1 << (w % 64);
    }

    /// One slot (the lowest free one).
    pub fn alloc(&mut self) -> Result<Slot, Errno> {
        let s = self.summary.iter().position(|&x| x != 0).ok_or(Errno::NoMem)?;
        let w = s * 64 + self.summary[s].trailing_zeros() as usize;
        let bit = (!self.used[w]).trailing_zeros() as usize;
        self.set_used(w, 1 << bit);
        self.in_use += 1;
        Ok(self.lo + (w * 64 + bit) as Slot)
    }

    /// `n` contiguous slots (first fit from the search hint, then from the bottom), found
    /// within [`MAX_RUN_SCAN`] bitmap words each way: a search costs a bounded amount
    /// whatever the fragmentation (the caller asks for a shorter run, or one slot, if this
    /// fails).
    pub fn alloc_contig(&mut self, n: u32) -> Result<Slot, Errno> {
        if n == 0 || n > self.total - self.in_use {
            return Err(Errno::NoMem);
        }
        let start = self.hint.min(self.used.len() - 1);
        let found = self.find_run(start, n).or_else(|| if start > 0 { self.find_run(0, n) } else { None });
        let first = found.ok_or(Errno::NoMem)?;
        self.mark(first, n, true);
        self.in_use += n;
        self.hint = (first + n as usize) / 64;
        Ok(self.lo + first as Slot)
    }

    /// First index (relative to `lo`) of a run of `n` free slots starting at or after word
    /// `from_word`, within [`MAX_RUN_SCAN`] words (bits past the top are marked used, so a
    /// run never leaves the range). A word at a time: whole free words extend a run, a
    /// run inside one word is found by shifting its free mask, the free bits at a word's
    /// top begin a run that the next word may finish.
    fn find_run(&self, from_word: usize, n: u32) -> Option<usize> {
        let n = n as usize;
        let end = self.used.len().min(from_word.saturating_add(MAX_RUN_SCAN));
        let (mut run_start, mut run) = (from_word * 64, 0usize);
        for w in from_word..end {
            let u = self.used[w];
            if u == 0 {
                if run == 0 {
                    run_start = w * 64;
                }
                run += 64;
                if run >= n {
                    return Some(run_start);
                }
                continue;
            }
            // The free bits at the bottom finish a run begun below.
            let low = u.trailing_zeros() as usize;
            if run > 0 && run + low >= n {
                return Some(run_start);
            }
            if n < 64 {
                // Bit i of `m`: slots i .. i + n of this word are all free.
                let mut m = !u;
                let mut len = 1;
                while len * 2 <= n {
                    m &= m >> len;
                    len *= 2;
                }
                if len < n {
                    m &= m >> (n - len);
                }
                if m != 0 {
                    return Some(w * 64 + m.trailing_zeros() as usize);
                }
            }
            // The free bits at the top begin a run.
            run = u.leading_zeros() as usize;
            run_start = w * 64 + 64 - run;
        }
        None
    }

    fn mark(&mut self, first: usize, n: u32, used: bool) {
        for i in first..first + n as usize {
            let (w, b) = (i / 64, 1u64 << (i % 64));
            if used {
                self.set_used(w, b);
            } else {
                self.set_free(w, b);
            }
        }
    }

    /// Is `s` allocated?
    pub fn is_used(&self, s: Slot) -> bool {
        if s < self.lo || s >= self.hi {
            return false;
        }
        let i = (s - self.lo) as usize;
        self.used[i / 64] & (1 << (i % 64)) != 0
    }

    /// Return a slot (it must be empty in the CNode by now).
    pub fn free(&mut self, s: Slot) {
        debug_assert!(self.is_used(s), "slot {s} freed twice or not ours");
        if !self.is_used(s) {
            return;
        }
        let i = (s - self.lo) as usize;
        self.set_free(i / 64, 1 << (i % 64));
        self.in_use -= 1;
    }

    /// One past the highest slot of the range.
    pub fn top(&self) -> Slot {
        self.hi
    }

    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    pub fn free_count(&self) -> u32 {
        self.total - self.in_use
    }

    /// The longest run of free slots (tests: capacity comes back after frees).
    pub fn longest_free_run(&self) -> u32 {
        let mut best = 0u32;
        let mut run = 0u32;
        for i in 0..self.total as usize {
            if self.used[i / 64] & (1 << (i % 64)) == 0 {
                run += 1;
                best = best.max(run);
            } else {
                run = 0;
            }
        }
        best
    }

    /// Heap bytes of the bitmaps.
    pub fn heap_bytes(&self) -> usize {
        (self.used.capacity() + self.summary.capacity()) * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_single_slots_serve_runs_again() {
        let mut a = SlotAlloc::new(10, 10 + 1000);
        let all: Vec<Slot> = (0..1000).map(|_| a.alloc().unwrap()).collect();
        assert_eq!(all[0], 10);
        assert_eq!(a.alloc(), Err(Errno::NoMem));
        assert_eq!(a.alloc_contig(1), Err(Errno::NoMem));
        // Free every other slot: no run of 2 exists.
        for &s in all.iter().step_by(2) {
            a.free(s);
        }
        assert_eq!(a.alloc_contig(2), Err(Errno::NoMem));
        assert_eq!(a.longest_free_run(), 1);
        for &s in all.iter().skip(1).step_by(2) {
            a.free(s);
        }
        assert_eq!(a.longest_free_run(), 1000);
        let r = a.alloc_contig(256).unwrap();
        assert!((10..10 + 1000 - 256).contains(&r));
        assert_eq!(a.in_use(), 256);
    }

    #[test]
    fn runs_cross_words_and_respect_the_top() {
        let mut a = SlotAlloc::new(1, 1 + 130);
        let x = a.alloc_contig(100).unwrap();
        assert_eq!(x, 1);
        assert_eq!(a.alloc_contig(31), Err(Errno::NoMem));
        let y = a.alloc_contig(30).unwrap();
        assert_eq!(y, 101);
        assert_eq!(a.free_count(), 0);
        for s in x..x + 100 {
            a.free(s);
        }
        assert_eq!(a.alloc_contig(100).unwrap(), 1);
    }

    #[test]
    fn runs_found_are_free_and_searches_stay_bounded() {
        // Fragment 2^18 slots at random, then ask for runs: every run returned was free.
        let mut a = SlotAlloc::new(1, 1 + (1 << 18));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut held = Vec::new();
        while a.free_count() > 1000 {
            held.push(a.alloc().unwrap());
        }
        for _ in 0..600 {
            let s = held.swap_remove((rnd() % held.len() as u64) as usize);
            a.free(s);
        }
        for _ in 0..200 {
            let n = 1 + (rnd() % 100) as u32;
            if let Ok(r) = a.alloc_contig(n) {
                for s in r..r + n {
                    assert!(a.is_used(s));
                    assert!(!held.contains(&s), "slot {s} handed out twice");
                    held.push(s);
                }
            }
        }
        // Freed again, a whole run is found at once.
        for s in held.drain(..) {
            a.free(s);
        }
        assert_eq!(a.alloc_contig(256).map(|r| r >= 1), Ok(true));
    }
}
