//! `scenario-client`: the one client program of `make simulate` (clients/SCENARIOS.md).
//!
//! The root task creates the process through the memory server, writes a [`ClientBoot`](mem_protocol::system::ClientBoot)
//! record (postcard) at [`CLIENT_BOOT_VADDR`](mem_protocol::system::CLIENT_BOOT_VADDR) and starts it at the ELF entry. This program
//! sets up its runtime (a 256 KiB static stack, TLS, the IPC buffer at
//! [`CLIENT_IPC_BUFFER_VADDR`](mem_protocol::system::CLIENT_IPC_BUFFER_VADDR); a heap from the server through mem-capi, used by the heap
//! and c-client scenarios only), builds a [`Client`] over [`client_slot::SERVER`]
//! and the shared buffer at [`CLIENT_BUFFER_VADDR`], runs scenario `boot.scenario` with
//! `boot.arg` / `boot.peer`, and reports to the root task ([`report`]): `PASS`, or `FAIL`
//! with a code that names the failed check (`scenario * 100 + check`, see each scenario's
//! module), and `STEP`s where the choreography needs the root task.
//!
//! A clone child starts at the entry point again over a copy of its parent's memory, so
//! nothing here relies on statics surviving: all state is on the stack of this run.

#![no_std]
#![no_main]

mod bench;
mod latency;
mod mem;
mod report;
mod s10_hostile;
mod s12_adversary;
mod s1_lazy_mmap;
mod s23_pager;
mod s26_c_client;
mod s27_heap;
mod s28_threads;
mod s29_device;
mod s30_mmap_hint;
mod s31_shm_clone;
mod s32_reset;
mod s33_budget;
mod s2_munmap_hole;
mod s3_mprotect;
mod s4_fixed_mmap;
mod s5_shm;
mod s6_clone;
mod s7_msync;
mod s8_query;
mod s9_quota;
mod start;

use mem_client::Client;
use mem_protocol::system::{client_slot, SharedLayout, CLIENT_BUFFER_VADDR};
use mem_protocol::PAGE_SIZE;

use report::{Fail, Outcome};

/// The heap scenario's workload (miniz_oxide's compressor) keeps ~70 KiB on the stack;
/// untouched stack pages cost nothing (lazy).
const STACK_SIZE: usize = 256 * 1024;

sel4_runtime_common::declare_stack!(STACK_SIZE);
sel4_runtime_common::declare_entrypoint_with_stack_init!();
sel4_runtime_common::declare_rust_entrypoint! {
    entrypoint()
}
sel4_panicking_env::register_debug_put_char!(sel4::debug_put_char);

/// Failure codes outside the scenarios.
pub mod code {
    /// `boot.scenario` names no scenario (detail: the number).
    pub const UNKNOWN_SCENARIO: u64 = 9001;
    // 9002: the ClientBoot record did not decode (`start::BAD_BOOT_RECORD`).
    /// A panic (detail: source line, addr: 0).
    pub const PANIC: u64 = 9999;
}

fn entrypoint() -> ! {
    start::process();
    let outcome = run();
    match outcome {
        Ok(()) => report::pass(),
        Err(f) => report::fail(f),
    }
}

fn run() -> Outcome {
    let boot = start::read_boot()?;
    // SAFETY: the server maps this client's shared buffer (SharedLayout::PAGES pages,
    // writable) at CLIENT_BUFFER_VADDR before the thread starts; this is the only reference
    // to it in the process and it lives as long as the process.
    let buffer: &'static mut [u8] = unsafe {
        core::slice::from_raw_parts_mut(
            CLIENT_BUFFER_VADDR as *mut u8,
            (SharedLayout::PAGES * PAGE_SIZE) as usize,
        )
    };
    let mut c = Client::new(sel4::cap::Endpoint::from_bits(client_slot::SERVER), buffer);
    match boot.scenario {
        1 => s1_lazy_mmap::run(&mut c),
        2 => s2_munmap_hole::run(&mut c),
        3 => s3_mprotect::run(&mut c, boot.arg),
        4 => s4_fixed_mmap::run(&mut c),
        5 => s5_shm::run(&mut c, boot.arg),
        6 => s6_clone::run(&mut c, boot.arg, boot.peer),
        7 => s7_msync::run(&mut c),
        8 => s8_query::run(&mut c),
        9 => s9_quota::run(&mut c),
        10 => s10_hostile::run(&mut c),
        12 => s12_adversary::attacker(&mut c, boot.arg, boot.peer),
        13 => s12_adversary::victim(&mut c, boot.arg),
        14 => s12_adversary::bystander(&mut c),
        15 => s12_adversary::cleaner(&mut c, boot.arg),
        23 => s23_pager::pager(&mut c),
        24 => s23_pager::consumer(&mut c, boot.arg),
        25 => s23_pager::intruder(&mut c, boot.arg),
        26 => s26_c_client::run(),
        27 => s27_heap::run(&mut c),
        28 => s28_threads::run(&mut c),
        29 => s29_device::run(&mut c, boot.arg, boot.peer),
        30 => s30_mmap_hint::run(&mut c),
        31 => s31_shm_clone::run(&mut c, boot.arg, boot.peer),
        32 => s32_reset::run(&mut c),
        33 => s33_budget::chain(&mut c, boot.arg),
        34 => s33_budget::shm_share(&mut c, boot.arg, boot.peer),
        20 => bench::cold(&mut c),
        21 => bench::warm(&mut c),
        22 => bench::run(&mut c),
        36 => latency::victim(&mut c),
        37 => latency::aggressor(&mut c, boot.arg),
        n => Err(Fail::new(code::UNKNOWN_SCENARIO).detail(u64::from(n))),
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let line = info.location().map_or(0, |l| u64::from(l.line()));
    sel4::debug_println!("scenario-client: {}", info);
    report::fail(Fail::new(code::PANIC).detail(line))
}
