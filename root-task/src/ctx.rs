//! What the scenario driver works with: the object allocator, the administrator's
//! connection to the server, and the report endpoint on which clients and the server tell
//! the root task what happened.
//!
//! Messages on the report endpoint:
//! - a client's report (label `REPORT_LABEL`, badge = the client's): MR0 = `REPORT_PASS`,
//!   `REPORT_FAIL` or `REPORT_STEP`, MR1 = step or detail, MR2.. = values. A STEP is a
//!   `Call` answered later through a reply cap saved into a root CNode slot (non-MCS
//!   `CNode_SaveCaller`); PASS and FAIL are never answered.
//! - a fault of the server itself (its fault endpoint is the report endpoint with badge
//!   `SERVER_REPORT_BADGE`). The system cannot go on after that.
//!
//! And, through the notification bound to the root task's TCB (it wakes the same `Recv`;
//! the word received is the OR of the bits signalled): `NOTIFY_NOTE`, the server queued
//! notes about client faults it could not resolve (taken with `TakeNote` requests, each
//! becoming an [`Event::Unresolved`]), and `NOTIFY_DIED`, the server died (its next reply
//! says why). Neither is ever lost, whatever the root task was doing when it was sent.
//!
//! Waiting has no timeout: a hung system is caught by the QEMU harness.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use mem_protocol::system::{
    NOTIFY_DIED, NOTIFY_NOTE, REPORT_FAIL, REPORT_LABEL, REPORT_PASS, REPORT_STEP, SERVER_REPORT_BADGE,
};
use mem_protocol::{Request, Value};

use mem_launcher::{root_path, Launcher};

/// One message on the report endpoint. (Some fields are only read through `Debug`, in
/// failure messages.)
#[derive(Debug)]
#[allow(dead_code)]
pub enum Event {
    Pass { badge: u32, detail: u64 },
    Fail { badge: u32, detail: u64, values: Vec<u64> },
    /// A step: answer it with [`Ctx::answer`] (the reply cap is in root slot `reply`).
    Step { badge: u32, step: u64, values: Vec<u64>, reply: usize },
    Unresolved { client: u32, addr: u64, reason: u64 },
    ServerFault { label: u64, words: Vec<u64> },
    Other { badge: u64, label: u64, words: Vec<u64> },
}

/// A `ClientBoot` record as the bytes of a boot page (postcard).
pub fn encode_boot(boot: &mem_protocol::system::ClientBoot) -> Result<Vec<u8>, String> {
    let mut bytes = [0u8; 64];
    let used = postcard::to_slice(boot, &mut bytes).map_err(|e| format!("ClientBoot: {e:?}"))?.len();
    Ok(bytes[..used].to_vec())
}

impl core::ops::Deref for Ctx {
    type Target = Launcher;
    fn deref(&self) -> &Launcher {
        &self.launcher
    }
}

impl core::ops::DerefMut for Ctx {
    fn deref_mut(&mut self) -> &mut Launcher {
        &mut self.launcher
    }
}

/// The root task's priority (seL4's initial thread: the highest).
pub const ROOT_PRIORITY: u64 = 255;

/// The scenario driver's state: the launcher (its objects and administrator connection
/// are reached through `Deref`), the client program, and what has happened.
pub struct Ctx {
    pub launcher: Launcher,
    /// Root CNode slot of the report endpoint (the launcher's).
    pub report_ep: usize,
    pub client_elf: &'static [u8],
    /// The program of the scenarios that run C programs on picolibc (`libc-client`).
    pub libc_elf: &'static [u8],
    next_badge: u32,
    /// Set once the server has faulted or died: nothing can be asked of it any more.
    pub server_dead: Option<String>,
    /// Events already received (notes taken from the server) but not yet returned.
    pending: VecDeque<Event>,
}

impl Ctx {
    pub fn new(launcher: Launcher, client_elf: &'static [u8], libc_elf: &'static [u8]) -> Self {
        let next_badge = mem_protocol::system::FIRST_CLIENT_BADGE;
        let report_ep = launcher.report_endpoint();
        Self { launcher, report_ep, client_elf, libc_elf, next_badge, server_dead: None, pending: VecDeque::new() }
    }

    /// Create a client running the scenario program with `boot` (encoded into its boot
    /// page), reporting on the report endpoint.
    pub fn create_client(&mut self, badge: u32, uid: u32, gid: u32, quota: u64, boot: mem_protocol::system::ClientBoot) -> Result<mem_launcher::Proc, String> {
        let elf = self.client_elf;
        self.create_client_from(elf, badge, uid, gid, quota, boot)
    }

    /// [`Ctx::create_client`] running program `elf`.
    pub fn create_client_from(&mut self, elf: &'static [u8], badge: u32, uid: u32, gid: u32, quota: u64, boot: mem_protocol::system::ClientBoot) -> Result<mem_launcher::Proc, String> {
        let bytes = encode_boot(&boot)?;
        let spec = mem_launcher::ClientSpec { badge, uid, gid, quota, elf, boot: Some(&bytes), report: Some(self.report_ep) };
        self.launcher.create_client(&spec)
    }

    /// Clients created so far (badges handed out).
    pub fn clients_created(&self) -> u32 {
        self.next_badge - mem_protocol::system::FIRST_CLIENT_BADGE
    }

    /// A badge no client has had yet.
    pub fn new_badge(&mut self) -> Result<u32, String> {
        let b = self.next_badge;
        if b >= mem_protocol::system::MAX_BADGES {
            return Err(String::from("out of client badges"));
        }
        self.next_badge += 1;
        Ok(b)
    }

    /// Block until the next message on the report endpoint (or a note of the server).
    pub fn next_event(&mut self) -> Event {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            if let Some(e) = self.receive() {
                return e;
            }
        }
    }

    /// The server's note-keeping after a signal: take every queued note (or learn why it
    /// died).
    fn take_notes(&mut self, bits: u64) {
        if bits & NOTIFY_DIED != 0 {
            self.mark_dead();
            return;
        }
        loop {
            match self.admin.request(&Request::TakeNote) {
                Ok(Value::Note(Some(n))) => {
                    self.pending.push_back(Event::Unresolved { client: n.client, addr: n.addr, reason: u64::from(n.reason) })
                }
                Ok(_) => return,
                Err(_) => {
                    self.mark_dead();
                    return;
                }
            }
        }
    }

    /// Note the server's death if a reply to the administrator said so.
    pub fn check_dead(&mut self) {
        if self.server_dead.is_none() {
            if let Some(r) = self.admin.died_reason() {
                let why = format!("server died: {r}");
                sel4::debug_println!("root-task: {why}");
                self.server_dead = Some(why);
            }
        }
    }

    /// The server died: ask it once more to get its reason.
    fn mark_dead(&mut self) {
        if self.server_dead.is_some() {
            return;
        }
        let _ = self.admin.request(&Request::Stats { target: mem_protocol::Target::Own });
        let why = match self.admin.died_reason() {
            Some(r) => format!("server died: {r}"),
            None => String::from("server died: (no reason given)"),
        };
        sel4::debug_println!("root-task: {why}");
        self.server_dead = Some(why);
    }

    /// One `Recv`; `None` when it only brought server notes (queued in `pending`).
    fn receive(&mut self) -> Option<Event> {
        let ep = sel4::init_thread::Slot::<sel4::cap_type::Endpoint>::from_index(self.report_ep).cap();
        let (info, badge) = ep.recv(());
        let signals = NOTIFY_NOTE | NOTIFY_DIED;
        if badge & signals != 0 && badge & !signals == 0 {
            self.take_notes(badge);
            return None;
        }
        let n = info.length().min(mem_protocol::IPC_BUFFER_WORDS);
        let words: Vec<u64> = sel4::with_ipc_buffer(|ipc| ipc.msg_regs()[..n].to_vec());
        let w = |i: usize| words.get(i).copied().unwrap_or(0);
        let label = info.label();
        if badge == SERVER_REPORT_BADGE {
            let e = Event::ServerFault { label, words };
            self.server_dead = Some(format!("server died: it faulted ({e:x?})"));
            return Some(e);
        }
        if label != REPORT_LABEL || badge > u32::MAX as u64 {
            return Some(Event::Other { badge, label, words });
        }
        let badge = badge as u32;
        let values = words.get(2..).map(|v| v.to_vec()).unwrap_or_default();
        Some(match w(0) {
            REPORT_PASS => Event::Pass { badge, detail: w(1) },
            REPORT_FAIL => Event::Fail { badge, detail: w(1), values },
            REPORT_STEP => match self.save_caller() {
                Ok(reply) => Event::Step { badge, step: w(1), values, reply },
                Err(e) => Event::Other { badge: badge as u64, label: e as u64, words },
            },
            _ => Event::Other { badge: badge as u64, label, words },
        })
    }

    /// Keep the reply cap of the message just received in a fresh root CNode slot.
    fn save_caller(&mut self) -> Result<usize, sel4::Error> {
        let slot = self.objs.slots.alloc().ok_or(sel4::Error::NotEnoughMemory)?;
        root_path(slot).save_caller()?;
        Ok(slot)
    }

    /// Answer a STEP (empty message), which lets that client go on.
    pub fn answer(&mut self, reply: usize) {
        let cap = sel4::init_thread::Slot::<sel4::cap_type::Endpoint>::from_index(reply).cap();
        cap.send(sel4::MessageInfo::new(0, 0, 0, 0));
        // Using a reply cap consumes it; make sure the slot is empty before reuse.
        let _ = root_path(reply).delete();
        self.objs.slots.free(reply);
    }

    /// Give up a STEP's reply cap without answering (that client stays blocked until it is
    /// destroyed).
    pub fn drop_reply(&mut self, reply: usize) {
        let _ = root_path(reply).delete();
        self.objs.slots.free(reply);
    }

    /// Let every client that can run do so until all of them are blocked (on the server, a
    /// fault, or a report): the root task drops below the clients' priority and yields,
    /// then takes its own priority back.
    pub fn let_clients_run(&mut self) {
        let tcb = sel4::init_thread::slot::TCB.cap();
        let _ = tcb.tcb_set_priority(tcb, mem_launcher::client::CLIENT_PRIORITY - 1);
        sel4::r#yield();
        let _ = tcb.tcb_set_priority(tcb, ROOT_PRIORITY);
    }

    /// The server-wide counters once the server is idle (frames of dead objects are
    /// released when it is: `mem-core` `dying.rs`), so that reclaim can be checked exactly.
    pub fn sys_stats(&mut self) -> Result<mem_protocol::Stats, String> {
        self.wait_idle();
        self.admin.stats(mem_protocol::Target::Own)
    }

    /// Wait until every other thread is blocked, idle ones included (the server's zeroing
    /// thread has nothing left to zero): the root task drops to the lowest priority, which
    /// lets every runnable thread run first, then takes its own priority back.
    pub fn wait_idle(&mut self) {
        let tcb = sel4::init_thread::slot::TCB.cap();
        let _ = tcb.tcb_set_priority(tcb, 0);
        sel4::r#yield();
        let _ = tcb.tcb_set_priority(tcb, ROOT_PRIORITY);
    }

    /// Wait for the next event and require it to come from `badge`'s PASS.
    pub fn expect_pass(&mut self, badge: u32) -> Result<(), String> {
        match self.next_event() {
            Event::Pass { badge: b, .. } if b == badge => Ok(()),
            e => Err(self.unexpected(badge, "PASS", e)),
        }
    }

    /// Wait for `badge`'s STEP `step`; returns its values and reply slot.
    pub fn expect_step(&mut self, badge: u32, step: u64) -> Result<(Vec<u64>, usize), String> {
        match self.next_event() {
            Event::Step { badge: b, step: s, values, reply } if b == badge && s == step => Ok((values, reply)),
            e => Err(self.unexpected(badge, "STEP", e)),
        }
    }

    /// Wait for the server's unresolved-fault note about `client`: (addr, reason).
    pub fn expect_unresolved(&mut self, client: u32) -> Result<(u64, u64), String> {
        match self.next_event() {
            Event::Unresolved { client: c, addr, reason } if c == client => Ok((addr, reason)),
            e => Err(self.unexpected(client, "UNRESOLVED note", e)),
        }
    }

    /// Describe an event that came instead of what was expected (a STEP's reply cap is
    /// dropped: that client stays blocked until it is destroyed).
    fn unexpected(&mut self, badge: u32, wanted: &str, e: Event) -> String {
        if let Event::Step { reply, .. } = e {
            self.drop_reply(reply);
        }
        match e {
            Event::Fail { badge: b, detail, values } if b == badge => {
                format!("client reported FAIL (detail {detail}, values {values:x?})")
            }
            e => format!("expected {wanted} of client {badge}, got {e:x?}"),
        }
    }
}
