//! Protocol errors: a message that could not be encoded or decoded.
//!
//! Distinct from [`crate::Errno`], which is the failure of a *valid* operation. Produced by
//! [`crate::codec`]; the server sends one back to the client as
//! [`crate::Reply::Protocol`] when a request does not decode, so it is itself part of the
//! wire format (append new variants at the end).

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Why a message could not be encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum ProtocolError {
    /// The bytes do not form a valid message (bad varint, bad enum tag inside the message,
    /// bad bool, invalid protection or msync bits, non-zero padding in the last word, ...).
    Malformed,
    /// The message ended before it was complete (including an empty message, and fewer
    /// message words than the framing length announces).
    Truncated,
    /// A complete message was followed by extra bytes.
    TrailingBytes,
    /// The message (or the length in its framing word) exceeds
    /// [`crate::MAX_MESSAGE_BYTES`].
    TooLarge,
    /// The caller's output buffer (bytes or words) is too small for the message.
    BufferTooSmall,
    /// The request tag is not one this side knows (e.g. a newer client than server).
    UnknownRequest,
    /// The reply tag is not one this side knows.
    UnknownReply,
}

impl ProtocolError {
    /// Every variant, for exhaustive tests.
    pub const ALL: [ProtocolError; 7] = [
        ProtocolError::Malformed,
        ProtocolError::Truncated,
        ProtocolError::TrailingBytes,
        ProtocolError::TooLarge,
        ProtocolError::BufferTooSmall,
        ProtocolError::UnknownRequest,
        ProtocolError::UnknownReply,
    ];

    /// A short description.
    pub const fn describe(self) -> &'static str {
        match self {
            ProtocolError::Malformed => "malformed message",
            ProtocolError::Truncated => "truncated message",
            ProtocolError::TrailingBytes => "trailing bytes after message",
            ProtocolError::TooLarge => "message too large",
            ProtocolError::BufferTooSmall => "buffer too small for message",
            ProtocolError::UnknownRequest => "unknown request",
            ProtocolError::UnknownReply => "unknown reply",
        }
    }
}

impl core::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}
