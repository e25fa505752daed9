//! Size bounds, checked decoding (invalid bits fail) and every codec error path.

mod common;

use mem_protocol::{
    decode_reply, decode_request, decode_request_words, encode_reply, encode_request, from_words,
    to_words, MaxSize, MsyncFlags, Prot, ProtocolError, Reply, Request, Target, IPC_BUFFER_WORDS,
    MAX_MESSAGE_BYTES, MAX_REPLY_BYTES, MAX_REQUEST_BYTES,
};

fn request_bytes(req: &Request) -> Vec<u8> {
    let mut buf = [0u8; MAX_REQUEST_BYTES];
    encode_request(req, &mut buf).unwrap().to_vec()
}

fn reply_bytes(reply: &Reply) -> Vec<u8> {
    let mut buf = [0u8; MAX_REPLY_BYTES];
    encode_reply(reply, &mut buf).unwrap().to_vec()
}

#[test]
fn max_message_bytes_bounds_the_largest_encodings() {
    let (req_max, req) = common::requests()
        .iter()
        .map(|r| (request_bytes(r).len(), r.name()))
        .max()
        .unwrap();
    let reply_max = common::replies()
        .iter()
        .map(|r| reply_bytes(r).len())
        .max()
        .unwrap();
    println!(
        "largest request: {req_max} bytes ({req}), bound {}; largest reply: {reply_max} bytes, \
         bound {}; message limit {MAX_MESSAGE_BYTES}",
        Request::POSTCARD_MAX_SIZE,
        Reply::POSTCARD_MAX_SIZE,
    );
    // The samples reach the derived bound exactly, so the bound is tight and the samples
    // really are the worst case.
    assert_eq!(req_max, Request::POSTCARD_MAX_SIZE);
    assert_eq!(reply_max, Reply::POSTCARD_MAX_SIZE);
    assert!(req_max <= MAX_MESSAGE_BYTES && reply_max <= MAX_MESSAGE_BYTES);
    assert_eq!(MAX_MESSAGE_BYTES, 952);
    // And no extreme sample of any single variant exceeds the bound either.
    for req in common::extreme_requests() {
        assert!(request_bytes(&req).len() <= Request::POSTCARD_MAX_SIZE);
    }
}

#[test]
fn invalid_prot_bits_fail_to_decode() {
    for bits in 0..=u8::MAX {
        let valid = bits < 8;
        assert_eq!(Prot::from_bits(bits).is_some(), valid);
        assert_eq!(
            postcard::from_bytes::<Prot>(&[bits]).is_ok(),
            valid,
            "{bits}"
        );
        // Mprotect { Own, addr 0, len 0, prot }: the prot byte is last.
        let mut bytes = request_bytes(&Request::Mprotect {
            target: Target::Own,
            addr: 0,
            len: 0,
            prot: Prot::NONE,
        });
        *bytes.last_mut().unwrap() = bits;
        let decoded = decode_request(&bytes);
        if valid {
            assert!(matches!(decoded, Ok(Request::Mprotect { prot, .. }) if prot.bits() == bits));
        } else {
            assert_eq!(decoded, Err(ProtocolError::Malformed), "{bits}");
        }
    }
}

#[test]
fn invalid_msync_flags_fail_to_decode() {
    for bits in 0..=u8::MAX {
        let valid = bits < 8 && bits & 5 != 5;
        assert_eq!(MsyncFlags::from_bits(bits).is_some(), valid);
        let mut bytes = request_bytes(&Request::Msync {
            target: Target::Own,
            addr: 0,
            len: 0,
            flags: MsyncFlags::NONE,
        });
        *bytes.last_mut().unwrap() = bits;
        assert_eq!(decode_request(&bytes).is_ok(), valid, "{bits}");
    }
    assert_eq!(MsyncFlags::from_linux(-1), None);
    assert_eq!(MsyncFlags::from_linux(4), Some(MsyncFlags::SYNC));
    assert_eq!(MsyncFlags::ASYNC.union(MsyncFlags::SYNC), None);
}

#[test]
fn every_prefix_is_truncated_and_any_suffix_is_trailing() {
    for req in common::requests() {
        let bytes = request_bytes(&req);
        for cut in 0..bytes.len() {
            assert_eq!(decode_request(&bytes[..cut]), Err(ProtocolError::Truncated));
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_request(&longer), Err(ProtocolError::TrailingBytes));
    }
    for reply in common::replies() {
        let bytes = reply_bytes(&reply);
        for cut in 0..bytes.len() {
            assert_eq!(decode_reply(&bytes[..cut]), Err(ProtocolError::Truncated));
        }
    }
}

#[test]
fn encoding_into_a_short_buffer_fails_cleanly() {
    for req in common::extreme_requests() {
        let len = request_bytes(&req).len();
        for short in 0..len {
            let mut buf = vec![0u8; short];
            assert_eq!(
                encode_request(&req, &mut buf),
                Err(ProtocolError::BufferTooSmall)
            );
        }
    }
    let mut buf = [0u8; 4];
    let reply = Reply::Ok(mem_protocol::Value::Addr(u64::MAX));
    assert_eq!(
        encode_reply(&reply, &mut buf),
        Err(ProtocolError::BufferTooSmall)
    );
}

#[test]
fn unknown_and_malformed_tags_are_told_apart() {
    let unknown = Request::TAG_COUNT as u8;
    assert_eq!(
        decode_request(&[unknown]),
        Err(ProtocolError::UnknownRequest)
    );
    assert_eq!(
        decode_request(&[0xff, 0x01]),
        Err(ProtocolError::UnknownRequest)
    );
    assert_eq!(
        decode_reply(&[Reply::TAG_COUNT as u8]),
        Err(ProtocolError::UnknownReply)
    );
    assert_eq!(decode_request(&[]), Err(ProtocolError::Truncated));
    assert_eq!(decode_request(&[0x80]), Err(ProtocolError::Truncated));
    let overlong = [0x80, 0x80, 0x80, 0x80, 0x10];
    assert_eq!(decode_request(&overlong), Err(ProtocolError::Malformed));
    // A bad tag *inside* the message is malformed: Query { target: <tag 2>, addr: 0 }.
    assert_eq!(decode_request(&[7, 2, 0]), Err(ProtocolError::Malformed));
    // A bool other than 0/1: ShmAt { shmid 0, addr None, readonly 2 }.
    assert_eq!(
        decode_request(&[13, 0, 0, 2]),
        Err(ProtocolError::Malformed)
    );
    assert!(decode_request(&[13, 0, 0, 1]).is_ok());
    let huge = vec![0u8; MAX_MESSAGE_BYTES + 1];
    assert_eq!(decode_request(&huge), Err(ProtocolError::TooLarge));
    assert_eq!(decode_reply(&huge), Err(ProtocolError::TooLarge));
}

#[test]
fn word_framing_errors() {
    let mut out = [0u8; MAX_MESSAGE_BYTES];
    assert_eq!(from_words(&[], &mut out), Err(ProtocolError::Truncated));
    assert_eq!(from_words(&[0], &mut out), Ok(&[][..]));
    let too_long = MAX_MESSAGE_BYTES as u64 + 1;
    assert_eq!(
        from_words(&[too_long], &mut out),
        Err(ProtocolError::TooLarge)
    );
    assert_eq!(
        from_words(&[u64::MAX, 0], &mut out),
        Err(ProtocolError::TooLarge)
    );
    assert_eq!(from_words(&[9, 0], &mut out), Err(ProtocolError::Truncated));
    assert_eq!(
        from_words(&[2, 0x01_0000], &mut out),
        Err(ProtocolError::Malformed)
    );
    assert_eq!(from_words(&[2, 0x0201], &mut out), Ok(&[1, 2][..]));
    assert_eq!(
        from_words(&[2, 0x0201], &mut [0u8; 1]),
        Err(ProtocolError::BufferTooSmall)
    );

    let mut words = [0u64; IPC_BUFFER_WORDS + 1];
    let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
    assert_eq!(to_words(&big, &mut words), Err(ProtocolError::TooLarge));
    assert_eq!(
        to_words(&[1; 9], &mut [0u64; 2]),
        Err(ProtocolError::BufferTooSmall)
    );
    assert_eq!(
        to_words(&big[..MAX_MESSAGE_BYTES], &mut words),
        Ok(IPC_BUFFER_WORDS)
    );
    // A framed message that is not a request.
    assert_eq!(decode_request_words(&[0]), Err(ProtocolError::Truncated));
}

#[test]
fn boot_records_fit_their_pages() {
    use mem_protocol::system::*;
    let mut untypeds = heapless::Vec::new();
    for i in 0..MAX_UNTYPEDS {
        untypeds.push(UntypedInfo { slot: u32::MAX - i as u32, paddr: u64::MAX, size_bits: 47, device: i % 2 == 0 }).unwrap();
    }
    let boot = ServerBoot { untypeds, first_free_slot: u32::MAX, user_top: u64::MAX, default_quota: u64::MAX, seed: u64::MAX };
    let mut page = [0u8; 4096];
    let used = postcard::to_slice(&boot, &mut page).unwrap().len();
    assert!(used < 4096, "{used}");
    let back: ServerBoot = postcard::from_bytes(&page).unwrap();
    assert_eq!(back, boot);
    const { assert!(ClientBoot::POSTCARD_MAX_SIZE < 4096) };
    const { assert!(SharedLayout::DATA + SharedLayout::DATA_LEN == SharedLayout::PAGES * 4096) };
    assert!(u64::from(MAX_BADGES) * BUFFER_STRIDE <= 0x1000_0000);
}
