//! The server's heap: `dlmalloc` over two regions of memory.
//!
//! - the *boot* region, [`BOOT_HEAP_SIZE`] bytes in `.bss`, which holds what the server
//!   allocates before it can map memory of its own (the core's tables for every slot);
//! - the *main* region at [`SERVER_HEAP_VADDR`]: at start, `main` takes 2 MiB frames from
//!   the core's own RAM and maps them there (the root task made the tables), then hands the
//!   region to the allocator with [`add_region`].
//!
//! How big the heap must be follows from the budgets (`mem-core`'s `ledger.rs`): every
//! space reserves its whole metadata budget when it is created, and the sum of those
//! reservations never exceeds `Limits::meta_capacity`, which `main` sets to the heap's size
//! minus what the server itself needs ([`GLOBAL_RESERVE`]). So no client can make an
//! allocation fail that another client needs, and the server does not run out of heap.
//!
//! `dlmalloc` asks this module for memory (its `Allocator` trait) only when its own free
//! lists cannot serve a request: it gets each region whole, at most once; memory is never
//! given back (the regions are the server's for good). Single-threaded: the lock only
//! detects re-entry (a panic inside the allocator), which stops the server.
//! Neighbours: `runtime.rs` (start-up, panic), `main.rs` (maps the main region).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dlmalloc::{Allocator, Dlmalloc};
use lock_api::{Mutex, RawMutex};
use mem_protocol::system::SERVER_HEAP_VADDR;

use crate::runtime::SingleThreadLock;

/// Bytes of the boot region.
pub const BOOT_HEAP_SIZE: usize = 12 * 1024 * 1024;

/// Heap the server keeps for its own bookkeeping beyond the clients' reservations: the
/// tables sized by the slot count (already in the boot region), the batch table, objects
/// outliving their owners (bounded by the shm limits) and allocator slack.
pub const GLOBAL_RESERVE: usize = 24 * 1024 * 1024;

#[repr(C, align(4096))]
struct BootHeap([u8; BOOT_HEAP_SIZE]);

static mut BOOT: BootHeap = BootHeap([0; BOOT_HEAP_SIZE]);

/// The regions dlmalloc may take, each once.
struct Regions {
    boot_taken: AtomicBool,
    main_len: AtomicUsize,
    main_taken: AtomicBool,
}

static REGIONS: Regions = Regions {
    boot_taken: AtomicBool::new(false),
    main_len: AtomicUsize::new(0),
    main_taken: AtomicBool::new(false),
};

/// Make the `len` bytes at [`SERVER_HEAP_VADDR`] (mapped read-write, zeroed, and never
/// used for anything else) available to the heap. Once only; later calls are ignored.
pub fn add_region(len: usize) {
    let _ = REGIONS.main_len.compare_exchange(0, len, Ordering::SeqCst, Ordering::SeqCst);
}

/// Bytes of heap in all: the boot region and the main region if added.
pub fn capacity() -> usize {
    BOOT_HEAP_SIZE + REGIONS.main_len.load(Ordering::SeqCst)
}

/// dlmalloc's system allocator: hands out the two regions.
pub struct Sys;

// SAFETY: `alloc` returns each region at most once (the flags are swapped before it is
// returned), whole, page aligned, and never used for anything else; everything else
// declines (nothing is remapped or released).
unsafe impl Allocator for Sys {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        if size <= BOOT_HEAP_SIZE && !REGIONS.boot_taken.swap(true, Ordering::SeqCst) {
            return (ptr::addr_of_mut!(BOOT).cast::<u8>(), BOOT_HEAP_SIZE, 0);
        }
        let main = REGIONS.main_len.load(Ordering::SeqCst);
        if main >= size && !REGIONS.main_taken.swap(true, Ordering::SeqCst) {
            return (SERVER_HEAP_VADDR as *mut u8, main, 0);
        }
        (ptr::null_mut(), 0, 0)
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        4096
    }
}

/// The global allocator: dlmalloc behind the single-thread lock, counting live bytes.
pub struct ServerAlloc {
    dl: Mutex<SingleThreadLock, Dlmalloc<Sys>>,
    live: AtomicUsize,
}

impl ServerAlloc {
    pub const fn new() -> Self {
        ServerAlloc { dl: Mutex::const_new(SingleThreadLock::INIT, Dlmalloc::new_with_allocator(Sys)), live: AtomicUsize::new(0) }
    }

    /// Bytes currently allocated (requested sizes).
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

// SAFETY: every method forwards to dlmalloc under the lock with the caller's layout; the
// counter is only arithmetic.
unsafe impl GlobalAlloc for ServerAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's (valid, non-zero-size) layout.
        let p = unsafe { self.dl.lock().malloc(layout.size(), layout.align()) };
        if !p.is_null() {
            self.live.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { self.dl.lock().calloc(layout.size(), layout.align()) };
        if !p.is_null() {
            self.live.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was returned by this allocator for `layout` (GlobalAlloc contract).
        unsafe { self.dl.lock().free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr`/`layout` as for `dealloc`, `new_size` per the GlobalAlloc contract.
        let p = unsafe { self.dl.lock().realloc(ptr, layout.size(), layout.align(), new_size) };
        if !p.is_null() {
            self.live.fetch_sub(layout.size(), Ordering::Relaxed);
            self.live.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}
