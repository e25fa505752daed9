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
//! No heap and no mutable statics: everything lives in the [`Client`] value.
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
    decode_reply_words, encode_request_words, Backing, BufRef, Errno, MsyncFlags, Placement,
    ProtocolError, Prot, QueryInfo, Reply, Request, Share, ShmCmd, ShmKey, ShmStat, Stats,
    Target, Value, IPC_BUFFER_WORDS, PAGE_SIZE,
};
pub use sel4_shared_ring_buffer::Descriptor;

pub mod linux;

use linux::*;

/// Bytes of the whole shared buffer.
pub const BUFFER_BYTES: usize = (SharedLayout::PAGES * PAGE_SIZE) as usize;
/// Byte offset of the data area in the shared buffer (what [`BufRef::offset`] counts from
/// is the start of the buffer, so data-area offsets are `DATA_OFFSET + x`).
pub const DATA_OFFSET: usize = SharedLayout::DATA as usize;
/// Bytes of the data area: the most one bulk transfer carries (larger backend reads and
/// writes are split into several requests).
pub const DATA_BYTES: usize = SharedLayout::DATA_LEN as usize;

/// Why a request failed, in full (the typed methods reduce this to an [`Errno`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The server carried out the request and it failed with this errno.
    Op(Errno),
    /// The server could not decode the request (or the client could not encode it).
    Protocol(ProtocolError),
    /// The reply did not decode, or its value has the wrong shape for the request.
    BadReply,
    /// A descriptor ring is full or the server broke the ring protocol.
    Ring,
}

impl CallError {
    /// The errno the Linux-like API reports for this error: the server's own for
    /// [`CallError::Op`], `EINVAL` for protocol errors and bad replies, `EFAULT` for ring
    /// trouble.
    pub const fn errno(self) -> Errno {
        match self {
            CallError::Op(e) => e,
            CallError::Protocol(_) | CallError::BadReply => Errno::Inval,
            CallError::Ring => Errno::Fault,
        }
    }
}

impl From<Errno> for CallError {
    fn from(e: Errno) -> Self {
        CallError::Op(e)
    }
}

impl From<CallError> for Errno {
    fn from(e: CallError) -> Self {
        e.errno()
    }
}

/// The Linux return convention of a call: `0` (or the value) on success, `-errno` on error.
pub fn linux_ret(r: Result<u64, Errno>) -> i64 {
    match r {
        Ok(v) => v as i64,
        Err(e) => -(e.linux() as i64),
    }
}

/// The Linux `errno` of a result: `0` on success.
pub fn errno<T>(r: &Result<T, Errno>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.linux(),
    }
}

/// The raw answer to [`Client::call_raw`]: the reply's message registers.
#[derive(Clone, Copy)]
pub struct RawReply {
    len: usize,
    words: [u64; IPC_BUFFER_WORDS],
}

impl RawReply {
    /// The reply's message words (`length` of its message info).
    pub fn words(&self) -> &[u64] {
        &self.words[..self.len]
    }

    /// The reply decoded as a protocol [`Reply`].
    pub fn decode(&self) -> Result<Reply, ProtocolError> {
        decode_reply_words(self.words())
    }
}

impl core::ops::Deref for RawReply {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        self.words()
    }
}

/// A connection to the memory server: the endpoint plus the shared buffer's rings and data.
pub struct Client {
    server: sel4::cap::Endpoint,
    /// Start of the whole shared buffer (rings, then data).
    base: NonNull<u8>,
    to_server: RingBuffer<'static, Write, Descriptor>,
    from_server: RingBuffer<'static, Read, Descriptor>,
    last_error: Option<CallError>,
    last_reply_caps: usize,
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
        }
    }

    /// The server endpoint this client calls.
    pub fn endpoint(&self) -> sel4::cap::Endpoint {
        self.server
    }

    /// Extra caps transferred with the last reply (`ExportFrame`, `CreateSpace`, `Clone`).
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

    fn mmap_with(
        &mut self,
        addr: u64,
        len: u64,
        prot: u32,
        max_prot: u32,
        flags: u32,
        backing: Backing,
    ) -> Result<u64, Errno> {
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
        let req = Request::Mmap {
            target: Target::Own,
            addr,
            len,
            prot: prot_of(prot)?,
            max_prot: prot_of(max_prot)?,
            placement,
            share,
            backing,
            populate: flags & MAP_POPULATE != 0,
        };
        self.addr(&req)
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

    // --- Administration (root task only) -----------------------------------------------

    /// Create the address space of client `client` (owner `uid`/`gid`, `quota_pages`).
    pub fn create_space(
        &mut self,
        client: u32,
        uid: u32,
        gid: u32,
        quota_pages: u64,
    ) -> Result<(), Errno> {
        self.unit(&Request::CreateSpace {
            client,
            uid,
            gid,
            quota_pages,
        })
    }

    /// Destroy the address space of client `client`.
    pub fn destroy_space(&mut self, client: u32) -> Result<(), Errno> {
        self.unit(&Request::DestroySpace { client })
    }

    /// Create client `child`'s address space as a copy-on-write clone of `source`.
    pub fn clone_space(&mut self, source: Target, child: u32, quota_pages: u64) -> Result<(), Errno> {
        self.unit(&Request::Clone {
            source,
            child,
            quota_pages,
        })
    }

    /// Ask for a copy of the frame cap behind the page at `addr` of `target`. The cap comes
    /// with the reply: set the receive slot of this thread's IPC buffer first, and check
    /// [`Client::last_reply_caps`] afterwards.
    pub fn export_frame(&mut self, target: Target, addr: u64) -> Result<(), Errno> {
        self.unit(&Request::ExportFrame { target, addr })
    }

    // --- System V shared memory --------------------------------------------------------

    /// `shmget(key, size, shmflg)`: `None` is `IPC_PRIVATE`; `flags` holds `IPC_CREAT`,
    /// `IPC_EXCL` and the permission bits (`0o777`). Returns the shmid.
    pub fn shmget(&mut self, key: Option<u32>, size: u64, flags: i32) -> Result<u32, Errno> {
        let key = match key {
            Some(k) => ShmKey::Key(k),
            None => ShmKey::Private,
        };
        self.id(&Request::ShmGet {
            key,
            size,
            create: flags & IPC_CREAT != 0,
            exclusive: flags & IPC_EXCL != 0,
            mode: (flags & IPC_MODE_MASK) as u16,
        })
    }

    /// `shmat(shmid, addr, readonly ? SHM_RDONLY : 0)`; `None` lets the server choose.
    /// Returns the attach address.
    pub fn shmat(&mut self, shmid: u32, addr: Option<u64>, readonly: bool) -> Result<u64, Errno> {
        self.addr(&Request::ShmAt {
            shmid,
            addr,
            readonly,
        })
    }

    /// `shmdt(addr)`.
    pub fn shmdt(&mut self, addr: u64) -> Result<(), Errno> {
        self.unit(&Request::ShmDt { addr })
    }

    /// `shmctl(shmid, IPC_STAT)`.
    pub fn shmctl_stat(&mut self, shmid: u32) -> Result<ShmStat, Errno> {
        match self.value(&Request::ShmCtl {
            shmid,
            cmd: ShmCmd::Stat,
        })? {
            Value::ShmStat(s) => Ok(s),
            _ => Err(self.bad_reply()),
        }
    }

    /// `shmctl(shmid, IPC_RMID)`.
    pub fn shmctl_rmid(&mut self, shmid: u32) -> Result<(), Errno> {
        self.unit(&Request::ShmCtl {
            shmid,
            cmd: ShmCmd::Remove,
        })
    }

    /// `shmctl(shmid, IPC_SET)` with a new owner and permission bits.
    pub fn shmctl_set(&mut self, shmid: u32, uid: u32, gid: u32, mode: u16) -> Result<(), Errno> {
        self.unit(&Request::ShmCtl {
            shmid,
            cmd: ShmCmd::Set { uid, gid, mode },
        })
    }

    // --- Backend objects ---------------------------------------------------------------

    /// Create a zero-filled backend object of `size` bytes; returns its id.
    pub fn backend_create(&mut self, size: u64) -> Result<u32, Errno> {
        self.id(&Request::BackendCreate { size })
    }

    /// Write `data` into backend object `id` at `offset` (through the shared buffer, in
    /// pieces of at most [`DATA_BYTES`]).
    pub fn backend_write(&mut self, id: u32, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let mut done = 0usize;
        loop {
            let chunk = &data[done..data.len().min(done + DATA_BYTES)];
            let buf = self.put_data(0, chunk)?;
            let at = offset.checked_add(done as u64).ok_or(Errno::Overflow)?;
            self.unit(&Request::BackendWrite { id, offset: at, buf })?;
            done += chunk.len();
            if done >= data.len() {
                return Ok(());
            }
        }
    }

    /// Read `out.len()` bytes of backend object `id` at `offset` into `out` (through the
    /// shared buffer, in pieces of at most [`DATA_BYTES`]).
    pub fn backend_read(&mut self, id: u32, offset: u64, out: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0usize;
        loop {
            let n = (out.len() - done).min(DATA_BYTES);
            let buf = BufRef::new(DATA_OFFSET as u32, n as u32);
            let at = offset.checked_add(done as u64).ok_or(Errno::Overflow)?;
            let returned = self.call_with_buf(&Request::BackendRead { id, offset: at, buf }, Some(buf));
            let (value, back) = self.keep_error(returned)?;
            if value != Value::Unit {
                return Err(self.bad_reply());
            }
            // The server names the bytes it filled with the descriptor it hands back; take
            // them from there when it lies inside the requested range, else from `buf`.
            let src = match back {
                Some(d) if within(d, buf) && d.len() as usize == n => d.encoded_addr(),
                _ => DATA_OFFSET,
            };
            self.get_data(src, &mut out[done..done + n]);
            done += n;
            if done >= out.len() {
                return Ok(());
            }
        }
    }

    /// Destroy backend object `id`.
    pub fn backend_destroy(&mut self, id: u32) -> Result<(), Errno> {
        self.unit(&Request::BackendDestroy { id })
    }

    // --- Statistics ----------------------------------------------------------------------

    /// Server statistics; the per-space counters are those of `target`.
    pub fn stats(&mut self, target: Target) -> Result<Stats, Errno> {
        match self.value(&Request::Stats { target })? {
            Value::Stats(s) => Ok(s),
            _ => Err(self.bad_reply()),
        }
    }

    // --- Generic and raw calls -----------------------------------------------------------

    /// Send any request and return the reply value. A request naming bulk data (`Region`
    /// with data, `BackendWrite`, `BackendRead`) gets its descriptor enqueued on the
    /// to-server ring; the data itself must already lie in the shared buffer (see
    /// [`Client::data_mut`]).
    pub fn request(&mut self, req: &Request) -> Result<Value, CallError> {
        let r = self.call_with_buf(req, bufref_of(req)).map(|(v, _)| v);
        if let Err(e) = r {
            self.last_error = Some(e);
        }
        r
    }

    /// Send `words` as the message registers of a `Call` with `label`, as they are (at most
    /// [`IPC_BUFFER_WORDS`]; the rest is dropped), and return the reply's message info and
    /// words. For exercising the server with malformed messages.
    pub fn call_raw(&mut self, label: u64, words: &[u64]) -> (sel4::MessageInfo, RawReply) {
        let n = words.len().min(IPC_BUFFER_WORDS);
        sel4::with_ipc_buffer_mut(|ipc| ipc.msg_regs_mut()[..n].copy_from_slice(&words[..n]));
        let info = self.server.call(sel4::MessageInfo::new(label, 0, 0, n));
        let len = info.length().min(IPC_BUFFER_WORDS);
        let mut reply = RawReply {
            len,
            words: [0; IPC_BUFFER_WORDS],
        };
        sel4::with_ipc_buffer(|ipc| reply.words[..len].copy_from_slice(&ipc.msg_regs()[..len]));
        (info, reply)
    }

    /// The data area of the shared buffer ([`DATA_BYTES`] bytes; `BufRef` offset
    /// [`DATA_OFFSET`] is its first byte). The server reads and writes it during calls.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: the data area lies inside the buffer handed to `new` (checked there) and
        // after both rings; the `&mut self` borrow makes this the only view of it on the
        // client side, and the server touches it only while this thread is blocked in a
        // `Call` (which cannot happen while the slice is borrowed).
        unsafe {
            core::slice::from_raw_parts_mut(self.base.as_ptr().add(DATA_OFFSET), DATA_BYTES)
        }
    }

    /// The `BufRef` of `len` bytes at `offset` in the data area.
    pub fn data_bufref(offset: usize, len: usize) -> BufRef {
        BufRef::new((DATA_OFFSET + offset) as u32, len as u32)
    }

    // --- Internals -----------------------------------------------------------------------

    /// Copy `bytes` into the data area at `offset`; their `BufRef`.
    fn put_data(&mut self, offset: usize, bytes: &[u8]) -> Result<BufRef, Errno> {
        let end = offset.checked_add(bytes.len()).ok_or(Errno::Inval)?;
        if end > DATA_BYTES {
            return Err(Errno::Inval);
        }
        self.data_mut()[offset..end].copy_from_slice(bytes);
        Ok(Self::data_bufref(offset, bytes.len()))
    }

    /// Copy bytes at buffer offset `src` (inside the data area) into `out`.
    fn get_data(&mut self, src: usize, out: &mut [u8]) {
        compiler_fence(Ordering::SeqCst);
        let at = src - DATA_OFFSET;
        out.copy_from_slice(&self.data_mut()[at..at + out.len()]);
    }

    fn bad_reply(&mut self) -> Errno {
        self.last_error = Some(CallError::BadReply);
        CallError::BadReply.errno()
    }

    fn keep_error<T>(&mut self, r: Result<T, CallError>) -> Result<T, Errno> {
        r.map_err(|e| {
            self.last_error = Some(e);
            e.errno()
        })
    }

    fn value(&mut self, req: &Request) -> Result<Value, Errno> {
        let r = self.request(req);
        r.map_err(CallError::errno)
    }

    fn unit(&mut self, req: &Request) -> Result<(), Errno> {
        match self.value(req)? {
            Value::Unit => Ok(()),
            _ => Err(self.bad_reply()),
        }
    }

    fn addr(&mut self, req: &Request) -> Result<u64, Errno> {
        match self.value(req)? {
            Value::Addr(a) => Ok(a),
            _ => Err(self.bad_reply()),
        }
    }

    fn id(&mut self, req: &Request) -> Result<u32, Errno> {
        match self.value(req)? {
            Value::Id(i) => Ok(i),
            _ => Err(self.bad_reply()),
        }
    }

    /// One request: descriptor for `buf` on the to-server ring, `Call`, decode the reply,
    /// then drain the from-server ring (its last descriptor is returned).
    fn call_with_buf(
        &mut self,
        req: &Request,
        buf: Option<BufRef>,
    ) -> Result<(Value, Option<Descriptor>), CallError> {
        if let Some(b) = buf {
            let desc = Descriptor::new(b.offset as usize, b.len, 0);
            match self.to_server.enqueue_and_commit(desc) {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(CallError::Ring),
            }
        }
        let n = sel4::with_ipc_buffer_mut(|ipc| encode_request_words(req, ipc.msg_regs_mut()))
            .map_err(CallError::Protocol)?;
        compiler_fence(Ordering::SeqCst);
        let info = self.server.call(sel4::MessageInfo::new(REQUEST_LABEL, 0, 0, n));
        compiler_fence(Ordering::SeqCst);
        self.last_reply_caps = info.extra_caps();
        let len = info.length().min(IPC_BUFFER_WORDS);
        let reply = sel4::with_ipc_buffer(|ipc| decode_reply_words(&ipc.msg_regs()[..len]));
        // Drain first, so that a bad reply does not leave descriptors behind.
        let back = self.drain_from_server()?;
        match reply.map_err(|_| CallError::BadReply)? {
            Reply::Ok(v) => Ok((v, back)),
            Reply::Err(e) => Err(CallError::Op(e)),
            Reply::Protocol(p) => Err(CallError::Protocol(p)),
        }
    }

    /// Dequeue every descriptor the server handed back; the last one.
    fn drain_from_server(&mut self) -> Result<Option<Descriptor>, CallError> {
        let mut last = None;
        loop {
            match self.from_server.dequeue() {
                Ok(Some(d)) => last = Some(d),
                Ok(None) => return Ok(last),
                Err(_) => return Err(CallError::Ring),
            }
        }
    }
}

/// The ring at byte `offset` of the shared buffer at `base`, with the indices found there.
///
/// # Safety
/// `base + offset` must be 8-byte aligned and the start of a `RawRingBuffer` that lives in
/// shared memory for `'static` and that nothing else on the client side accesses.
unsafe fn ring<R: sel4_shared_ring_buffer::roles::RingBufferRole>(
    base: NonNull<u8>,
    offset: usize,
) -> RingBuffer<'static, R, Descriptor> {
    // SAFETY: per the function's contract.
    let raw = unsafe { base.add(offset) }.cast::<RawRingBuffer<Descriptor>>();
    // SAFETY: per the function's contract.
    let shared = unsafe { SharedMemoryRef::new(raw) };
    RingBuffer::new(shared, InitializationStrategy::ReadState)
}

/// The bulk-data reference a request carries, if any.
pub fn bufref_of(req: &Request) -> Option<BufRef> {
    match *req {
        Request::Region { data, .. } => data,
        Request::BackendWrite { buf, .. } | Request::BackendRead { buf, .. } => Some(buf),
        _ => None,
    }
}

/// Whether descriptor `d` names bytes inside `b`.
fn within(d: Descriptor, b: BufRef) -> bool {
    let start = d.encoded_addr();
    let end = start.checked_add(d.len() as usize);
    let (bs, be) = (b.offset as usize, b.offset as usize + b.len as usize);
    matches!(end, Some(end) if start >= bs && end <= be)
}

/// Checked Linux `PROT_*` bits (`EINVAL` for unknown ones).
pub fn prot_of(prot: u32) -> Result<Prot, Errno> {
    u8::try_from(prot)
        .ok()
        .and_then(Prot::from_bits)
        .ok_or(Errno::Inval)
}
