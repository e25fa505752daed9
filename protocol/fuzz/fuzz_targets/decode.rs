//! Fuzz target: decode the input as a request and as a reply (as bytes and as message
//! words); every success must re-encode to something that decodes to the same value.
//! Neighbours: `mem_protocol::codec` (under test); `tests/proptest_codec.rs` checks the same
//! property without libFuzzer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mem_protocol::{
    decode_reply, decode_reply_words, decode_request, decode_request_words, encode_reply,
    encode_request, IPC_BUFFER_WORDS, MAX_REPLY_BYTES, MAX_REQUEST_BYTES, WORD_BYTES,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode_request(data) {
        let mut buf = [0u8; MAX_REQUEST_BYTES];
        let bytes = encode_request(&request, &mut buf).expect("a decoded request encodes");
        assert_eq!(decode_request(bytes), Ok(request));
    }
    if let Ok(reply) = decode_reply(data) {
        let mut buf = [0u8; MAX_REPLY_BYTES];
        let bytes = encode_reply(&reply, &mut buf).expect("a decoded reply encodes");
        assert_eq!(decode_reply(bytes), Ok(reply));
    }

    // The same input read as message words (little-endian, trailing partial word dropped).
    let mut words = [0u64; IPC_BUFFER_WORDS];
    let mut n = 0;
    for (word, chunk) in words.iter_mut().zip(data.chunks_exact(WORD_BYTES)) {
        let mut le = [0u8; WORD_BYTES];
        le.copy_from_slice(chunk);
        *word = u64::from_le_bytes(le);
        n += 1;
    }
    if let Ok(request) = decode_request_words(&words[..n]) {
        let mut buf = [0u8; MAX_REQUEST_BYTES];
        let bytes = encode_request(&request, &mut buf).expect("a decoded request encodes");
        assert_eq!(decode_request(bytes), Ok(request));
    }
    if let Ok(reply) = decode_reply_words(&words[..n]) {
        let mut buf = [0u8; MAX_REPLY_BYTES];
        let bytes = encode_reply(&reply, &mut buf).expect("a decoded reply encodes");
        assert_eq!(decode_reply(bytes), Ok(reply));
    }
});
