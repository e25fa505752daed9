//! A counting global allocator that attributes every heap byte either to the model kernel
//! (allocations made while a `Kernel` call of the model is running, see `kernel.rs`) or to
//! everything else: the core, plus the benchmark itself, which therefore never allocates
//! inside a measured window.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// `System`, with byte and block counters.
pub struct Counting;

static CORE_LIVE: AtomicI64 = AtomicI64::new(0);
static MODEL_LIVE: AtomicI64 = AtomicI64::new(0);
static CORE_ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set while the model kernel runs (const-initialised, no destructor: usable from the
    /// allocator at any time).
    static IN_MODEL: Cell<bool> = const { Cell::new(false) };
}

fn in_model() -> bool {
    IN_MODEL.try_with(Cell::get).unwrap_or(false)
}

/// Record `delta` live bytes; `block` counts one allocation (or reallocation).
fn account(delta: i64, block: bool) {
    if in_model() {
        MODEL_LIVE.fetch_add(delta, Relaxed);
    } else {
        CORE_LIVE.fetch_add(delta, Relaxed);
        if block {
            CORE_ALLOCS.fetch_add(1, Relaxed);
        }
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which implements the
// `GlobalAlloc` contract; the counters are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as i64, true);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            account(layout.size() as i64, true);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by this allocator, i.e. by `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as i64), false);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr`/`layout` come from this allocator (i.e. `System`); the caller
        // guarantees `new_size` is valid for `layout.align()`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(new_size as i64 - layout.size() as i64, true);
        }
        p
    }
}

/// Run `f` with its allocations attributed to the model.
pub fn as_model<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_MODEL.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(IN_MODEL.with(|c| c.replace(true)));
    f()
}

/// Counter snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Heap {
    /// Live bytes allocated outside the model (core + benchmark).
    pub core: i64,
    /// Live bytes allocated by the model kernel.
    pub model: i64,
    /// Allocations (and reallocations) outside the model so far.
    pub core_allocs: u64,
}

impl Heap {
    pub fn now() -> Heap {
        Heap { core: CORE_LIVE.load(Relaxed), model: MODEL_LIVE.load(Relaxed), core_allocs: CORE_ALLOCS.load(Relaxed) }
    }
}
