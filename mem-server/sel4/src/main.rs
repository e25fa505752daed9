//! `mem-server`: the seL4 memory server process.
//!
//! All policy lives in `mem-core` ([`MemCore`]); this crate puts it on a real kernel:
//!
//! - `runtime.rs`: entry point, stack, panic handler, console output; `heap.rs`: the heap
//!   (a static boot part and a main part mapped from the server's own RAM at start);
//!   `death.rs`: what a server that panicked does (tells the root task why);
//! - `kernel_sel4.rs` + `window.rs`: [`mem_core::Kernel`] as seL4 invocations, and the
//!   frame window through which the server touches frame contents;
//! - `buffers.rs`: the server's views of the shared buffers, and the descriptor-ring
//!   protocol for bulk data (documented there; the client library must match it);
//! - `server.rs`: the server loop (faults, requests, replies, caps handed out). Every
//!   policy, the administrator's included, is `mem-core`'s;
//! - `zeroer.rs`: the second thread, which zeroes freed frames when nothing else runs.
//!
//! Start-up ([`main`]): read the [`ServerBoot`] record the root task wrote (postcard) at
//! [`SERVER_BOOT_VADDR`]; build the core over the untypeds it lists and the slots
//! `first_free_slot + SCRATCH_SLOTS .. 2^SERVER_CNODE_BITS` of the server's CNode (the
//! first [`SCRATCH_SLOTS`] free slots are the frame window's); take the main heap from
//! its own RAM ([`HEAP_FRACTION`] of it, in 2 MiB frames at `SERVER_HEAP_VADDR`) and
//! promise clients what is left of the heap after [`heap::GLOBAL_RESERVE`]
//! (`Limits::meta_capacity`); map the administrator's shared buffer; print
//! `mem-server: ready (<n> untypeds, <MiB> MiB, heap <MiB> MiB)`; serve forever.
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
//!   `SERVER_LARGE_WINDOW_VADDR .. +4 MiB` and over the heap region `SERVER_HEAP_VADDR ..
//!   + SERVER_HEAP_MAX`, the leaf tables of the whole buffer region
//!   `SERVER_BUFFERS_VADDR .. + MAX_BADGES * BUFFER_STRIDE`;
//! - badged copies of the administrator's notification in `server_slot::NOTIFY`
//!   (`NOTIFY_NOTE`) and `NOTIFY + 1` (`NOTIFY_DIED`);
//! - the zeroing thread's TCB, configured but not started, in `server_slot::ZEROER_TCB`
//!   (its IPC buffer at `SERVER_ZEROER_IPC_VADDR`), the notification it waits on in
//!   `ZEROER_WAKE`, and a cap badged `ZEROER_DONE_BADGE` to a notification bound to the
//!   main thread in `ZEROER_DONE` (without them the server zeroes frames on the fault path).
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

mod buffers;
mod death;
mod heap;
mod kernel_sel4;
mod pagemem;
mod runtime;
mod server;
mod window;
mod zeroer;
#[cfg(feature = "bench")]
mod meter;

use alloc::vec;
use alloc::vec::Vec;

use mem_core::{BufferConfig, Config, Geometry, MemCore, PageSize, Slot, UntypedDesc};
use mem_protocol::system::{
    ServerBoot, SharedLayout, ADMIN_BADGE, BUFFER_STRIDE, CLIENT_BUFFER_VADDR, FIRST_CLIENT_BADGE,
    MAX_BADGES, SERVER_BOOT_VADDR, SERVER_BUFFERS_VADDR, SERVER_CNODE_BITS, SERVER_DIRECT_VADDR,
    SERVER_HEAP_MAX, SERVER_HEAP_VADDR,
};
use mem_protocol::LARGE_PAGE_SIZE;

use buffers::Buffers;
use kernel_sel4::Sel4Kernel;
use server::Server;
use window::WINDOW_SLOTS;

/// Free slots at the start of `first_free_slot` that the frame window keeps for itself.
pub const SCRATCH_SLOTS: u32 = WINDOW_SLOTS as u32;

/// The main heap takes RAM / `HEAP_FRACTION` (at least 16 MiB, at most `SERVER_HEAP_MAX`).
pub const HEAP_FRACTION: u64 = 16;

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
    cfg.client_ids = (FIRST_CLIENT_BADGE, MAX_BADGES);
    cfg.large_pages = true;
    // Fault-around for in-order first touches (16 pages per fault), where it pays: one
    // fault IPC for 16 pages instead of 16 (see `Config::fault_around_sequential`).
    cfg.fault_around = 15;
    cfg.fault_around_sequential = true;
    // 8 frames per retype: the kernel cleans them from the cache and the server maps each
    // in its direct map, a few thousand instructions a frame, inside one fault.
    cfg.retype_batch = 8;
    // Dead objects' frames are released 512 at a time, when idle or under pressure
    // (`mem-core` `dying.rs`): about 55,000 instructions a slice.
    cfg.release_slice = 512;
    cfg.seed = boot.seed;
    cfg.direct_map = Some(SERVER_DIRECT_VADDR);
    cfg.buffer = Some(BufferConfig {
        vaddr: CLIENT_BUFFER_VADDR,
        pages: SharedLayout::PAGES,
        view: Some((SERVER_BUFFERS_VADDR, BUFFER_STRIDE)),
    });
    // Nothing is promised to clients until the heap exists.
    cfg.limits.meta_capacity = 0;
    // Segments outliving their creators are bounded by the shm limits; keep what their
    // page maps can take within the server's own reserve.
    cfg.shm.total_pages = cfg.shm.total_pages.min(ram >> 14);
    let mut core = MemCore::new(
        Sel4Kernel::new(scratch),
        cfg,
        &untypeds,
        first + SCRATCH_SLOTS,
        1 << SERVER_CNODE_BITS,
    );
    // seL4 clears each boot untyped in full at its first retype: have that happen now,
    // before anyone is served, not inside some client's fault.
    let cleared = core.preclear();
    // The direct map's leaf tables (4 KiB per 2 MiB of slots); without them every frame is
    // reached through the window (slower, same behaviour).
    if let Err(e) = core.prepare_direct_map() {
        say!("mem-server: no direct map ({e:?}): frames are reached through the window");
    }
    let heap_bytes = grow_heap(&mut core, ram);
    let capacity = heap::capacity().saturating_sub(heap::GLOBAL_RESERVE + runtime::ALLOCATOR.live());
    core.set_meta_capacity(capacity as u64);

    let mut server = Server::new(core, Buffers::default());
    if let Err(e) = server.bufs.map_admin(server.core.kernel_mut()) {
        say!("mem-server: cannot map the admin buffer ({e:?}): no bulk data for the root task");
    }
    say!(
        "mem-server: ready ({} untypeds, {} cleared, {} MiB, heap {} MiB)",
        untypeds.len(),
        cleared,
        ram >> 20,
        (heap_bytes + heap::BOOT_HEAP_SIZE as u64) >> 20
    );
    server.run()
}

/// Map RAM / [`HEAP_FRACTION`] of the server's own memory (2 MiB frames) at
/// `SERVER_HEAP_VADDR` and give it to the heap; returns its size in bytes.
fn grow_heap(core: &mut MemCore<Sel4Kernel>, ram: u64) -> u64 {
    let want = (ram / HEAP_FRACTION).clamp(16 << 20, SERVER_HEAP_MAX) / LARGE_PAGE_SIZE;
    let mut mapped = 0u64;
    while mapped < want {
        let Ok(f) = core.take_server_frame(PageSize::Large) else { break };
        if core.kernel_mut().map_in_server(f, SERVER_HEAP_VADDR + mapped * LARGE_PAGE_SIZE).is_err() {
            break;
        }
        mapped += 1;
    }
    let bytes = mapped * LARGE_PAGE_SIZE;
    heap::add_region(bytes as usize);
    bytes
}

/// The [`ServerBoot`] record at [`SERVER_BOOT_VADDR`], if it decodes.
fn read_boot() -> Option<ServerBoot> {
    // SAFETY: the root task maps the boot page (4 KiB, readable) at SERVER_BOOT_VADDR
    // before starting the thread and never changes it afterwards; it is only read here.
    let page = unsafe { core::slice::from_raw_parts(SERVER_BOOT_VADDR as *const u8, 4096) };
    postcard::from_bytes(page).ok()
}
