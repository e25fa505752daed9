//! Scenario 28, threads: one address space, several threads on several cores (the root
//! task places them; `make simulate` boots a two-core kernel).
//!
//! The main thread maps a 64-page area `same` and a stack area, then STEP(1, [entry,
//! stacks, STACK, WORKERS]): the root task starts `WORKERS` worker threads (ids
//! 1..=WORKERS) and one victim thread (id WORKERS + 1) at [`thread_entry`] with their own
//! stacks and IPC buffers, alternating cores. Every worker (and the main thread, id 0):
//! 1. writes its word of every page of `same` at once with the others: all threads fault on
//!    the same pages concurrently, and each page must resolve to one frame (every thread's
//!    word is found in every page afterwards);
//! 2. maps 32 pages of its own, writes and checks them, unmaps them;
//! 3. 30 rounds of mmap / write / mprotect read-only / read / mprotect read-write / munmap,
//!    concurrently with the others;
//! 4. uses the process's heap (mem-heap, thread-safe) at the same time as the others: a
//!    400 KB vector (a mapping of its own) and a `BTreeMap` of 5,000 entries, checked.
//!
//! Workers report STEP(10 + id, [verdict]) (0, or the failed check's code; never answered).
//! The victim maps 4 pages, writes one, publishes the address and waits; after the workers
//! are done the main thread unmaps those pages and lets the victim read them: like Linux
//! with the area gone, the fault is unresolved (the server's note, NO_AREA). The main
//! thread then reports STEP(2, [addr]) and, once answered, PASS.
//!
//! Failure codes: 2801 mmap of `same` or the stacks, 2802 a word of `same` lost (detail:
//! page * 16 + thread, addr), 2803 own pages wrong, 2804 churn mmap/mprotect/munmap
//! (detail errno), 2805 churn read-back, 2806 a worker's verdict (detail: verdict, addr:
//! id) — only as the main thread sees it, 2807 munmap of the victim's area, 2808 timeout
//! waiting for the workers, 2809 a heap value read back wrong (detail: index).

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use mem_client::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_RW};
use mem_client::{call_plain, mmap_request, prot_of, Backing, Client, Errno, Request, Target, Value};
use mem_protocol::system::client_slot;
use mem_protocol::PAGE_SIZE;

use crate::mem::{peek, poke};
use crate::report::{self, Fail, Outcome};

/// Worker threads besides the main thread.
pub const WORKERS: u64 = 3;
/// Bytes of each thread's stack.
pub const STACK: u64 = 64 * 1024;
const SAME_PAGES: u64 = 64;

static START: AtomicBool = AtomicBool::new(false);
static SAME: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU32 = AtomicU32::new(0);
static VICTIM: AtomicU64 = AtomicU64::new(0);
static UNMAPPED: AtomicBool = AtomicBool::new(false);

fn value(thread: u64, page: u64) -> u64 {
    0x7000_0000_0000_0000 | thread << 32 | page * 0x101
}

fn ep() -> sel4::cap::Endpoint {
    sel4::cap::Endpoint::from_bits(client_slot::SERVER)
}

fn call(req: &Request) -> Result<Value, Errno> {
    call_plain(ep(), req).map_err(|e| e.errno())
}

fn mmap(pages: u64) -> Result<u64, Errno> {
    let req = mmap_request(0, pages * PAGE_SIZE, PROT_RW, mem_client::linux::PROT_RWX, MAP_PRIVATE | MAP_ANONYMOUS, Backing::Anonymous)?;
    match call(&req)? {
        Value::Addr(a) => Ok(a),
        _ => Err(Errno::Inval),
    }
}

fn munmap(addr: u64, pages: u64) -> Result<(), Errno> {
    call(&Request::Munmap { target: Target::Own, addr, len: pages * PAGE_SIZE }).map(|_| ())
}

fn mprotect(addr: u64, pages: u64, prot: u32) -> Result<(), Errno> {
    let prot = prot_of(prot)?;
    call(&Request::Mprotect { target: Target::Own, addr, len: pages * PAGE_SIZE, prot }).map(|_| ())
}

fn spin_until(cond: impl Fn() -> bool) -> bool {
    for _ in 0..50_000_000u64 {
        if cond() {
            return true;
        }
        sel4::r#yield();
    }
    false
}

/// Steps 1-3 of thread `id`; 0 or a failure code.
fn work(id: u64) -> Result<(), Fail> {
    let same = SAME.load(Ordering::Acquire);
    for p in 0..SAME_PAGES {
        // SAFETY: `same` is the RW area the main thread mapped; each thread writes only
        // its own word (index `id`) of each page.
        unsafe { poke(same + p * PAGE_SIZE + id * 8, value(id, p)) };
    }
    let own = mmap(32).map_err(|e| Fail::new(2803).detail(e.linux() as u64))?;
    for p in 0..32 {
        // SAFETY: `own` is this thread's fresh RW mapping of 32 pages.
        unsafe { poke(own + p * PAGE_SIZE + 8 * p, value(id, p)) };
    }
    for p in 0..32 {
        // SAFETY: as above.
        let v = unsafe { peek(own + p * PAGE_SIZE + 8 * p) };
        if v != value(id, p) {
            return Err(Fail::new(2803).detail(v).at(own + p * PAGE_SIZE));
        }
    }
    munmap(own, 32).map_err(|e| Fail::new(2803).detail(e.linux() as u64))?;
    for round in 0..30 {
        let e = |e: Errno| Fail::new(2804).detail(e.linux() as u64);
        let a = mmap(4).map_err(e)?;
        // SAFETY: `a` is this thread's fresh RW mapping of 4 pages.
        unsafe { poke(a + 3 * PAGE_SIZE, value(id, round)) };
        mprotect(a, 4, PROT_READ).map_err(e)?;
        // SAFETY: still mapped, readable.
        let v = unsafe { peek(a + 3 * PAGE_SIZE) };
        if v != value(id, round) {
            return Err(Fail::new(2805).detail(v).at(a));
        }
        mprotect(a, 4, PROT_RW).map_err(e)?;
        munmap(a, 4).map_err(e)?;
    }
    // 4. The process's heap from every thread at once: a large block (mapped alone) and a
    // map of small ones (dlmalloc segments), filled, checked, dropped.
    let big: Vec<u64> = (0..50_000).map(|i| value(id, i)).collect();
    let mut map = BTreeMap::new();
    for i in 0..5_000u64 {
        map.insert(i * 7 + id, value(id, i));
    }
    for (i, &v) in big.iter().enumerate() {
        if v != value(id, i as u64) {
            return Err(Fail::new(2809).detail(i as u64));
        }
    }
    for i in 0..5_000u64 {
        if map.get(&(i * 7 + id)) != Some(&value(id, i)) {
            return Err(Fail::new(2809).detail(i));
        }
    }
    drop(big);
    drop(map);
    Ok(())
}

/// Where the root task starts the other threads: `id` and the IPC buffer's address in
/// the first two argument registers, the stack pointer at the top of its stack.
pub extern "C" fn thread_entry(id: u64, ipc_buffer: u64) -> ! {
    #[cfg(target_arch = "riscv64")]
    // SAFETY: `fence.i` touches no memory or register; allowed in user mode.
    unsafe {
        core::arch::asm!("fence.i", options(nostack, preserves_flags))
    };
    // SAFETY: the root task gave this thread its own stack (sp) and IPC buffer; TLS is
    // set up on that stack by the runtime, as for the main thread.
    unsafe {
        sel4_runtime_common::with_local_init(move || {
            sel4::set_ipc_buffer(&mut *(ipc_buffer as *mut sel4::IpcBuffer));
            thread_main(id)
        })
    }
}

fn thread_main(id: u64) -> ! {
    if !spin_until(|| START.load(Ordering::Acquire)) {
        report::step(10 + id, &[2808]);
    }
    if id == WORKERS + 1 {
        // The victim.
        let v = match mmap(4) {
            Ok(v) => v,
            Err(e) => loop {
                report::step(10 + id, &[e.linux() as u64]);
            },
        };
        // SAFETY: fresh RW mapping.
        unsafe { poke(v, 1) };
        VICTIM.store(v, Ordering::Release);
        spin_until(|| UNMAPPED.load(Ordering::Acquire));
        // SAFETY: deliberately touching the area the main thread unmapped: this fault is
        // unresolved and stops this thread (the scenario expects the server's note).
        unsafe { peek(v + PAGE_SIZE) };
        loop {
            report::step(10 + id, &[2899]);
        }
    }
    let verdict = match work(id) {
        Ok(()) => 0,
        Err(f) => f.code,
    };
    DONE.fetch_add(1, Ordering::AcqRel);
    loop {
        report::step(10 + id, &[verdict]);
    }
}

pub fn run(_c: &mut Client) -> Outcome {
    let same = mmap(SAME_PAGES).map_err(|e| Fail::new(2801).detail(e.linux() as u64))?;
    SAME.store(same, Ordering::Release);
    let threads = WORKERS + 1;
    let stacks = mmap(threads * STACK / PAGE_SIZE).map_err(|e| Fail::new(2801).detail(e.linux() as u64))?;
    let entry = thread_entry as extern "C" fn(u64, u64) -> ! as usize as u64;
    report::step(1, &[entry, stacks, STACK, WORKERS]);
    START.store(true, Ordering::Release);
    work(0)?;
    if !spin_until(|| DONE.load(Ordering::Acquire) == WORKERS as u32) {
        return Err(Fail::new(2808).detail(u64::from(DONE.load(Ordering::Acquire))));
    }
    for p in 0..SAME_PAGES {
        for t in 0..=WORKERS {
            let at = same + p * PAGE_SIZE + t * 8;
            // SAFETY: inside `same`, which every thread has finished writing.
            let v = unsafe { peek(at) };
            if v != value(t, p) {
                return Err(Fail::new(2802).detail(p * 16 + t).at(at));
            }
        }
    }
    if !spin_until(|| VICTIM.load(Ordering::Acquire) != 0) {
        return Err(Fail::new(2808).detail(99));
    }
    let v = VICTIM.load(Ordering::Acquire);
    munmap(v, 4).map_err(|e| Fail::new(2807).detail(e.linux() as u64))?;
    UNMAPPED.store(true, Ordering::Release);
    report::step(2, &[v]);
    Ok(())
}
