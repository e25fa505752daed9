//! The server's answer to a [`crate::Request`].
//!
//! A [`Reply`] is a success [`Value`], an operation error ([`crate::Errno`]), or a
//! [`ProtocolError`] when the request did not even decode. The value payloads
//! ([`QueryInfo`], [`ShmStat`], [`Stats`]) are defined here; [`ValueKind`] names the value
//! shape that [`crate::Request::reply_kind`] promises. [`crate::codec`] encodes replies.
//! Variant order is the wire tag; append new variants at the end.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::errno::Errno;
use crate::error::ProtocolError;
use crate::layout::LayoutInfo;
use crate::prot::{Access, PageSize, Prot};

/// The server's answer to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum Reply {
    /// The operation succeeded.
    Ok(Value),
    /// The operation was valid but failed.
    Err(Errno),
    /// The request could not be decoded; nothing was done.
    Protocol(ProtocolError),
}

impl Reply {
    /// Number of reply variants; wire tags are `0..TAG_COUNT`.
    pub const TAG_COUNT: u32 = 3;

    /// The wire tag of this variant.
    pub const fn tag(&self) -> u32 {
        match self {
            Reply::Ok(_) => 0,
            Reply::Err(_) => 1,
            Reply::Protocol(_) => 2,
        }
    }

    /// The reply as a `Result`, keeping operation and protocol errors apart.
    pub const fn into_result(self) -> Result<Value, ReplyError> {
        match self {
            Reply::Ok(v) => Ok(v),
            Reply::Err(e) => Err(ReplyError::Op(e)),
            Reply::Protocol(p) => Err(ReplyError::Protocol(p)),
        }
    }
}

impl From<Result<Value, Errno>> for Reply {
    fn from(r: Result<Value, Errno>) -> Reply {
        match r {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Err(e),
        }
    }
}

impl From<Errno> for Reply {
    fn from(e: Errno) -> Reply {
        Reply::Err(e)
    }
}

impl From<ProtocolError> for Reply {
    fn from(p: ProtocolError) -> Reply {
        Reply::Protocol(p)
    }
}

impl From<Value> for Reply {
    fn from(v: Value) -> Reply {
        Reply::Ok(v)
    }
}

/// A failed reply, as seen by a client: the operation failed, or the request was garbage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplyError {
    /// The operation failed with this errno.
    Op(Errno),
    /// The server could not decode the request.
    Protocol(ProtocolError),
}

impl core::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReplyError::Op(e) => e.fmt(f),
            ReplyError::Protocol(p) => p.fmt(f),
        }
    }
}

/// The value of a successful reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum Value {
    /// Nothing to return.
    Unit,
    /// A virtual address (start of a new mapping or attachment).
    Addr(u64),
    /// An identifier (shmid, backend object id).
    Id(u32),
    /// Answer to `Query`.
    Query(QueryInfo),
    /// Answer to `ShmCtl { cmd: Stat }`.
    ShmStat(ShmStat),
    /// Answer to `Stats`.
    Stats(Stats),
    /// Answer to `TakeNote`: the oldest queued note, or `None` when there is none.
    Note(Option<FaultNote>),
    /// Answer to `PagerWait`: a fault to serve.
    PagerFault(PagerFault),
    /// Answer to `Layout`.
    Layout(LayoutInfo),
}

impl Value {
    /// The shape of this value.
    pub const fn kind(&self) -> ValueKind {
        match self {
            Value::Unit => ValueKind::Unit,
            Value::Addr(_) => ValueKind::Addr,
            Value::Id(_) => ValueKind::Id,
            Value::Query(_) => ValueKind::Query,
            Value::ShmStat(_) => ValueKind::ShmStat,
            Value::Stats(_) => ValueKind::Stats,
            Value::Note(_) => ValueKind::Note,
            Value::PagerFault(_) => ValueKind::PagerFault,
            Value::Layout(_) => ValueKind::Layout,
        }
    }

    /// The address, if this is `Addr`.
    pub const fn addr(&self) -> Option<u64> {
        match *self {
            Value::Addr(a) => Some(a),
            _ => None,
        }
    }

    /// The identifier, if this is `Id`.
    pub const fn id(&self) -> Option<u32> {
        match *self {
            Value::Id(i) => Some(i),
            _ => None,
        }
    }
}

/// The shape of a [`Value`], without its contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    Unit,
    Addr,
    Id,
    Query,
    ShmStat,
    Stats,
    Note,
    PagerFault,
    Layout,
}

/// What is mapped at a queried address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub struct QueryInfo {
    /// Start of the page containing the queried address.
    pub vaddr: u64,
    /// Physical address of that page.
    pub paddr: u64,
    /// Current protection of the mapping.
    pub prot: Prot,
    /// Size of the page.
    pub page_size: PageSize,
    /// The page is shared with other mappings (shm, shared backed mapping).
    pub shared: bool,
    /// The page is copy-on-write (a write will copy it).
    pub cow: bool,
}

/// `struct shmid_ds` as far as the server tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, MaxSize)]
pub struct ShmStat {
    /// The key, or `None` for an `IPC_PRIVATE` segment.
    pub key: Option<u32>,
    /// Size in bytes as requested at creation.
    pub size: u64,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Creator user id.
    pub cuid: u32,
    /// Creator group id.
    pub cgid: u32,
    /// Permission bits (low 9 bits).
    pub mode: u16,
    /// Number of current attachments.
    pub nattch: u32,
    /// Marked for removal (`IPC_RMID`), still attached somewhere.
    pub removed: bool,
    /// Client id of the creator.
    pub cpid: u32,
    /// Client id of the last `shmat`/`shmdt` caller.
    pub lpid: u32,
}

/// A client fault the server could not resolve: the faulting thread is stopped (never
/// answered) until the administrator destroys or restarts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, MaxSize)]
pub struct FaultNote {
    /// The client (its badge).
    pub client: u32,
    /// The faulting address (or the instruction pointer for faults that are not VM faults).
    pub addr: u64,
    /// Why: one of `system::UNRESOLVED_*`.
    pub reason: u8,
    /// Unresolved faults of this client so far (later notes of a client that already has
    /// one queued are folded into this count rather than queued).
    pub count: u32,
}

/// A fault on a page of a pager-backed area, for its pager (`PagerWait`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub struct PagerFault {
    /// What to answer with `PagerReply`.
    pub token: u32,
    /// The pager (`PagerCreate`'s id).
    pub pager: u32,
    /// The faulting client (its badge).
    pub client: u32,
    /// Byte offset of the page in the faulting area (the first page is 0), 4 KiB aligned.
    pub offset: u64,
    /// The access that faulted.
    pub access: Access,
}

/// Server counters returned by `Stats`.
///
/// System-wide fields (`frames_*`, `slots_*`, `spaces`, `shm_segments`, and with
/// `Target::Own` the fault counters of the whole server) go to the administrator only;
/// another client sees them as 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, MaxSize)]
pub struct Stats {
    /// Physical frames currently mapped or held.
    pub frames_in_use: u64,
    /// Physical frames still available.
    pub frames_free: u64,
    /// Capability slots in use by the server.
    pub slots_in_use: u64,
    /// Capability slots still available.
    pub slots_free: u64,
    /// Areas (mappings) in the target address space.
    pub areas: u64,
    /// Page faults resolved.
    pub faults_served: u64,
    /// Page faults that could not be resolved (the faulting thread was reported).
    pub faults_unresolved: u64,
    /// Pages charged to the target address space.
    pub charged_pages: u64,
    /// Quota of the target address space, in pages.
    pub quota_pages: u64,
    /// Address spaces known to the server.
    pub spaces: u64,
    /// Live System V shared-memory segments.
    pub shm_segments: u64,
    /// Server metadata (heap bytes) charged to the target address space.
    pub meta_bytes: u64,
    /// The most metadata the target may make the server hold (from its quota).
    pub meta_limit: u64,
    /// Server capability slots charged to the target (cap copies for its mappings).
    pub slots_charged: u64,
    /// The most cap slots the target may make the server use.
    pub slot_limit: u64,
    /// Pinned frames of the target (used by the kernel outside any mapping: IPC buffers).
    pub pinned: u64,
    /// Faults waiting for an answer from the target's pagers (queued or handed out).
    pub pager_pending: u64,
}
