//! Errors of client calls: the full [`CallError`], its reduction to an [`Errno`], the
//! Linux-style return helpers, and the raw reply of [`crate::Client::call_raw`].
//! Neighbours: `transport.rs` (produces them), `lib.rs` (the typed API).

use crate::*;

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
    /// The server has died (it panicked); [`crate::Client::died_reason`] says why. It will
    /// never serve again.
    ServerDied,
}

impl CallError {
    /// The errno the Linux-like API reports for this error: the server's own for
    /// [`CallError::Op`], `EINVAL` for protocol errors and bad replies, `EFAULT` for ring
    /// trouble, `ENOSYS` once the server is dead.
    pub const fn errno(self) -> Errno {
        match self {
            CallError::Op(e) => e,
            CallError::Protocol(_) | CallError::BadReply => Errno::Inval,
            CallError::Ring => Errno::Fault,
            CallError::ServerDied => Errno::NoSys,
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
    pub(crate) len: usize,
    pub(crate) words: [u64; IPC_BUFFER_WORDS],
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

