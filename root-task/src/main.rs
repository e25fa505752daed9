//! The seL4 root task of `make simulate`: the first thread the kernel starts. It starts the
//! memory server with `mem-launcher` (as any other system would) and runs the scenarios of
//! `clients/SCENARIOS.md` on it.
//!
//! 1. [`mem_launcher::Launcher::start`]: untypeds split (a block for the root task, the
//!    rest to the server), the administrator's shared buffer, the endpoints, the server
//!    from the embedded ELF (`MEM_SERVER_ELF`).
//! 2. Runs every scenario ([`scenarios`]): clients are created through the launcher from
//!    the embedded `SCENARIO_CLIENT_ELF`, and report on the report endpoint ([`ctx`]).
//!    Prints `PASS <name>` / `FAIL <name>: <why>` per scenario, then
//!    `SUMMARY: <p>/<n> passed` and the end marker that `scripts/qemu-run.sh` waits for.

#![no_std]
#![no_main]

extern crate alloc;

#[cfg(feature = "bench")]
mod bench;
mod ctx;
mod scenarios;

use sel4_root_task::{root_task, Never};

use mem_launcher::{Config, Launcher};

/// Printed last; `scripts/qemu-run.sh` stops QEMU when it sees this line.
const DONE_MARKER: &str = "SIMULATE-DONE";

const ARCH: &str = if cfg!(target_arch = "riscv64") {
    "riscv64"
} else if cfg!(target_arch = "aarch64") {
    "aarch64"
} else {
    "unknown"
};

/// An embedded ELF, aligned so that its headers can be read in place.
#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

static SERVER_ELF: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("MEM_SERVER_ELF")));
static CLIENT_ELF: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("SCENARIO_CLIENT_ELF")));
static LIBC_ELF: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("LIBC_CLIENT_ELF")));

/// Pages each client may hold unless a scenario says otherwise.
pub const DEFAULT_QUOTA: u64 = 4096;

/// Bytes in a page.
pub const PAGE: u64 = 4096;

#[root_task(heap_size = 2 << 20)]
fn main(bootinfo: &sel4::BootInfoPtr) -> sel4::Result<Never> {
    sel4::debug_println!("root-task: {ARCH}: starting the memory server");
    match setup(bootinfo) {
        #[cfg(feature = "bench")]
        Ok(mut ctx) => {
            if let Err(e) = bench::run(&mut ctx) {
                sel4::debug_println!("BENCH-FAIL {e}");
            }
            sel4::debug_println!("{}", bench::DONE_MARKER);
            sel4::init_thread::suspend_self()
        }
        #[cfg(not(feature = "bench"))]
        Ok(mut ctx) => {
            let (passed, total) = scenarios::run_all(&mut ctx);
            sel4::debug_println!("SUMMARY: {passed}/{total} passed");
        }
        // Say so at once (the harness would otherwise wait for its timeout).
        Err(e) => {
            sel4::debug_println!("FAIL setup: {e:?}");
            sel4::debug_println!("SUMMARY: 0/{} passed", scenarios::COUNT);
        }
    }
    sel4::debug_println!("{DONE_MARKER}");
    sel4::init_thread::suspend_self()
}

/// The seed of the server's randomised structures. Benchmark images use a fixed one: the
/// boot seed mixes in where the root task's image ends (its first free slot), so any change
/// to the root task would reshape the server's free-range index and move the counts of
/// every operation that uses it; with a fixed seed, numbers compare across commits.
fn seed(bootinfo: &sel4::BootInfoPtr) -> u64 {
    if cfg!(feature = "bench") {
        0x5eed_0000_be4c_0001
    } else {
        boot_seed(bootinfo)
    }
}

/// A seed no client can learn: mixed from the boot state (physical layout of the
/// untypeds, the number of free slots) and, where user level can read one, a counter.
fn boot_seed(bootinfo: &sel4::BootInfoPtr) -> u64 {
    let mut x: u64 = 0x243f_6a88_85a3_08d3;
    for u in bootinfo.untyped_list() {
        x = (x ^ u.paddr() as u64).rotate_left(23).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    x ^= bootinfo.empty().range().start as u64;
    #[cfg(target_arch = "riscv64")]
    {
        let t: u64;
        // SAFETY: reading the `time` CSR has no side effects; OpenSBI lets U-mode read it.
        unsafe { core::arch::asm!("rdtime {0}", out(reg) t, options(nomem, nostack)) };
        x ^= t.rotate_left(32);
    }
    x
}

/// Everything before the first scenario: the server, started by the launcher.
fn setup(bootinfo: &sel4::BootInfoPtr) -> sel4::Result<ctx::Ctx> {
    let cfg = Config { server_elf: &SERVER_ELF.0, seed: seed(bootinfo), default_quota: DEFAULT_QUOTA };
    let launcher = Launcher::start(bootinfo, &cfg)?;
    sel4::debug_println!(
        "root-task: server started: {} untypeds handed over; {} KiB left to the root task",
        launcher.untypeds_given(),
        launcher.objs.free_bytes() >> 10,
    );
    Ok(ctx::Ctx::new(launcher, &CLIENT_ELF.0, &LIBC_ELF.0))
}
