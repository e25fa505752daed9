//! The seL4 root task: the first and only thread the kernel starts. It builds the system
//! of `mem_protocol::system` and runs the scenarios of `clients/SCENARIOS.md` on it.
//!
//! 1. Splits the bootinfo untypeds ([`objects::split_untypeds`]): a block of RAM sized for
//!    the server's CNode, image and tables stays with the root task, everything else
//!    (device untypeds included) goes to the memory server.
//! 2. Maps the administrator's shared buffer in its own VSpace ([`admin`]), creates the
//!    server endpoint and the report endpoint, and starts the memory server from the
//!    embedded ELF (`MEM_SERVER_ELF`, [`server`], [`elf`]).
//! 3. Runs every scenario ([`scenarios`]): clients are created through the server from the
//!    embedded `SCENARIO_CLIENT_ELF` ([`client`]), and report on the report endpoint
//!    ([`ctx`]). Prints `PASS <name>` / `FAIL <name>: <why>` per scenario, then
//!    `SUMMARY: <p>/<n> passed` and the end marker that `scripts/qemu-run.sh` waits for.

#![no_std]
#![no_main]

extern crate alloc;

mod admin;
#[cfg(feature = "bench")]
mod bench;
mod client;
mod ctx;
mod elf;
mod objects;
mod scenarios;
mod server;
mod vspace;

use object::{Object, ObjectSegment};
use sel4_root_task::{root_task, Never};

use mem_protocol::system::{SharedLayout, ADMIN_BADGE, SERVER_CNODE_BITS};

use crate::admin::{Admin, ADMIN_BUFFER_VADDR};
use crate::elf::Scratch;
use crate::objects::{root_path, Objects, Slots};
use crate::vspace::{Tables, LEAF_LEVEL, PAGE};

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

/// A scratch page of the root task's VSpace, next to the administrator's buffer.
const SCRATCH_VADDR: u64 = ADMIN_BUFFER_VADDR + 0x10_0000;

/// Pages each client may hold unless a scenario says otherwise.
pub const DEFAULT_QUOTA: u64 = 4096;

/// Highest user address + 1 of a VSpace (`seL4_UserTop` is the first address above user
/// space on riscv64, the last one in it on aarch64).
const USER_TOP: u64 = if cfg!(target_arch = "riscv64") {
    sel4::sys::seL4_UserTop
} else {
    sel4::sys::seL4_UserTop + 1
};

/// Bytes of RAM the root task keeps: the server's CNode and image, tables, per-client
/// objects, with a margin; rounded up to a power of two (log2 returned).
fn keep_bits(server_elf: &[u8]) -> u8 {
    let image: u64 = object::File::parse(server_elf)
        .map(|f| f.segments().map(|s| s.size().next_multiple_of(PAGE) + PAGE).sum())
        .unwrap_or(0);
    let cnode = 1u64 << (SERVER_CNODE_BITS as u32 + sel4::sys::seL4_SlotBits);
    let need = cnode + image + (4 << 20);
    need.next_power_of_two().trailing_zeros() as u8
}

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

/// Everything before the first scenario: untypeds, the administrator's buffer, the
/// endpoints, the server.
fn setup(bootinfo: &sel4::BootInfoPtr) -> sel4::Result<ctx::Ctx> {
    let mut slots = Slots::new(bootinfo.empty().range());
    let (kept, given) = objects::split_untypeds(bootinfo, &mut slots, keep_bits(&SERVER_ELF.0))?;
    let mut objs = Objects::new(slots, &kept);
    // The largest object first, so that nothing before it wastes alignment padding.
    let server_cnode = objs.alloc_var::<sel4::cap_type::CNode>(SERVER_CNODE_BITS as usize)?;

    // The administrator's shared buffer and the scratch page, in the root task's VSpace.
    let mut root_tables = Tables::new(sel4::init_thread::slot::VSPACE.cap());
    root_tables.ensure(&mut objs, ADMIN_BUFFER_VADDR, LEAF_LEVEL)?;
    let mut admin_frames = alloc::vec::Vec::new();
    for i in 0..SharedLayout::PAGES {
        let frame = objs.alloc_fixed::<sel4::cap_type::Granule>()?;
        root_tables.map_page(frame, ADMIN_BUFFER_VADDR + i * PAGE, sel4::CapRights::read_write(), false)?;
        admin_frames.push(frame.bits() as usize);
    }
    let scratch = Scratch { vaddr: SCRATCH_VADDR, root_vspace: root_tables.vspace() };

    let server_ep = objs.alloc_fixed::<sel4::cap_type::Endpoint>()?;
    let report_ep = objs.alloc_fixed::<sel4::cap_type::Endpoint>()?;
    // The server's notes (unresolved faults, its death) wake the root task wherever it
    // waits on the report endpoint: a notification bound to its TCB.
    let notify = objs.alloc_fixed::<sel4::cap_type::Notification>()?;
    sel4::init_thread::slot::TCB.cap().tcb_bind_notification(notify)?;
    let parts = server::ServerParts {
        elf: &SERVER_ELF.0,
        cnode: server_cnode,
        endpoint: server_ep.bits() as usize,
        report: report_ep.bits() as usize,
        notify: notify.bits() as usize,
        seed: boot_seed(bootinfo),
        admin_frames: &admin_frames,
        untypeds: &given,
        default_quota: DEFAULT_QUOTA,
        user_top: USER_TOP,
    };
    let server = server::start(&mut objs, &scratch, &parts)?;
    sel4::debug_println!(
        "root-task: server started: {} untypeds handed over; {} KiB left to the root task",
        server.untypeds,
        objs.free_bytes() >> 10,
    );

    // The administrator's badged endpoint cap (all rights: replies carry caps).
    let admin_slot = objs.slots.alloc().ok_or(sel4::Error::NotEnoughMemory)?;
    root_path(admin_slot).mint(&root_path(server_ep.bits() as usize), sel4::CapRights::all(), ADMIN_BADGE as u64)?;
    let admin = Admin::new(sel4::init_thread::Slot::<sel4::cap_type::Endpoint>::from_index(admin_slot).cap());
    Ok(ctx::Ctx::new(objs, admin, server_ep.bits() as usize, report_ep.bits() as usize, &CLIENT_ELF.0))
}
