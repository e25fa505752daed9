//! What the server adds around `mem-core`'s `dispatch` for the administrator (the root
//! task), where a request creates, destroys or hands out kernel objects:
//!
//! - `CreateSpace`: the client id must be a client badge with a buffer view
//!   (`FIRST_CLIENT_BADGE..MAX_BADGES`, else `EINVAL` before anything is created). After
//!   the core created the space, the server creates the client's shared buffer at
//!   `CLIENT_BUFFER_VADDR`, maps its view, and replies `Unit` with a copy of the client's
//!   VSpace cap attached.
//! - `Clone`: the same for the child, whose inherited mapping of the parent's buffer is
//!   unmapped first (the child gets a buffer of its own).
//! - `DestroySpace`: the server removes its view of the client's buffer and the core's
//!   references on it first; after the space is gone, if no client space remains, the core
//!   gives all pooled objects back to their untypeds (`trim`), so every untyped returns to
//!   its initial state; otherwise the freed frames are zeroed right away (`maintain`), off
//!   the fault path.
//! - `ExportFrame`: the page is first made present and private (a write fault, if it is
//!   copy-on-write or absent), then the reply carries a copy of its frame cap.
//!
//! A failure after the core created a space destroys it again, so a failed request leaves
//! nothing behind. Neighbours: `server.rs` (the loop, `export`), `buffers.rs`.

use mem_core::{Access, Errno, Slot};
use mem_protocol::system::{SharedLayout, CLIENT_BUFFER_VADDR, FIRST_CLIENT_BADGE, MAX_BADGES};
use mem_protocol::{Reply, Request, Target, Value, PAGE_SIZE};

use crate::server::Server;

/// A reply and the slot of a cap to attach to it.
type Answer = (Reply, Option<Slot>);

/// Can `client` be created (a client badge whose buffer view fits the server's region)?
fn valid_client(client: u32) -> bool {
    (FIRST_CLIENT_BADGE..MAX_BADGES).contains(&client)
}

impl Server {
    /// The administrator's extras for `req`, or `None` when it is a plain request.
    pub(crate) fn serve_admin(&mut self, admin: u32, req: &Request) -> Option<Answer> {
        Some(match *req {
            Request::CreateSpace { client, .. } => self.create_space(admin, req, client),
            Request::Clone { child, .. } => self.clone_space(admin, req, child),
            Request::DestroySpace { client } => self.destroy_space(admin, req, client),
            Request::ExportFrame { target, addr } => self.export_frame(admin, req, target, addr),
            _ => return None,
        })
    }

    fn create_space(&mut self, admin: u32, req: &Request, client: u32) -> Answer {
        if !valid_client(client) {
            return (Reply::Err(Errno::Inval), None);
        }
        let r = self.core.dispatch(admin, req, &mut []);
        if r != Reply::Ok(Value::Unit) {
            return (r, None);
        }
        self.finish_space(client, |_| Ok(()))
    }

    fn clone_space(&mut self, admin: u32, req: &Request, child: u32) -> Answer {
        if !valid_client(child) {
            return (Reply::Err(Errno::Inval), None);
        }
        let r = self.core.dispatch(admin, req, &mut []);
        if r != Reply::Ok(Value::Unit) {
            return (r, None);
        }
        // The child shares the parent's buffer mapping: drop it, it gets its own below.
        let len = SharedLayout::PAGES * PAGE_SIZE;
        self.finish_space(child, |s| s.core.munmap(child, CLIENT_BUFFER_VADDR, len))
    }

    /// After the core created `client`'s space: run `prepare`, create the shared buffer and
    /// its view, and answer with the VSpace cap; on any failure destroy the space again.
    fn finish_space(
        &mut self,
        client: u32,
        prepare: impl FnOnce(&mut Server) -> Result<(), Errno>,
    ) -> Answer {
        let r = prepare(self)
            .and_then(|()| self.bufs.create(&mut self.core, client))
            .and_then(|()| self.core.vspace_of(client).ok_or(Errno::Srch))
            .and_then(|vspace| self.export(vspace));
        match r {
            Ok(cap) => (Reply::Ok(Value::Unit), Some(cap)),
            Err(e) => {
                self.bufs.remove(&mut self.core, client);
                let _ = self.core.destroy_space(client);
                (Reply::Err(e), None)
            }
        }
    }

    fn destroy_space(&mut self, admin: u32, req: &Request, client: u32) -> Answer {
        if self.core.has_space(client) {
            self.bufs.remove(&mut self.core, client);
        }
        let r = self.core.dispatch(admin, req, &mut []);
        if r == Reply::Ok(Value::Unit) {
            if self.core.stats(None).is_ok_and(|s| s.spaces == 0) {
                self.core.trim();
            } else {
                // Zero the frames the client left behind now, so that later faults find
                // clean frames and keep to fault IPC + Page_Map + ReplyRecv.
                self.core.maintain(usize::MAX);
            }
        }
        (r, None)
    }

    fn export_frame(&mut self, admin: u32, req: &Request, target: Target, addr: u64) -> Answer {
        if let Ok(client) = self.core.resolve_target(admin, target) {
            // A copy-on-write page would be copied by the client's next write, leaving the
            // exported cap on the old frame; an absent page has no frame. Fault it in first.
            let needs_fault = match self.core.query(client, addr) {
                Ok(info) => info.cow,
                Err(e) => e == Errno::NoEnt,
            };
            if needs_fault {
                let _ = self.core.handle_fault(client, addr, Access::Write);
            }
        }
        let r = self.core.dispatch(admin, req, &mut []);
        if r != Reply::Ok(Value::Unit) {
            return (r, None);
        }
        let frame = self
            .core
            .resolve_target(admin, target)
            .and_then(|client| self.core.frame_of(client, addr))
            .and_then(|frame| self.export(frame));
        match frame {
            Ok(cap) => (r, Some(cap)),
            Err(e) => (Reply::Err(e), None),
        }
    }
}
