//! `mem-heap` on the host: a provider over the host allocator that keeps every mapping
//! (and can be told to refuse), so that the tests see exactly what the heap maps and gives
//! back, as the memory server would.
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mem_heap::{Heap, Pages, LARGE, PAGE};

const ENOMEM: i32 = 12;

#[derive(Default)]
struct Fake {
    /// Mapped ranges: start -> len.
    maps: Mutex<BTreeMap<usize, usize>>,
    /// The most bytes the provider maps at once.
    limit: AtomicUsize,
    ooms: AtomicUsize,
}

impl Fake {
    fn new(limit: usize) -> Fake {
        Fake { limit: AtomicUsize::new(limit), ..Fake::default() }
    }
    fn mapped(&self) -> usize {
        self.maps.lock().unwrap().values().sum()
    }
}

impl Pages for &'static Fake {
    fn map(&self, len: usize) -> Result<usize, i32> {
        assert!(len > 0 && len.is_multiple_of(PAGE), "map of {len}");
        if self.mapped() + len > self.limit.load(Ordering::Relaxed) {
            return Err(ENOMEM);
        }
        // SAFETY: non-zero size, page alignment.
        let p = unsafe { std::alloc::alloc_zeroed(Layout::from_size_align(len, PAGE).unwrap()) };
        assert!(!p.is_null());
        self.maps.lock().unwrap().insert(p as usize, len);
        Ok(p as usize)
    }

    fn unmap(&self, addr: usize, len: usize) -> Result<(), i32> {
        assert!(addr.is_multiple_of(PAGE) && len.is_multiple_of(PAGE), "unmap {addr:#x} {len}");
        let mut m = self.maps.lock().unwrap();
        let (&start, &whole) = m.range(..=addr).next_back().expect("unmap inside a mapping");
        assert!(addr + len <= start + whole, "unmap past its mapping");
        if addr == start && len == whole {
            m.remove(&start);
            // SAFETY: allocated with this layout in `map`.
            unsafe { std::alloc::dealloc(start as *mut u8, Layout::from_size_align(whole, PAGE).unwrap()) };
        } else {
            // A tail given back: keep the host block, count the rest only (the tail must be
            // the end of the mapping, as dlmalloc's trim does).
            assert_eq!(addr + len, start + whole, "only tails are given back");
            m.insert(start, whole - len);
        }
        Ok(())
    }

    fn out_of_memory(&self, _bytes: usize, errno: i32) {
        assert_eq!(errno, ENOMEM);
        self.ooms.fetch_add(1, Ordering::Relaxed);
    }
}

/// A heap over a provider the test can still look at (leaked: one per test).
fn heap(limit: usize) -> Heap<&'static Fake> {
    Heap::new(Box::leak(Box::new(Fake::new(limit))))
}

fn fake_of(h: &Heap<&'static Fake>) -> &'static Fake {
    h.provider()
}

fn lay(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

fn fill(p: *mut u8, n: usize, v: u8) {
    // SAFETY: the tests own `n` bytes at `p`.
    unsafe { std::ptr::write_bytes(p, v, n) }
}

fn all(p: *const u8, n: usize, v: u8) -> bool {
    // SAFETY: as in `fill`.
    unsafe { std::slice::from_raw_parts(p, n).iter().all(|&b| b == v) }
}

#[test]
fn small_blocks_share_segments_and_keep_their_bytes() {
    let h = heap(64 << 20);
    let mut blocks = Vec::new();
    for i in 0..2000usize {
        let size = 1 + (i * 37) % 3000;
        // SAFETY: non-zero size.
        let p = unsafe { h.alloc(lay(size, 8)) };
        assert!(!p.is_null());
        assert_eq!(p as usize % 8, 0);
        fill(p, size, i as u8);
        blocks.push((p, size, i as u8));
    }
    let s = h.stats();
    assert!(s.maps < 100, "segments, not one mapping per block: {s:?}");
    assert_eq!(s.large_blocks, 0);
    for &(p, size, v) in &blocks {
        assert!(all(p, size, v), "block intact");
    }
    for (p, size, _) in blocks {
        // SAFETY: allocated above with this layout.
        unsafe { h.dealloc(p, lay(size, 8)) };
    }
    h.trim();
    let s = h.stats();
    assert!(s.mapped <= 2 * mem_heap::SEGMENT, "nearly everything given back after trim: {s:?}");
    assert_eq!(s.mapped, fake_of(&h).mapped(), "the heap's count is the provider's");
}

#[test]
fn large_blocks_are_mapped_alone_and_unmapped_on_free() {
    let h = heap(64 << 20);
    // SAFETY: non-zero size.
    let p = unsafe { h.alloc(lay(LARGE, 8)) };
    assert_eq!(p as usize % PAGE, 0);
    let s = h.stats();
    assert_eq!((s.large_blocks, s.mapped, s.maps), (1, LARGE, 1));
    fill(p, LARGE, 0x5a);
    // SAFETY: allocated above.
    unsafe { h.dealloc(p, lay(LARGE, 8)) };
    let s = h.stats();
    assert_eq!((s.large_blocks, s.mapped, s.unmaps), (0, 0, 1));
    assert_eq!(s.peak_mapped, LARGE);
    // Zeroed large blocks are fresh mappings: zero without the heap writing them.
    // SAFETY: non-zero size.
    let z = unsafe { h.alloc_zeroed(lay(3 * LARGE + 5, 16)) };
    assert!(all(z, 3 * LARGE + 5, 0));
    // SAFETY: allocated above.
    unsafe { h.dealloc(z, lay(3 * LARGE + 5, 16)) };
    assert_eq!(h.stats().mapped, 0);
}

#[test]
fn realloc_moves_between_small_and_large_keeping_contents() {
    let h = heap(64 << 20);
    // SAFETY: non-zero sizes; each pointer is the live one of its layout.
    unsafe {
        let mut p = h.alloc(lay(100, 8));
        fill(p, 100, 1);
        p = h.realloc(p, lay(100, 8), 2 * LARGE);
        assert!(all(p, 100, 1));
        assert_eq!(h.stats().large_blocks, 1);
        fill(p, 2 * LARGE, 2);
        p = h.realloc(p, lay(2 * LARGE, 8), 2 * LARGE - 10);
        assert!(all(p, 2 * LARGE - 10, 2), "same pages: kept in place");
        p = h.realloc(p, lay(2 * LARGE - 10, 8), 300);
        assert!(all(p, 300, 2));
        assert_eq!(h.stats().large_blocks, 0);
        h.dealloc(p, lay(300, 8));
    }
}

#[test]
fn out_of_memory_is_null_with_the_errno_and_the_heap_goes_on() {
    let h = heap(1 << 20);
    // SAFETY: non-zero sizes.
    unsafe {
        assert!(h.alloc(lay(2 << 20, 8)).is_null());
        assert_eq!(h.last_error(), ENOMEM);
        let mut small = Vec::new();
        loop {
            let p = h.alloc(lay(4000, 8));
            if p.is_null() {
                break;
            }
            small.push(p);
            assert!(small.len() < 1000, "the limit must stop it");
        }
        assert!(h.stats().failures >= 2);
        assert_eq!(fake_of(&h).ooms.load(Ordering::Relaxed), h.stats().failures, "told once per failure");
        for p in small.drain(..) {
            h.dealloc(p, lay(4000, 8));
        }
        h.trim();
        let p = h.alloc(lay(LARGE, 8));
        assert!(!p.is_null(), "usable again once memory is back");
        h.dealloc(p, lay(LARGE, 8));
    }
}

#[test]
fn c_family() {
    let h = heap(64 << 20);
    // SAFETY: every pointer passed back is a live C block of this heap.
    unsafe {
        let p = h.c_malloc(10);
        assert_eq!(p as usize % 16, 0);
        assert_eq!(h.c_size(p), 10);
        fill(p, 10, 9);
        let q = h.c_realloc(p, 1 << 20);
        assert!(all(q, 10, 9));
        assert_eq!(h.c_size(q), 1 << 20);
        let q = h.c_realloc(q, 5);
        assert!(all(q, 5, 9));
        h.c_free(q);
        h.c_free(std::ptr::null_mut());
        let z = h.c_calloc(1000, 1000);
        assert!(all(z, 1_000_000, 0));
        h.c_free(z);
        assert!(h.c_calloc(usize::MAX, 2).is_null(), "overflow");
        assert!(h.c_malloc(usize::MAX - 8).is_null());
        let m = h.c_realloc(std::ptr::null_mut(), 7);
        assert!(!m.is_null());
        h.c_free(m);
    }
    h.trim();
    assert_eq!(h.stats().large_blocks, 0);
}

#[test]
fn many_threads_at_once() {
    let h = Arc::new(heap(256 << 20));
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let h = Arc::clone(&h);
            std::thread::spawn(move || {
                let mut live: Vec<(usize, usize, u8)> = Vec::new();
                let mut x = 0x9e37_79b9_u64 + u64::from(t);
                for i in 0..4000usize {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let size = if x.is_multiple_of(50) { LARGE + (x as usize % 100_000) } else { 1 + x as usize % 2000 };
                    // SAFETY: non-zero size.
                    let p = unsafe { h.alloc(lay(size, 16)) };
                    assert!(!p.is_null());
                    let v = (i as u8) ^ t;
                    fill(p, size, v);
                    live.push((p as usize, size, v));
                    if x.is_multiple_of(3) {
                        let (p, size, v) = live.swap_remove(x as usize % live.len());
                        assert!(all(p as *const u8, size, v), "no other thread wrote here");
                        // SAFETY: allocated above with this layout.
                        unsafe { h.dealloc(p as *mut u8, lay(size, 16)) };
                    }
                }
                for (p, size, v) in live {
                    assert!(all(p as *const u8, size, v));
                    // SAFETY: as above.
                    unsafe { h.dealloc(p as *mut u8, lay(size, 16)) };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    h.trim();
    let s = h.stats();
    assert_eq!(s.large_blocks, 0);
    // Trimmed back from a peak of tens of MiB to a few segments: how many stay (dlmalloc's
    // top chunk and the segments its release pass keeps) depends on how the threads' segment
    // requests interleaved — 4 or 5 in 150 runs; 4 was asserted before and failed ~7 %.
    assert!(s.mapped <= 8 * mem_heap::SEGMENT, "{s:?}");
    assert!(s.peak_mapped >= 64 * s.mapped, "{s:?}");
    assert_eq!(s.mapped, fake_of(&h).mapped());
}
