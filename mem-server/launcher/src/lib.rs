//! `mem-launcher`: start the memory server in your seL4 system and create its clients.
//!
//! Runs in the root task: it takes the bootinfo's untypeds, keeps one block for the
//! objects it makes itself (the server's CNode, image, page tables; per client a 64 KiB
//! untyped block for its CNode and TCBs, reused once the client is destroyed, and cap
//! copies) and hands everything else to the server.
//!
//! ```ignore
//! let mut l = Launcher::start(bootinfo, &Config { server_elf: SERVER_ELF, seed, default_quota: 4096 })?;
//! let p = l.create_client(&ClientSpec {
//!     badge: 2, uid: 1000, gid: 1000, quota: 4096,
//!     elf: MY_PROGRAM, boot: Some(&args), report: Some(l.report_endpoint()),
//! })?;
//! // ... the program runs; its memory comes from the server (mmap, faults, shm, heap) ...
//! l.destroy_client(p)?;
//! ```
//!
//! What [`Launcher::start`] does: splits the untypeds ([`objects::split_untypeds`]), maps
//! the administrator's shared buffer at [`ADMIN_BUFFER_VADDR`] in the root task, creates the
//! server's endpoint, a report endpoint (the server's own faults arrive there, badge
//! `SERVER_REPORT_BADGE`; clients may report there too) and a notification bound to the
//! calling thread (the server signals notes about unresolved client faults and its death;
//! they wake a `Recv` on the report endpoint), builds the server process from its ELF
//! ([`server`]) and connects to it as the administrator ([`Admin`]).
//! A client ([`client`]): its space (`CreateSpace`), its image loaded with `Region`
//! requests, an IPC buffer (pinned by `ExportFrame`), a CNode with the endpoint caps of
//! `mem_protocol::system::client_slot` and a TCB whose fault endpoint is the server; more
//! threads with [`Launcher::add_thread`]; a copy-on-write clone with
//! [`Launcher::clone_space`] + [`Launcher::start_client`]; everything reclaimed by
//! [`Launcher::destroy_client`].
//!
//! Modules: [`objects`] (slots and untypeds), [`vspace`] (tables in VSpaces the launcher
//! builds), [`elf`] (loading the server), [`server`], [`admin`], [`client`].

#![no_std]

extern crate alloc;

pub mod admin;
pub mod client;
pub mod elf;
pub mod objects;
pub mod server;
pub mod vspace;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use object::{Object, ObjectSegment};

use mem_protocol::system::{SharedLayout, ADMIN_BADGE, SERVER_CNODE_BITS};
use mem_protocol::Request;

pub use admin::{Admin, ADMIN_BUFFER_VADDR};
pub use client::{ClientSpec, Proc, ThreadStart, CORES};
pub use objects::{root_path, Objects, Slots, Untyped};

use crate::elf::Scratch;
use crate::vspace::{Tables, LEAF_LEVEL, PAGE};

/// A scratch page of the root task's VSpace, next to the administrator's buffer.
const SCRATCH_VADDR: u64 = ADMIN_BUFFER_VADDR + 0x10_0000;

/// Highest user address + 1 of a VSpace (`seL4_UserTop` is the first address above user
/// space on riscv64, the last one in it on aarch64).
pub const USER_TOP: u64 = if cfg!(target_arch = "riscv64") {
    sel4::sys::seL4_UserTop
} else {
    sel4::sys::seL4_UserTop + 1
};

/// What the launcher needs to start the server.
#[derive(Clone, Copy)]
pub struct Config<'a> {
    /// The memory server's ELF (`mem-server` for the `<arch>-sel4-nofpu` target).
    pub server_elf: &'a [u8],
    /// A secret seed for the server's randomised structures (from boot-time state no
    /// client can learn).
    pub seed: u64,
    /// Pages each client may hold unless created with another quota.
    pub default_quota: u64,
}

/// The memory server, running, and the means to create its clients.
pub struct Launcher {
    /// The root task's slots and kept untypeds.
    pub objs: Objects,
    /// The administrator's connection to the server.
    pub admin: Admin,
    server_ep: usize,
    report_ep: usize,
    notify: usize,
    untypeds_given: usize,
    /// Untyped blocks (root slots) of destroyed clients, free for the next ones.
    blocks_free: Vec<usize>,
    blocks_made: usize,
}

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

impl Launcher {
    /// Start the memory server (see the crate docs). Call once, from the root task,
    /// before anything else takes untypeds or empty slots.
    pub fn start(bootinfo: &sel4::BootInfoPtr, cfg: &Config) -> sel4::Result<Launcher> {
        let mut slots = Slots::new(bootinfo.empty().range());
        let (kept, given) = objects::split_untypeds(bootinfo, &mut slots, keep_bits(cfg.server_elf))?;
        let mut objs = Objects::new(slots, &kept);
        // The largest object first, so that nothing before it wastes alignment padding.
        let server_cnode = objs.alloc_var::<sel4::cap_type::CNode>(SERVER_CNODE_BITS as usize)?;

        // The administrator's shared buffer and the scratch page, in the root task's VSpace.
        let mut root_tables = Tables::new(sel4::init_thread::slot::VSPACE.cap());
        root_tables.ensure(&mut objs, ADMIN_BUFFER_VADDR, LEAF_LEVEL)?;
        let mut admin_frames = Vec::new();
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
            elf: cfg.server_elf,
            cnode: server_cnode,
            endpoint: server_ep.bits() as usize,
            report: report_ep.bits() as usize,
            notify: notify.bits() as usize,
            seed: cfg.seed,
            admin_frames: &admin_frames,
            untypeds: &given,
            default_quota: cfg.default_quota,
            user_top: USER_TOP,
        };
        let server = server::start(&mut objs, &scratch, &parts)?;

        // The administrator's badged endpoint cap (all rights: replies carry caps).
        let admin_slot = objs.slots.alloc().ok_or(sel4::Error::NotEnoughMemory)?;
        root_path(admin_slot).mint(&root_path(server_ep.bits() as usize), sel4::CapRights::all(), ADMIN_BADGE as u64)?;
        let admin = Admin::new(sel4::init_thread::Slot::<sel4::cap_type::Endpoint>::from_index(admin_slot).cap());
        Ok(Launcher {
            objs,
            admin,
            server_ep: server_ep.bits() as usize,
            report_ep: report_ep.bits() as usize,
            notify: notify.bits() as usize,
            untypeds_given: server.untypeds,
            blocks_free: Vec::new(),
            blocks_made: 0,
        })
    }

    /// Root CNode slot of the server's endpoint (original cap, unbadged: mint badged
    /// copies for components that are not created through [`Launcher::create_client`]).
    pub fn server_endpoint(&self) -> usize {
        self.server_ep
    }

    /// Root CNode slot of the report endpoint: the server's faults arrive there (badge
    /// `SERVER_REPORT_BADGE`), and the notification bound to the root task wakes a `Recv`
    /// on it with `NOTIFY_NOTE` / `NOTIFY_DIED` (then `TakeNote` / any request says more).
    pub fn report_endpoint(&self) -> usize {
        self.report_ep
    }

    /// Root CNode slot of the notification bound to the root task.
    pub fn notification(&self) -> usize {
        self.notify
    }

    /// Client blocks made so far (each reused once its client is destroyed), and how many
    /// of them are free now.
    pub fn client_blocks(&self) -> (usize, usize) {
        (self.blocks_made, self.blocks_free.len())
    }

    /// Untypeds handed to the server.
    pub fn untypeds_given(&self) -> usize {
        self.untypeds_given
    }

    /// One request whose reply carries a cap (into a fresh root CNode slot): the value and
    /// the slot.
    pub fn request_cap(&mut self, req: &Request) -> Result<(mem_protocol::Value, usize), String> {
        self.admin.request_cap(&mut self.objs, req)
    }

    /// `Region` in `badge`'s space, which must land exactly at `addr`.
    pub fn region(&mut self, badge: u32, addr: u64, len: u64, prot: mem_protocol::Prot, data: Option<mem_protocol::BufRef>) -> Result<(), String> {
        let req = Request::Region { target: mem_protocol::Target::Client(badge), addr, len, prot, data };
        match self.admin.request(&req)? {
            mem_protocol::Value::Addr(a) if a == addr => Ok(()),
            v => Err(format!("Region {addr:#x}+{len:#x}: unexpected value {v:?}")),
        }
    }
}
