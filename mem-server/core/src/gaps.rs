//! Free-range index: the gaps between areas, searchable first-fit in O(log n).
//!
//! A treap keyed by gap start (one allocation per gap: nothing is ever rebuilt or moved in
//! bulk, so every operation costs O(depth) whatever the past peak), each node augmented
//! with the largest gap length in its subtree, so "lowest gap that fits `len` bytes at or above `lo`" prunes every subtree
//! that cannot hold it (axmem scans its sorted areas linearly instead). Gaps never overlap and
//! are sorted by start, so their ends are sorted too, which lets the search skip everything
//! below `lo`. Used only by `area.rs`, which keeps it equal to the complement of its areas.
//!
//! Attacker-proof shape: node priorities come from a generator seeded per space from the
//! server's secret boot seed (`Config::seed`), so whatever addresses a client chooses, the
//! tree is a random treap of expected depth O(log n) (about 2 ln n: ~25 for 65,530 areas)
//! and no client can make it a chain; the recursion of split, merge and the search is
//! bounded by that depth. An aligned search (2 MiB) looks at no more than
//! [`MISFIT_BUDGET`] gaps that are long enough but too misaligned to hold the range; past
//! that it settles for the lowest gap of `len + align - 4 KiB` (which fits whatever its
//! start), so a client cannot make one search visit every gap.

use alloc::boxed::Box;
use alloc::vec::Vec;

/// Gaps long enough but misaligned that one aligned search examines before it settles for
/// a gap that fits whatever its start.
pub const MISFIT_BUDGET: u32 = 64;

type Link = Option<Box<Node>>;

/// One gap. Nodes are allocated one by one (no arena): inserting or removing a gap never
/// moves or rebuilds the others, so every operation is O(depth) whatever the past peak,
/// and a removed gap's memory is given back at once.
#[derive(Clone, Debug)]
struct Node {
    start: u64,
    len: u64,
    max: u64,
    prio: u32,
    left: Link,
    right: Link,
}

/// The set of free ranges `[start, start + len)`.
#[derive(Clone, Debug)]
pub struct Gaps {
    root: Link,
    seed: u32,
    count: usize,
}

impl Default for Gaps {
    fn default() -> Self {
        Self::new(0)
    }
}

fn max_of(l: &Link) -> u64 {
    l.as_ref().map_or(0, |n| n.max)
}

fn update(n: &mut Node) {
    n.max = n.len.max(max_of(&n.left)).max(max_of(&n.right));
}

/// Split subtree `t` into (keys < key, keys >= key).
fn split(t: Link, key: u64) -> (Link, Link) {
    let Some(mut n) = t else { return (None, None) };
    if n.start < key {
        let (a, b) = split(n.right.take(), key);
        n.right = a;
        update(&mut n);
        (Some(n), b)
    } else {
        let (a, b) = split(n.left.take(), key);
        n.left = b;
        update(&mut n);
        (a, Some(n))
    }
}

/// Merge two subtrees where every key of `a` is below every key of `b`.
fn merge(a: Link, b: Link) -> Link {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(mut a), Some(mut b)) => {
            if a.prio > b.prio {
                a.right = merge(a.right.take(), Some(b));
                update(&mut a);
                Some(a)
            } else {
                b.left = merge(Some(a), b.left.take());
                update(&mut b);
                Some(b)
            }
        }
    }
}

/// Change the gap starting at `start` (in subtree `t`) in place; the lengths along the
/// path are recomputed on the way back.
fn reshape_in(t: &mut Link, start: u64, new_start: u64, new_len: u64) -> bool {
    let Some(n) = t else { return false };
    let found = if n.start == start {
        n.start = new_start;
        n.len = new_len;
        true
    } else if start < n.start {
        reshape_in(&mut n.left, start, new_start, new_len)
    } else {
        reshape_in(&mut n.right, start, new_start, new_len)
    };
    if found {
        update(n);
    }
    found
}

impl Gaps {
    /// An empty index whose priorities are drawn from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        let mixed = splitmix64(seed);
        let s = (mixed ^ (mixed >> 32)) as u32;
        Gaps { root: None, seed: if s == 0 { 0x9E37_79B9 } else { s }, count: 0 }
    }

    /// Number of gaps.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn rand(&mut self) -> u32 {
        // xorshift32 from the secret per-space seed (reproducible for a given seed).
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        x
    }

    /// Insert the gap `[start, start + len)`; it must not overlap an existing one.
    pub fn insert(&mut self, start: u64, len: u64) {
        debug_assert!(len > 0);
        let prio = self.rand();
        let node = Box::new(Node { start, len, max: len, prio, left: None, right: None });
        let (a, b) = split(self.root.take(), start);
        self.root = merge(merge(a, Some(node)), b);
        self.count += 1;
    }

    /// Remove the gap starting exactly at `start`; returns its length.
    pub fn remove(&mut self, start: u64) -> Option<u64> {
        let (a, b) = split(self.root.take(), start);
        let (m, c) = split(b, start.saturating_add(1));
        let removed = m.map(|n| n.len);
        if removed.is_some() {
            self.count -= 1;
        }
        self.root = merge(a, c);
        removed
    }

    /// Change the gap starting at `start` in place to `[new_start, new_start + new_len)`.
    /// The caller guarantees the order of gaps is unchanged (it stays between its
    /// neighbours), so only the lengths along the path need recomputing. Returns false if
    /// no gap starts at `start`.
    pub fn reshape(&mut self, start: u64, new_start: u64, new_len: u64) -> bool {
        debug_assert!(new_len > 0);
        reshape_in(&mut self.root, start, new_start, new_len)
    }

    /// The gap with the greatest start `<= addr`, as `(start, len)`.
    pub fn floor(&self, addr: u64) -> Option<(u64, u64)> {
        let mut t = &self.root;
        let mut best = None;
        while let Some(n) = t {
            if n.start <= addr {
                best = Some((n.start, n.len));
                t = &n.right;
            } else {
                t = &n.left;
            }
        }
        best
    }

    /// The gap containing `addr`, as `(start, len)`.
    pub fn containing(&self, addr: u64) -> Option<(u64, u64)> {
        self.floor(addr).filter(|&(s, l)| addr - s < l)
    }

    /// Lowest address `a >= lo`, aligned to `align` (a power of two), such that
    /// `[a, a + len)` lies inside one gap.
    pub fn first_fit(&self, len: u64, align: u64, lo: u64) -> Option<u64> {
        let mut budget = MISFIT_BUDGET;
        match first_fit_in(&self.root, len, len, align, lo, &mut budget) {
            Some(a) => Some(a),
            None if budget == 0 => {
                // Too many misfits: any gap this long fits whatever its start.
                let need = len.checked_add(align - 4096)?;
                let mut unlimited = u32::MAX;
                first_fit_in(&self.root, need, len, align, lo, &mut unlimited)
            }
            None => None,
        }
    }

    /// Height of the tree (tests: the shape stays logarithmic).
    pub fn height(&self) -> usize {
        let mut best = 0;
        let mut stack: Vec<(&Link, usize)> = alloc::vec![(&self.root, 1usize)];
        while let Some((t, d)) = stack.pop() {
            let Some(n) = t else { continue };
            best = best.max(d);
            stack.push((&n.left, d + 1));
            stack.push((&n.right, d + 1));
        }
        best
    }

    /// All gaps in address order (tests and debugging).
    pub fn to_vec(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::with_capacity(self.count);
        let mut stack: Vec<&Node> = Vec::new();
        let mut t = self.root.as_deref();
        loop {
            while let Some(n) = t {
                stack.push(n);
                t = n.left.as_deref();
            }
            let Some(n) = stack.pop() else { break };
            out.push((n.start, n.len));
            t = n.right.as_deref();
        }
        out
    }

    /// Heap bytes used (benchmarks report metadata per page): one allocation per gap.
    pub fn heap_bytes(&self) -> usize {
        self.count * core::mem::size_of::<Node>()
    }
}

/// Lowest fit in subtree `t` among gaps of at least `need` bytes: an `align`-aligned range
/// of `len` bytes at or above `lo`.
fn first_fit_in(t: &Link, need: u64, len: u64, align: u64, lo: u64, budget: &mut u32) -> Option<u64> {
    let n = t.as_ref()?;
    if n.max < need || *budget == 0 {
        return None;
    }
    // Gaps in the left subtree end at or below n.start: useless if n.start <= lo.
    if n.start > lo {
        if let Some(a) = first_fit_in(&n.left, need, len, align, lo, budget) {
            return Some(a);
        }
        if *budget == 0 {
            return None;
        }
    }
    let gap_end = n.start + n.len;
    let from = n.start.max(lo);
    if n.len >= need && gap_end > from {
        match align_up(from, align) {
            Some(a) if a.checked_add(len).is_some_and(|e| e <= gap_end) => return Some(a),
            _ => *budget = budget.saturating_sub(1),
        }
    }
    first_fit_in(&n.right, need, len, align, lo, budget)
}

/// SplitMix64: spreads a seed over all bits.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Round `x` up to a multiple of `align` (a power of two); `None` on overflow.
pub fn align_up(x: u64, align: u64) -> Option<u64> {
    Some(x.checked_add(align - 1)? & !(align - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_prefers_lowest_and_respects_lo_and_align() {
        let mut g = Gaps::new(7);
        g.insert(0x1000, 0x1000);
        g.insert(0x10000, 0x8000);
        g.insert(0x100000, 0x400000);
        assert_eq!(g.first_fit(0x1000, 0x1000, 0), Some(0x1000));
        assert_eq!(g.first_fit(0x2000, 0x1000, 0), Some(0x10000));
        assert_eq!(g.first_fit(0x1000, 0x1000, 0x12000), Some(0x12000));
        assert_eq!(g.first_fit(0x9000, 0x1000, 0), Some(0x100000));
        assert_eq!(g.first_fit(0x1000, 0x200000, 0), Some(0x200000));
        assert_eq!(g.first_fit(0x200000, 0x200000, 0), Some(0x200000));
        assert_eq!(g.first_fit(0x500000, 0x1000, 0), None);
        assert_eq!(g.remove(0x10000), Some(0x8000));
        assert_eq!(g.remove(0x10000), None);
        assert_eq!(g.first_fit(0x2000, 0x1000, 0), Some(0x100000));
        assert_eq!(g.containing(0x1fff), Some((0x1000, 0x1000)));
        assert_eq!(g.containing(0x2000), None);
        assert_eq!(g.to_vec(), alloc::vec![(0x1000, 0x1000), (0x100000, 0x400000)]);
    }

    #[test]
    fn many_gaps_stay_consistent() {
        let mut g = Gaps::new(7);
        for i in 0..2000u64 {
            g.insert(i * 0x10000, 0x1000 + (i % 7) * 0x1000);
        }
        for i in (0..2000u64).step_by(2) {
            assert!(g.remove(i * 0x10000).is_some());
        }
        assert_eq!(g.len(), 1000);
        // Lowest remaining gap of >= 7 pages: i odd with i % 7 == 6 → i = 13.
        assert_eq!(g.first_fit(0x7000, 0x1000, 0), Some(13 * 0x10000));
        let v = g.to_vec();
        assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn removing_most_gaps_gives_the_memory_back() {
        let mut g = Gaps::new(3);
        for i in 0..10_000u64 {
            g.insert(i * 0x2000, 0x1000);
        }
        let peak = g.heap_bytes();
        for i in 0..9_990u64 {
            assert!(g.remove(i * 0x2000).is_some());
        }
        assert!(g.heap_bytes() * 50 < peak, "{} bytes left of {peak}", g.heap_bytes());
        assert_eq!(g.len(), 10);
        assert_eq!(g.first_fit(0x1000, 0x1000, 0), Some(9_990 * 0x2000));
        assert_eq!(g.to_vec().len(), 10);
        for i in 0..5u64 {
            g.insert(i * 0x2000, 0x1000);
        }
        assert_eq!(g.first_fit(0x1000, 0x1000, 0), Some(0));
    }

    #[test]
    fn ascending_inserts_do_not_make_a_chain() {
        // The worst order for a deterministic tree: every new gap above all others.
        for seed in [1u64, 2, 0xdead_beef] {
            let mut g = Gaps::new(seed);
            for i in 0..20_000u64 {
                g.insert(i * 0x2000, 0x1000);
            }
            assert!(g.height() < 80, "height {} for 20,000 ascending gaps", g.height());
        }
    }
}
