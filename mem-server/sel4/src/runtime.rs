//! Process runtime of the memory server: what a non-root seL4 thread needs before `main`.
//!
//! The root task loads this ELF into the server's own VSpace (every `PT_LOAD` segment,
//! including the ELF and program headers at the start of the first one: the TLS setup
//! finds `PT_TLS` through them), maps the server's IPC buffer frame at
//! [`SERVER_IPC_BUFFER_VADDR`], configures the TCB with it and starts the thread at the ELF
//! entry (`_start`) with no arguments. From there:
//!
//! - `_start` (from `sel4-runtime-common`) switches to the static stack below
//!   ([`STACK_SIZE`], in `.bss`) and calls the Rust entry point, which sets up thread-local
//!   storage on that stack and runs the ELF constructors;
//! - [`entrypoint`] registers the IPC buffer with the `sel4` crate and calls
//!   [`crate::main`];
//! - the global allocator is `dlmalloc` over the server's heap (`heap.rs`): all of
//!   `mem-core`'s metadata lives there. Only the main thread allocates (the zeroing thread
//!   of `zeroer.rs` never does), so the heap lock is [`SingleThreadLock`], which only
//!   detects re-entry;
//! - a panic prints one line (`mem-server: panic: ...`) and makes the server a dead one
//!   that tells the root task why (`death.rs`).
//!
//! Console output goes through [`put_char`], which is `seL4_DebugPutChar` on kernels with
//! debug printing and a no-op otherwise (benchmark kernels), so the component builds for
//! both; [`crate::say!`] prints a line through it.

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use mem_protocol::system::{server_slot, SERVER_IPC_BUFFER_VADDR};

use crate::heap::ServerAlloc;

/// Bytes of the server's stack.
pub const STACK_SIZE: usize = 256 * 1024;

sel4_runtime_common::declare_stack!(STACK_SIZE);
sel4_runtime_common::declare_entrypoint_with_stack_init!();
sel4_runtime_common::declare_rust_entrypoint! {
    entrypoint()
}
sel4_panicking_env::register_debug_put_char!(put_char);

#[global_allocator]
pub static ALLOCATOR: ServerAlloc = ServerAlloc::new();

/// First Rust code of the server thread (stack and TLS are set up).
fn entrypoint() -> ! {
    // SAFETY: the root task maps the server's IPC buffer frame at SERVER_IPC_BUFFER_VADDR
    // (page aligned, one writable page) and configures the TCB with it before starting the
    // thread; nothing else in this process refers to that page, so this is the only
    // reference to it for the rest of the program.
    unsafe {
        sel4::set_ipc_buffer(&mut *(SERVER_IPC_BUFFER_VADDR as *mut sel4::IpcBuffer));
    }
    crate::main()
}

/// One character to the kernel's debug console (dropped on kernels without printing).
#[sel4::sel4_cfg(PRINTING)]
pub fn put_char(c: u8) {
    sel4::debug_put_char(c)
}

/// One character to the kernel's debug console (dropped on kernels without printing).
#[sel4::sel4_cfg(not(PRINTING))]
pub fn put_char(_c: u8) {}

/// Print one line on the debug console (`format!` syntax, no allocation).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        ::sel4_panicking_env::debug_println!($($arg)*)
    };
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    static PANICKED: AtomicBool = AtomicBool::new(false);
    if PANICKED.swap(true, Ordering::Relaxed) {
        stop()
    }
    crate::say!("mem-server: panic: {info}");
    crate::death::die(info)
}

/// Stop the server for good: suspend its own TCB, or, if the IPC buffer is not usable
/// (not set yet, or borrowed by the code that failed), yield forever.
pub fn stop() -> ! {
    sel4::try_with_ipc_buffer_slot_mut(|slot| {
        if let Ok(Some(ipc)) = slot {
            let tcb = sel4::cap::Tcb::from_bits(server_slot::TCB);
            let _ = tcb.with(&mut **ipc).tcb_suspend();
        }
    });
    loop {
        sel4::r#yield();
    }
}

/// The heap lock of a single-threaded process: taking it twice means the allocator was
/// re-entered (from a panic inside it), which stops the server instead of deadlocking.
pub struct SingleThreadLock(AtomicBool);

// SAFETY: `lock` returns only after setting the flag from false to true (otherwise it
// diverges) and `try_lock` reports whether it did, so at most one holder exists at a time;
// `unlock` clears the flag with release ordering, `swap` takes it with acquire ordering.
unsafe impl lock_api::RawMutex for SingleThreadLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = SingleThreadLock(AtomicBool::new(false));

    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        if !self.try_lock() {
            crate::say!("mem-server: heap lock re-entered");
            stop()
        }
    }

    fn try_lock(&self) -> bool {
        !self.0.swap(true, Ordering::Acquire)
    }

    unsafe fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}
