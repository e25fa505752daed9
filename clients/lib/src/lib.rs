//! Linux-like client API of the seL4 memory server.
//!
//! A [`Client`] wraps the client's badged endpoint to the server and its shared buffer
//! (the [`SharedLayout`] pages at [`mem_protocol::system::CLIENT_BUFFER_VADDR`]). Every
//! operation is one `Call` with label [`REQUEST_LABEL`]: the [`Request`] is encoded into the
//! message registers of the IPC buffer ([`encode_request_words`]) and the [`Reply`] decoded
//! from them ([`decode_reply_words`]). Errors are the server's [`Errno`]s, which map 1:1 to
//! Linux errno numbers ([`Errno::linux`]).
//!
//! Bulk data (backend writes and reads, initial region contents) never travels in a
//! message: it lies in the data area of the shared buffer ([`SharedLayout::DATA`]..) and the
//! request names it with a [`BufRef`] (byte offset from the start of the shared buffer).
//! Alongside, the descriptor rings of `sel4-shared-ring-buffer` say which bytes are handed
//! over: before the `Call`, the client enqueues a [`Descriptor`] `{ encoded_addr: offset,
//! len, cookie: 0 }` naming the same bytes on the ring at [`SharedLayout::TO_SERVER_RING`]
//! (the client is its writer), and after the reply it dequeues every descriptor the server
//! put on the ring at [`SharedLayout::FROM_SERVER_RING`] (the client is its reader); the last
//! one names the bytes handed back. Both rings start zeroed (indices 0) and neither side
//! writes initial state: the client reads their current indices when it is created
//! (`InitializationStrategy::ReadState`), so a fresh process and a clone child (which starts
//! over a copy of its parent's memory, with a fresh buffer of its own) both pick up the
//! state in memory. Requests without bulk data never touch the rings. The server side of
//! this protocol is `mem-server/sel4/src/buffers.rs` (it also hands back stale descriptors
//! of requests that failed before reaching the ring, and answers `EFAULT` when the last
//! descriptor does not equal the request's `BufRef` or lies outside the data area).
//!
//! No heap and no mutable statics: everything lives in the [`Client`] value. The
//! [`heap`] module offers a heap for the whole process ([`heap::ServerHeap`], a
//! `#[global_allocator]`), whose page provider calls the server from any thread through
//! [`call_plain`] (requests without bulk data need only the endpoint and the thread's IPC
//! buffer).
//!
//! ```ignore
//! let mut c = Client::new(server, buffer);
//! let a = c.mmap(0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)?;
//! c.mprotect(a, 4096, PROT_READ)?;
//! c.munmap(a, 16 * 4096)?;
//! ```

#![no_std]

use core::ptr::NonNull;
use core::sync::atomic::{compiler_fence, Ordering};

use sel4_shared_memory::SharedMemoryRef;
use sel4_shared_ring_buffer::roles::{Read, Write};
use sel4_shared_ring_buffer::{InitializationStrategy, RawRingBuffer, RingBuffer};

pub use mem_protocol::system::{SharedLayout, REQUEST_LABEL};
pub use mem_protocol::{
    decode_reply_words, encode_request_words, AreaKindCode, Backing, LayoutEntry, LayoutInfo, BufRef, Errno, MsyncFlags, PagerAnswer,
    PagerFault, Placement, ProtocolError, Prot, QueryInfo, Reply, Request, Share, ShmCmd, ShmKey,
    ShmStat, Stats, Target, Value, IPC_BUFFER_WORDS, PAGE_SIZE,
};
pub use sel4_shared_ring_buffer::Descriptor;
use mem_protocol::{decode_small_reply_words, SmallValue};

mod admin;
mod error;
pub mod heap;
mod layout;
pub mod linux;
mod objects;
mod transport;

pub use error::{errno, linux_ret, CallError, RawReply};
pub use transport::{bufref_of, call_plain};
use transport::{ring, within};

use linux::*;

/// Bytes of the whole shared buffer.
pub const BUFFER_BYTES: usize = (SharedLayout::PAGES * PAGE_SIZE) as usize;
/// Byte offset of the data area in the shared buffer (what [`BufRef::offset`] counts from
/// is the start of the buffer, so data-area offsets are `DATA_OFFSET + x`).
pub const DATA_OFFSET: usize = SharedLayout::DATA as usize;
/// Bytes of the data area: the most one bulk transfer carries (larger backend reads and
/// writes are split into several requests).
pub const DATA_BYTES: usize = SharedLayout::DATA_LEN as usize;
/// A connection to the memory server: the endpoint plus the shared buffer's rings and data.
pub struct Client {
    server: sel4::cap::Endpoint,
    /// Start of the whole shared buffer (rings, then data).
    base: NonNull<u8>,
    to_server: RingBuffer<'static, Write, Descriptor>,
    from_server: RingBuffer<'static, Read, Descriptor>,
    last_error: Option<CallError>,
    last_reply_caps: usize,
    /// Why the server died, as its last reply said (UTF-8, truncated).
    died: [u8; 128],
    died_len: usize,
}

impl Client {
    /// A client over the endpoint `server` (a badged cap to the server) and `buffer`, the
    /// whole shared buffer (at least [`BUFFER_BYTES`] bytes, page aligned).
    ///
    /// Reads the current ring indices from the buffer (zero in a fresh buffer).
    ///
    /// # Panics
    /// If `buffer` is shorter than [`BUFFER_BYTES`] or not 8-byte aligned.
    pub fn new(server: sel4::cap::Endpoint, buffer: &'static mut [u8]) -> Client {
        assert!(buffer.len() >= BUFFER_BYTES, "shared buffer too small");
        let base = NonNull::from(&mut buffer[0]);
        assert!(base.as_ptr() as usize % 8 == 0, "shared buffer misaligned");
        // SAFETY: the `'static` exclusive borrow of `buffer` is consumed here; from now on
        // the buffer is reached only through these pointers. The two rings lie at disjoint
        // offsets inside it (`RawRingBuffer` is ~12 KiB, each ring has 4 pages) and the data
        // area after them; every offset is within `BUFFER_BYTES` and 8-byte aligned.
        let (to_server, from_server) = unsafe {
            (
                ring::<Write>(base, SharedLayout::TO_SERVER_RING as usize),
                ring::<Read>(base, SharedLayout::FROM_SERVER_RING as usize),
            )
        };
        Client {
            server,
            base,
            to_server,
            from_server,
            last_error: None,
            last_reply_caps: 0,
            died: [0; 128],
            died_len: 0,
        }
    }

    /// The server endpoint this client calls.
    pub fn endpoint(&self) -> sel4::cap::Endpoint {
        self.server
    }

    /// Extra caps transferred with the last reply (`ExportFrame`, `CreateSpace`, `Clone`).
    /// The reason a dead server gave (see [`CallError::ServerDied`]), if it died.
    pub fn died_reason(&self) -> Option<&str> {
        if self.died_len == 0 {
            return None;
        }
        Some(core::str::from_utf8(&self.died[..self.died_len]).unwrap_or("(reason not UTF-8)"))
    }

    pub fn last_reply_caps(&self) -> usize {
        self.last_reply_caps
    }

    /// The full error of the last failed call (the typed methods keep only the errno).
    pub fn last_error(&self) -> Option<CallError> {
        self.last_error
    }

    // --- mmap family -------------------------------------------------------------------

    /// `mmap(addr, len, prot, flags)` of anonymous memory with maximum protection RWX.
    ///
    /// `flags` must hold `MAP_ANONYMOUS` and exactly one of `MAP_SHARED` / `MAP_PRIVATE`
    /// (else `EINVAL`); `MAP_FIXED`, `MAP_FIXED_NOREPLACE` and `MAP_POPULATE` count, other
    /// bits are ignored as Linux does. Without a fixed flag a non-zero `addr` is a hint.
    /// Returns the start of the mapping.
    pub fn mmap(&mut self, addr: u64, len: u64, prot: u32, flags: u32) -> Result<u64, Errno> {
        self.mmap_max_prot(addr, len, prot, PROT_RWX, flags)
    }

    /// [`Client::mmap`] with a maximum protection: later `mprotect`s above `max_prot` fail
    /// with `EACCES`.
    pub fn mmap_max_prot(
        &mut self,
        addr: u64,
        len: u64,
        prot: u32,
        max_prot: u32,
        flags: u32,
    ) -> Result<u64, Errno> {
        if flags & MAP_ANONYMOUS == 0 {
            return Err(Errno::Inval);
        }
        self.mmap_with(addr, len, prot, max_prot, flags, Backing::Anonymous)
    }

    /// `mmap` of backend object `backend_id` from byte `offset`, shared (`MAP_SHARED`) or
    /// private; a non-zero `addr` is a hint. Maximum protection RWX.
    pub fn mmap_backend(
        &mut self,
        addr: u64,
        len: u64,
        prot: u32,
        shared: bool,
        backend_id: u32,
        offset: u64,
    ) -> Result<u64, Errno> {
        let flags = if shared { MAP_SHARED } else { MAP_PRIVATE };
        self.mmap_backend_flags(addr, len, prot, flags, backend_id, offset)
    }

    /// `mmap` of backend object `backend_id` from byte `offset` with Linux `flags`
    /// (`MAP_SHARED`/`MAP_PRIVATE`, `MAP_FIXED*`, `MAP_POPULATE`; `MAP_ANONYMOUS` is `EINVAL`).
    pub fn mmap_backend_flags(
        &mut self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        backend_id: u32,
        offset: u64,
    ) -> Result<u64, Errno> {
        if flags & MAP_ANONYMOUS != 0 {
            return Err(Errno::Inval);
        }
        let backing = Backing::Backend {
            id: backend_id,
            offset,
        };
        self.mmap_with(addr, len, prot, PROT_RWX, flags, backing)
    }

    /// `mmap` of private memory whose pages pager `pager` supplies on first touch
    /// ([`Client::pager_create`]); `addr` is used as `flags` say (`MAP_FIXED*` or a hint).
    pub fn mmap_pager(&mut self, addr: u64, len: u64, prot: u32, flags: u32, pager: u32) -> Result<u64, Errno> {
        self.mmap_with(addr, len, prot, PROT_RWX, flags | MAP_PRIVATE, Backing::Pager { id: pager })
    }

    fn mmap_with(
        &mut self,
        addr: u64,
        len: u64,
        prot: u32,
        max_prot: u32,
        flags: u32,
        backing: Backing,
    ) -> Result<u64, Errno> {
        let req = mmap_request(addr, len, prot, max_prot, flags, backing)?;
        let at = self.addr(&req)?;
        let first = mem_protocol::MMAP_POPULATE_PAGES * PAGE_SIZE;
        if flags & MAP_POPULATE != 0 && len > first {
            // The server maps one bounded step's worth with the mmap; the rest comes with
            // Populate, best effort as MAP_POPULATE is (the mapping stands anyway).
            let _ = self.populate(at + first, len - first);
        }
        Ok(at)
    }

    /// `munmap(addr, len)`.
    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        self.unit(&Request::Munmap {
            target: Target::Own,
            addr,
            len,
        })
    }

    /// `mprotect(addr, len, prot)`.
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: u32) -> Result<(), Errno> {
        let prot = prot_of(prot)?;
        self.unit(&Request::Mprotect {
            target: Target::Own,
            addr,
            len,
            prot,
        })
    }

    /// `msync(addr, len, flags)` with Linux `MS_*` flags (`EINVAL` for unknown bits or
    /// `MS_ASYNC | MS_SYNC`).
    pub fn msync(&mut self, addr: u64, len: u64, flags: i32) -> Result<(), Errno> {
        let flags = MsyncFlags::from_linux(flags).ok_or(Errno::Inval)?;
        self.unit(&Request::Msync {
            target: Target::Own,
            addr,
            len,
            flags,
        })
    }

    /// What is mapped at `addr` (the page containing it).
    pub fn query(&mut self, addr: u64) -> Result<QueryInfo, Errno> {
        match self.value(&Request::Query {
            target: Target::Own,
            addr,
        })? {
            Value::Query(q) => Ok(q),
            _ => Err(self.bad_reply()),
        }
    }

    /// Fault in every page of `addr..addr + len` now.
    pub fn populate(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        self.unit(&Request::Populate {
            target: Target::Own,
            addr,
            len,
        })
    }

    /// Create an area at `addr..addr + len` (exactly there), filled from `data` (the rest
    /// zero) or lazily zero-filled without. `data` longer than [`DATA_BYTES`] is `EINVAL`.
    pub fn region(
        &mut self,
        addr: u64,
        len: u64,
        prot: u32,
        data: Option<&[u8]>,
    ) -> Result<u64, Errno> {
        self.region_in(Target::Own, addr, len, prot, data)
    }

    /// [`Client::region`] in the address space `target` (another client's needs the
    /// administrator: the root task loading a program).
    pub fn region_in(
        &mut self,
        target: Target,
        addr: u64,
        len: u64,
        prot: u32,
        data: Option<&[u8]>,
    ) -> Result<u64, Errno> {
        let prot = prot_of(prot)?;
        let data = match data {
            Some(bytes) => Some(self.put_data(0, bytes)?),
            None => None,
        };
        self.addr(&Request::Region {
            target,
            addr,
            len,
            prot,
            data,
        })
    }

    /// `munmap` in the address space `target`.
    pub fn munmap_in(&mut self, target: Target, addr: u64, len: u64) -> Result<(), Errno> {
        self.unit(&Request::Munmap { target, addr, len })
    }

    /// `Query` in the address space `target`.
    pub fn query_in(&mut self, target: Target, addr: u64) -> Result<QueryInfo, Errno> {
        match self.value(&Request::Query { target, addr })? {
            Value::Query(q) => Ok(q),
            _ => Err(self.bad_reply()),
        }
    }
}

/// The `Mmap` request of Linux `mmap(addr, len, prot, flags)` with `max_prot` over
/// `backing`: `flags` must hold exactly one of `MAP_SHARED` / `MAP_PRIVATE` (`EINVAL`);
/// `MAP_FIXED`, `MAP_FIXED_NOREPLACE` and `MAP_POPULATE` count, other bits are ignored as
/// Linux does; without a fixed flag a non-zero `addr` is a hint.
pub fn mmap_request(addr: u64, len: u64, prot: u32, max_prot: u32, flags: u32, backing: Backing) -> Result<Request, Errno> {
    let share = match flags & MAP_TYPE {
        MAP_SHARED | MAP_SHARED_VALIDATE => Share::Shared,
        MAP_PRIVATE => Share::Private,
        _ => return Err(Errno::Inval),
    };
    let placement = if flags & MAP_FIXED_NOREPLACE != 0 {
        Placement::FixedNoReplace
    } else if flags & MAP_FIXED != 0 {
        Placement::Fixed
    } else if addr != 0 {
        Placement::Hint
    } else {
        Placement::Anywhere
    };
    Ok(Request::Mmap {
        target: Target::Own,
        addr,
        len,
        prot: prot_of(prot)?,
        max_prot: prot_of(max_prot)?,
        placement,
        share,
        backing,
        populate: flags & MAP_POPULATE != 0,
    })
}

/// The `ShmGet` request of Linux `shmget(key, size, shmflg)` (`None` is `IPC_PRIVATE`;
/// `shmflg` holds `IPC_CREAT`, `IPC_EXCL` and the permission bits).
pub fn shmget_request(key: Option<u32>, size: u64, flags: i32) -> Request {
    let key = match key {
        Some(k) => ShmKey::Key(k),
        None => ShmKey::Private,
    };
    Request::ShmGet {
        key,
        size,
        create: flags & IPC_CREAT != 0,
        exclusive: flags & IPC_EXCL != 0,
        mode: (flags & IPC_MODE_MASK) as u16,
    }
}

/// Checked Linux `PROT_*` bits (`EINVAL` for unknown ones).
pub fn prot_of(prot: u32) -> Result<Prot, Errno> {
    u8::try_from(prot)
        .ok()
        .and_then(Prot::from_bits)
        .ok_or(Errno::Inval)
}
