//! Encoding of [`Request`] and [`Reply`] into bytes and seL4 message words, and back.
//!
//! Bytes are postcard; the byte length of every possible message is bounded at compile
//! time by [`MAX_MESSAGE_BYTES`] (via the `MaxSize` derive on the types of
//! [`crate::request`] and [`crate::reply`]). On seL4 the bytes travel in message registers
//! / the IPC buffer: [`to_words`] packs them into `u64` words after one framing word that
//! holds the byte length, [`from_words`] unpacks them; the `*_words` functions produce that
//! same packing directly (postcard writes into the words, gathering bytes in a register:
//! no byte buffer, no copy) and decode by unpacking into a buffer the size of the largest
//! message of the kind, then decoding the bytes (cheaper per byte than reading the words
//! in place, as `make bench-sel4` measured). The hot path's messages (the replies
//! `Ok(Unit | Addr | Id)` and `Err`, the requests `Nop`, `Munmap`, `Mprotect`) take fast
//! paths that read and write the same bytes without serde's generic code (`fast.rs`).
//! The client library (sending side)
//! and the seL4 server loop (receiving side) are the users; the memory-server core never
//! sees bytes. Every failure is a [`ProtocolError`], never a panic.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::reply::Reply;
use crate::request::Request;

/// Message registers in one seL4 IPC (`seL4_MsgMaxLength`).
pub const IPC_BUFFER_WORDS: usize = 120;
/// Bytes per message word (`seL4_Word` on 64-bit targets).
pub const WORD_BYTES: usize = 8;
/// Words of framing in front of the payload: one word holding the payload's byte length.
pub const FRAMING_WORDS: usize = 1;
/// Bytes of framing in front of the payload.
pub const FRAMING_BYTES: usize = FRAMING_WORDS * WORD_BYTES;
/// Largest encoded message (request or reply) in bytes, framing excluded.
pub const MAX_MESSAGE_BYTES: usize = IPC_BUFFER_WORDS * WORD_BYTES - FRAMING_BYTES;
/// Largest possible encoded [`Request`], in bytes: a big enough encode buffer.
pub const MAX_REQUEST_BYTES: usize = Request::POSTCARD_MAX_SIZE;
/// Largest possible encoded [`Reply`], in bytes: a big enough encode buffer.
pub const MAX_REPLY_BYTES: usize = Reply::POSTCARD_MAX_SIZE;
/// Words (framing included) of the largest possible request.
pub const MAX_REQUEST_WORDS: usize = message_words(MAX_REQUEST_BYTES);
/// Words (framing included) of the largest possible reply.
pub const MAX_REPLY_WORDS: usize = message_words(MAX_REPLY_BYTES);

// Every request and reply fits in one IPC, framing included.
const _: () = assert!(Request::POSTCARD_MAX_SIZE <= MAX_MESSAGE_BYTES);
const _: () = assert!(Reply::POSTCARD_MAX_SIZE <= MAX_MESSAGE_BYTES);
const _: () = assert!(MAX_REQUEST_WORDS <= IPC_BUFFER_WORDS);
const _: () = assert!(MAX_REPLY_WORDS <= IPC_BUFFER_WORDS);

/// Encode `request` into `buf`; returns the used prefix of `buf`.
///
/// Fails with [`ProtocolError::BufferTooSmall`] if `buf` is too short (a buffer of
/// [`MAX_REQUEST_BYTES`] always suffices).
pub fn encode_request<'a>(
    request: &Request,
    buf: &'a mut [u8],
) -> Result<&'a mut [u8], ProtocolError> {
    encode(request, buf)
}

/// Decode a request from exactly `bytes` (no trailing bytes allowed).
pub fn decode_request(bytes: &[u8]) -> Result<Request, ProtocolError> {
    decode(bytes, Request::TAG_COUNT, ProtocolError::UnknownRequest)
}

/// Encode `reply` into `buf`; returns the used prefix of `buf`.
///
/// Fails with [`ProtocolError::BufferTooSmall`] if `buf` is too short (a buffer of
/// [`MAX_REPLY_BYTES`] always suffices).
pub fn encode_reply<'a>(reply: &Reply, buf: &'a mut [u8]) -> Result<&'a mut [u8], ProtocolError> {
    encode(reply, buf)
}

/// Decode a reply from exactly `bytes` (no trailing bytes allowed).
pub fn decode_reply(bytes: &[u8]) -> Result<Reply, ProtocolError> {
    decode(bytes, Reply::TAG_COUNT, ProtocolError::UnknownReply)
}

/// Encode `request` straight into message words (framing word first); returns the number
/// of words used. `words` of [`MAX_REQUEST_WORDS`] always suffice.
pub fn encode_request_words(request: &Request, words: &mut [u64]) -> Result<usize, ProtocolError> {
    if let Some(n) = crate::fast::encode_request(request, words) {
        return Ok(n);
    }
    encode_words(request, MAX_REQUEST_BYTES, words)
}

/// Decode a request from message words as produced by [`encode_request_words`].
pub fn decode_request_words(words: &[u64]) -> Result<Request, ProtocolError> {
    if let Some(r) = crate::fast::decode_request(words) {
        return Ok(r);
    }
    unpack_and_decode::<MAX_REQUEST_BYTES, _>(words, decode_request)
}

/// Encode `reply` straight into message words (framing word first); returns the number of
/// words used. `words` of [`MAX_REPLY_WORDS`] always suffice.
pub fn encode_reply_words(reply: &Reply, words: &mut [u64]) -> Result<usize, ProtocolError> {
    if let Some(n) = crate::fast::encode_reply(reply, words) {
        return Ok(n);
    }
    encode_words(reply, MAX_REPLY_BYTES, words)
}

/// Decode a reply from message words as produced by [`encode_reply_words`].
pub fn decode_reply_words(words: &[u64]) -> Result<Reply, ProtocolError> {
    if let Some(r) = crate::fast::decode_reply(words) {
        return Ok(r);
    }
    unpack_and_decode::<MAX_REPLY_BYTES, _>(words, decode_reply)
}

/// Unpack the message in `words` into a buffer of `N` bytes (the largest valid message of
/// its kind) and `decode` the bytes; a longer message, which cannot decode, is unpacked in
/// full so that it fails exactly as its bytes would.
#[inline(always)]
fn unpack_and_decode<const N: usize, T>(
    words: &[u64],
    decode: impl FnOnce(&[u8]) -> Result<T, ProtocolError>,
) -> Result<T, ProtocolError> {
    let mut buf = [0u8; N];
    match from_words(words, &mut buf) {
        Err(ProtocolError::BufferTooSmall) => {
            let mut all = [0u8; MAX_MESSAGE_BYTES];
            decode(from_words(words, &mut all)?)
        }
        r => decode(r?),
    }
}

/// postcard's output written straight into payload words, packed as [`to_words`] packs
/// bytes (the rest of the last word zero): no byte buffer, no copy. Bytes gather in a
/// register and go out a whole word at a time.
struct WordsOut<'a> {
    words: &'a mut [u64],
    /// Whole words written.
    done: usize,
    /// The word being filled and how many bytes it holds (0..8).
    acc: u64,
    fill: u32,
}

impl postcard::ser_flavors::Flavor for WordsOut<'_> {
    type Output = usize;

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.acc |= u64::from(byte) << (8 * self.fill);
        self.fill += 1;
        if self.fill == WORD_BYTES as u32 {
            let w = self.words.get_mut(self.done).ok_or(postcard::Error::SerializeBufferFull)?;
            *w = self.acc;
            self.done += 1;
            self.acc = 0;
            self.fill = 0;
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        if self.fill > 0 {
            let w = self.words.get_mut(self.done).ok_or(postcard::Error::SerializeBufferFull)?;
            *w = self.acc;
        }
        Ok(self.done * WORD_BYTES + self.fill as usize)
    }
}

/// Encode `value` (at most `max_bytes`: the largest message of its kind) into `words`
/// exactly as [`to_words`] would pack its postcard bytes.
fn encode_words<T: Serialize>(value: &T, max_bytes: usize, words: &mut [u64]) -> Result<usize, ProtocolError> {
    let Some((len_word, payload)) = words.split_first_mut() else {
        return Err(ProtocolError::BufferTooSmall);
    };
    let room = payload.len().min(max_bytes.min(MAX_MESSAGE_BYTES).div_ceil(WORD_BYTES));
    let out = WordsOut { words: &mut payload[..room], done: 0, acc: 0, fill: 0 };
    let len = postcard::serialize_with_flavor(value, out).map_err(|e| match e {
        postcard::Error::SerializeBufferFull => ProtocolError::BufferTooSmall,
        _ => ProtocolError::Malformed,
    })?;
    *len_word = len as u64;
    Ok(message_words(len))
}

/// The framed length of a message in `words` and its payload words (exactly the words
/// that carry it). `Truncated` / `TooLarge` as [`from_words`] says.
fn framed(words: &[u64]) -> Result<(usize, &[u64]), ProtocolError> {
    let Some((&len_word, payload)) = words.split_first() else {
        return Err(ProtocolError::Truncated);
    };
    let len = match usize::try_from(len_word) {
        Ok(len) if len <= MAX_MESSAGE_BYTES => len,
        _ => return Err(ProtocolError::TooLarge),
    };
    match payload.get(..len.div_ceil(WORD_BYTES)) {
        Some(p) => Ok((len, p)),
        None => Err(ProtocolError::Truncated),
    }
}

/// Number of message words (framing included) that carry a message of `byte_len` bytes.
pub const fn message_words(byte_len: usize) -> usize {
    FRAMING_WORDS + byte_len.div_ceil(WORD_BYTES)
}

/// Pack `bytes` into `words`: `words[0]` is the byte length, then the bytes follow in
/// little-endian order, eight per word, the last word zero-padded. Returns the number of
/// words written ([`message_words`]`(bytes.len())`).
///
/// Fails with [`ProtocolError::TooLarge`] if `bytes` exceeds [`MAX_MESSAGE_BYTES`] and
/// with [`ProtocolError::BufferTooSmall`] if `words` is too short.
pub fn to_words(bytes: &[u8], words: &mut [u64]) -> Result<usize, ProtocolError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge);
    }
    let n = message_words(bytes.len());
    let Some(out) = words.get_mut(..n) else {
        return Err(ProtocolError::BufferTooSmall);
    };
    let (len_word, payload) = out.split_at_mut(FRAMING_WORDS);
    len_word[0] = bytes.len() as u64;
    // Whole words first (fixed-size copies), then the zero-padded rest.
    let whole = bytes.chunks_exact(WORD_BYTES);
    let rest = whole.remainder();
    let mut words = payload.iter_mut();
    // (`whole` first: `zip` asks it first and stops there, taking no word it drops.)
    for (chunk, word) in whole.zip(words.by_ref()) {
        *word = u64::from_le_bytes(<[u8; WORD_BYTES]>::try_from(chunk).unwrap_or_default());
    }
    if let Some(word) = words.next() {
        let mut le = [0u8; WORD_BYTES];
        le[..rest.len()].copy_from_slice(rest);
        *word = u64::from_le_bytes(le);
    }
    Ok(n)
}

/// Unpack a message packed by [`to_words`] into `out`; returns the message bytes (a prefix
/// of `out`).
///
/// Words after the framed length are ignored, so the whole message-register array can be
/// passed. Fails with [`ProtocolError::Truncated`] if `words` is empty or shorter than the
/// framed length, [`ProtocolError::TooLarge`] if the framed length exceeds
/// [`MAX_MESSAGE_BYTES`], [`ProtocolError::BufferTooSmall`] if `out` is too short, and
/// [`ProtocolError::Malformed`] if the padding of the last word is not zero.
pub fn from_words<'a>(words: &[u64], out: &'a mut [u8]) -> Result<&'a [u8], ProtocolError> {
    let (len, payload) = framed(words)?;
    let Some(out) = out.get_mut(..len) else {
        return Err(ProtocolError::BufferTooSmall);
    };
    // Whole words first (fixed-size copies), then the rest, whose padding must be zero.
    let mut words = payload.iter();
    let mut whole = out.chunks_exact_mut(WORD_BYTES);
    for (chunk, word) in whole.by_ref().zip(words.by_ref()) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let rest = whole.into_remainder();
    if let Some(word) = words.next() {
        let le = word.to_le_bytes();
        let (data, padding) = le.split_at(rest.len());
        if padding.iter().any(|&b| b != 0) {
            return Err(ProtocolError::Malformed);
        }
        rest.copy_from_slice(data);
    }
    Ok(out)
}

fn encode<'a, T: Serialize>(value: &T, buf: &'a mut [u8]) -> Result<&'a mut [u8], ProtocolError> {
    let len = postcard::serialize_with_flavor(value, Bytes { buf, len: 0 }).map_err(|e| match e {
        postcard::Error::SerializeBufferFull => ProtocolError::BufferTooSmall,
        _ => ProtocolError::Malformed,
    })?;
    if len > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge);
    }
    Ok(&mut buf[..len])
}

/// postcard's output into a byte slice, one byte at a time. postcard's own `Slice` flavor
/// copies each field's bytes with a `memcpy` call; messages are tens of bytes made of
/// one-to-ten-byte varints, for which a call costs more than the bytes.
struct Bytes<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl postcard::ser_flavors::Flavor for Bytes<'_> {
    type Output = usize;

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        let slot = self.buf.get_mut(self.len).ok_or(postcard::Error::SerializeBufferFull)?;
        *slot = byte;
        self.len += 1;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.len)
    }
}

fn decode<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    tag_count: u32,
    unknown: ProtocolError,
) -> Result<T, ProtocolError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge);
    }
    if peek_tag(bytes)? >= tag_count {
        return Err(unknown);
    }
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => ProtocolError::Truncated,
        _ => ProtocolError::Malformed,
    })?;
    if !rest.is_empty() {
        return Err(ProtocolError::TrailingBytes);
    }
    Ok(value)
}

/// The leading enum tag (a postcard varint `u32`), so an unknown top-level variant can be
/// told apart from a malformed body.
fn peek_tag(bytes: &[u8]) -> Result<u32, ProtocolError> {
    const MAX_LEN: usize = 5;
    let mut value = 0u32;
    for (i, &b) in bytes.iter().take(MAX_LEN).enumerate() {
        // The fifth byte carries the top four bits and must end the varint.
        if i == MAX_LEN - 1 && b > 0x0f {
            return Err(ProtocolError::Malformed);
        }
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(if bytes.len() < MAX_LEN {
        ProtocolError::Truncated
    } else {
        ProtocolError::Malformed
    })
}
