//! `mem-heap`: a thread-safe heap whose memory comes from the seL4 memory server.
//!
//! [`Heap`] is a `GlobalAlloc` (and a C `malloc` family, [`Heap::c_malloc`] ..) made of
//! two parts:
//! - blocks below [`LARGE`] bytes come from `dlmalloc` (a well-kept port of Doug Lea's
//!   allocator, whose `Allocator` trait is made for mmap-backed systems); it asks for
//!   memory in segments of at least [`SEGMENT`] bytes, and gives a segment back when it
//!   is wholly free (every 4,096 large frees, or at [`Heap::trim`]) and the free top of a
//!   segment at trim time;
//! - blocks of [`LARGE`] bytes or more (with alignment up to a page) are mapped on their
//!   own and unmapped when freed, like glibc's `mmap` threshold: freeing a large block
//!   lowers the client's resident charge at once.
//!
//! Memory is mapped lazily (private anonymous, read-write): pages are only charged to the
//! client when first touched, and come zero-filled, so `alloc_zeroed` of a large block
//! costs nothing until used. All of it goes through a [`Pages`] provider: the client
//! library implements it over the server's `Mmap`/`Munmap` (`mem_client::heap`), host tests
//! over the host allocator. When the provider says no (the client's quota, the server's
//! memory), the allocation returns null, [`Heap::last_error`] keeps the errno and the
//! provider's [`Pages::out_of_memory`] hook is told once per failure (to print why) before
//! Rust's alloc-error path runs; the heap stays usable.
//!
//! One spin lock guards everything (calls to the provider included), so any number of
//! threads may allocate and free concurrently. The provider must not allocate from this
//! heap. Neighbours: `mem-client` (`ServerPages`), `mem-capi` (C `malloc`).

#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use dlmalloc::Dlmalloc;

/// Page size of the memory the provider maps.
pub const PAGE: usize = 4096;
/// Blocks of this many bytes or more are mapped on their own.
pub const LARGE: usize = 256 * 1024;
/// Smallest piece of memory dlmalloc asks the provider for.
pub const SEGMENT: usize = 64 * 1024;
/// Bytes in front of every C block (its size), keeping the C alignment of 16.
const C_HEADER: usize = 16;
/// The alignment C's `malloc` promises (`max_align_t`).
const C_ALIGN: usize = 16;

/// Where the heap's memory comes from.
pub trait Pages: Send + Sync {
    /// Map `len` bytes (a multiple of [`PAGE`]) of fresh zero-filled read-write memory,
    /// page aligned; its address, or an errno.
    fn map(&self, len: usize) -> Result<usize, i32>;
    /// Unmap `len` bytes at `addr` (both page aligned, inside one earlier `map`).
    fn unmap(&self, addr: usize, len: usize) -> Result<(), i32>;
    /// An allocation of `bytes` failed because `map` answered `errno` (for a message; must
    /// not allocate).
    fn out_of_memory(&self, _bytes: usize, _errno: i32) {}
}

/// Counters of a [`Heap`], in bytes unless said otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Mapped through the provider now (segments and large blocks).
    pub mapped: usize,
    /// The most ever mapped at once.
    pub peak_mapped: usize,
    /// Calls to `map` that succeeded.
    pub maps: usize,
    /// Calls to `unmap` (whole or partial).
    pub unmaps: usize,
    /// Large blocks live now.
    pub large_blocks: usize,
    /// Calls to `map` that failed.
    pub failures: usize,
}

/// The provider with the heap's counters; dlmalloc's system allocator.
struct Sys<P> {
    pages: P,
    mapped: AtomicUsize,
    peak: AtomicUsize,
    maps: AtomicUsize,
    unmaps: AtomicUsize,
    large: AtomicUsize,
    failures: AtomicUsize,
    last_error: AtomicI32,
}

impl<P: Pages> Sys<P> {
    fn map(&self, len: usize) -> Option<usize> {
        match self.pages.map(len) {
            Ok(a) => {
                let now = self.mapped.fetch_add(len, Ordering::Relaxed) + len;
                self.peak.fetch_max(now, Ordering::Relaxed);
                self.maps.fetch_add(1, Ordering::Relaxed);
                Some(a)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.last_error.store(e, Ordering::Relaxed);
                None
            }
        }
    }

    fn unmap(&self, addr: usize, len: usize) -> bool {
        if self.pages.unmap(addr, len).is_err() {
            return false;
        }
        self.mapped.fetch_sub(len, Ordering::Relaxed);
        self.unmaps.fetch_add(1, Ordering::Relaxed);
        true
    }
}

// SAFETY: `alloc` returns memory the provider mapped for this heap alone (page aligned,
// zero-filled, `size` bytes or null), `free`/`free_part` unmap only what dlmalloc got from
// `alloc` (whole, or a page-aligned tail: dlmalloc trims in units of its granularity, a
// multiple of the page size), and `remap` never moves anything.
unsafe impl<P: Pages> dlmalloc::Allocator for Sys<P> {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        let len = size.next_multiple_of(PAGE);
        match self.map(len) {
            Some(a) => (a as *mut u8, len, 0),
            None => (ptr::null_mut(), 0, 0),
        }
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        ptr::null_mut()
    }

    fn free_part(&self, ptr: *mut u8, old: usize, new: usize) -> bool {
        let (at, len) = (ptr as usize + new, old - new);
        if at % PAGE != 0 || len % PAGE != 0 {
            return false;
        }
        self.unmap(at, len)
    }

    fn free(&self, ptr: *mut u8, size: usize) -> bool {
        self.unmap(ptr as usize, size)
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        true
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}

/// A heap over the pages of `P` (see the crate docs).
pub struct Heap<P> {
    dl: spin::Mutex<Dlmalloc<Sys<P>>>,
}

impl<P: Pages> Heap<P> {
    /// A heap over `pages`; maps nothing until the first allocation. `const`, so that it
    /// can be a `static` `#[global_allocator]`.
    pub const fn new(pages: P) -> Heap<P> {
        let sys = Sys {
            pages,
            mapped: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            maps: AtomicUsize::new(0),
            unmaps: AtomicUsize::new(0),
            large: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
            last_error: AtomicI32::new(0),
        };
        let mut dl = Dlmalloc::new_with_allocator(sys);
        let ok = dl.set_granularity(SEGMENT);
        assert!(ok, "SEGMENT is a power of two >= dlmalloc's minimum");
        Heap { dl: spin::Mutex::new(dl) }
    }

    /// The provider (a copy: providers are handles, like an endpoint cap or a reference).
    pub fn provider(&self) -> P
    where
        P: Copy,
    {
        self.dl.lock().allocator().pages
    }

    /// The counters now.
    pub fn stats(&self) -> HeapStats {
        let g = self.dl.lock();
        let s = g.allocator();
        HeapStats {
            mapped: s.mapped.load(Ordering::Relaxed),
            peak_mapped: s.peak.load(Ordering::Relaxed),
            maps: s.maps.load(Ordering::Relaxed),
            unmaps: s.unmaps.load(Ordering::Relaxed),
            large_blocks: s.large.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
        }
    }

    /// The errno of the last failed `map` (0 if none failed).
    pub fn last_error(&self) -> i32 {
        self.dl.lock().allocator().last_error.load(Ordering::Relaxed)
    }

    /// Give every wholly free segment, and the free top of the others, back to the
    /// provider. Whether anything was given back.
    pub fn trim(&self) -> bool {
        // SAFETY: dlmalloc's trim only releases memory it holds free.
        unsafe { self.dl.lock().trim(0) }
    }

    fn is_large(layout: Layout) -> bool {
        layout.size() >= LARGE && layout.align() <= PAGE
    }

    fn failed(&self, bytes: usize) {
        let g = self.dl.lock();
        let s = g.allocator();
        let e = s.last_error.load(Ordering::Relaxed);
        s.pages.out_of_memory(bytes, e);
    }

    fn large_alloc(&self, layout: Layout) -> *mut u8 {
        let len = match layout.size().checked_next_multiple_of(PAGE) {
            Some(l) => l,
            None => return ptr::null_mut(),
        };
        let g = self.dl.lock();
        let s = g.allocator();
        match s.map(len) {
            Some(a) => {
                s.large.fetch_add(1, Ordering::Relaxed);
                a as *mut u8
            }
            None => ptr::null_mut(),
        }
    }

    fn large_free(&self, p: *mut u8, layout: Layout) {
        let len = layout.size().next_multiple_of(PAGE);
        let g = self.dl.lock();
        let s = g.allocator();
        if s.unmap(p as usize, len) {
            s.large.fetch_sub(1, Ordering::Relaxed);
        }
    }

    // --- The C malloc family: a 16-byte header in front of each block keeps its size. ---

    /// C `malloc(n)`: 16-byte aligned, or null (errno in [`Heap::last_error`]).
    pub fn c_malloc(&self, n: usize) -> *mut u8 {
        let Some(layout) = c_layout(n) else { return ptr::null_mut() };
        // SAFETY: `layout` has a non-zero size (the header).
        c_block(unsafe { self.alloc(layout) }, n)
    }

    /// C `calloc(count, size)`: zero-filled, or null on overflow or no memory.
    pub fn c_calloc(&self, count: usize, size: usize) -> *mut u8 {
        let Some(n) = count.checked_mul(size) else { return ptr::null_mut() };
        let Some(layout) = c_layout(n) else { return ptr::null_mut() };
        // SAFETY: as in `c_malloc`.
        c_block(unsafe { self.alloc_zeroed(layout) }, n)
    }

    /// C `free(p)` (null is allowed).
    ///
    /// # Safety
    /// `p` is null or was returned by this heap's `c_malloc`/`c_calloc`/`c_realloc` and
    /// not freed since.
    pub unsafe fn c_free(&self, p: *mut u8) {
        if p.is_null() {
            return;
        }
        // SAFETY: per the contract, the header lies right before `p`.
        unsafe {
            let base = p.sub(C_HEADER);
            let n = (base as *const usize).read();
            self.dealloc(base, c_layout(n).expect("size was valid at allocation"));
        }
    }

    /// C `realloc(p, n)`: null `p` is `malloc`; on failure null and `p` stays valid.
    ///
    /// # Safety
    /// As for [`Heap::c_free`].
    pub unsafe fn c_realloc(&self, p: *mut u8, n: usize) -> *mut u8 {
        if p.is_null() {
            return self.c_malloc(n);
        }
        let Some(new_layout) = c_layout(n) else { return ptr::null_mut() };
        // SAFETY: per the contract, the header lies right before `p`.
        unsafe {
            let base = p.sub(C_HEADER);
            let old = (base as *const usize).read();
            c_block(self.realloc(base, c_layout(old).expect("valid at allocation"), new_layout.size()), n)
        }
    }

    /// The usable size of a C block.
    ///
    /// # Safety
    /// As for [`Heap::c_free`], `p` not null.
    pub unsafe fn c_size(&self, p: *const u8) -> usize {
        // SAFETY: per the contract.
        unsafe { (p.sub(C_HEADER) as *const usize).read() }
    }
}

/// The C pointer of a fresh block `p` of `n + C_HEADER` bytes (null stays null): its size
/// written in the header, the bytes after it.
fn c_block(p: *mut u8, n: usize) -> *mut u8 {
    if p.is_null() {
        return p;
    }
    // SAFETY: `p` is a live block of at least `n + C_HEADER` bytes, 16-byte aligned
    // (`c_layout`), so the header word and the pointer after it are inside it.
    unsafe {
        (p as *mut usize).write(n);
        p.add(C_HEADER)
    }
}

fn c_layout(n: usize) -> Option<Layout> {
    let size = n.checked_add(C_HEADER)?;
    Layout::from_size_align(size, C_ALIGN).ok()
}

// SAFETY: every block comes from dlmalloc (under the lock) or from a mapping of its own
// whose size and alignment the layout decides the same way at allocation and at free;
// null is returned when memory cannot be had.
unsafe impl<P: Pages> GlobalAlloc for Heap<P> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = if Self::is_large(layout) {
            self.large_alloc(layout)
        } else {
            // SAFETY: GlobalAlloc's contract (non-zero size) is dlmalloc's.
            unsafe { self.dl.lock().malloc(layout.size(), layout.align()) }
        };
        if p.is_null() {
            self.failed(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = if Self::is_large(layout) {
            // A fresh mapping is zero-filled (lazily: no page is touched here).
            self.large_alloc(layout)
        } else {
            // SAFETY: as in `alloc`.
            unsafe { self.dl.lock().calloc(layout.size(), layout.align()) }
        };
        if p.is_null() {
            self.failed(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if Self::is_large(layout) {
            self.large_free(p, layout);
        } else {
            // SAFETY: `p` came from dlmalloc with this layout (GlobalAlloc's contract and
            // the same `is_large` decision at allocation).
            unsafe { self.dl.lock().free(p, layout.size(), layout.align()) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        if !Self::is_large(layout) && !Self::is_large(new_layout) {
            // SAFETY: both sides are dlmalloc blocks; GlobalAlloc's contract.
            let q = unsafe { self.dl.lock().realloc(p, layout.size(), layout.align(), new_size) };
            if q.is_null() {
                self.failed(new_size);
            }
            return q;
        }
        if Self::is_large(layout)
            && Self::is_large(new_layout)
            && layout.size().next_multiple_of(PAGE) == new_size.next_multiple_of(PAGE)
        {
            return p;
        }
        // SAFETY: `new_layout` is valid and non-zero (GlobalAlloc's contract for realloc).
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are live and distinct; the copy stays within both.
            unsafe {
                ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
        }
        q
    }
}
