//! The server loop: receive on [`server_slot::ENDPOINT`], serve one message, reply.
//!
//! Who sent a message is its badge (`mem_core::dispatch::sender_of`): a client's request
//! cap carries its id, its fault cap (the one its TCB names) the id with
//! `FAULT_BADGE_FLAG`; the root task's cap carries [`ADMIN_BADGE`]. Kernel fault messages
//! are accepted only on fault badges and requests only on request badges; anything else is
//! answered with a protocol error.
//!
//! - A VM fault: `mem-core` resolves it and an empty reply resumes the thread. This is the
//!   fast path: fault IPC, the `Page_Map` of the fix, `ReplyRecv`, nothing else (no logging,
//!   no allocation here). A fault that cannot be resolved (and any other kernel fault: cap
//!   fault, user exception, unknown syscall) is not answered: the thread stays stopped and
//!   the next `Recv` drops its reply cap. The core queues a note for the administrator
//!   (`MemCore::note_unresolved`; printed for the first few faults of a client only) and
//!   the server signals the administrator's notification ([`NOTIFY_NOTE`]), which is never
//!   lost; the administrator takes the notes with `TakeNote`.
//! - A request ([`REQUEST_LABEL`]): decoded from the message registers, bulk data through
//!   the sender's rings (`buffers.rs`), served by `MemCore::dispatch` (the one place that
//!   matches on requests), the reply encoded into the message registers, label 0.
//!
//! - A pager-backed page (`mem-core` `pager.rs`): the core saves the faulting thread's reply
//!   cap and the fault goes to the pager; no reply now (`Unresolved::Deferred`). A
//!   `PagerWait` with nothing queued is held the same way (`Answer::held`). The core answers
//!   both later through `Kernel::reply_saved`.
//!
//! - The zeroing thread's "batch done" (`ZEROER_DONE_BADGE`, through the notification
//!   bound to this thread): no reply; after every message the loop lets the zeroer take a
//!   finished batch back and lend the next (`zeroer.rs`).
//!
//! A cap the core hands out (`CreateSpace`, `Clone`: a VSpace; `ExportFrame`: a pinned
//! frame) travels as the reply's one extra cap from [`server_slot::EXPORT`]; the server's
//! copy there is deleted when the next request arrives, so it never outlives the object. A
//! cap a sender attaches to a request lands in [`server_slot::RECV`] and is deleted unused.

use mem_core::{Access, MemCore, Sender, Slot, Unresolved};
use mem_protocol::system::{
    server_slot, ADMIN_BADGE, REQUEST_LABEL, UNRESOLVED_DENIED, UNRESOLVED_NO_AREA,
    UNRESOLVED_NO_MEMORY, UNRESOLVED_OTHER, UNRESOLVED_PAGER, ZEROER_DONE_BADGE,
};
use mem_protocol::{
    decode_request_words, encode_reply_words, ProtocolError, Reply, Request, IPC_BUFFER_WORDS,
};
use sel4::sys::{seL4_Fault_tag, seL4_VMFault_Msg};
use sel4::{cap, MessageInfo};

use crate::buffers::Buffers;
use crate::kernel_sel4::{abs, Sel4Kernel};
use crate::zeroer::Zeroer;

/// The memory server: the policy core, the buffer views, and the hand-out slot's state.
pub struct Server {
    pub(crate) core: MemCore<Sel4Kernel>,
    pub(crate) bufs: Buffers,
    /// [`server_slot::EXPORT`] holds a cap that went out with the last reply.
    pub(crate) export_held: bool,
    /// The answer to the request being served: the core writes the reply here and it is
    /// encoded from here (no reply is moved).
    answer: mem_core::Answer,
    /// The zeroing thread's batches (`zeroer.rs`).
    zeroer: Zeroer,
}

/// What to send back for one message: a reply, or nothing (the sender stays blocked).
type Answer = Option<MessageInfo>;

/// Is `label` one of the kernel's fault labels?
fn is_fault_label(label: u64) -> bool {
    label == seL4_Fault_tag::seL4_Fault_VMFault
        || label == seL4_Fault_tag::seL4_Fault_CapFault
        || label == seL4_Fault_tag::seL4_Fault_UnknownSyscall
        || label == seL4_Fault_tag::seL4_Fault_UserException
}

impl Server {
    pub fn new(core: MemCore<Sel4Kernel>, bufs: Buffers) -> Self {
        Server {
            core,
            bufs,
            export_held: false,
            answer: mem_core::Answer::EMPTY,
            zeroer: Zeroer::start(),
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
            answer = self.handle(&info, badge);
            #[cfg(feature = "bench")]
            let start = crate::meter::start();
            self.zeroer.tend(&mut self.core);
            #[cfg(feature = "bench")]
            crate::meter::step(start, crate::meter::KIND_ZEROER);
        }
    }

    #[cfg(not(feature = "bench"))]
    fn handle(&mut self, info: &MessageInfo, badge: u64) -> Answer {
        self.handle_inner(info, badge)
    }

    /// Bench builds: the meters' switch, and the message metered while they are on.
    #[cfg(feature = "bench")]
    fn handle(&mut self, info: &MessageInfo, badge: u64) -> Answer {
        if info.label() == crate::meter::BENCH_METERS_LABEL && badge == u64::from(ADMIN_BADGE) {
            let on = sel4::with_ipc_buffer(|ipc| ipc.msg_regs()[0]) != 0;
            crate::meter::ON.store(on, core::sync::atomic::Ordering::Relaxed);
            return Some(MessageInfo::new(0, 0, 0, 0));
        }
        if !crate::meter::on() {
            return self.handle_inner(info, badge);
        }
        let start = crate::meter::start();
        // The request's tag is its first byte (read before the reply overwrites it).
        let tag = sel4::with_ipc_buffer(|ipc| ipc.msg_regs()[1] & 0x7f) as u32;
        let answer = self.handle_inner(info, badge);
        crate::meter::step(start, match info.label() {
            l if l == seL4_Fault_tag::seL4_Fault_VMFault => crate::meter::KIND_FAULT,
            // The `Nop` that prints the meters (`meter::report`) is measurement, not work.
            l if l == REQUEST_LABEL && tag == Request::Nop.tag() => crate::meter::KIND_NONE,
            l if l == REQUEST_LABEL => u64::from(tag),
            _ => crate::meter::KIND_OTHER,
        });
        if info.label() == seL4_Fault_tag::seL4_Fault_VMFault {
            crate::meter::FAULT.add(start);
        } else if info.label() == REQUEST_LABEL {
            crate::meter::REQUEST.add(tag, start);
        }
        answer
    }

    fn handle_inner(&mut self, info: &MessageInfo, badge: u64) -> Answer {
        if badge == ZEROER_DONE_BADGE {
            // The zeroing thread finished a batch (`tend` takes it back): nobody to answer.
            return None;
        }
        let label = info.label();
        let fault = is_fault_label(label);
        match mem_core::dispatch::sender_of(badge, fault) {
            Ok(Sender::Fault(client)) if label == seL4_Fault_tag::seL4_Fault_VMFault => {
                self.vm_fault(info, client)
            }
            Ok(Sender::Fault(client)) => {
                let ip = sel4::with_ipc_buffer(|ipc| ipc.msg_regs()[0]);
                self.unresolved(client, ip, UNRESOLVED_OTHER, "not a VM fault");
                None
            }
            Ok(Sender::Request(sender)) if label == REQUEST_LABEL => self.request(info, sender),
            Ok(Sender::Request(_)) => Some(reply(&Reply::Protocol(ProtocolError::UnknownRequest), None)),
            Err(e) => Some(reply(&Reply::Protocol(e), None)),
        }
    }

    /// A VM fault of client `client`: resolve it (empty reply) or report it (no reply).
    fn vm_fault(&mut self, info: &MessageInfo, client: u32) -> Answer {
        let Some((addr, access)) = decode_vm_fault(info) else {
            // A fault-badged message with the VM-fault label but not its length: the client
            // forged it on its own fault cap. Its thread did not fault; no answer.
            self.unresolved(client, 0, UNRESOLVED_OTHER, "malformed fault message");
            return None;
        };
        #[cfg(feature = "bench")]
        let start = crate::meter::start();
        let r = self.core.handle_fault(client, addr, access);
        #[cfg(feature = "bench")]
        crate::meter::FAULT_CORE.add(start);
        match r {
            Ok(_) => Some(MessageInfo::new(0, 0, 0, 0)),
            // Handed to the area's pager: the thread's reply cap was saved, it is answered
            // when the pager answers.
            Err(Unresolved::Deferred) => {
                self.signal_notes();
                None
            }
            Err(why) => {
                let (code, text) = match why {
                    Unresolved::NoArea => (UNRESOLVED_NO_AREA, "no area"),
                    Unresolved::Denied => (UNRESOLVED_DENIED, "access denied"),
                    Unresolved::NoMemory => (UNRESOLVED_NO_MEMORY, "no memory"),
                    Unresolved::NoSpace => (UNRESOLVED_OTHER, "unknown client"),
                    Unresolved::Pager => (UNRESOLVED_PAGER, "pager gone"),
                    Unresolved::Deferred => (UNRESOLVED_OTHER, "deferred"),
                };
                self.unresolved(client, addr, code, text);
                None
            }
        }
    }

    /// Note a fault of `client` that will not be answered, print it while the client has
    /// few, and wake the administrator.
    fn unresolved(&mut self, client: u32, addr: u64, code: u64, text: &str) {
        if self.core.note_unresolved(client, addr, code as u8) {
            crate::say!("mem-server: client {client} unresolved fault at {addr:#x} ({text})");
        }
        cap::Notification::from_bits(server_slot::NOTIFY).signal();
    }

    /// Signal the administrator if the core queued notes outside the fault path (a pager's
    /// answer, a pager's death).
    fn signal_notes(&mut self) {
        if self.core.take_notes_raised() {
            cap::Notification::from_bits(server_slot::NOTIFY).signal();
        }
    }

    /// A protocol request of `sender`: decode, serve, encode the reply (none when the
    /// request waits: `PagerWait` with nothing queued saved the caller's reply cap).
    fn request(&mut self, info: &MessageInfo, sender: u32) -> Answer {
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
        // (By reference: the decoded request is not moved.)
        let req = match &decoded {
            Ok(req) => req,
            Err(e) => return Some(reply(&Reply::Protocol(*e), None)),
        };
        #[cfg(feature = "bench")]
        if matches!(req, Request::Nop) {
            crate::meter::report();
            if sender == ADMIN_BADGE {
                crate::meter::REQUEST.report();
                crate::meter::DISPATCH.report();
            }
        }
        #[cfg(feature = "bench")]
        let start = crate::meter::start();
        self.serve(sender, req);
        #[cfg(feature = "bench")]
        crate::meter::DISPATCH.add(req.tag(), start);
        self.signal_notes();
        if self.answer.held {
            return None;
        }
        let cap = match self.answer.cap.map(|slot| self.export(slot)) {
            None => None,
            Some(Ok(c)) => Some(c),
            // The object exists but its cap cannot go out: say so (the administrator
            // destroys what it asked for on any error).
            Some(Err(e)) => return Some(reply(&Reply::Err(e), None)),
        };
        Some(reply(&self.answer.reply, cap))
    }

    /// Serve one decoded request into [`Server::answer`], bulk data through the caller's
    /// rings.
    fn serve(&mut self, sender: u32, req: &Request) {
        let Some(b) = req.bulk() else {
            // (`dispatch` holds a request that waits for a clone.)
            return self.core.dispatch_into(sender, req, &mut [], &mut self.answer);
        };
        // A request that waits for a clone leaves its bulk data on the ring for when it
        // is sent again (`freeze.rs`).
        if let Some(a) = self.core.clone_wait(sender, req) {
            self.answer = a;
            return;
        }
        let view = self.bufs.view(sender, self.core.has_view(sender));
        let d = match self.bufs.take(view, b) {
            Ok(d) => d,
            Err(e) => {
                self.answer = mem_core::Answer { reply: Reply::Err(e), cap: None, held: false };
                return;
            }
        };
        match self.bufs.bytes(view) {
            Some(buf) => self.core.dispatch_into(sender, req, buf, &mut self.answer),
            None => self.answer = mem_core::Answer { reply: Reply::Err(mem_core::Errno::Fault), cap: None, held: false },
        }
        self.bufs.give_back(view, d);
    }

    /// Copy `slot`'s cap into [`server_slot::EXPORT`] to go out with the reply.
    fn export(&mut self, slot: Slot) -> Result<Slot, mem_core::Errno> {
        let export = abs(server_slot::EXPORT as Slot);
        let _ = export.delete();
        export
            .copy(&abs(slot), sel4::CapRights::all())
            .map_err(|_| mem_core::Errno::NoMem)?;
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

/// Address and access kind of a VM-fault message, or `None` if it is not one. Read straight
/// from the message registers (`sel4::Fault::new` builds the whole fault record first).
fn decode_vm_fault(info: &MessageInfo) -> Option<(u64, Access)> {
    use seL4_VMFault_Msg::{seL4_VMFault_Addr, seL4_VMFault_FSR, seL4_VMFault_PrefetchFault};
    if info.length() != seL4_VMFault_Msg::seL4_VMFault_Length as usize {
        return None;
    }
    let (addr, prefetch, fsr) = sel4::with_ipc_buffer(|ipc| {
        let mr = ipc.msg_regs();
        (
            mr[seL4_VMFault_Addr as usize],
            mr[seL4_VMFault_PrefetchFault as usize],
            mr[seL4_VMFault_FSR as usize],
        )
    });
    let access = if prefetch != 0 {
        Access::Exec
    } else {
        data_access(fsr)
    };
    Some((addr, access))
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

const _: () = assert!(ADMIN_BADGE != 0, "badge 0 (unbadged) is never the admin");
const _: () = assert!(REQUEST_LABEL > 16, "requests never carry a kernel fault label");
