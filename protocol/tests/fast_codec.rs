//! The codec's fast paths (`src/fast.rs`: the replies `Ok(Unit | Addr | Id)` and `Err`, the
//! requests `Nop`, `Munmap`, `Mprotect`) against postcard: the same words out for every
//! value, and the same result (errors included) for messages that are almost one of them —
//! a byte changed, the length changed, a varint made non-canonical, padding set.

use mem_protocol::{
    decode_reply, decode_reply_words, decode_small_reply_words, SmallValue, decode_request, decode_request_words, encode_reply,
    encode_reply_words, encode_request, encode_request_words, from_words, to_words, Errno, ProtocolError,
    Prot, Reply, Request, Target, Value, IPC_BUFFER_WORDS, MAX_MESSAGE_BYTES,
};
use proptest::prelude::*;

fn num64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(127), Just(128), Just(u64::MAX), 0..0x4000u64, any::<u64>(), every_width()]
}
/// A number of each bit width 1..=64 alike (every varint length 1..=10 bytes: the decoder
/// reads up to eight a word at a time, longer ones a byte at a time).
fn every_width() -> impl Strategy<Value = u64> {
    (1u32..=64).prop_flat_map(|bits| (1u64 << (bits - 1))..=(u64::MAX >> (64 - bits)))
}
fn target() -> impl Strategy<Value = Target> {
    prop_oneof![Just(Target::Own), any::<u32>().prop_map(Target::Client)]
}
fn fast_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Nop),
        (target(), num64(), num64()).prop_map(|(target, addr, len)| Request::Munmap { target, addr, len }),
        (target(), num64(), num64(), 0u8..8).prop_map(|(target, addr, len, p)| Request::Mprotect {
            target,
            addr,
            len,
            prot: Prot::from_bits(p).unwrap()
        }),
    ]
}
fn fast_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        Just(Reply::Ok(Value::Unit)),
        num64().prop_map(|a| Reply::Ok(Value::Addr(a))),
        any::<u32>().prop_map(|i| Reply::Ok(Value::Id(i))),
        (0..Errno::ALL.len()).prop_map(|i| Reply::Err(Errno::ALL[i])),
    ]
}

/// What the general path (unpack, then postcard) makes of `words`.
fn general<T>(words: &[u64], decode: impl Fn(&[u8]) -> Result<T, mem_protocol::ProtocolError>) -> Result<T, mem_protocol::ProtocolError> {
    let mut bytes = [0u8; MAX_MESSAGE_BYTES];
    from_words(words, &mut bytes).and_then(decode)
}

/// postcard's bytes of a message, packed.
fn packed(bytes: &[u8]) -> Vec<u64> {
    let mut w = [0u64; IPC_BUFFER_WORDS];
    let n = to_words(bytes, &mut w).unwrap();
    w[..n].to_vec()
}

/// The ways a message can be almost right.
#[derive(Clone, Debug)]
enum Damage {
    None,
    Byte(usize, u8),
    Length(u64),
    Append(u8),
    /// Make the varint ending at the byte at this index non-canonical (an extra zero
    /// group), if it is one.
    Stretch(usize),
    Padding(u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::None),
        (0usize..32, any::<u8>()).prop_map(|(i, b)| Damage::Byte(i, b)),
        (0u64..40).prop_map(Damage::Length),
        any::<u8>().prop_map(Damage::Append),
        (0usize..32).prop_map(Damage::Stretch),
        (1u8..=255).prop_map(Damage::Padding),
    ]
}

/// `bytes` damaged, as packed words.
fn damaged(mut bytes: Vec<u8>, d: &Damage) -> Vec<u64> {
    match *d {
        Damage::None => {}
        Damage::Byte(i, b) => {
            let at = i % bytes.len().max(1);
            if let Some(x) = bytes.get_mut(at) {
                *x = b;
            }
        }
        Damage::Length(l) => {
            let mut w = packed(&bytes);
            w[0] = l;
            return w;
        }
        Damage::Append(b) => bytes.push(b),
        Damage::Stretch(i) => {
            let i = i % bytes.len().max(1);
            if bytes[i] & 0x80 == 0 {
                bytes[i] |= 0x80;
                bytes.insert(i + 1, 0);
            }
        }
        Damage::Padding(b) => {
            let mut w = packed(&bytes);
            let tail = bytes.len() % 8;
            if tail != 0 {
                let last = w.len() - 1;
                w[last] |= u64::from(b) << (8 * tail);
            }
            return w;
        }
    }
    packed(&bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8192))]

    #[test]
    fn fast_requests_are_postcards_bytes(req in fast_request(), d in damage()) {
        fast_is_postcard(&req, &d, encode_request, encode_request_words, decode_request_words, decode_request)?;
    }

    #[test]
    fn fast_replies_are_postcards_bytes(reply in fast_reply(), d in damage()) {
        let words = fast_is_postcard(&reply, &d, encode_reply, encode_reply_words, decode_reply_words, decode_reply)?;
        small_agrees(&words)?;
    }

    #[test]
    fn small_replies_agree_on_arbitrary_words(
        words in proptest::collection::vec(prop_oneof![0u64..300, any::<u64>()], 0..6)
    ) {
        small_agrees(&words)?;
    }
}

/// `value`'s words are postcard's bytes packed, and `value`'s bytes damaged by `d` decode
/// as the general path decodes them; the damaged words, for more checks.
fn fast_is_postcard<T: PartialEq + core::fmt::Debug>(
    value: &T,
    d: &Damage,
    encode: for<'a> fn(&T, &'a mut [u8]) -> Result<&'a mut [u8], ProtocolError>,
    encode_words: fn(&T, &mut [u64]) -> Result<usize, ProtocolError>,
    decode_words: fn(&[u64]) -> Result<T, ProtocolError>,
    decode: fn(&[u8]) -> Result<T, ProtocolError>,
) -> Result<Vec<u64>, TestCaseError> {
    let mut buf = [0u8; 64];
    let bytes = encode(value, &mut buf).unwrap().to_vec();
    let mut w = [u64::MAX; IPC_BUFFER_WORDS];
    let n = encode_words(value, &mut w).unwrap();
    prop_assert_eq!(&w[..n], &packed(&bytes)[..]);
    let words = damaged(bytes, d);
    prop_assert_eq!(decode_words(&words), general(&words, decode));
    Ok(words)
}

/// `decode_small_reply_words` answers only what the full decoder would, and the same.
fn small_agrees(words: &[u64]) -> Result<(), TestCaseError> {
    if let Some(small) = decode_small_reply_words(words) {
        let full = match small {
            Ok(SmallValue::Unit) => Reply::Ok(Value::Unit),
            Ok(SmallValue::Addr(a)) => Reply::Ok(Value::Addr(a)),
            Ok(SmallValue::Id(i)) => Reply::Ok(Value::Id(i)),
            Err(e) => Reply::Err(e),
        };
        prop_assert_eq!(Ok(full), general(words, decode_reply));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn every_fast_reply_is_small(reply in fast_reply()) {
        let mut w = [0u64; 8];
        let n = encode_reply_words(&reply, &mut w).unwrap();
        prop_assert!(decode_small_reply_words(&w[..n]).is_some());
    }
}

#[test]
fn every_errno_and_the_longest_fast_messages() {
    for e in Errno::ALL {
        let r = Reply::Err(e);
        let mut w = [0u64; 4];
        let n = encode_reply_words(&r, &mut w).unwrap();
        assert_eq!(decode_reply_words(&w[..n]), Ok(r));
        assert_eq!(general(&w[..n], decode_reply), Ok(r));
    }
    let req = Request::Mprotect { target: Target::Client(u32::MAX), addr: u64::MAX, len: u64::MAX, prot: Prot::RWX };
    let mut w = [0u64; 8];
    let n = encode_request_words(&req, &mut w).unwrap();
    assert_eq!(n, 1 + 4, "28 bytes");
    assert_eq!(decode_request_words(&w[..n]), Ok(req));
    // Too few words to hold it: an error, as the general path says, never a panic.
    let mut short = [0u64; 3];
    assert!(encode_request_words(&req, &mut short).is_err());
    assert_eq!(decode_request_words(&w[..n - 1]), general(&w[..n - 1], decode_request));
}
