//! Every operation a client (or the root task) can ask of the memory server.
//!
//! [`Request`] is one enum over all operations; its argument types live in [`crate::args`]
//! and the answer to each is a [`crate::Reply`] whose value has the [`ValueKind`] given by
//! [`Request::reply_kind`]. [`crate::codec`] turns requests into bytes / message words and
//! back. Bulk data never travels in a request: it lies in the sender's shared buffer and
//! the request names it with a [`BufRef`].
//!
//! The variant order is the wire tag ([`Request::tag`]); append new variants at the end.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::args::{Backing, BufRef, MsyncFlags, PagerAnswer, Placement, Share, ShmCmd, ShmKey, Target};
use crate::prot::Prot;
use crate::reply::ValueKind;

/// A request to the memory server. Doc lines end with the reply value on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum Request {
    /// Create the address space of client `client`, owned by `uid`/`gid`, allowed to hold
    /// `quota_pages` pages. Privileged (root task only). → `Unit`
    CreateSpace {
        client: u32,
        uid: u32,
        gid: u32,
        quota_pages: u64,
    },
    /// Destroy the address space of `client` and free everything it holds. Privileged
    /// (root task only). → `Unit`
    DestroySpace { client: u32 },
    /// Create an area at `addr..addr+len` with protection `prot`. With `data`, the area is
    /// filled eagerly from the sender's shared buffer (the rest is zero); without, it is
    /// lazy zero-fill memory. Used by loaders to set up program images. → `Addr`
    Region {
        target: Target,
        addr: u64,
        len: u64,
        prot: Prot,
        data: Option<BufRef>,
    },
    /// `mmap`: map `len` bytes with protection `prot` (never above `max_prot` in later
    /// `Mprotect`s); `addr` is used as `placement` says; `populate` is `MAP_POPULATE`.
    /// → `Addr` (start of the mapping)
    Mmap {
        target: Target,
        addr: u64,
        len: u64,
        prot: Prot,
        max_prot: Prot,
        placement: Placement,
        share: Share,
        backing: Backing,
        populate: bool,
    },
    /// `munmap`: remove every mapping in `addr..addr+len`. → `Unit`
    Munmap { target: Target, addr: u64, len: u64 },
    /// `mprotect`: change the protection of `addr..addr+len`. → `Unit`
    Mprotect {
        target: Target,
        addr: u64,
        len: u64,
        prot: Prot,
    },
    /// `msync`: write back shared/backed mappings in `addr..addr+len`. → `Unit`
    Msync {
        target: Target,
        addr: u64,
        len: u64,
        flags: MsyncFlags,
    },
    /// What is mapped at `addr` (the page containing it). → `Query`
    Query { target: Target, addr: u64 },
    /// Map device memory `paddr..paddr+len` (untyped device frames). The server checks
    /// that the sender has authority over that physical range. → `Addr`
    MapPhys {
        target: Target,
        addr: u64,
        placement: Placement,
        paddr: u64,
        len: u64,
        prot: Prot,
    },
    /// Fault in every page of `addr..addr+len` now (like `MADV_WILLNEED` / populate).
    /// → `Unit`
    Populate { target: Target, addr: u64, len: u64 },
    /// Unmap every user area of the address space (e.g. before `exec`). → `Unit`
    Reset { target: Target },
    /// Create the address space of client `child` as a copy-on-write clone of `source`
    /// (shared mappings stay shared), with its own quota. → `Unit`
    Clone {
        source: Target,
        child: u32,
        quota_pages: u64,
    },
    /// `shmget`: find or create a System V shared-memory segment of `size` bytes;
    /// `create`/`exclusive` are `IPC_CREAT`/`IPC_EXCL`, `mode` the permission bits.
    /// → `Id` (shmid)
    ShmGet {
        key: ShmKey,
        size: u64,
        create: bool,
        exclusive: bool,
        mode: u16,
    },
    /// `shmat`: attach segment `shmid` at `addr` (or anywhere), read-only if `readonly`
    /// (`SHM_RDONLY`). → `Addr`
    ShmAt {
        shmid: u32,
        addr: Option<u64>,
        readonly: bool,
    },
    /// `shmdt`: detach the segment attached at `addr`. → `Unit`
    ShmDt { addr: u64 },
    /// `shmctl`: see [`ShmCmd`]. → `ShmStat` for `Stat`, else `Unit`
    ShmCtl { shmid: u32, cmd: ShmCmd },
    /// Create a backend object (a server-held, file-like memory object) of `size` bytes,
    /// zero-filled, owned by the sender's uid/gid with permission bits `mode` (like a file's:
    /// read for `BackendRead` and mappings, write for `BackendWrite`, writable shared
    /// mappings and `Msync`). → `Id`
    BackendCreate { size: u64, mode: u16 },
    /// Copy `buf` from the sender's shared buffer into backend object `id` at `offset`.
    /// → `Unit`
    BackendWrite { id: u32, offset: u64, buf: BufRef },
    /// Copy from backend object `id` at `offset` into `buf` of the sender's shared buffer.
    /// → `Unit`
    BackendRead { id: u32, offset: u64, buf: BufRef },
    /// Destroy backend object `id` (mappings of it keep their pages). → `Unit`
    BackendDestroy { id: u32 },
    /// Server statistics; with `Client(id)` the per-space counters are that client's.
    /// → `Stats`
    Stats { target: Target },
    /// Admin only (seL4 system): hand the root task a copy of the frame cap behind the page
    /// at `addr` (the client's IPC buffer), transferred with the reply. → `Unit`
    ExportFrame { target: Target, addr: u64 },
    /// Admin only: take the oldest queued note about a client fault the server could not
    /// resolve (the server signals the administrator's notification when it queues one).
    /// → `Note`
    TakeNote,
    /// Nothing: the cheapest round trip (liveness checks, benchmarks). → `Unit`
    Nop,
    /// Create a pager: the sender serves the faults of areas mapped with
    /// `Backing::Pager { id }`. Who may map such areas: `mode`, like a file's write bits
    /// (owner/group/other against the mapper's uid/gid). → `Id`
    PagerCreate { mode: u16 },
    /// The next fault for pager `id` (its creator only): answered at once if one is queued,
    /// else when a client faults on a page of one of its areas. One waiter at a time
    /// (`EBUSY`). → `PagerFault`
    PagerWait { id: u32 },
    /// Answer the fault `token` (from `PagerWait`; its pager's creator only): the page is
    /// mapped in the faulting client (charged to it) and the client resumes, or the fault is
    /// reported (`Fail`). `ENOENT` if the fault is no longer pending (answered, or the page
    /// went away: the client then resumes and faults again); `ENOMEM` if the client's quota
    /// cannot take the page (the fault is then reported). → `Unit`
    PagerReply { token: u32, answer: PagerAnswer },
    /// The areas of an address space from address `from` on, in address order, like
    /// `/proc/self/maps`: as many [`crate::LayoutEntry`]s as fit are written into `buf` of
    /// the sender's shared buffer (`LayoutEntry::BYTES` each). → `Layout`
    Layout { target: Target, from: u64, buf: BufRef },
}

impl Request {
    /// Number of request variants; wire tags are `0..TAG_COUNT`.
    pub const TAG_COUNT: u32 = 28;

    /// The wire tag of this variant (its index in the enum, which postcard sends first).
    pub const fn tag(&self) -> u32 {
        match self {
            Request::CreateSpace { .. } => 0,
            Request::DestroySpace { .. } => 1,
            Request::Region { .. } => 2,
            Request::Mmap { .. } => 3,
            Request::Munmap { .. } => 4,
            Request::Mprotect { .. } => 5,
            Request::Msync { .. } => 6,
            Request::Query { .. } => 7,
            Request::MapPhys { .. } => 8,
            Request::Populate { .. } => 9,
            Request::Reset { .. } => 10,
            Request::Clone { .. } => 11,
            Request::ShmGet { .. } => 12,
            Request::ShmAt { .. } => 13,
            Request::ShmDt { .. } => 14,
            Request::ShmCtl { .. } => 15,
            Request::BackendCreate { .. } => 16,
            Request::BackendWrite { .. } => 17,
            Request::BackendRead { .. } => 18,
            Request::BackendDestroy { .. } => 19,
            Request::Stats { .. } => 20,
            Request::ExportFrame { .. } => 21,
            Request::TakeNote => 22,
            Request::Nop => 23,
            Request::PagerCreate { .. } => 24,
            Request::PagerWait { .. } => 25,
            Request::PagerReply { .. } => 26,
            Request::Layout { .. } => 27,
        }
    }

    /// The variant name, for logs and statistics.
    pub const fn name(&self) -> &'static str {
        match self {
            Request::CreateSpace { .. } => "CreateSpace",
            Request::DestroySpace { .. } => "DestroySpace",
            Request::Region { .. } => "Region",
            Request::Mmap { .. } => "Mmap",
            Request::Munmap { .. } => "Munmap",
            Request::Mprotect { .. } => "Mprotect",
            Request::Msync { .. } => "Msync",
            Request::Query { .. } => "Query",
            Request::MapPhys { .. } => "MapPhys",
            Request::Populate { .. } => "Populate",
            Request::Reset { .. } => "Reset",
            Request::Clone { .. } => "Clone",
            Request::ShmGet { .. } => "ShmGet",
            Request::ShmAt { .. } => "ShmAt",
            Request::ShmDt { .. } => "ShmDt",
            Request::ShmCtl { .. } => "ShmCtl",
            Request::BackendCreate { .. } => "BackendCreate",
            Request::BackendWrite { .. } => "BackendWrite",
            Request::BackendRead { .. } => "BackendRead",
            Request::BackendDestroy { .. } => "BackendDestroy",
            Request::Stats { .. } => "Stats",
            Request::ExportFrame { .. } => "ExportFrame",
            Request::TakeNote => "TakeNote",
            Request::Nop => "Nop",
            Request::PagerCreate { .. } => "PagerCreate",
            Request::PagerWait { .. } => "PagerWait",
            Request::PagerReply { .. } => "PagerReply",
            Request::Layout { .. } => "Layout",
        }
    }

    /// The address space the request acts on (for `Clone`, the source), if it names one
    /// through a [`Target`]. `CreateSpace`/`DestroySpace` name a client directly and the
    /// shm/backend requests act on the sender's own space or on server-wide objects.
    pub const fn target(&self) -> Option<Target> {
        match *self {
            Request::Region { target, .. }
            | Request::Mmap { target, .. }
            | Request::Munmap { target, .. }
            | Request::Mprotect { target, .. }
            | Request::Msync { target, .. }
            | Request::Query { target, .. }
            | Request::MapPhys { target, .. }
            | Request::Populate { target, .. }
            | Request::Reset { target }
            | Request::Stats { target }
            | Request::ExportFrame { target, .. }
            | Request::Layout { target, .. } => Some(target),
            Request::Clone { source, .. } => Some(source),
            Request::CreateSpace { .. }
            | Request::DestroySpace { .. }
            | Request::ShmGet { .. }
            | Request::ShmAt { .. }
            | Request::ShmDt { .. }
            | Request::ShmCtl { .. }
            | Request::BackendCreate { .. }
            | Request::BackendWrite { .. }
            | Request::BackendRead { .. }
            | Request::BackendDestroy { .. }
            | Request::TakeNote
            | Request::Nop
            | Request::PagerCreate { .. }
            | Request::PagerWait { .. }
            | Request::PagerReply { .. } => None,
        }
    }

    /// The bytes of the sender's shared buffer this request hands to the server (bulk data
    /// to read or room to write), if any: the client puts a descriptor of exactly these
    /// bytes on its to-server ring (see the client library and the server's `buffers.rs`).
    pub const fn bulk(&self) -> Option<BufRef> {
        match *self {
            Request::Region { data, .. } => data,
            Request::BackendWrite { buf, .. } | Request::BackendRead { buf, .. } | Request::Layout { buf, .. } => Some(buf),
            Request::PagerReply { answer: PagerAnswer::Copy(buf), .. } => Some(buf),
            _ => None,
        }
    }

    /// Is this request a long operation done in bounded steps, answered
    /// [`crate::Errno::Again`] after each step but the last (send it again to go on)?
    /// `EAGAIN` is never a final answer: any request of a client whose space is being
    /// cloned may get it once the clone ends (it waited; send it again), and the client
    /// library sends every request again on `EAGAIN`.
    pub const fn steps(&self) -> bool {
        matches!(
            self,
            Request::Munmap { .. }
                | Request::Clone { .. }
                | Request::CreateSpace { .. }
                | Request::Mmap { .. }
                | Request::Populate { .. }
                | Request::Reset { .. }
                | Request::DestroySpace { .. }
                | Request::ShmDt { .. }
        )
    }

    /// The kind of [`crate::Value`] a successful reply to this request carries.
    pub const fn reply_kind(&self) -> ValueKind {
        match self {
            Request::Region { .. }
            | Request::Mmap { .. }
            | Request::MapPhys { .. }
            | Request::ShmAt { .. } => ValueKind::Addr,
            Request::ShmGet { .. } | Request::BackendCreate { .. } | Request::PagerCreate { .. } => {
                ValueKind::Id
            }
            Request::PagerWait { .. } => ValueKind::PagerFault,
            Request::Layout { .. } => ValueKind::Layout,
            Request::Query { .. } => ValueKind::Query,
            Request::ShmCtl {
                cmd: ShmCmd::Stat, ..
            } => ValueKind::ShmStat,
            Request::Stats { .. } => ValueKind::Stats,
            Request::TakeNote => ValueKind::Note,
            Request::CreateSpace { .. }
            | Request::DestroySpace { .. }
            | Request::Munmap { .. }
            | Request::Mprotect { .. }
            | Request::Msync { .. }
            | Request::Populate { .. }
            | Request::Reset { .. }
            | Request::Clone { .. }
            | Request::ShmDt { .. }
            | Request::ShmCtl { .. }
            | Request::BackendWrite { .. }
            | Request::BackendRead { .. }
            | Request::BackendDestroy { .. }
            | Request::ExportFrame { .. }
            | Request::Nop
            | Request::PagerReply { .. } => ValueKind::Unit,
        }
    }
}
