//! Free-range index: the gaps between areas, searchable first-fit in O(log n).
//!
//! An arena-based treap keyed by gap start, each node augmented with the largest gap length
//! in its subtree, so "lowest gap that fits `len` bytes at or above `lo`" prunes every subtree
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

use alloc::vec::Vec;

const NIL: u32 = u32::MAX;

/// Gaps long enough but misaligned that one aligned search examines before it settles for
/// a gap that fits whatever its start.
pub const MISFIT_BUDGET: u32 = 64;

#[derive(Clone, Debug)]
struct Node {
    start: u64,
    len: u64,
    max: u64,
    prio: u32,
    left: u32,
    right: u32,
}

/// The set of free ranges `[start, start + len)`.
#[derive(Clone, Debug)]
pub struct Gaps {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    seed: u32,
    count: usize,
}

impl Default for Gaps {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Gaps {
    /// An empty index whose priorities are drawn from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        let mixed = splitmix64(seed);
        let s = (mixed ^ (mixed >> 32)) as u32;
        Gaps { nodes: Vec::new(), free: Vec::new(), root: NIL, seed: if s == 0 { 0x9E37_79B9 } else { s }, count: 0 }
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

    fn max_of(&self, n: u32) -> u64 {
        if n == NIL {
            0
        } else {
            self.nodes[n as usize].max
        }
    }

    fn update(&mut self, n: u32) {
        let (l, r) = (self.nodes[n as usize].left, self.nodes[n as usize].right);
        let m = self.nodes[n as usize].len.max(self.max_of(l)).max(self.max_of(r));
        self.nodes[n as usize].max = m;
    }

    /// Split subtree `t` into (keys < key, keys >= key).
    fn split(&mut self, t: u32, key: u64) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.nodes[t as usize].start < key {
            let (a, b) = self.split(self.nodes[t as usize].right, key);
            self.nodes[t as usize].right = a;
            self.update(t);
            (t, b)
        } else {
            let (a, b) = self.split(self.nodes[t as usize].left, key);
            self.nodes[t as usize].left = b;
            self.update(t);
            (a, t)
        }
    }

    /// Merge two subtrees where every key of `a` is below every key of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio > self.nodes[b as usize].prio {
            let r = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = r;
            self.update(a);
            a
        } else {
            let l = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = l;
            self.update(b);
            b
        }
    }

    /// Insert the gap `[start, start + len)`; it must not overlap an existing one.
    pub fn insert(&mut self, start: u64, len: u64) {
        debug_assert!(len > 0);
        let prio = self.rand();
        let node = Node { start, len, max: len, prio, left: NIL, right: NIL };
        let n = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let (a, b) = self.split(self.root, start);
        let a = self.merge(a, n);
        self.root = self.merge(a, b);
        self.count += 1;
    }

    /// Remove the gap starting exactly at `start`; returns its length.
    pub fn remove(&mut self, start: u64) -> Option<u64> {
        let (a, b) = self.split(self.root, start);
        let (m, c) = self.split(b, start.saturating_add(1));
        let removed = if m == NIL {
            None
        } else {
            self.free.push(m);
            self.count -= 1;
            Some(self.nodes[m as usize].len)
        };
        self.root = self.merge(a, c);
        if self.nodes.capacity() > 64 && self.count * 4 < self.nodes.capacity() {
            self.compact();
        }
        removed
    }

    /// Rebuild the arena densely (same tree shape, same priorities) so that the memory a
    /// past peak of gaps took is given back: the arena never holds more than a constant
    /// factor of the live gaps (`ledger::cost::AREA` counts on it). O(n), no recursion.
    fn compact(&mut self) {
        let mut order: Vec<Node> = Vec::with_capacity(self.count);
        let mut stack: Vec<u32> = Vec::new();
        let mut t = self.root;
        while t != NIL || !stack.is_empty() {
            while t != NIL {
                stack.push(t);
                t = self.nodes[t as usize].left;
            }
            let Some(n) = stack.pop() else { break };
            order.push(self.nodes[n as usize].clone());
            t = self.nodes[n as usize].right;
        }
        // Cartesian-tree build over the sorted gaps with their priorities (a max-heap on
        // priority, as `merge` keeps it), then the subtree maxima bottom-up.
        let mut spine: Vec<u32> = Vec::new();
        for n in order.iter_mut() {
            n.left = NIL;
            n.right = NIL;
        }
        for i in 0..order.len() as u32 {
            let mut last = NIL;
            while let Some(&top) = spine.last() {
                if order[top as usize].prio > order[i as usize].prio {
                    break;
                }
                last = top;
                spine.pop();
            }
            order[i as usize].left = last;
            if let Some(&top) = spine.last() {
                order[top as usize].right = i;
            }
            spine.push(i);
        }
        self.root = spine.first().copied().unwrap_or(NIL);
        self.nodes = order;
        self.free = Vec::new();
        // Post-order: children before parents.
        let mut post: Vec<u32> = Vec::with_capacity(self.nodes.len());
        let mut todo: Vec<u32> = Vec::new();
        if self.root != NIL {
            todo.push(self.root);
        }
        while let Some(n) = todo.pop() {
            post.push(n);
            for c in [self.nodes[n as usize].left, self.nodes[n as usize].right] {
                if c != NIL {
                    todo.push(c);
                }
            }
        }
        for &n in post.iter().rev() {
            self.update(n);
        }
    }

    /// Change the gap starting at `start` in place to `[new_start, new_start + new_len)`.
    /// The caller guarantees the order of gaps is unchanged (it stays between its
    /// neighbours), so only the lengths along the path need recomputing. Returns false if
    /// no gap starts at `start`.
    pub fn reshape(&mut self, start: u64, new_start: u64, new_len: u64) -> bool {
        debug_assert!(new_len > 0);
        let mut path: [u32; 128] = [NIL; 128];
        let mut depth = 0;
        let mut t = self.root;
        while t != NIL {
            if depth == path.len() {
                // Astronomically unlikely treap depth: fall back to remove + insert.
                return self.remove(start).map(|_| self.insert(new_start, new_len)).is_some();
            }
            path[depth] = t;
            depth += 1;
            let n = &self.nodes[t as usize];
            if n.start == start {
                break;
            }
            t = if start < n.start { n.left } else { n.right };
        }
        if t == NIL {
            return false;
        }
        let n = &mut self.nodes[t as usize];
        n.start = new_start;
        n.len = new_len;
        for &p in path[..depth].iter().rev() {
            self.update(p);
        }
        true
    }

    /// The gap with the greatest start `<= addr`, as `(start, len)`.
    pub fn floor(&self, addr: u64) -> Option<(u64, u64)> {
        let mut t = self.root;
        let mut best = None;
        while t != NIL {
            let n = &self.nodes[t as usize];
            if n.start <= addr {
                best = Some((n.start, n.len));
                t = n.right;
            } else {
                t = n.left;
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
        match self.first_fit_in(self.root, len, len, align, lo, &mut budget) {
            Some(a) => Some(a),
            None if budget == 0 => {
                // Too many misfits: any gap this long fits whatever its start.
                let need = len.checked_add(align - 4096)?;
                let mut unlimited = u32::MAX;
                self.first_fit_in(self.root, need, len, align, lo, &mut unlimited)
            }
            None => None,
        }
    }

    /// Lowest fit in subtree `t` among gaps of at least `need` bytes: an `align`-aligned
    /// range of `len` bytes at or above `lo`.
    fn first_fit_in(&self, t: u32, need: u64, len: u64, align: u64, lo: u64, budget: &mut u32) -> Option<u64> {
        if t == NIL || self.nodes[t as usize].max < need || *budget == 0 {
            return None;
        }
        let n = &self.nodes[t as usize];
        // Gaps in the left subtree end at or below n.start: useless if n.start <= lo.
        if n.start > lo {
            if let Some(a) = self.first_fit_in(n.left, need, len, align, lo, budget) {
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
        self.first_fit_in(n.right, need, len, align, lo, budget)
    }

    /// Height of the tree (tests: the shape stays logarithmic).
    pub fn height(&self) -> usize {
        let mut best = 0;
        let mut stack = alloc::vec![(self.root, 1usize)];
        while let Some((t, d)) = stack.pop() {
            if t == NIL {
                continue;
            }
            best = best.max(d);
            stack.push((self.nodes[t as usize].left, d + 1));
            stack.push((self.nodes[t as usize].right, d + 1));
        }
        best
    }

    /// All gaps in address order (tests and debugging).
    pub fn to_vec(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::with_capacity(self.count);
        let mut stack = Vec::new();
        let mut t = self.root;
        while t != NIL || !stack.is_empty() {
            while t != NIL {
                stack.push(t);
                t = self.nodes[t as usize].left;
            }
            let n = stack.pop().unwrap_or(NIL);
            if n == NIL {
                break;
            }
            out.push((self.nodes[n as usize].start, self.nodes[n as usize].len));
            t = self.nodes[n as usize].right;
        }
        out
    }

    /// Heap bytes used (benchmarks report metadata per page).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * core::mem::size_of::<Node>() + self.free.capacity() * 4
    }
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
    fn removing_most_gaps_gives_the_arena_back() {
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
