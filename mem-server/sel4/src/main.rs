//! `mem-server`: the seL4 memory server process.
//!
//! All policy lives in `mem-core` ([`MemCore`]); this crate puts it on a real kernel:
//!
//! - `runtime.rs`: entry point, stack, heap, panic handler, console output;
//! - `kernel_sel4.rs` + `window.rs`: [`mem_core::Kernel`] as seL4 invocations, and the
//!   frame window through which the server touches frame contents;
//! - `buffers.rs`: the server's views of the shared buffers, and the descriptor-ring
//!   protocol for bulk data (documented there; the client library must match it);
//! - `server.rs` + `admin.rs`: the server loop (faults, requests, replies).
//!
//! Start-up ([`main`]): read the [`ServerBoot`] record the root task wrote (postcard) at
//! [`SERVER_BOOT_VADDR`]; build the core over the untypeds it lists and the slots
//! `first_free_slot + SCRATCH_SLOTS .. 2^SERVER_CNODE_BITS` of the server's CNode (the
//! first [`SCRATCH_SLOTS`] free slots are the frame window's); map the administrator's
//! shared buffer; print `mem-server: ready (<n> untypeds, <MiB> MiB)`; serve forever.
//!
//! What the root task must have set up before starting this thread, beyond
//! `mem_protocol::system`:
//! - the CNode: 2^`SERVER_CNODE_BITS` slots, guard of `64 - SERVER_CNODE_BITS` bits with
//!   value 0 (so CPtr = slot at depth 64), the fixed caps of `server_slot`;
//! - the endpoint cap in `server_slot::ENDPOINT` with all rights including Grant (a reply
//!   can carry a cap only if the receiving endpoint cap can grant); the root task's and
//!   the clients' badged caps need at least Send and GrantReply (else `Call` gets no reply
//!   and the kernel sends no fault IPC); the clients' caps should not have Grant;
//! - the VSpace: this ELF's segments (headers included), the boot page, the IPC buffer;
//!   the leaf table at `SERVER_WINDOW_VADDR`, the upper tables (not a leaf) over
//!   `SERVER_LARGE_WINDOW_VADDR .. +4 MiB`, the leaf tables of the whole buffer region
//!   `SERVER_BUFFERS_VADDR .. + MAX_BADGES * BUFFER_STRIDE`.
//!
//! Build (from the repository root, after `make deps kernel target-specs`; ARCH riscv64 →
//! TARGET riscv64imac-sel4, aarch64 → aarch64-sel4):
//!
//! ```text
//! env -u RUSTUP_TOOLCHAIN -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER -u CARGO_TARGET_DIR \
//!   -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS PATH=$PWD/build/bin:/usr/bin:$PATH \
//!   RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
//!   SEL4_PREFIX=$PWD/build/$ARCH/sel4 RUST_TARGET_PATH=$PWD/build/target-specs \
//!   LIBCLANG_PATH=/usr/lib/llvm-14/lib \
//!   /usr/bin/cargo build -Zbuild-std=core,alloc,compiler_builtins \
//!   -Zbuild-std-features=compiler-builtins-mem -Zunstable-options \
//!   --config 'build.rustflags=["-Zunstable-options"]' --profile release \
//!   --manifest-path root-task/Cargo.toml -p mem-server-sel4 --target $TARGET \
//!   --target-dir build/$ARCH/cargo
//! ```
//! The ELF is `build/$ARCH/cargo/$TARGET/release/mem-server.elf`
//! (`scripts/build-mem-server.sh <arch>` runs exactly this).

#![no_std]
#![no_main]

extern crate alloc;

mod admin;
mod buffers;
mod kernel_sel4;
mod runtime;
mod server;
mod window;

use alloc::vec;
use alloc::vec::Vec;

use mem_core::{Config, Geometry, MemCore, Slot, UntypedDesc};
use mem_protocol::system::{ServerBoot, ADMIN_BADGE, SERVER_BOOT_VADDR, SERVER_CNODE_BITS};

use buffers::Buffers;
use kernel_sel4::Sel4Kernel;
use server::Server;
use window::WINDOW_SLOTS;

/// Free slots at the start of `first_free_slot` that the frame window keeps for itself.
pub const SCRATCH_SLOTS: u32 = WINDOW_SLOTS as u32;

/// Page-table geometry of this architecture's seL4 VSpaces.
#[cfg(target_arch = "riscv64")]
const GEOMETRY: Geometry = Geometry::RISCV64_SV39;
/// aarch64 with hypervisor support: a 40-bit IPA has 3 levels under a 10-bit root; a 44-bit
/// one (QEMU's cortex-a57, `sel4-config/aarch64.cmake`) has 4 levels of 9 bits.
#[cfg(target_arch = "aarch64")]
#[sel4::sel4_cfg(ARM_PA_SIZE_BITS_40)]
const GEOMETRY: Geometry = Geometry::AARCH64_40;
#[cfg(target_arch = "aarch64")]
#[sel4::sel4_cfg(not(ARM_PA_SIZE_BITS_40))]
const GEOMETRY: Geometry = Geometry::FOUR_LEVEL_48;

/// Called by the runtime once the stack, TLS, heap and IPC buffer are ready.
fn main() -> ! {
    let Some(boot) = read_boot() else {
        say!("mem-server: no valid ServerBoot record at {SERVER_BOOT_VADDR:#x}");
        runtime::stop()
    };
    let untypeds: Vec<UntypedDesc> = boot
        .untypeds
        .iter()
        .map(|u| UntypedDesc {
            slot: u.slot as Slot,
            paddr: u.paddr,
            size_bits: u.size_bits,
            device: u.device,
        })
        .collect();
    let ram: u64 = untypeds
        .iter()
        .filter(|u| !u.device)
        .map(|u| 1u64 << u.size_bits.min(63))
        .sum();

    let first = boot.first_free_slot;
    let scratch: [Slot; WINDOW_SLOTS] = core::array::from_fn(|i| first + i as Slot);
    let mut cfg = Config::new(GEOMETRY);
    cfg.user_lo = 0x1_0000;
    cfg.user_hi = boot.user_top;
    cfg.admins = vec![ADMIN_BADGE];
    cfg.large_pages = true;
    cfg.fault_around = 0;
    cfg.retype_batch = 64;
    let core = MemCore::new(
        Sel4Kernel::new(scratch),
        cfg,
        &untypeds,
        first + SCRATCH_SLOTS,
        1 << SERVER_CNODE_BITS,
    );

    let mut server = Server::new(core, Buffers::default());
    if let Err(e) = server.bufs.map_admin(server.core.kernel_mut()) {
        say!("mem-server: cannot map the admin buffer ({e:?}): no bulk data for the root task");
    }
    say!(
        "mem-server: ready ({} untypeds, {} MiB)",
        untypeds.len(),
        ram >> 20
    );
    server.run()
}

/// The [`ServerBoot`] record at [`SERVER_BOOT_VADDR`], if it decodes.
fn read_boot() -> Option<ServerBoot> {
    // SAFETY: the root task maps the boot page (4 KiB, readable) at SERVER_BOOT_VADDR
    // before starting the thread and never changes it afterwards; it is only read here.
    let page = unsafe { core::slice::from_raw_parts(SERVER_BOOT_VADDR as *const u8, 4096) };
    postcard::from_bytes(page).ok()
}
