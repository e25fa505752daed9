//! Starting the memory server: its CSpace, VSpace, TCB and [`ServerBoot`] record, laid out
//! as `mem_protocol::system` says.
//!
//! - CNode of `2^SERVER_CNODE_BITS` slots; the TCB's CSpace root (and the server's own
//!   `server_slot::CNODE` cap) carry a guard of `64 - SERVER_CNODE_BITS` zero bits, so a
//!   CPtr in the server is its slot number.
//! - VSpace with an ASID from the root task's pool, the ELF image, the IPC buffer at
//!   `SERVER_IPC_BUFFER_VADDR`, the boot record at `SERVER_BOOT_VADDR`, the leaf table of
//!   the frame window, the tables above the large-frame window and above the heap region
//!   (no leaf: the server maps 2 MiB frames there) and the leaf tables of the whole
//!   client-buffer region.
//! - Caps per `server_slot` (the administrator's notification twice, badged `NOTIFY_NOTE`
//!   and `NOTIFY_DIED`), then the untypeds from [`FIRST_UNTYPED_SLOT`] up.
//! - A second thread for zeroing freed frames when nothing else runs (`ZEROER_TCB`,
//!   configured here, started by the server), its IPC buffer at `SERVER_ZEROER_IPC_VADDR`,
//!   its two notifications (`ZEROER_WAKE`; `ZEROER_DONE`, bound to the main thread).

use alloc::vec::Vec;

use mem_protocol::system::{
    server_slot, ServerBoot, UntypedInfo, BUFFER_STRIDE, MAX_BADGES, MAX_UNTYPEDS, NOTIFY_DIED,
    NOTIFY_NOTE, SERVER_BOOT_VADDR, SERVER_BUFFERS_VADDR, SERVER_CNODE_BITS, SERVER_DIRECT_VADDR,
    SERVER_HEAP_VADDR, SERVER_IPC_BUFFER_VADDR, SERVER_LARGE_WINDOW_VADDR, SERVER_REPORT_BADGE,
    SERVER_WINDOW_VADDR, SERVER_ZEROER_IPC_VADDR, ZEROER_DONE_BADGE, ZEROER_PRIORITY,
};

use crate::elf::{self, Scratch};
use crate::objects::{root_path, Objects, Untyped};
use crate::vspace::{Tables, LEAF_LEVEL};
use sel4::vspace_levels::span_bits;

/// First slot of the server's CNode that receives an untyped.
pub const FIRST_UNTYPED_SLOT: u64 = 64;
/// Scheduling priority of the server: below the root task (255), which must be waiting on
/// its report endpoint whenever the server sends it a note, above the clients.
pub const SERVER_PRIORITY: u64 = 254;

/// What the root task learns from starting the server.
pub struct Server {
    /// Untypeds handed over.
    pub untypeds: usize,
}

/// Path of `slot` in the server's CNode, through the root task's unguarded cap to it.
pub fn server_path(cnode: sel4::cap::CNode, slot: u64) -> sel4::AbsoluteCPtr {
    cnode.absolute_cptr_from_bits_with_depth(slot, SERVER_CNODE_BITS as usize)
}

/// Everything [`start`] needs from the root task.
pub struct ServerParts<'a> {
    pub elf: &'a [u8],
    /// The server's CNode, `2^SERVER_CNODE_BITS` slots (allocated first of all: it is the
    /// largest object of the root task and must be aligned to its size).
    pub cnode: sel4::cap::CNode,
    /// The endpoint the server receives on (original cap, root CNode slot).
    pub endpoint: usize,
    /// The root task's report endpoint (original cap, root CNode slot).
    pub report: usize,
    /// The notification bound to the root task's TCB (original cap, root CNode slot).
    pub notify: usize,
    /// Secret seed for the server's randomised structures.
    pub seed: u64,
    /// Frames of the administrator's shared buffer (root CNode slots).
    pub admin_frames: &'a [usize],
    /// Untypeds to hand over (moved out of the root CNode).
    pub untypeds: &'a [Untyped],
    pub default_quota: u64,
    pub user_top: u64,
}

/// Build the server process and start it.
pub fn start(objs: &mut Objects, scratch: &Scratch, parts: &ServerParts) -> sel4::Result<Server> {
    let cnode = parts.cnode;
    let vspace = objs.alloc_fixed::<sel4::cap_type::VSpace>()?;
    sel4::init_thread::slot::ASID_POOL.cap().asid_pool_assign(vspace)?;
    let mut tables = Tables::new(vspace);

    let entry = elf::load(parts.elf, objs, &mut tables, scratch)?;

    // IPC buffer and boot record (same leaf table).
    tables.ensure(objs, SERVER_BOOT_VADDR, LEAF_LEVEL)?;
    tables.ensure(objs, SERVER_IPC_BUFFER_VADDR, LEAF_LEVEL)?;
    let ipc = objs.alloc_fixed::<sel4::cap_type::Granule>()?;
    tables.map_page(ipc, SERVER_IPC_BUFFER_VADDR, sel4::CapRights::read_write(), false)?;
    let zeroer_ipc = objs.alloc_fixed::<sel4::cap_type::Granule>()?;
    tables.map_page(zeroer_ipc, SERVER_ZEROER_IPC_VADDR, sel4::CapRights::read_write(), false)?;
    let boot_page = objs.alloc_fixed::<sel4::cap_type::Granule>()?;

    // Windows and client-buffer region.
    tables.ensure(objs, SERVER_WINDOW_VADDR, LEAF_LEVEL)?;
    tables.ensure(objs, SERVER_LARGE_WINDOW_VADDR, LEAF_LEVEL - 1)?;
    tables.ensure(objs, SERVER_HEAP_VADDR, LEAF_LEVEL - 1)?;
    // The direct map: the levels above the leaf tables (the server makes those).
    let direct_end = SERVER_DIRECT_VADDR + (1u64 << SERVER_CNODE_BITS) * 4096;
    let mut at = SERVER_DIRECT_VADDR;
    while at < direct_end {
        tables.ensure(objs, at, LEAF_LEVEL - 1)?;
        at += 1 << span_bits(LEAF_LEVEL - 1);
    }
    let buffers_end = SERVER_BUFFERS_VADDR + MAX_BADGES as u64 * BUFFER_STRIDE;
    tables.ensure_range(objs, SERVER_BUFFERS_VADDR, buffers_end)?;

    // Caps in the server's CNode.
    let to = |slot| server_path(cnode, slot);
    let guard = sel4::CNodeCapData::skip_high_bits(SERVER_CNODE_BITS as usize);
    let all = sel4::CapRights::all();
    to(server_slot::CNODE).mint(&root_path(cnode.bits() as usize), all.clone(), guard.clone().into_word())?;
    to(server_slot::VSPACE).copy(&root_path(vspace.bits() as usize), all.clone())?;
    let tcb = objs.alloc_fixed::<sel4::cap_type::Tcb>()?;
    to(server_slot::TCB).copy(&root_path(tcb.bits() as usize), all.clone())?;
    to(server_slot::ENDPOINT).copy(&root_path(parts.endpoint), all)?;
    // A fresh ASID pool for the client VSpaces, made from a 4 KiB untyped.
    let pool_ut = objs.alloc_slot(sel4::ObjectBlueprint::Untyped { size_bits: sel4::ObjectBlueprint::asid_pool().physical_size_bits() })?;
    let pool_ut_cap = sel4::init_thread::Slot::<sel4::cap_type::Untyped>::from_index(pool_ut).cap();
    sel4::init_thread::slot::ASID_CONTROL.cap().asid_control_make_pool(pool_ut_cap, &to(server_slot::ASID_POOL))?;
    // Badged report cap: write + grant-reply (it is also the server's fault endpoint).
    let report_rights = sel4::CapRights::new(true, false, false, true);
    to(server_slot::REPORT).mint(&root_path(parts.report), report_rights, SERVER_REPORT_BADGE)?;
    // The administrator's notification: signal only (write right), two badges.
    let signal = sel4::CapRights::new(false, false, false, true);
    to(server_slot::NOTIFY).mint(&root_path(parts.notify), signal.clone(), NOTIFY_NOTE)?;
    to(server_slot::NOTIFY + 1).mint(&root_path(parts.notify), signal, NOTIFY_DIED)?;
    for (i, &frame) in parts.admin_frames.iter().enumerate() {
        to(server_slot::ADMIN_BUFFER + i as u64).copy(&root_path(frame), sel4::CapRights::read_write())?;
    }

    // Untypeds: the largest first, as many as the boot record can list.
    let mut given: Vec<Untyped> = parts.untypeds.to_vec();
    given.sort_by_key(|u| (u.device, core::cmp::Reverse(u.size_bits)));
    given.truncate(MAX_UNTYPEDS);
    let mut boot = ServerBoot {
        untypeds: heapless::Vec::new(),
        first_free_slot: 0,
        user_top: parts.user_top,
        default_quota: parts.default_quota,
        seed: parts.seed,
    };
    let mut slot = FIRST_UNTYPED_SLOT;
    for u in &given {
        to(slot).move_(&root_path(u.slot))?;
        let info = UntypedInfo { slot: slot as u32, paddr: u.paddr, size_bits: u.size_bits, device: u.device };
        boot.untypeds.push(info).map_err(|_| sel4::Error::RangeError)?;
        slot += 1;
    }
    boot.first_free_slot = slot as u32;
    scratch.with_frame(boot_page, |bytes| postcard::to_slice(&boot, bytes).map(|_| ()))?
        .map_err(|_| sel4::Error::RangeError)?;
    tables.map_page(boot_page, SERVER_BOOT_VADDR, sel4::CapRights::read_only(), false)?;

    // TCB: faults go to the root task's report endpoint (badge SERVER_REPORT_BADGE).
    tcb.tcb_configure(
        sel4::CPtr::from_bits(server_slot::REPORT),
        cnode,
        guard,
        vspace,
        SERVER_IPC_BUFFER_VADDR as sel4::Word,
        ipc,
    )?;
    tcb.tcb_set_sched_params(sel4::init_thread::slot::TCB.cap(), SERVER_PRIORITY, SERVER_PRIORITY)?;
    // The server is built without floating-point or vector registers (the `-nofpu` target):
    // with this flag the kernel never saves or restores FPU state when it switches to or from
    // the server (otherwise every IPC with a client would), and the client stays the owner.
    let no_fpu = sel4::TcbFlagsBuilder::new().fpu_disabled(true).build();
    tcb.tcb_set_flags(0, no_fpu)?;

    // The zeroing thread: same CSpace, VSpace and fault endpoint, its own IPC buffer, the
    // lowest priority; the server starts it (it knows its entry point and stack). Its
    // "done" signals arrive on a notification bound to the main thread.
    let zeroer = objs.alloc_fixed::<sel4::cap_type::Tcb>()?;
    zeroer.tcb_configure(
        sel4::CPtr::from_bits(server_slot::REPORT),
        cnode,
        sel4::CNodeCapData::skip_high_bits(SERVER_CNODE_BITS as usize),
        vspace,
        SERVER_ZEROER_IPC_VADDR as sel4::Word,
        zeroer_ipc,
    )?;
    zeroer.tcb_set_sched_params(sel4::init_thread::slot::TCB.cap(), 0, ZEROER_PRIORITY)?;
    zeroer.tcb_set_flags(0, sel4::TcbFlagsBuilder::new().fpu_disabled(true).build())?;
    to(server_slot::ZEROER_TCB).copy(&root_path(zeroer.bits() as usize), sel4::CapRights::all())?;
    let wake = objs.alloc_fixed::<sel4::cap_type::Notification>()?;
    to(server_slot::ZEROER_WAKE).copy(&root_path(wake.bits() as usize), sel4::CapRights::all())?;
    let done = objs.alloc_fixed::<sel4::cap_type::Notification>()?;
    let signal_only = sel4::CapRights::new(false, false, false, true);
    to(server_slot::ZEROER_DONE).mint(&root_path(done.bits() as usize), signal_only, ZEROER_DONE_BADGE)?;
    tcb.tcb_bind_notification(done)?;

    let mut ctx = sel4::UserContext::default();
    *ctx.pc_mut() = entry as sel4::Word;
    tcb.tcb_write_all_registers(true, &mut ctx)?;
    Ok(Server { untypeds: given.len() })
}
