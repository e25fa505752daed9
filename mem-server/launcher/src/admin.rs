//! The root task as the memory server's administrator.
//!
//! Its endpoint cap carries `ADMIN_BADGE` and all rights (grant, so that replies can carry
//! caps). Requests go through `mem_client::Client`, the same code the clients use, over the
//! administrator's shared buffer (the `SharedLayout::PAGES` frames the root task maps at
//! [`ADMIN_BUFFER_VADDR`] and copies into the server's CNode): bulk data lies in its data
//! area and is named by a descriptor on the to-server ring, exactly as for a client.
//! Replies that carry a cap (`CreateSpace`, `Clone`: a VSpace; `ExportFrame`: a frame) land
//! in a root CNode slot named beforehand as the IPC buffer's receive slot.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use mem_client::{CallError, Client, BUFFER_BYTES};
use mem_protocol::system::REQUEST_LABEL;
use mem_protocol::{decode_reply_words, encode_request_words, LayoutEntry, Reply, Request, Stats, Target, Value};

use crate::objects::{root_path, Objects};

/// Where the root task maps the administrator's shared buffer in its own VSpace.
pub const ADMIN_BUFFER_VADDR: u64 = 0x20_0000_0000;

/// The administrator's connection to the server.
pub struct Admin {
    client: Client,
}

impl Admin {
    /// `endpoint`: the badged endpoint cap; the shared buffer must be mapped read-write at
    /// [`ADMIN_BUFFER_VADDR`] (fresh, zeroed frames: both rings start empty).
    pub fn new(endpoint: sel4::cap::Endpoint) -> Self {
        // SAFETY: the root task mapped BUFFER_BYTES of fresh frames read-write at
        // ADMIN_BUFFER_VADDR before calling this, keeps them mapped for good, and touches
        // them only through this one `Client` (the server shares them by design).
        let buffer = unsafe { core::slice::from_raw_parts_mut(ADMIN_BUFFER_VADDR as *mut u8, BUFFER_BYTES) };
        Self { client: Client::new(endpoint, buffer) }
    }

    /// The data area of the shared buffer (`BufRef`s for it: `Client::data_bufref`).
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.client.data_mut()
    }

    /// One request; its value, or a description of the failure.
    pub fn request(&mut self, req: &Request) -> Result<Value, String> {
        self.client.request(req).map_err(|e| self.describe(req, e))
    }

    /// One request; its value, or the error as the client library has it (to check an
    /// errno).
    pub fn try_request(&mut self, req: &Request) -> Result<Value, CallError> {
        self.client.request(req)
    }

    /// A message outside the protocol (such as `BENCH_METERS_LABEL`): `words` in the message
    /// registers, the reply's label and length.
    pub fn call_raw(&mut self, label: u64, words: &[u64]) -> (u64, usize) {
        let (info, reply) = self.client.call_raw(label, words);
        (info.label(), reply.words().len())
    }

    /// The areas of `target` (`Layout`, as many requests as it takes), in address order.
    pub fn layout(&mut self, target: Target) -> Result<Vec<LayoutEntry>, String> {
        let mut out = Vec::new();
        self.client.layout(target, 0, |e| out.push(*e)).map_err(|e| format!("Layout: {e:?}"))?;
        Ok(out)
    }

    /// Why the server died, if a reply said so.
    pub fn died_reason(&self) -> Option<&str> {
        self.client.died_reason()
    }

    fn describe(&self, req: &Request, e: CallError) -> String {
        match (e, self.client.died_reason()) {
            (CallError::ServerDied, Some(r)) => format!("{}: server died: {r}", req.name()),
            _ => describe(req, e),
        }
    }

    /// One request whose reply carries a cap: it lands in a fresh slot of the root CNode,
    /// which is returned with the reply value.
    pub fn request_cap(&mut self, objs: &mut Objects, req: &Request) -> Result<(Value, usize), String> {
        let slot = objs.slots.alloc().ok_or("root CNode full")?;
        sel4::with_ipc_buffer_mut(|ipc| ipc.set_recv_slot(&root_path(slot)));
        let mut words = [0u64; mem_protocol::IPC_BUFFER_WORDS];
        let n = encode_request_words(req, &mut words).map_err(|e| format!("{}: encode: {e:?}", req.name()))?;
        // A long operation (`Clone`) answers EAGAIN after each step but the last: send it
        // again until it is done.
        let (info, raw) = loop {
            let (info, raw) = self.client.call_raw(REQUEST_LABEL, &words[..n]);
            if info.label() == mem_protocol::system::SERVER_DIED_LABEL || decode_reply_words(raw.words()) != Ok(Reply::Err(mem_protocol::Errno::Again)) {
                break (info, raw);
            }
        };
        if info.label() == mem_protocol::system::SERVER_DIED_LABEL {
            let _ = root_path(slot).delete();
            objs.slots.free(slot);
            // Ask again through the normal path, which keeps the reason.
            let _ = self.client.request(&Request::Stats { target: Target::Own });
            return Err(format!("{}: server died: {}", req.name(), self.client.died_reason().unwrap_or("?")));
        }
        let reply = decode_reply_words(raw.words());
        let result = match reply {
            Ok(Reply::Ok(v)) if info.extra_caps() == 1 => Ok((v, slot)),
            Ok(Reply::Ok(_)) => Err(format!("{}: reply carries {} caps, not 1", req.name(), info.extra_caps())),
            Ok(Reply::Err(e)) => Err(format!("{}: {e:?}", req.name())),
            Ok(Reply::Protocol(p)) => Err(format!("{}: protocol error {p:?}", req.name())),
            Err(p) => Err(format!("{}: undecodable reply {p:?}", req.name())),
        };
        if result.is_err() {
            let _ = root_path(slot).delete();
            objs.slots.free(slot);
        }
        result
    }

    /// `Stats` of `target` (`Own`: server-wide counters).
    pub fn stats(&mut self, target: Target) -> Result<Stats, String> {
        match self.request(&Request::Stats { target })? {
            Value::Stats(s) => Ok(s),
            v => Err(format!("Stats: unexpected value {v:?}")),
        }
    }

    /// A request that must answer `Unit`.
    pub fn unit(&mut self, req: &Request) -> Result<(), String> {
        match self.request(req)? {
            Value::Unit => Ok(()),
            v => Err(format!("{}: unexpected value {v:?}", req.name())),
        }
    }
}

/// "<request>: <error>" for a failed call.
pub fn describe(req: &Request, e: CallError) -> String {
    format!("{}: {e:?}", req.name())
}
