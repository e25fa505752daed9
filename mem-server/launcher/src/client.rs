//! Client processes: created through the memory server, started and destroyed by the
//! launcher.
//!
//! Creation: `CreateSpace` (the reply carries a copy of the new VSpace cap), the client ELF
//! loaded with `Region` requests (its bytes go through the administrator's shared buffer,
//! at most one data area per request), the `ClientBoot` page (read-only) and the IPC buffer
//! page, `ExportFrame` of the IPC buffer (the reply carries its frame cap); then a CNode
//! (`client_slot::SERVER`, and `client_slot::REPORT` if the spec names a report endpoint:
//! endpoints badged with the client's badge; `client_slot::FAULT`: the server endpoint
//! badged with the client's badge and `FAULT_BADGE_FLAG`) and a TCB whose fault endpoint
//! is that fault cap. Further threads ([`Launcher::add_thread`]) share the CNode and the
//! fault cap and get IPC buffers of their own. Destruction follows the cap lifetime rules
//! of `mem_protocol::system`: suspend, delete the TCBs, the CNode and the cap copies, then
//! `DestroySpace`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use mem_client::Client;
use mem_protocol::system::{
    client_slot, CLIENT_BOOT_VADDR, CLIENT_CNODE_BITS, CLIENT_IPC_BUFFER_VADDR,
    CLIENT_MAX_THREADS, CLIENT_THREAD_IPC_VADDR,
};
use mem_protocol::{Prot, Request, Target};
use object::elf::{PF_R, PF_W, PF_X};
use object::{Object, ObjectSegment, SegmentFlags};

use crate::objects::root_path;
use crate::vspace::PAGE;
use crate::Launcher;

/// Scheduling priority of clients: below the server.
pub const CLIENT_PRIORITY: u64 = 253;

/// What a new client is: its identity, its limits, its program.
#[derive(Clone, Copy)]
pub struct ClientSpec<'a> {
    /// Its badge: its id at the server (`FIRST_CLIENT_BADGE`..`MAX_BADGES`, unused).
    pub badge: u32,
    /// Owner user and group (shm and backend permissions).
    pub uid: u32,
    pub gid: u32,
    /// Most pages it may hold.
    pub quota: u64,
    /// Its ELF image (static, linked for user addresses away from the `CLIENT_*_VADDR`
    /// pages of `mem_protocol::system`); started at its entry point.
    pub elf: &'a [u8],
    /// Bytes for the read-only page at `CLIENT_BOOT_VADDR` (at most a page), if any: how
    /// the program learns its parameters.
    pub boot: Option<&'a [u8]>,
    /// An endpoint (root CNode slot) to mint into `client_slot::REPORT` with the client's
    /// badge, if any: how the program reports to whoever started it.
    pub report: Option<usize>,
}

/// A running (or finished, still blocked) client.
pub struct Proc {
    pub badge: u32,
    tcb: usize,
    cnode: usize,
    vspace: usize,
    ipc: usize,
    /// Further threads: (TCB slot, IPC-buffer frame cap slot).
    threads: Vec<(usize, usize)>,
    /// The untyped block (root slot) its CNode and TCBs were made from.
    block: usize,
}

/// Size of the untyped block a client's CNode and TCBs come from (log2 bytes): its CNode
/// and `1 + CLIENT_MAX_THREADS` TCBs, each aligned to its size.
pub const CLIENT_BLOCK_BITS: usize = 16;
const _: () = {
    let tcb = 1usize << sel4::sys::seL4_TCBBits;
    let cnode = 1usize << (CLIENT_CNODE_BITS as usize + sel4::sys::seL4_SlotBits as usize);
    let cnode_padded = if cnode > tcb { cnode } else { tcb };
    assert!(cnode_padded + (1 + CLIENT_MAX_THREADS as usize) * tcb <= 1 << CLIENT_BLOCK_BITS);
};

/// Where and how a further thread of a client starts.
#[derive(Clone, Copy, Debug)]
pub struct ThreadStart {
    /// Its number, 1..=`CLIENT_MAX_THREADS` (its IPC buffer's place).
    pub id: u64,
    pub pc: u64,
    /// Initial stack pointer (16-byte aligned, in a mapped area of the client).
    pub sp: u64,
    /// First two argument registers.
    pub args: [u64; 2],
    /// The core to run on (ignored on a one-core kernel; taken modulo the core count).
    pub core: u64,
}

/// Cores of the kernel this root task runs on.
pub const CORES: u64 = sel4::sel4_cfg_usize!(MAX_NUM_NODES) as u64;

/// The IPC buffer address of further thread `id`.
pub const fn thread_ipc_vaddr(id: u64) -> u64 {
    CLIENT_THREAD_IPC_VADDR + (id - 1) * PAGE
}

/// A page-aligned piece of the client image: `addr..addr+len` with `prot`, and the file
/// bytes that go at its start (the rest is zero).
struct Piece {
    addr: u64,
    len: u64,
    prot: Prot,
    bytes: Vec<(u64, usize, usize)>, // (vaddr, offset in the ELF file, length)
}

fn prot_of(flags: SegmentFlags) -> Prot {
    let mut p = Prot::NONE;
    if let SegmentFlags::Elf { p_flags } = flags {
        if p_flags & PF_R != 0 {
            p = p.union(Prot::READ);
        }
        if p_flags & PF_W != 0 {
            p = p.union(Prot::WRITE);
        }
        if p_flags & PF_X != 0 {
            p = p.union(Prot::EXEC);
        }
    }
    p
}

/// The image as page-aligned spans (segments sharing a page merged, protections joined),
/// cut into pieces of at most `max` bytes.
fn pieces(image: &[u8], max: u64) -> Result<(Vec<Piece>, u64), String> {
    let file = object::File::parse(image).map_err(|e| format!("client ELF: {e}"))?;
    let mut spans: Vec<Piece> = Vec::new();
    let mut segs: Vec<_> = file.segments().filter(|s| s.size() > 0).collect();
    segs.sort_by_key(|s| s.address());
    for seg in &segs {
        let start = seg.address() & !(PAGE - 1);
        let end = (seg.address() + seg.size()).next_multiple_of(PAGE);
        let (off, filesz) = seg.file_range();
        let bytes = (seg.address(), off as usize, filesz as usize);
        match spans.last_mut() {
            Some(last) if start < last.addr + last.len => {
                last.len = last.len.max(end - last.addr);
                last.prot = last.prot.union(prot_of(seg.flags()));
                last.bytes.push(bytes);
            }
            _ => spans.push(Piece { addr: start, len: end - start, prot: prot_of(seg.flags()), bytes: alloc::vec![bytes] }),
        }
    }
    let mut out = Vec::new();
    for span in spans {
        let mut at = span.addr;
        while at < span.addr + span.len {
            let len = max.min(span.addr + span.len - at);
            let bytes = span.bytes.iter().filter_map(|&(va, off, n)| {
                let lo = va.max(at);
                let hi = (va + n as u64).min(at + len);
                (lo < hi).then(|| (lo, off + (lo - va) as usize, (hi - lo) as usize))
            });
            out.push(Piece { addr: at, len, prot: span.prot, bytes: bytes.collect() });
            at += len;
        }
    }
    Ok((out, file.entry()))
}

impl Launcher {
    /// Create the client's space, load its image and boot page, start its first thread.
    pub fn create_client(&mut self, spec: &ClientSpec) -> Result<Proc, String> {
        let badge = spec.badge;
        let req = Request::CreateSpace { client: badge, uid: spec.uid, gid: spec.gid, quota_pages: spec.quota };
        let (_, vspace) = self.request_cap(&req)?;
        let r = self.load_image(badge, spec.elf).and_then(|entry| {
            if let Some(boot) = spec.boot {
                self.put_boot(badge, boot)?;
                // Exported (so pinned): a system page of the client, which survives
                // `Reset` (`reset_client`); the cap itself is not needed.
                let req = Request::ExportFrame { target: Target::Client(badge), addr: CLIENT_BOOT_VADDR };
                let (_, frame) = self.request_cap(&req)?;
                self.objs.delete(frame).map_err(|e| format!("client {badge}: boot page cap: {e:?}"))?;
            }
            // Eagerly filled (zero), so that the frame exists for ExportFrame.
            let ipc_data = self.stage(&[0u8; PAGE as usize])?;
            self.region(badge, CLIENT_IPC_BUFFER_VADDR, PAGE, Prot::RW, Some(ipc_data))?;
            self.start_client(badge, vspace, entry, spec.report)
        });
        if r.is_err() {
            self.abandon_space(badge, vspace);
        }
        r
    }

    /// Give up on a space whose thread never started: delete the VSpace cap copy (root
    /// slot `vspace`) and destroy the space (errors ignored: this is cleanup after one).
    pub fn abandon_space(&mut self, badge: u32, vspace: usize) {
        let _ = self.objs.delete(vspace);
        let _ = self.admin.unit(&Request::DestroySpace { client: badge });
    }

    /// The entry point of an ELF image.
    pub fn elf_entry(elf: &[u8]) -> Result<u64, String> {
        object::File::parse(elf).map(|f| f.entry()).map_err(|e| format!("client ELF: {e}"))
    }

    /// Start the first thread in the existing space `badge` (VSpace cap copy in root slot
    /// `vspace`, e.g. from [`Launcher::clone_space`]) at `entry`, with the IPC buffer page
    /// the space has at `CLIENT_IPC_BUFFER_VADDR` (present: [`Launcher::create_client`]
    /// makes it; a clone gets a fresh one from the server) exported, so pinned; its CNode
    /// and TCB. On failure everything made here is deleted again (the VSpace copy and the
    /// space are the caller's).
    pub fn start_client(&mut self, badge: u32, vspace: usize, entry: u64, report: Option<usize>) -> Result<Proc, String> {
        let req = Request::ExportFrame { target: Target::Client(badge), addr: CLIENT_IPC_BUFFER_VADDR };
        let (_, ipc) = self.request_cap(&req)?;
        let block = match self.take_block() {
            Ok(b) => b,
            Err(e) => {
                let _ = self.objs.delete(ipc);
                return Err(e);
            }
        };
        let mut made = alloc::vec![ipc];
        let r = self.make_thread(badge, vspace, ipc, entry, report, block, &mut made);
        match r {
            Ok((tcb, cnode)) => Ok(Proc { badge, tcb, cnode, vspace, ipc, threads: Vec::new(), block }),
            Err(e) => {
                for slot in made {
                    let _ = self.objs.delete(slot);
                }
                self.blocks_free.push(block);
                Err(e)
            }
        }
    }

    /// An untyped block for a client's CNode and TCBs: one given back by a destroyed client
    /// (its objects are gone, so the kernel retypes it from the start again), or a new one
    /// from the kept pools. Reusing blocks keeps a system that creates and destroys clients
    /// forever within the root task's memory.
    fn take_block(&mut self) -> Result<usize, String> {
        if let Some(b) = self.blocks_free.pop() {
            return Ok(b);
        }
        let bp = sel4::ObjectBlueprint::Untyped { size_bits: CLIENT_BLOCK_BITS };
        let b = self.objs.alloc_slot(bp).map_err(|e| format!("client block: {e:?}"))?;
        self.blocks_made += 1;
        Ok(b)
    }

    /// CNode and TCB of a client thread, started at `entry`; their slots (also pushed on
    /// `made` as they are created).
    #[allow(clippy::too_many_arguments)]
    fn make_thread(&mut self, badge: u32, vspace: usize, ipc: usize, entry: u64, report: Option<usize>, block: usize, made: &mut Vec<usize>) -> Result<(usize, usize), String> {
        let e = |what: &str, err: sel4::Error| format!("client {badge}: {what}: {err:?}");
        let bp = sel4::ObjectBlueprint::CNode { size_bits: CLIENT_CNODE_BITS as usize };
        let cnode_slot = self.objs.alloc_from(block, bp).map_err(|x| e("CNode", x))?;
        made.push(cnode_slot);
        let cnode = sel4::init_thread::Slot::<sel4::cap_type::CNode>::from_index(cnode_slot).cap();
        let to = |slot: u64| cnode.absolute_cptr_from_bits_with_depth(slot, CLIENT_CNODE_BITS as usize);
        // Write + grant-reply: enough to Call, and to be a fault endpoint.
        let rights = sel4::CapRights::new(true, false, false, true);
        to(client_slot::SERVER).mint(&root_path(self.server_ep), rights.clone(), badge as u64).map_err(|x| e("mint server", x))?;
        let fault_badge = badge as u64 | mem_protocol::system::FAULT_BADGE_FLAG;
        to(client_slot::FAULT).mint(&root_path(self.server_ep), rights.clone(), fault_badge).map_err(|x| e("mint fault", x))?;
        if let Some(report) = report {
            to(client_slot::REPORT).mint(&root_path(report), rights, badge as u64).map_err(|x| e("mint report", x))?;
        }
        let tcb_slot = self.objs.alloc_from(block, sel4::ObjectBlueprint::Tcb).map_err(|x| e("TCB", x))?;
        made.push(tcb_slot);
        let tcb = sel4::init_thread::Slot::<sel4::cap_type::Tcb>::from_index(tcb_slot).cap();
        let slot_cap = |s: usize| sel4::init_thread::Slot::<sel4::cap_type::Unspecified>::from_index(s).cap();
        tcb.tcb_configure(
            sel4::CPtr::from_bits(client_slot::FAULT),
            cnode,
            sel4::CNodeCapData::skip_high_bits(CLIENT_CNODE_BITS as usize),
            slot_cap(vspace).cast(),
            CLIENT_IPC_BUFFER_VADDR as sel4::Word,
            slot_cap(ipc).cast(),
        )
        .map_err(|x| e("TCB configure", x))?;
        tcb.tcb_set_sched_params(sel4::init_thread::slot::TCB.cap(), CLIENT_PRIORITY, CLIENT_PRIORITY)
            .map_err(|x| e("priority", x))?;
        let mut ctx = sel4::UserContext::default();
        *ctx.pc_mut() = entry as sel4::Word;
        tcb.tcb_write_all_registers(true, &mut ctx).map_err(|x| e("start", x))?;
        Ok((tcb.bits() as usize, cnode.bits() as usize))
    }

    /// Clone `parent`'s space copy-on-write into a new space `child` with `quota` pages
    /// (`Clone`); the root CNode slot of the child's VSpace cap copy, for
    /// [`Launcher::start_client`] (or [`Launcher::abandon_space`]).
    pub fn clone_space(&mut self, parent: u32, child: u32, quota: u64) -> Result<usize, String> {
        let req = Request::Clone { source: Target::Client(parent), child, quota_pages: quota };
        self.request_cap(&req).map(|(_, vspace)| vspace)
    }

    /// Start a further thread of `p` in its address space and CSpace (same fault endpoint
    /// and badge): a fresh IPC buffer page at [`thread_ipc_vaddr`] (pinned by
    /// `ExportFrame`), a TCB with the client's priority on core `t.core`, registers as
    /// `t` says. On failure what was made here is deleted again.
    pub fn add_thread(&mut self, p: &mut Proc, t: ThreadStart) -> Result<(), String> {
        let badge = p.badge;
        if t.id == 0 || t.id > CLIENT_MAX_THREADS || p.threads.len() as u64 >= CLIENT_MAX_THREADS {
            return Err(format!("client {badge}: thread id {} out of range", t.id));
        }
        let at = thread_ipc_vaddr(t.id);
        let zero = self.stage(&[0u8; PAGE as usize])?;
        self.region(badge, at, PAGE, Prot::RW, Some(zero))?;
        let (_, ipc) = self.request_cap(&Request::ExportFrame { target: Target::Client(badge), addr: at })?;
        let r = self.make_extra_thread(p, ipc, at, t);
        match r {
            Ok(tcb) => {
                p.threads.push((tcb, ipc));
                Ok(())
            }
            Err(e) => {
                let _ = self.objs.delete(ipc);
                let _ = self.admin.unit(&Request::Munmap { target: Target::Client(badge), addr: at, len: PAGE });
                Err(e)
            }
        }
    }

    fn make_extra_thread(&mut self, p: &Proc, ipc: usize, at: u64, t: ThreadStart) -> Result<usize, String> {
        let e = |what: &str, err: sel4::Error| format!("client {} thread {}: {what}: {err:?}", p.badge, t.id);
        let tcb_slot = self.objs.alloc_from(p.block, sel4::ObjectBlueprint::Tcb).map_err(|x| e("TCB", x))?;
        let tcb = sel4::init_thread::Slot::<sel4::cap_type::Tcb>::from_index(tcb_slot).cap();
        let slot_cap = |s: usize| sel4::init_thread::Slot::<sel4::cap_type::Unspecified>::from_index(s).cap();
        let r = (|| {
            tcb.tcb_configure(
                sel4::CPtr::from_bits(client_slot::FAULT),
                slot_cap(p.cnode).cast(),
                sel4::CNodeCapData::skip_high_bits(CLIENT_CNODE_BITS as usize),
                slot_cap(p.vspace).cast(),
                at as sel4::Word,
                slot_cap(ipc).cast(),
            )
            .map_err(|x| e("TCB configure", x))?;
            tcb.tcb_set_sched_params(sel4::init_thread::slot::TCB.cap(), CLIENT_PRIORITY, CLIENT_PRIORITY)
                .map_err(|x| e("priority", x))?;
            set_core(tcb, t.core % CORES).map_err(|x| e("affinity", x))?;
            let mut ctx = sel4::UserContext::default();
            *ctx.pc_mut() = t.pc as sel4::Word;
            *ctx.sp_mut() = t.sp as sel4::Word;
            *ctx.c_param_mut(0) = t.args[0] as sel4::Word;
            *ctx.c_param_mut(1) = t.args[1] as sel4::Word;
            tcb.tcb_write_all_registers(true, &mut ctx).map_err(|x| e("start", x))
        })();
        match r {
            Ok(()) => Ok(tcb.bits() as usize),
            Err(m) => {
                let _ = self.objs.delete(tcb.bits() as usize);
                Err(m)
            }
        }
    }

    /// The first half of an exec: stop the client's threads (a thread blocked in a call is
    /// taken out of it: a saved reply cap to it is gone) and `Reset` its space: every area
    /// goes but its system pages (IPC buffers, the boot page, the shared buffer). Its
    /// further threads stay stopped (and keep their IPC buffers) until it is destroyed.
    pub fn reset_client(&mut self, p: &Proc) -> Result<(), String> {
        for &(tcb, _) in &p.threads {
            let _ = sel4::init_thread::Slot::<sel4::cap_type::Tcb>::from_index(tcb).cap().tcb_suspend();
        }
        let tcb = sel4::init_thread::Slot::<sel4::cap_type::Tcb>::from_index(p.tcb).cap();
        tcb.tcb_suspend().map_err(|e| format!("client {}: suspend: {e:?}", p.badge))?;
        self.admin.unit(&Request::Reset { target: Target::Client(p.badge) })
    }

    /// The second half of an exec: load `elf` into the client's (reset) space and start its
    /// first thread again at the entry point (its IPC buffer, CSpace and fault endpoint
    /// are those it had).
    pub fn restart_client(&mut self, p: &Proc, elf: &[u8]) -> Result<(), String> {
        let entry = self.load_image(p.badge, elf)?;
        let tcb = sel4::init_thread::Slot::<sel4::cap_type::Tcb>::from_index(p.tcb).cap();
        let mut ctx = sel4::UserContext::default();
        *ctx.pc_mut() = entry as sel4::Word;
        tcb.tcb_write_all_registers(true, &mut ctx).map_err(|e| format!("client {}: restart: {e:?}", p.badge))
    }

    /// Run `elf` in the client's space instead of what runs there: `reset_client`, then
    /// `restart_client`.
    pub fn exec(&mut self, p: &Proc, elf: &[u8]) -> Result<(), String> {
        self.reset_client(p)?;
        self.restart_client(p, elf)
    }

    /// Suspend and delete the client's threads and every cap copy, then `DestroySpace`.
    pub fn destroy_client(&mut self, p: Proc) -> Result<(), String> {
        for &(tcb, _) in &p.threads {
            let _ = sel4::init_thread::Slot::<sel4::cap_type::Tcb>::from_index(tcb).cap().tcb_suspend();
        }
        let tcb = sel4::init_thread::Slot::<sel4::cap_type::Tcb>::from_index(p.tcb).cap();
        let _ = tcb.tcb_suspend();
        for &(tcb, ipc) in &p.threads {
            for slot in [tcb, ipc] {
                self.objs.delete(slot).map_err(|e| format!("client {}: delete slot {slot}: {e:?}", p.badge))?;
            }
        }
        for slot in [p.tcb, p.cnode, p.vspace, p.ipc] {
            self.objs.delete(slot).map_err(|e| format!("client {}: delete slot {slot}: {e:?}", p.badge))?;
        }
        // Every object made from the block is gone: the next client retypes it afresh.
        self.blocks_free.push(p.block);
        self.admin.unit(&Request::DestroySpace { client: p.badge })
    }

    /// Load `elf` into `badge`'s space; returns its entry point.
    fn load_image(&mut self, badge: u32, elf: &[u8]) -> Result<u64, String> {
        let max = mem_client::DATA_BYTES as u64;
        let (pieces, entry) = pieces(elf, max)?;
        for p in pieces {
            let data = if p.bytes.is_empty() {
                None
            } else {
                let area = self.admin.data_mut();
                let used = p.bytes.iter().map(|&(va, _, n)| (va - p.addr) as usize + n).max().unwrap_or(0);
                area[..used].fill(0);
                for &(va, off, n) in &p.bytes {
                    let at = (va - p.addr) as usize;
                    area[at..at + n].copy_from_slice(&elf[off..off + n]);
                }
                Some(Client::data_bufref(0, used))
            };
            self.region(badge, p.addr, p.len, p.prot, data)?;
        }
        Ok(entry)
    }

    /// Put `bytes` (at most a page) on the read-only page at `CLIENT_BOOT_VADDR` of
    /// `badge`'s space (which must not have one yet: `Munmap` the old one first).
    pub fn put_boot(&mut self, badge: u32, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() > PAGE as usize {
            return Err(format!("boot record of {} bytes: at most a page", bytes.len()));
        }
        let data = self.stage(bytes)?;
        self.region(badge, CLIENT_BOOT_VADDR, PAGE, Prot::READ, Some(data))
    }

    /// Copy `bytes` to the start of the data area; their `BufRef`.
    pub fn stage(&mut self, bytes: &[u8]) -> Result<mem_protocol::BufRef, String> {
        self.admin.data_mut()[..bytes.len()].copy_from_slice(bytes);
        Ok(Client::data_bufref(0, bytes.len()))
    }
}

/// Put `tcb` on core `core` (a one-core kernel has nothing to choose).
#[sel4::sel4_cfg(not(MAX_NUM_NODES = "1"))]
fn set_core(tcb: sel4::cap::Tcb, core: u64) -> sel4::Result<()> {
    tcb.tcb_set_affinity(core as sel4::Word)
}

/// Put `tcb` on core `core` (a one-core kernel has nothing to choose).
#[sel4::sel4_cfg(MAX_NUM_NODES = "1")]
fn set_core(_tcb: sel4::cap::Tcb, _core: u64) -> sel4::Result<()> {
    Ok(())
}
