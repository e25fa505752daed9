//! Wire contract between clients and the seL4 memory server.
//!
//! A client (through the client library) or the root task sends a [`Request`]; the server
//! answers with a [`Reply`]: a success [`Value`], an operation error [`Errno`] (Linux errno
//! semantics), or a [`ProtocolError`] if the request did not decode. Requests and replies
//! are postcard-encoded by [`codec`] and packed into seL4 message words behind one
//! framing word ([`to_words`] / [`from_words`]); every message fits one IPC, which is
//! checked at compile time against [`MAX_MESSAGE_BYTES`]. Bulk data (initial region
//! contents, backend reads and writes) never travels in a message: it lies in the
//! client's shared buffer and is named by a [`BufRef`].
//!
//! Decoding is checked: flag sets ([`Prot`], [`MsyncFlags`]) with unknown bits do not
//! decode, so the server's logic only sees meaningful values; raw numbers (addresses,
//! lengths, ids) are validated by the server.
//!
//! ```
//! use mem_protocol::*;
//!
//! // Client: encode a request into message words (framing word first).
//! let req = Request::Munmap { target: Target::Own, addr: 0x1000, len: PAGE_SIZE };
//! let mut words = [0u64; IPC_BUFFER_WORDS];
//! let n = encode_request_words(&req, &mut words)?;
//! // Server: decode, act, answer.
//! assert_eq!(decode_request_words(&words[..n])?, req);
//! let n = encode_reply_words(&Reply::Err(Errno::Inval), &mut words)?;
//! assert_eq!(decode_reply_words(&words[..n])?.into_result(), Err(ReplyError::Op(Errno::Inval)));
//! # Ok::<(), ProtocolError>(())
//! ```
//!
//! Modules: [`request`] (the operations), [`args`] (their argument types), [`reply`]
//! (answers and their payloads), [`errno`] / [`error`] (operation vs. protocol errors),
//! [`layout`] (the `Layout` answer and its entries), [`prot`] (protection bits and page sizes, also used by the memory-server core),
//! [`codec`] (bytes and words). Users: the client library and root task (sending side),
//! the seL4 server loop (receiving side), and `mem-core` / `mem-model` for the value types.
#![no_std]
#![forbid(unsafe_code)]

pub mod args;
pub mod codec;
pub mod errno;
pub mod error;
mod fast;
pub use fast::{decode_small_reply_words, SmallValue};
pub mod layout;
pub mod prot;
pub mod reply;
pub mod request;
pub mod system;

pub use args::{Backing, BufRef, MsyncFlags, PagerAnswer, Placement, Share, ShmCmd, ShmKey, Target};
pub use codec::{
    decode_reply, decode_reply_words, decode_request, decode_request_words, encode_reply,
    encode_reply_words, encode_request, encode_request_words, from_words, message_words, to_words,
    FRAMING_BYTES, FRAMING_WORDS, IPC_BUFFER_WORDS, MAX_MESSAGE_BYTES, MAX_REPLY_BYTES,
    MAX_REPLY_WORDS, MAX_REQUEST_BYTES, MAX_REQUEST_WORDS, WORD_BYTES,
};
pub use errno::{Errno, OpResult};
pub use layout::{AreaKindCode, LayoutEntry, LayoutInfo};
pub use error::ProtocolError;
pub use postcard::experimental::max_size::MaxSize;
pub use prot::{Access, PageSize, Prot, LARGE_PAGE_SIZE, PAGE_SIZE, MMAP_POPULATE_PAGES, STEP_PAGES};
pub use reply::{FaultNote, PagerFault, QueryInfo, Reply, ReplyError, ShmStat, Stats, Value, ValueKind};
pub use request::Request;
