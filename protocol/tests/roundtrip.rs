//! Round trips of every request and reply variant through bytes and message words.

mod common;

use std::collections::BTreeSet;

use mem_protocol::{
    decode_reply, decode_reply_words, decode_request, decode_request_words, encode_reply,
    encode_reply_words, encode_request, encode_request_words, from_words, message_words, to_words,
    Reply, Request, ShmCmd, Value, ValueKind, IPC_BUFFER_WORDS, MAX_MESSAGE_BYTES, MAX_REPLY_BYTES,
    MAX_REPLY_WORDS, MAX_REQUEST_BYTES, MAX_REQUEST_WORDS,
};

#[test]
fn every_request_round_trips_through_bytes() {
    for req in common::requests() {
        let mut buf = [0u8; MAX_REQUEST_BYTES];
        let bytes = encode_request(&req, &mut buf).unwrap();
        assert_eq!(decode_request(bytes), Ok(req), "{req:?} as {bytes:02x?}");
    }
}

#[test]
fn every_request_round_trips_through_words() {
    for req in common::requests() {
        let mut words = [u64::MAX; IPC_BUFFER_WORDS];
        let n = encode_request_words(&req, &mut words).unwrap();
        assert!(n <= MAX_REQUEST_WORDS);
        assert_eq!(decode_request_words(&words[..n]), Ok(req));
        // The whole message-register array may be passed: words past the message are ignored.
        assert_eq!(decode_request_words(&words), Ok(req));
    }
}

#[test]
fn every_reply_round_trips_through_bytes() {
    for reply in common::replies() {
        let mut buf = [0u8; MAX_REPLY_BYTES];
        let bytes = encode_reply(&reply, &mut buf).unwrap();
        assert_eq!(decode_reply(bytes), Ok(reply), "{reply:?} as {bytes:02x?}");
    }
}

#[test]
fn every_reply_round_trips_through_words() {
    for reply in common::replies() {
        let mut words = [u64::MAX; IPC_BUFFER_WORDS];
        let n = encode_reply_words(&reply, &mut words).unwrap();
        assert!(n <= MAX_REPLY_WORDS);
        assert_eq!(decode_reply_words(&words[..n]), Ok(reply));
        assert_eq!(decode_reply_words(&words), Ok(reply));
    }
}

#[test]
fn samples_cover_every_request_tag() {
    let mut tags = BTreeSet::new();
    for req in common::requests() {
        let mut buf = [0u8; MAX_REQUEST_BYTES];
        let bytes = encode_request(&req, &mut buf).unwrap();
        // Fewer than 128 variants: the tag is the first byte.
        assert_eq!(u32::from(bytes[0]), req.tag(), "{}", req.name());
        tags.insert(req.tag());
    }
    assert_eq!(tags, (0..Request::TAG_COUNT).collect::<BTreeSet<_>>());
    let extreme: BTreeSet<_> = common::extreme_requests()
        .iter()
        .map(Request::tag)
        .collect();
    assert_eq!(extreme.len(), Request::TAG_COUNT as usize);
}

#[test]
fn samples_cover_every_reply_tag_and_value_kind() {
    let mut tags = BTreeSet::new();
    let mut kinds = Vec::new();
    for reply in common::replies() {
        let mut buf = [0u8; MAX_REPLY_BYTES];
        let bytes = encode_reply(&reply, &mut buf).unwrap();
        assert_eq!(u32::from(bytes[0]), reply.tag());
        tags.insert(reply.tag());
        if let Reply::Ok(value) = reply {
            if !kinds.contains(&value.kind()) {
                kinds.push(value.kind());
            }
        }
    }
    assert_eq!(tags, (0..Reply::TAG_COUNT).collect::<BTreeSet<_>>());
    assert_eq!(kinds.len(), 9);
}

#[test]
fn names_are_distinct_and_reply_kinds_sensible() {
    let names: BTreeSet<_> = common::extreme_requests()
        .iter()
        .map(Request::name)
        .collect();
    assert_eq!(names.len(), Request::TAG_COUNT as usize);
    for req in common::requests() {
        let kind = req.reply_kind();
        match req {
            Request::Mmap { .. } | Request::Region { .. } | Request::ShmAt { .. } => {
                assert_eq!(kind, ValueKind::Addr)
            }
            Request::ShmCtl {
                cmd: ShmCmd::Stat, ..
            } => assert_eq!(kind, ValueKind::ShmStat),
            Request::ShmCtl { .. } | Request::Munmap { .. } => assert_eq!(kind, ValueKind::Unit),
            _ => {}
        }
    }
    assert_eq!(Value::Addr(5).addr(), Some(5));
    assert_eq!(Value::Id(5).id(), Some(5));
    assert_eq!(Value::Unit.addr(), None);
}

#[test]
fn word_packing_round_trips_every_length() {
    let data: Vec<u8> = (0..MAX_MESSAGE_BYTES)
        .map(|i| (i * 37 + 11) as u8)
        .collect();
    for len in 0..=MAX_MESSAGE_BYTES {
        let mut words = [0u64; IPC_BUFFER_WORDS];
        let n = to_words(&data[..len], &mut words).unwrap();
        assert_eq!(n, message_words(len));
        assert_eq!(words[0], len as u64);
        let mut out = [0u8; MAX_MESSAGE_BYTES];
        assert_eq!(from_words(&words[..n], &mut out).unwrap(), &data[..len]);
    }
    // Byte order is fixed (little-endian), independent of the host.
    let mut words = [0u64; 2];
    to_words(&[1, 2, 3], &mut words).unwrap();
    assert_eq!(words, [3, 0x03_02_01]);
}
