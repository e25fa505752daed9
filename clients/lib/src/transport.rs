//! How a request travels: descriptor on the to-server ring for bulk data, message
//! registers, `Call`, reply decoding, draining the from-server ring; plus raw calls for
//! malformed-message tests. The ring protocol is described in the crate docs.
//! Neighbours: `lib.rs` (typed API), `error.rs`, the server's `buffers.rs`.

use crate::*;

impl Client {
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
    pub(crate) fn put_data(&mut self, offset: usize, bytes: &[u8]) -> Result<BufRef, Errno> {
        let end = offset.checked_add(bytes.len()).ok_or(Errno::Inval)?;
        if end > DATA_BYTES {
            return Err(Errno::Inval);
        }
        self.data_mut()[offset..end].copy_from_slice(bytes);
        Ok(Self::data_bufref(offset, bytes.len()))
    }

    /// Copy bytes at buffer offset `src` (inside the data area) into `out`.
    pub(crate) fn get_data(&mut self, src: usize, out: &mut [u8]) {
        compiler_fence(Ordering::SeqCst);
        let at = src - DATA_OFFSET;
        out.copy_from_slice(&self.data_mut()[at..at + out.len()]);
    }

    pub(crate) fn bad_reply(&mut self) -> Errno {
        self.last_error = Some(CallError::BadReply);
        CallError::BadReply.errno()
    }

    pub(crate) fn keep_error<T>(&mut self, r: Result<T, CallError>) -> Result<T, Errno> {
        r.map_err(|e| {
            self.last_error = Some(e);
            e.errno()
        })
    }

    pub(crate) fn value(&mut self, req: &Request) -> Result<Value, Errno> {
        let r = self.request(req);
        r.map_err(CallError::errno)
    }

    pub(crate) fn unit(&mut self, req: &Request) -> Result<(), Errno> {
        match self.small(req)? {
            SmallValue::Unit => Ok(()),
            _ => Err(self.bad_reply()),
        }
    }

    pub(crate) fn addr(&mut self, req: &Request) -> Result<u64, Errno> {
        match self.small(req)? {
            SmallValue::Addr(a) => Ok(a),
            _ => Err(self.bad_reply()),
        }
    }

    pub(crate) fn id(&mut self, req: &Request) -> Result<u32, Errno> {
        match self.small(req)? {
            SmallValue::Id(i) => Ok(i),
            _ => Err(self.bad_reply()),
        }
    }

    /// A request whose reply is expected to be a small value (`Unit`, `Addr`, `Id`) or an
    /// errno, as [`Client::value`] would give it, without carrying a whole [`Value`] (144
    /// bytes, for `Stats`) through the layers (`small_reply_of`). Requests with bulk data go
    /// the general way.
    fn small(&mut self, req: &Request) -> Result<SmallValue, Errno> {
        if req.bulk().is_some() {
            return match self.value(req)? {
                Value::Unit => Ok(SmallValue::Unit),
                Value::Addr(a) => Ok(SmallValue::Addr(a)),
                Value::Id(i) => Ok(SmallValue::Id(i)),
                _ => Err(self.bad_reply()),
            };
        }
        self.call_until_done(req, small_reply_of).map_err(|e| {
            self.last_error = Some(e);
            e.errno()
        })
    }

    /// `Call` `req` until its answer is not `EAGAIN` (a long operation's step, or a request
    /// that waited for a clone of this space: `Request::steps`); the answer as `decode`
    /// reads it. Keeps the reply's cap count and, if the server died, its reason.
    fn call_until_done<T>(
        &mut self,
        req: &Request,
        decode: impl Fn(&sel4::MessageInfo) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let mut info = send(self.server, req)?;
        let mut reply = decode(&info);
        while matches!(reply, Err(CallError::Op(Errno::Again))) {
            info = send(self.server, req)?;
            reply = decode(&info);
        }
        self.last_reply_caps = info.extra_caps();
        if matches!(reply, Err(CallError::ServerDied)) {
            self.keep_died_reason();
        }
        reply
    }

    /// One request: descriptor for `buf` on the to-server ring, `Call`, decode the reply,
    /// then drain the from-server ring (its last descriptor is returned).
    pub(crate) fn call_with_buf(
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
        let reply = self.call_until_done(req, reply_of);
        if reply == Err(CallError::ServerDied) {
            return reply.map(|v| (v, None));
        }
        // Drain first, so that a bad reply does not leave descriptors behind. The server
        // touches the rings only for requests with bulk data.
        let back = if buf.is_some() { self.drain_from_server()? } else { None };
        reply.map(|v| (v, back))
    }

    /// Keep the reason of a `SERVER_DIED_LABEL` reply now in the message registers.
    pub(crate) fn keep_died_reason(&mut self) {
        let mut bytes = [0u8; 128];
        let n = sel4::with_ipc_buffer(|ipc| {
            let mr = ipc.msg_regs();
            let len = mem_protocol::system::died_reason_len(mr[0]).min(bytes.len());
            for (i, b) in bytes[..len].iter_mut().enumerate() {
                *b = mr[1 + i / 8].to_le_bytes()[i % 8];
            }
            len
        });
        // Cut at a character boundary.
        let mut n = n;
        while core::str::from_utf8(&bytes[..n]).is_err() {
            n -= 1;
        }
        self.died = bytes;
        self.died_len = n.max(1);
        if n == 0 {
            self.died[0] = b'?';
        }
    }

    /// Dequeue every descriptor the server handed back; the last one.
    pub(crate) fn drain_from_server(&mut self) -> Result<Option<Descriptor>, CallError> {
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

/// Encode `req` into this thread's IPC buffer and `Call` `server`: the reply's message
/// info (its words are in the IPC buffer). Needs no shared buffer: any thread with an IPC
/// buffer and the endpoint may call (the heap's page provider does, `heap.rs`).
pub(crate) fn send(server: sel4::cap::Endpoint, req: &Request) -> Result<sel4::MessageInfo, CallError> {
    let n = sel4::with_ipc_buffer_mut(|ipc| encode_request_words(req, ipc.msg_regs_mut()))
        .map_err(CallError::Protocol)?;
    compiler_fence(Ordering::SeqCst);
    let info = server.call(sel4::MessageInfo::new(REQUEST_LABEL, 0, 0, n));
    compiler_fence(Ordering::SeqCst);
    Ok(info)
}

/// The value of the reply whose message info is `info` (words in the IPC buffer).
pub(crate) fn reply_of(info: &sel4::MessageInfo) -> Result<Value, CallError> {
    if info.label() == mem_protocol::system::SERVER_DIED_LABEL {
        return Err(CallError::ServerDied);
    }
    let len = info.length().min(IPC_BUFFER_WORDS);
    let reply = sel4::with_ipc_buffer(|ipc| decode_reply_words(&ipc.msg_regs()[..len]));
    match reply.map_err(|_| CallError::BadReply)? {
        Reply::Ok(v) => Ok(v),
        Reply::Err(e) => Err(CallError::Op(e)),
        Reply::Protocol(p) => Err(CallError::Protocol(p)),
    }
}

/// A small reply (`Ok(Unit | Addr | Id)` or an errno) read in place from the message
/// registers; anything else decoded in full (a value of another shape is a bad reply).
fn small_reply_of(info: &sel4::MessageInfo) -> Result<SmallValue, CallError> {
    if info.label() != mem_protocol::system::SERVER_DIED_LABEL {
        let len = info.length().min(IPC_BUFFER_WORDS);
        if let Some(r) = sel4::with_ipc_buffer(|ipc| decode_small_reply_words(&ipc.msg_regs()[..len])) {
            return r.map_err(CallError::Op);
        }
    }
    match reply_of(info)? {
        Value::Unit => Ok(SmallValue::Unit),
        Value::Addr(a) => Ok(SmallValue::Addr(a)),
        Value::Id(i) => Ok(SmallValue::Id(i)),
        _ => Err(CallError::BadReply),
    }
}

/// One request without bulk data over `server`, from any thread.
pub fn call_plain(server: sel4::cap::Endpoint, req: &Request) -> Result<Value, CallError> {
    if req.bulk().is_some() {
        return Err(CallError::Ring);
    }
    let mut reply = reply_of(&send(server, req)?);
    // A long operation's step, or a request that waited for a clone (the server answered
    // EAGAIN): send it again until it is done.
    while matches!(reply, Err(CallError::Op(Errno::Again))) {
        reply = reply_of(&send(server, req)?);
    }
    reply
}

/// The ring at byte `offset` of the shared buffer at `base`, with the indices found there.
///
/// # Safety
/// `base + offset` must be 8-byte aligned and the start of a `RawRingBuffer` that lives in
/// shared memory for `'static` and that nothing else on the client side accesses.
pub(crate) unsafe fn ring<R: sel4_shared_ring_buffer::roles::RingBufferRole>(
    base: NonNull<u8>,
    offset: usize,
) -> RingBuffer<'static, R, Descriptor> {
    // SAFETY: per the function's contract.
    let raw = unsafe { base.add(offset) }.cast::<RawRingBuffer<Descriptor>>();
    // SAFETY: per the function's contract.
    let shared = unsafe { SharedMemoryRef::new(raw) };
    RingBuffer::new(shared, InitializationStrategy::ReadState)
}

/// The bulk-data reference a request carries, if any ([`Request::bulk`]).
pub fn bufref_of(req: &Request) -> Option<BufRef> {
    req.bulk()
}

/// Whether descriptor `d` names bytes inside `b`.
pub(crate) fn within(d: Descriptor, b: BufRef) -> bool {
    let start = d.encoded_addr();
    let end = start.checked_add(d.len() as usize);
    let (bs, be) = (b.offset as usize, b.offset as usize + b.len as usize);
    matches!(end, Some(end) if start >= bs && end <= be)
}

