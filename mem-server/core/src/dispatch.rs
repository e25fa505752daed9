//! Request dispatch: the one place that matches on [`Request`]. One decoded request from a
//! sender → one core call → one [`Answer`] (a reply and maybe a cap to send with it). This
//! is the whole server loop body minus the IPC, so host tests exercise exactly what the
//! seL4 component runs.
//!
//! Senders ([`sender_of`]): a message's badge says who sent it, and whether it came through
//! the client's fault endpoint (`FAULT_BADGE_FLAG`) or its request endpoint. Faults are
//! accepted only on fault badges, requests only on request badges: a fault-shaped message
//! on a request badge (or a request on a fault badge) is a protocol error.
//!
//! Privilege: a sender that is neither an administrator nor has a space gets ESRCH for
//! everything. Acting on another client's space (`Target::Client`), creating, destroying
//! and cloning spaces, exporting frames and taking fault notes need an administrator
//! (`Config::admins`, the root task); others get EPERM. Bulk data lives in the caller's
//! shared buffer, named by `BufRef`; a reference outside the buffer is EFAULT.
//! Neighbours: `mem-protocol` (types, codec), `admin.rs`, every operation file.

use mem_protocol::system::FAULT_BADGE_FLAG;
use mem_protocol::{BufRef, Errno, ProtocolError, Reply, Request, Share, ShmCmd, Target, Value};

use crate::admin::Answer;
use crate::kernel::{Kernel, Slot};
use crate::mmap::MmapArgs;
use crate::space::Cred;
use crate::MemCore;

/// What a successful arm of the door returns: proof that it wrote its value into the
/// reply slot (only [`put`] and [`cap`] make one), and the cap to send with it. The server
/// keeps one slot from message to message, so an arm that did not write would send the
/// previous request's reply, maybe another client's.
struct Written(Option<Slot>);

/// `v` as the reply's value; no cap goes with it.
#[inline(always)]
fn put(out: &mut Reply, v: Value) -> Written {
    *out = Reply::Ok(v);
    Written(None)
}

/// A unit reply with `slot`'s cap.
#[inline(always)]
fn cap(out: &mut Reply, slot: Slot) -> Written {
    *out = Reply::Ok(Value::Unit);
    Written(Some(slot))
}

fn buf_range(b: BufRef, len: usize) -> Result<core::ops::Range<usize>, Errno> {
    if !b.fits_in(len as u64) {
        return Err(Errno::Fault);
    }
    Ok(b.offset as usize..b.offset as usize + b.len as usize)
}

/// Who sent a message, and through which endpoint cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// A request from client (or administrator) `id`.
    Request(u32),
    /// A fault of client `id`'s thread, delivered by the kernel.
    Fault(u32),
}

/// Classify a message by its badge and whether its label is a kernel fault label.
/// Badges that name no possible client (too wide) are a protocol error.
pub fn sender_of(badge: u64, fault_label: bool) -> Result<Sender, ProtocolError> {
    let fault_badge = badge & FAULT_BADGE_FLAG != 0;
    let id = u32::try_from(badge & !FAULT_BADGE_FLAG).map_err(|_| ProtocolError::Malformed)?;
    match (fault_label, fault_badge) {
        (true, true) => Ok(Sender::Fault(id)),
        (false, false) => Ok(Sender::Request(id)),
        _ => Err(ProtocolError::Malformed),
    }
}

impl<K: Kernel> MemCore<K> {
    /// The client a request acts on.
    #[inline]
    pub fn resolve_target(&self, caller: u32, t: Target) -> Result<u32, Errno> {
        match t {
            Target::Own => Ok(caller),
            Target::Client(c) if c == caller => Ok(c),
            Target::Client(c) if self.is_admin(caller) => Ok(c),
            Target::Client(_) => Err(Errno::Perm),
        }
    }

    fn admin(&self, caller: u32) -> Result<(), Errno> {
        if self.is_admin(caller) {
            Ok(())
        } else {
            Err(Errno::Perm)
        }
    }

    /// Handle one request from `caller` (the badge of the endpoint it came through).
    /// `buf` is the caller's shared buffer.
    pub fn dispatch(&mut self, caller: u32, req: &Request, buf: &mut [u8]) -> Answer {
        let mut a = Answer::EMPTY;
        self.dispatch_into(caller, req, buf, &mut a);
        a
    }

    /// [`MemCore::dispatch`] into `out`, which the server keeps from message to message: the
    /// reply is written where it is encoded from, so no reply is moved (a `Reply` is as
    /// large as its largest value, `Stats`; the common ones are a tag and a word or two).
    pub fn dispatch_into(&mut self, caller: u32, req: &Request, buf: &mut [u8], out: &mut Answer) {
        out.cap = None;
        out.held = false;
        if !self.is_admin(caller) && !self.has_space(caller) {
            out.reply = Reply::Err(Errno::Srch);
            return;
        }
        if let Some(a) = self.clone_wait(caller, req) {
            *out = a;
            return;
        }
        let r = self.dispatch_inner(caller, req, buf, &mut out.reply);
        // A request whose caller was saved (`PagerWait` with nothing queued) gets no reply
        // now.
        out.held = core::mem::take(&mut self.held);
        match r {
            Ok(Written(cap)) => out.cap = cap,
            // Memory refused while dead objects' frames wait to be released: release a
            // slice, and the client sends the request again (`dying.rs`).
            Err(Errno::NoMem | Errno::NoSpc) if self.has_dying() => {
                self.release_step();
                out.reply = Reply::Err(Errno::Again);
            }
            Err(e) => out.reply = Reply::Err(e),
        }
    }

    /// The matching itself: a success's value goes into `out` (each arm writes its own
    /// value in place), an error is returned; the cap to send with the reply, if any.
    fn dispatch_inner(&mut self, caller: u32, req: &Request, buf: &mut [u8], out: &mut Reply) -> Result<Written, Errno> {
        // `put`: the value into the reply slot, no cap.
        let unit = |r: Result<(), Errno>, out: &mut Reply| r.map(|()| put(out, Value::Unit));
        let at = |r: Result<u64, Errno>, out: &mut Reply| r.map(|a| put(out, Value::Addr(a)));
        let ident = |r: Result<u32, Errno>, out: &mut Reply| r.map(|i| put(out, Value::Id(i)));
        match *req {
            Request::CreateSpace { client, uid, gid, quota_pages } => {
                self.admin(caller)?;
                self.admin_create_step(client, Cred { uid, gid }, quota_pages).map(|vs| cap(out, vs))
            }
            Request::DestroySpace { client } => {
                self.admin(caller)?;
                unit(self.admin_destroy_step(client), out)
            }
            Request::Region { target, addr, len, prot, data } => {
                let c = self.resolve_target(caller, target)?;
                let bytes: &[u8] = match data {
                    Some(b) => &buf[buf_range(b, buf.len())?],
                    None => &[],
                };
                at(self.region(c, addr, len, prot, bytes), out)
            }
            Request::Mmap { target, addr, len, prot, max_prot, placement, share, backing, populate } => {
                let c = self.resolve_target(caller, target)?;
                let a = MmapArgs { addr, len, prot, max_prot, placement, shared: share == Share::Shared, backing, populate };
                at(self.mmap_step(c, &a), out)
            }
            Request::Munmap { target, addr, len } => {
                let c = self.resolve_target(caller, target)?;
                unit(self.munmap_step(c, addr, len), out)
            }
            Request::Mprotect { target, addr, len, prot } => {
                let c = self.resolve_target(caller, target)?;
                unit(self.mprotect(c, addr, len, prot), out)
            }
            Request::Msync { target, addr, len, flags } => {
                let c = self.resolve_target(caller, target)?;
                unit(self.msync(c, addr, len, flags), out)
            }
            Request::Query { target, addr } => {
                let c = self.resolve_target(caller, target)?;
                let mut q = self.query(c, addr)?;
                if !self.may_see_paddr(caller) {
                    q.paddr = 0;
                }
                Ok(put(out, Value::Query(q)))
            }
            Request::MapPhys { target, addr, placement, paddr, len, prot } => {
                let c = self.resolve_target(caller, target)?;
                at(self.map_phys_by(caller, c, addr, placement, paddr, len, prot), out)
            }
            Request::Populate { target, addr, len } => {
                let c = self.resolve_target(caller, target)?;
                unit(self.populate_step(c, addr, len), out)
            }
            Request::Reset { target } => {
                let c = self.resolve_target(caller, target)?;
                unit(self.reset_step(c), out)
            }
            Request::Clone { source, child, quota_pages } => {
                self.admin(caller)?;
                let p = self.resolve_target(caller, source)?;
                self.admin_clone_step(p, child, quota_pages).map(|vs| cap(out, vs))
            }
            Request::ShmGet { key, size, create, exclusive, mode } => {
                ident(self.shmget(caller, key, size, create, exclusive, mode), out)
            }
            Request::ShmAt { shmid, addr, readonly } => at(self.shmat(caller, shmid, addr, readonly), out),
            Request::ShmDt { addr } => unit(self.shmdt_step(caller, addr), out),
            Request::ShmCtl { shmid, cmd } => match cmd {
                ShmCmd::Stat => self.shm_stat(caller, shmid).map(|s| put(out, Value::ShmStat(s))),
                ShmCmd::Remove => unit(self.shm_remove(caller, shmid), out),
                ShmCmd::Set { uid, gid, mode } => unit(self.shm_set(caller, shmid, uid, gid, mode), out),
            },
            Request::BackendCreate { size, mode } => ident(self.backend_create(caller, size, mode), out),
            Request::BackendWrite { id, offset, buf: b } => {
                let r = buf_range(b, buf.len())?;
                unit(self.backend_write(caller, id, offset, &buf[r]), out)
            }
            Request::BackendRead { id, offset, buf: b } => {
                let r = buf_range(b, buf.len())?;
                unit(self.backend_read(caller, id, offset, &mut buf[r]), out)
            }
            Request::BackendDestroy { id } => unit(self.backend_destroy(caller, id), out),
            Request::ExportFrame { target, addr } => {
                self.admin(caller)?;
                let c = self.resolve_target(caller, target)?;
                self.admin_export(c, addr).map(|f| cap(out, f))
            }
            Request::Stats { target } => {
                let c = self.resolve_target(caller, target)?;
                let who = if self.has_space(c) { Some(c) } else { None };
                self.stats_for(caller, who).map(|s| put(out, Value::Stats(s)))
            }
            Request::TakeNote => {
                self.admin(caller)?;
                Ok(put(out, Value::Note(self.take_note())))
            }
            Request::Nop => Ok(put(out, Value::Unit)),
            Request::PagerCreate { mode } => ident(self.pager_create(caller, mode), out),
            Request::PagerWait { id } => match self.pager_wait(caller, id)? {
                Some(f) => Ok(put(out, Value::PagerFault(f))),
                None => {
                    self.held = true;
                    Ok(put(out, Value::Unit))
                }
            },
            Request::PagerReply { token, answer } => {
                let r = match answer {
                    mem_protocol::PagerAnswer::Copy(b) => buf_range(b, buf.len())?,
                    _ => 0..0,
                };
                unit(self.pager_reply(caller, token, answer, &buf[r]), out)
            }
            Request::Layout { target, from, buf: b } => {
                let c = self.resolve_target(caller, target)?;
                let r = buf_range(b, buf.len())?;
                self.layout_page(c, from, &mut buf[r]).map(|l| put(out, Value::Layout(l)))
            }
        }
    }

    /// May `client` learn physical addresses (`Query`)? Administrators and clients granted
    /// device memory only; everyone else sees 0 (as Linux hides page frame numbers).
    pub fn may_see_paddr(&self, client: u32) -> bool {
        self.is_admin(client) || self.cfg.device_grants.iter().any(|&(c, _, _)| c == client)
    }
}
