//! The server loop: receive on [`server_slot::ENDPOINT`], serve one message, reply.
//!
//! The badge of the message is the sender's client id ([`ADMIN_BADGE`] for the root task).
//! Three kinds of message arrive:
//!
//! - a VM fault of a client thread (the kernel's fault label, the client's badge on its
//!   fault endpoint): `mem-core` resolves it and an empty reply resumes the thread. This is
//!   the fast path: fault IPC, the `Page_Map` of the fix, `ReplyRecv`, nothing else (no
//!   logging, no allocation here). An unresolvable fault prints one line, sends an
//!   `UNRESOLVED_LABEL` note (MR0 badge, MR1 address, MR2 `UNRESOLVED_*` reason) to the
//!   root task on [`server_slot::REPORT`] without blocking, and is not answered: the
//!   thread stays blocked (stopped) and the next `Recv` drops its reply cap. Other kernel
//!   faults (cap fault, user exception, unknown syscall) are reported the same way with
//!   reason `UNRESOLVED_OTHER` and MR0 of the fault message (the fault IP) as address.
//! - a request ([`REQUEST_LABEL`]): decoded from the message registers and handled by
//!   `mem-core`'s `dispatch`, with the administrator's extras of `admin.rs`; the reply
//!   goes back in the message registers, label 0. A sender that has no space and is not the
//!   administrator gets `ESRCH`; an undecodable request gets `Reply::Protocol`.
//! - anything else: `Reply::Protocol(UnknownRequest)`.
//!
//! Caps the server hands out (`CreateSpace`, `Clone`, `ExportFrame`) travel as the reply's
//! one extra cap from [`server_slot::EXPORT`]; the server's copy there is deleted when the
//! next request arrives, so it never outlives the object (reclaim stays exact). A cap a
//! sender attaches to a request lands in [`server_slot::RECV`] and is deleted unused.

use mem_core::{Access, MemCore, Slot, Unresolved};
use mem_protocol::system::{
    server_slot, ADMIN_BADGE, REQUEST_LABEL, UNRESOLVED_DENIED, UNRESOLVED_LABEL,
    UNRESOLVED_NO_AREA, UNRESOLVED_NO_MEMORY, UNRESOLVED_OTHER,
};
use mem_protocol::{
    decode_request_words, encode_reply_words, Errno, ProtocolError, Reply, Request,
    IPC_BUFFER_WORDS,
};
use sel4::sys::{seL4_Fault_tag, seL4_VMFault_Msg};
use sel4::{cap, MessageInfo};

use crate::buffers::Buffers;
use crate::kernel_sel4::{abs, Sel4Kernel};

/// The memory server: the policy core, the buffer views, and the hand-out slot's state.
pub struct Server {
    pub(crate) core: MemCore<Sel4Kernel>,
    pub(crate) bufs: Buffers,
    /// [`server_slot::EXPORT`] holds a cap that went out with the last reply.
    pub(crate) export_held: bool,
}

/// What to send back for one message: a reply, or nothing (the sender stays blocked).
type Answer = Option<MessageInfo>;

impl Server {
    pub fn new(core: MemCore<Sel4Kernel>, bufs: Buffers) -> Self {
        Server {
            core,
            bufs,
            export_held: false,
        }
    }

    /// Serve forever.
    pub fn run(mut self) -> ! {
        // Caps attached to requests land in RECV (and are deleted unused).
        let recv_slot = abs(server_slot::RECV as Slot);
        sel4::with_ipc_buffer_mut(|ipc| ipc.set_recv_slot(&recv_slot));
        let ep = cap::Endpoint::from_bits(server_slot::ENDPOINT);
        let mut answer: Answer = None;
        loop {
            let (info, badge) = match answer.take() {
                Some(reply) => ep.reply_recv(reply, ()),
                None => ep.recv(()),
            };
            // Badges are client ids (u32); a wider one matches no client and no admin.
            let sender = u32::try_from(badge).unwrap_or(u32::MAX);
            answer = self.handle(&info, sender);
        }
    }

    fn handle(&mut self, info: &MessageInfo, sender: u32) -> Answer {
        match info.label() {
            seL4_Fault_tag::seL4_Fault_VMFault => self.vm_fault(info, sender),
            REQUEST_LABEL => Some(self.request(info, sender)),
            seL4_Fault_tag::seL4_Fault_CapFault
            | seL4_Fault_tag::seL4_Fault_UnknownSyscall
            | seL4_Fault_tag::seL4_Fault_UserException => {
                let ip = sel4::with_ipc_buffer(|ipc| ipc.msg_regs()[0]);
                self.unresolved(sender, ip, UNRESOLVED_OTHER, "not a VM fault");
                None
            }
            _ => Some(reply(&Reply::Protocol(ProtocolError::UnknownRequest), None)),
        }
    }

    /// A VM fault of client `sender`: resolve it (empty reply) or report it (no reply).
    fn vm_fault(&mut self, info: &MessageInfo, sender: u32) -> Answer {
        let Some((addr, access)) = decode_vm_fault(info) else {
            // Only a sender forging the fault label gets here (the kernel's message always
            // has the VM-fault length).
            return Some(reply(&Reply::Protocol(ProtocolError::Malformed), None));
        };
        match self.core.handle_fault(sender, addr, access) {
            Ok(_) => Some(MessageInfo::new(0, 0, 0, 0)),
            Err(why) => {
                let (code, text) = match why {
                    Unresolved::NoArea => (UNRESOLVED_NO_AREA, "no area"),
                    Unresolved::Denied => (UNRESOLVED_DENIED, "access denied"),
                    Unresolved::NoMemory => (UNRESOLVED_NO_MEMORY, "no memory"),
                    Unresolved::NoSpace => (UNRESOLVED_OTHER, "unknown client"),
                };
                self.unresolved(sender, addr, code, text);
                None
            }
        }
    }

    /// Print and report a fault of `client` that will not be answered.
    fn unresolved(&mut self, client: u32, addr: u64, code: u64, text: &str) {
        crate::say!("mem-server: client {client} unresolved fault at {addr:#x} ({text})");
        sel4::with_ipc_buffer_mut(|ipc| {
            let mr = ipc.msg_regs_mut();
            mr[0] = u64::from(client);
            mr[1] = addr;
            mr[2] = code;
        });
        let report = cap::Endpoint::from_bits(server_slot::REPORT);
        report.nb_send(MessageInfo::new(UNRESOLVED_LABEL, 0, 0, 3));
    }

    /// A protocol request of `sender`: decode, serve, encode the reply.
    fn request(&mut self, info: &MessageInfo, sender: u32) -> MessageInfo {
        // Decode first: the invocations below write their arguments into the message
        // registers, over the request.
        let len = info.length().min(IPC_BUFFER_WORDS);
        let decoded = sel4::with_ipc_buffer(|ipc| decode_request_words(&ipc.msg_regs()[..len]));
        if self.export_held {
            // The cap that went out with the last reply has been delivered by now.
            let _ = abs(server_slot::EXPORT as Slot).delete();
            self.export_held = false;
        }
        if info.extra_caps() > 0 {
            let _ = abs(server_slot::RECV as Slot).delete();
        }
        let req = match decoded {
            Ok(req) => req,
            Err(e) => return reply(&Reply::Protocol(e), None),
        };
        let (r, cap) = self.serve(sender, &req);
        reply(&r, cap)
    }

    /// Serve one decoded request; the reply and the slot of a cap to send with it.
    fn serve(&mut self, sender: u32, req: &Request) -> (Reply, Option<Slot>) {
        let admin = self.core.is_admin(sender);
        if !admin && !self.core.has_space(sender) {
            return (Reply::Err(Errno::Srch), None);
        }
        if admin {
            if let Some(answer) = self.serve_admin(sender, req) {
                return answer;
            }
        }
        (self.serve_plain(sender, req), None)
    }

    /// Any request without administrator extras; bulk data through the caller's rings.
    pub(crate) fn serve_plain(&mut self, sender: u32, req: &Request) -> Reply {
        let Some(b) = bufref_of(req) else {
            return self.core.dispatch(sender, req, &mut []);
        };
        let d = match self.bufs.take(sender, b) {
            Ok(d) => d,
            Err(e) => return Reply::Err(e),
        };
        let r = match self.bufs.bytes(sender) {
            Some(buf) => self.core.dispatch(sender, req, buf),
            None => Reply::Err(Errno::Fault),
        };
        self.bufs.give_back(sender, d);
        r
    }

    /// Copy `slot`'s cap into [`server_slot::EXPORT`] to go out with the reply.
    pub(crate) fn export(&mut self, slot: Slot) -> Result<Slot, Errno> {
        let export = abs(server_slot::EXPORT as Slot);
        let _ = export.delete();
        export
            .copy(&abs(slot), sel4::CapRights::all())
            .map_err(|_| Errno::NoMem)?;
        self.export_held = true;
        Ok(server_slot::EXPORT as Slot)
    }
}

/// Write `r` into the message registers; the reply's message info (label 0, with `cap` as
/// its one extra cap if given).
fn reply(r: &Reply, cap: Option<Slot>) -> MessageInfo {
    let n = sel4::with_ipc_buffer_mut(|ipc| {
        if let Some(c) = cap {
            ipc.caps_or_badges_mut()[0] = u64::from(c);
        }
        // Every reply fits (checked at compile time in mem-protocol).
        encode_reply_words(r, ipc.msg_regs_mut()).unwrap_or(0)
    });
    MessageInfo::new(0, 0, usize::from(cap.is_some()), n)
}

/// Address and access kind of a VM-fault message, or `None` if it is not one.
fn decode_vm_fault(info: &MessageInfo) -> Option<(u64, Access)> {
    // `sel4::Fault::new` asserts the length; only ask it once the length is right.
    if info.length() != seL4_VMFault_Msg::seL4_VMFault_Length as usize {
        return None;
    }
    let sel4::Fault::VmFault(f) = sel4::with_ipc_buffer(|ipc| sel4::Fault::new(ipc, info)) else {
        return None;
    };
    let f = f.inner();
    let access = if f.get_PrefetchFault() != 0 {
        Access::Exec
    } else {
        data_access(f.get_FSR())
    };
    Some((f.get_Addr(), access))
}

/// Read or write, from a data fault's status: riscv64 reports `scause` (15 store/AMO page
/// fault, 7 store access fault → write; 12 / 1 instruction faults → exec; else read).
#[cfg(target_arch = "riscv64")]
fn data_access(fsr: u64) -> Access {
    match fsr {
        15 | 7 => Access::Write,
        12 | 1 => Access::Exec,
        _ => Access::Read,
    }
}

/// Read or write, from a data fault's status: aarch64 reports the ESR, whose WnR bit (6)
/// says write.
#[cfg(target_arch = "aarch64")]
fn data_access(fsr: u64) -> Access {
    if fsr & (1 << 6) != 0 {
        Access::Write
    } else {
        Access::Read
    }
}

/// The bulk-data reference a request carries, if any.
fn bufref_of(req: &Request) -> Option<mem_protocol::BufRef> {
    match *req {
        Request::Region { data, .. } => data,
        Request::BackendWrite { buf, .. } | Request::BackendRead { buf, .. } => Some(buf),
        _ => None,
    }
}

const _: () = assert!(ADMIN_BADGE != 0, "badge 0 (unbadged) is never the admin");
