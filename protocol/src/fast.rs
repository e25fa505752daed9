//! Fast paths of the word codec ([`crate::codec`]) for the messages of the hot request
//! path: the replies `Ok(Unit)`, `Ok(Addr)`, `Ok(Id)` and `Err(errno)`, and the requests
//! `Nop`, `Munmap` and `Mprotect`. They read and write exactly the bytes postcard does
//! (the wire format stays the serde types of this crate: `tests/fast_codec.rs` checks
//! every fast encoding against postcard's and every fast decoding against postcard's
//! result, for arbitrary values and arbitrary words), only without serde's generic
//! machinery: a null request's reply decoded by postcard cost the client about 250
//! instructions, most of it in the derived `Reply` visitor.
//!
//! [`decode_small_reply_words`] is the client's door to the same: the small replies as
//! [`SmallValue`] or an errno, so a typed call never moves a whole [`Value`] (144 bytes,
//! for `Stats`) around.
//!
//! A fast decoder answers only for a message in canonical form that it fully understands
//! (minimal varints, zero padding, no trailing bytes); anything else returns `None` and
//! goes the general way, so errors are exactly postcard's. Neighbours: `codec.rs` (the
//! callers), `reply.rs`, `request.rs`.

use crate::args::Target;
use crate::codec::{message_words, WORD_BYTES};
use crate::errno::Errno;
use crate::prot::Prot;
use crate::reply::{Reply, Value};
use crate::request::Request;

/// Longest message a fast path handles, in bytes (`Mprotect` to another client: 28).
const FAST_MAX_BYTES: usize = 32;

/// Wire tags (variant declaration indices) of the messages handled here.
const REPLY_OK: u8 = 0;
const REPLY_ERR: u8 = 1;
const VALUE_UNIT: u8 = 0;
const VALUE_ADDR: u8 = 1;
const VALUE_ID: u8 = 2;
const TARGET_OWN: u8 = 0;
const TARGET_CLIENT: u8 = 1;

/// Bytes gathered into words, as `codec::to_words` packs them.
struct Out {
    words: [u64; FAST_MAX_BYTES / WORD_BYTES],
    len: usize,
}

impl Out {
    const fn new() -> Out {
        Out { words: [0; FAST_MAX_BYTES / WORD_BYTES], len: 0 }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        // Never more than FAST_MAX_BYTES: the messages written here are bounded.
        if let Some(w) = self.words.get_mut(self.len / WORD_BYTES) {
            *w |= u64::from(b) << (8 * (self.len % WORD_BYTES));
        }
        self.len += 1;
    }

    /// postcard's varint (LEB128, least significant group first).
    #[inline(always)]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    fn target(&mut self, t: Target) {
        match t {
            Target::Own => self.byte(TARGET_OWN),
            Target::Client(id) => {
                self.byte(TARGET_CLIENT);
                self.varint(u64::from(id));
            }
        }
    }

    /// Framing word and payload into `words`; the number of words, or `None` if they do
    /// not fit (the general path then says why). Every payload word of `Out` is written
    /// when there is room for them all (a fixed-size copy; the words past the message are
    /// not sent), else only the message's.
    #[inline(always)]
    fn finish(self, words: &mut [u64]) -> Option<usize> {
        let n = message_words(self.len);
        if n > 1 + self.words.len() {
            return None;
        }
        if let Some(out) = words.get_mut(..1 + self.words.len()) {
            out[0] = self.len as u64;
            out[1..].copy_from_slice(&self.words);
        } else {
            let out = words.get_mut(..n)?;
            out[0] = self.len as u64;
            for (o, w) in out[1..].iter_mut().zip(&self.words) {
                *o = *w;
            }
        }
        Some(n)
    }
}

/// Bytes of a framed message, read in place from its payload words.
struct In<'a> {
    payload: &'a [u64],
    len: usize,
    pos: usize,
}

impl<'a> In<'a> {
    /// The message in `words` if it is short enough for a fast path and its padding is
    /// zero.
    #[inline(always)]
    fn new(words: &'a [u64]) -> Option<In<'a>> {
        let (&len, rest) = words.split_first()?;
        let len = usize::try_from(len).ok().filter(|&l| l > 0 && l <= FAST_MAX_BYTES)?;
        let payload = rest.get(..len.div_ceil(WORD_BYTES))?;
        let tail = len % WORD_BYTES;
        if tail != 0 && payload[payload.len() - 1] >> (8 * tail) != 0 {
            return None;
        }
        Some(In { payload, len, pos: 0 })
    }

    #[inline(always)]
    fn byte(&mut self) -> Option<u8> {
        if self.pos >= self.len {
            return None;
        }
        let b = (self.payload[self.pos / WORD_BYTES] >> (8 * (self.pos % WORD_BYTES))) as u8;
        self.pos += 1;
        Some(b)
    }

    /// A canonical varint of at most `max_bits` bits (no redundant trailing zero group).
    #[inline(always)]
    fn varint(&mut self, max_bits: u32) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift >= max_bits || (shift > 0 && b == 0) || (bits << shift) >> shift != bits {
                return None;
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return (max_bits == 64 || v >> max_bits == 0).then_some(v);
            }
            shift += 7;
        }
    }

    #[inline(always)]
    fn target(&mut self) -> Option<Target> {
        match self.byte()? {
            TARGET_OWN => Some(Target::Own),
            TARGET_CLIENT => Some(Target::Client(self.varint(32)? as u32)),
            _ => None,
        }
    }

    /// `v` if every byte was read.
    #[inline(always)]
    fn done<T>(&self, v: T) -> Option<T> {
        (self.pos == self.len).then_some(v)
    }
}

/// The wire index of `e` (its position in the declaration, as postcard sends it).
fn errno_index(e: Errno) -> u8 {
    let mut i = 0;
    while i < Errno::ALL.len() {
        if Errno::ALL[i] as u8 == e as u8 {
            return i as u8;
        }
        i += 1;
    }
    u8::MAX
}

/// Encode `reply` into `words` if it is one of the fast replies.
#[inline(always)]
pub(crate) fn encode_reply(reply: &Reply, words: &mut [u64]) -> Option<usize> {
    // The commonest reply of all, two zero bytes: two stores.
    if let (Reply::Ok(Value::Unit), Some(out)) = (reply, words.get_mut(..2)) {
        out[0] = 2;
        out[1] = u64::from(REPLY_OK) | u64::from(VALUE_UNIT) << 8;
        return Some(2);
    }
    let mut o = Out::new();
    match *reply {
        Reply::Ok(Value::Unit) => {
            o.byte(REPLY_OK);
            o.byte(VALUE_UNIT);
        }
        Reply::Ok(Value::Addr(a)) => {
            o.byte(REPLY_OK);
            o.byte(VALUE_ADDR);
            o.varint(a);
        }
        Reply::Ok(Value::Id(id)) => {
            o.byte(REPLY_OK);
            o.byte(VALUE_ID);
            o.varint(u64::from(id));
        }
        Reply::Err(e) => {
            o.byte(REPLY_ERR);
            o.byte(errno_index(e));
        }
        _ => return None,
    }
    o.finish(words)
}

/// Decode a fast reply from `words` (`None`: not one, or not canonical).
#[inline(always)]
pub(crate) fn decode_reply(words: &[u64]) -> Option<Reply> {
    Some(match decode_small_reply_words(words)? {
        Ok(SmallValue::Unit) => Reply::Ok(Value::Unit),
        Ok(SmallValue::Addr(a)) => Reply::Ok(Value::Addr(a)),
        Ok(SmallValue::Id(i)) => Reply::Ok(Value::Id(i)),
        Err(e) => Reply::Err(e),
    })
}

/// The values of the small replies, without the space of [`Value`]'s large variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmallValue {
    Unit,
    Addr(u64),
    Id(u32),
}

/// The reply in `words` if it is `Ok(Unit | Addr | Id)` or `Err(errno)` in canonical form
/// (what [`crate::decode_reply_words`] would make of it, in a few words instead of a whole
/// [`Reply`]); `None` for anything else, which the caller decodes the general way. For
/// clients' hot paths (`mem-client`'s typed calls).
#[inline(always)]
pub fn decode_small_reply_words(words: &[u64]) -> Option<Result<SmallValue, Errno>> {
    if let [2, w, ..] = *words {
        if w == u64::from(REPLY_OK) | u64::from(VALUE_UNIT) << 8 {
            return Some(Ok(SmallValue::Unit));
        }
    }
    let mut i = In::new(words)?;
    let r = match i.byte()? {
        REPLY_OK => Ok(match i.byte()? {
            VALUE_UNIT => SmallValue::Unit,
            VALUE_ADDR => SmallValue::Addr(i.varint(64)?),
            VALUE_ID => SmallValue::Id(i.varint(32)? as u32),
            _ => return None,
        }),
        REPLY_ERR => Err(*Errno::ALL.get(usize::from(i.byte()?))?),
        _ => return None,
    };
    i.done(r)
}

/// Wire tags of the fast requests (`Request::tag`).
const REQ_MUNMAP: u8 = Request::Munmap { target: Target::Own, addr: 0, len: 0 }.tag() as u8;
const REQ_MPROTECT: u8 = Request::Mprotect { target: Target::Own, addr: 0, len: 0, prot: Prot::NONE }.tag() as u8;
const REQ_NOP: u8 = Request::Nop.tag() as u8;

/// Encode `req` into `words` if it is one of the fast requests.
#[inline(always)]
pub(crate) fn encode_request(req: &Request, words: &mut [u64]) -> Option<usize> {
    if let (Request::Nop, Some(out)) = (req, words.get_mut(..2)) {
        out[0] = 1;
        out[1] = u64::from(REQ_NOP);
        return Some(2);
    }
    let mut o = Out::new();
    match *req {
        Request::Nop => o.byte(REQ_NOP),
        Request::Munmap { target, addr, len } => {
            o.byte(REQ_MUNMAP);
            o.target(target);
            o.varint(addr);
            o.varint(len);
        }
        Request::Mprotect { target, addr, len, prot } => {
            o.byte(REQ_MPROTECT);
            o.target(target);
            o.varint(addr);
            o.varint(len);
            o.byte(prot.bits());
        }
        _ => return None,
    }
    o.finish(words)
}

/// Decode a fast request from `words` (`None`: not one, or not canonical).
#[inline(always)]
pub(crate) fn decode_request(words: &[u64]) -> Option<Request> {
    if let [1, w, ..] = *words {
        if w == u64::from(REQ_NOP) {
            return Some(Request::Nop);
        }
    }
    let mut i = In::new(words)?;
    let r = match i.byte()? {
        REQ_NOP => Request::Nop,
        REQ_MUNMAP => Request::Munmap { target: i.target()?, addr: i.varint(64)?, len: i.varint(64)? },
        REQ_MPROTECT => Request::Mprotect {
            target: i.target()?,
            addr: i.varint(64)?,
            len: i.varint(64)?,
            prot: Prot::from_bits(i.byte()?)?,
        },
        _ => return None,
    };
    i.done(r)
}
