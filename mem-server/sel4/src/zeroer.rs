//! The zeroing thread: frames freed by munmap or `DestroySpace` are zeroed when nothing
//! else runs, not inside the next request or fault.
//!
//! The root task makes a second thread in the server (`server_slot::ZEROER_TCB`: the
//! server's CSpace and VSpace, its own IPC buffer, priority `ZEROER_PRIORITY`, below every
//! client) and two notifications; [`start`] gives it its entry point and stack. The main
//! thread ([`Zeroer::tend`], after every message it serves) lends it a batch of up to
//! [`BATCH`] dirty frames (`MemCore::lend_dirty`: they stay counted as free) and signals
//! `ZEROER_WAKE`; the thread zeroes them through the direct map (every small frame is
//! mapped in the server for good: `kernel_sel4.rs`), marks the batch done and signals
//! `ZEROER_DONE`, which is bound to the main thread: its `Recv` returns with
//! `ZEROER_DONE_BADGE`, it takes the batch back into the clean pool (`MemCore::zeroed`) and
//! lends the next one. With nothing to zero but frames of dead objects to release
//! (`mem-core` `dying.rs`), it lends an empty batch: the thread answers as soon as it
//! runs, that is when the server is idle, and the main thread then releases one slice.
//! The two threads share only the batch below (atomics, handed over
//! whole: the main thread never touches a lent frame, the zeroing thread nothing else).
//!
//! Cost: on the request path one atomic load and one pool-length test per message; per
//! batch two signals and one extra wake-up of the main thread (measured with the rest of
//! the batch handling: about 100 instructions per frame with batches of 64, on top of the
//! ~500 the zeroing itself takes). A fault that finds no clean frame still zeroes one
//! itself (the same as before). While a batch is lent its frames are not available to
//! faults: at most [`BATCH`] frames (512 KiB) of the server's memory are out of reach at a
//! time. Without the thread (a root task that does not make it) frames are zeroed on the
//! fault path only. Neighbours: `server.rs` (the loop), `pagemem.rs` (the zeroing),
//! `mem-core` `res.rs` (`lend_dirty`, `zeroed`).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use mem_core::{MemCore, Slot};
use mem_protocol::system::{server_slot, SERVER_ZEROER_IPC_VADDR};
use mem_protocol::PAGE_SIZE;

use crate::kernel_sel4::{direct_vaddr, Sel4Kernel};

/// Frames per batch.
pub const BATCH: usize = 128;

/// The batch: its frames, how many, and whose turn it is.
struct Batch {
    frames: [AtomicU32; BATCH],
    len: AtomicUsize,
    state: AtomicU32,
}

/// No batch lent: the main thread may lend one.
const IDLE: u32 = 0;
/// A batch is lent: only the zeroing thread touches its frames.
const WORKING: u32 = 1;
/// The batch is zeroed: the main thread takes it back.
const DONE: u32 = 2;

static BATCH_STATE: Batch = Batch {
    frames: [const { AtomicU32::new(0) }; BATCH],
    len: AtomicUsize::new(0),
    state: AtomicU32::new(IDLE),
};

/// Bytes of the zeroing thread's stack (it calls nothing deep).
const STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; STACK_SIZE]>);

// SAFETY: the stack is used by the zeroing thread alone (through its stack pointer), never
// read or written as a Rust value.
unsafe impl Sync for Stack {}

static STACK: Stack = Stack(UnsafeCell::new([0; STACK_SIZE]));

/// The main thread's side.
pub struct Zeroer {
    running: bool,
}

impl Zeroer {
    /// Start the zeroing thread if the root task made one; without it, frames are zeroed
    /// on the fault path only.
    pub fn start() -> Zeroer {
        let tcb = sel4::cap::Tcb::from_bits(server_slot::ZEROER_TCB);
        let top = STACK.0.get() as usize + STACK_SIZE;
        let mut ctx = sel4::UserContext::default();
        *ctx.pc_mut() = entry as *const () as usize as sel4::Word;
        *ctx.sp_mut() = top as sel4::Word;
        let running = tcb.tcb_write_all_registers(true, &mut ctx).is_ok();
        if !running {
            crate::say!("mem-server: no zeroing thread: freed frames are zeroed when a fault takes them");
        }
        Zeroer { running }
    }

    /// After each message: take a finished batch back, lend the next one. Cheap when there
    /// is nothing to do (one load, one test).
    #[inline]
    pub fn tend(&mut self, core: &mut MemCore<Sel4Kernel>) {
        if !self.running {
            return;
        }
        match BATCH_STATE.state.load(Ordering::Acquire) {
            WORKING => return,
            DONE => {
                self.take_back(core);
                // The zeroing thread ran, so the server was idle: one slice of the other
                // idle work, frames of dead objects (`mem-core` `dying.rs`).
                if core.has_dying() {
                    core.release_step();
                }
            }
            _ => {}
        }
        let lent = core.has_dirty_frames() && self.lend(core);
        if !lent && core.has_dying() {
            // Nothing to zero: an empty batch, to hear back when the server is idle.
            BATCH_STATE.len.store(0, Ordering::Relaxed);
            BATCH_STATE.state.store(WORKING, Ordering::Release);
            sel4::cap::Notification::from_bits(server_slot::ZEROER_WAKE).signal();
        }
    }

    #[cold]
    fn take_back(&mut self, core: &mut MemCore<Sel4Kernel>) {
        #[cfg(feature = "bench")]
        let start = crate::meter::now();
        let n = BATCH_STATE.len.load(Ordering::Relaxed).min(BATCH);
        let mut frames: [Slot; BATCH] = [0; BATCH];
        for (f, a) in frames.iter_mut().zip(&BATCH_STATE.frames).take(n) {
            *f = a.load(Ordering::Relaxed);
        }
        core.zeroed(&frames[..n]);
        BATCH_STATE.state.store(IDLE, Ordering::Relaxed);
        #[cfg(feature = "bench")]
        crate::meter::ZERO.add_events(start, 0);
    }

    /// Lend a batch of dirty frames; `false` if none could be lent.
    #[cold]
    fn lend(&mut self, core: &mut MemCore<Sel4Kernel>) -> bool {
        #[cfg(feature = "bench")]
        let start = crate::meter::now();
        let mut frames: [Slot; BATCH] = [0; BATCH];
        let n = core.lend_dirty(&mut frames);
        // Only direct-mapped frames can be reached by the zeroing thread; the others (none
        // when the direct map is complete) go back to be zeroed by a fault.
        let (mut keep, mut back) = (0, [0; BATCH]);
        let mut nback = 0;
        for &f in &frames[..n] {
            if core.kernel().direct_copy(f).is_some() {
                BATCH_STATE.frames[keep].store(f, Ordering::Relaxed);
                keep += 1;
            } else {
                back[nback] = f;
                nback += 1;
            }
        }
        core.unlend(&back[..nback]);
        if keep == 0 {
            return false;
        }
        BATCH_STATE.len.store(keep, Ordering::Relaxed);
        BATCH_STATE.state.store(WORKING, Ordering::Release);
        sel4::cap::Notification::from_bits(server_slot::ZEROER_WAKE).signal();
        #[cfg(feature = "bench")]
        crate::meter::ZERO.add_events(start, 0);
        true
    }
}

/// The zeroing thread (started with its stack pointer at the top of [`STACK`]).
extern "C" fn entry() -> ! {
    // SAFETY: this thread runs on its own stack; the runtime sets up its thread-local
    // storage on it, as for the main thread.
    unsafe {
        sel4_runtime_common::with_local_init(|| {
            // SAFETY: the root task maps this thread's IPC buffer frame (one writable page)
            // at SERVER_ZEROER_IPC_VADDR and names it in the TCB; nothing else uses it.
            sel4::set_ipc_buffer(&mut *(SERVER_ZEROER_IPC_VADDR as *mut sel4::IpcBuffer));
            run()
        })
    }
}

fn run() -> ! {
    let wake = sel4::cap::Notification::from_bits(server_slot::ZEROER_WAKE);
    let done = sel4::cap::Notification::from_bits(server_slot::ZEROER_DONE);
    loop {
        wake.wait();
        if BATCH_STATE.state.load(Ordering::Acquire) != WORKING {
            continue;
        }
        // Bench builds count each frame's zeroing and the signal on their own: this
        // thread runs when nothing else does, and a window around the whole batch would
        // also count whatever preempted it meanwhile (a sample that long is dropped).
        #[cfg(feature = "bench")]
        let (mut spent, mut counted) = (0u64, 0u64);
        let n = BATCH_STATE.len.load(Ordering::Relaxed).min(BATCH);
        for a in BATCH_STATE.frames.iter().take(n) {
            let f = a.load(Ordering::Relaxed);
            #[cfg(feature = "bench")]
            let t = crate::meter::now();
            // SAFETY: `f` is a small frame lent to this thread alone (the main thread does
            // not touch it until the batch is DONE); the direct map keeps it mapped
            // read-write at `direct_vaddr(f)` (one 4 KiB page, page aligned) for good.
            unsafe { crate::pagemem::zero(direct_vaddr(f) as *mut u8, PAGE_SIZE as usize) };
            #[cfg(feature = "bench")]
            {
                let d = crate::meter::now().wrapping_sub(t);
                if d < 10_000 {
                    spent += d;
                    counted += 1;
                }
            }
        }
        BATCH_STATE.state.store(DONE, Ordering::Release);
        #[cfg(feature = "bench")]
        let t = crate::meter::now();
        done.signal();
        #[cfg(feature = "bench")]
        {
            let d = crate::meter::now().wrapping_sub(t);
            if d < 10_000 {
                spent += d;
            }
            crate::meter::ZERO.add_raw(spent, counted);
        }
    }
}
