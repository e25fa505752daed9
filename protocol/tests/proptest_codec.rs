//! Property tests: decoding arbitrary input never panics, and whatever decodes re-encodes
//! to something that decodes equal; arbitrary well-formed values round-trip.

use mem_protocol::{
    decode_reply, decode_reply_words, decode_request, decode_request_words, encode_reply,
    encode_reply_words, encode_request, encode_request_words, Backing, BufRef, Errno, MsyncFlags,
    PageSize, Placement, Prot, ProtocolError, QueryInfo, Reply, Request, Share, ShmCmd, ShmKey,
    ShmStat, Stats, Target, Value, IPC_BUFFER_WORDS, MAX_MESSAGE_BYTES, MAX_REPLY_BYTES,
    MAX_REQUEST_BYTES, from_words, to_words,
};
use proptest::prelude::*;

/// Numbers biased towards the edges, where varint encodings change length.
fn num64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(u64::MAX), 0..0x4000u64, any::<u64>()]
}
fn num32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(u32::MAX), 0..0x4000u32, any::<u32>()]
}
fn target() -> impl Strategy<Value = Target> {
    prop_oneof![Just(Target::Own), num32().prop_map(Target::Client)]
}
fn prot() -> impl Strategy<Value = Prot> {
    (0u8..8).prop_map(|b| Prot::from_bits(b).unwrap())
}
fn placement() -> impl Strategy<Value = Placement> {
    prop_oneof![
        Just(Placement::Anywhere),
        Just(Placement::Hint),
        Just(Placement::Fixed),
        Just(Placement::FixedNoReplace),
    ]
}
fn buf() -> impl Strategy<Value = BufRef> {
    (num32(), num32()).prop_map(|(o, l)| BufRef::new(o, l))
}
fn backing() -> impl Strategy<Value = Backing> {
    prop_oneof![
        Just(Backing::Anonymous),
        (num32(), num64()).prop_map(|(id, offset)| Backing::Backend { id, offset }),
        num32().prop_map(|id| Backing::Pager { id }),
    ]
}
fn shm_cmd() -> impl Strategy<Value = ShmCmd> {
    prop_oneof![
        Just(ShmCmd::Stat),
        Just(ShmCmd::Remove),
        (num32(), num32(), any::<u16>()).prop_map(|(uid, gid, mode)| ShmCmd::Set {
            uid,
            gid,
            mode
        }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let (t, a, n) = (target, num64, num32);
    prop_oneof![
        (n(), n(), n(), a()).prop_map(|(client, uid, gid, quota_pages)| Request::CreateSpace {
            client,
            uid,
            gid,
            quota_pages
        }),
        n().prop_map(|client| Request::DestroySpace { client }),
        (t(), a(), a(), prot(), proptest::option::of(buf())).prop_map(
            |(target, addr, len, prot, data)| Request::Region {
                target,
                addr,
                len,
                prot,
                data
            }
        ),
        (
            t(),
            a(),
            a(),
            prot(),
            prot(),
            placement(),
            any::<bool>(),
            backing(),
            any::<bool>()
        )
            .prop_map(
                |(target, addr, len, prot, max_prot, placement, shared, backing, populate)| {
                    let share = if shared {
                        Share::Shared
                    } else {
                        Share::Private
                    };
                    Request::Mmap {
                        target,
                        addr,
                        len,
                        prot,
                        max_prot,
                        placement,
                        share,
                        backing,
                        populate,
                    }
                }
            ),
        (t(), a(), a()).prop_map(|(target, addr, len)| Request::Munmap { target, addr, len }),
        (t(), a(), a(), prot()).prop_map(|(target, addr, len, prot)| Request::Mprotect {
            target,
            addr,
            len,
            prot
        }),
        (
            t(),
            a(),
            a(),
            (0u8..8).prop_filter_map("valid", MsyncFlags::from_bits)
        )
            .prop_map(|(target, addr, len, flags)| Request::Msync {
                target,
                addr,
                len,
                flags
            }),
        (t(), a()).prop_map(|(target, addr)| Request::Query { target, addr }),
        (t(), a(), placement(), a(), a(), prot()).prop_map(
            |(target, addr, placement, paddr, len, prot)| Request::MapPhys {
                target,
                addr,
                placement,
                paddr,
                len,
                prot
            }
        ),
        (t(), a(), a()).prop_map(|(target, addr, len)| Request::Populate { target, addr, len }),
        t().prop_map(|target| Request::Reset { target }),
        (t(), n(), a()).prop_map(|(source, child, quota_pages)| Request::Clone {
            source,
            child,
            quota_pages
        }),
        (
            proptest::option::of(n()),
            a(),
            any::<bool>(),
            any::<bool>(),
            any::<u16>()
        )
            .prop_map(|(key, size, create, exclusive, mode)| Request::ShmGet {
                key: key.map_or(ShmKey::Private, ShmKey::Key),
                size,
                create,
                exclusive,
                mode
            }),
        (n(), proptest::option::of(a()), any::<bool>()).prop_map(|(shmid, addr, readonly)| {
            Request::ShmAt {
                shmid,
                addr,
                readonly,
            }
        }),
        a().prop_map(|addr| Request::ShmDt { addr }),
        (n(), shm_cmd()).prop_map(|(shmid, cmd)| Request::ShmCtl { shmid, cmd }),
        (a(), any::<u16>()).prop_map(|(size, mode)| Request::BackendCreate { size, mode }),
        (n(), a(), buf()).prop_map(|(id, offset, buf)| Request::BackendWrite { id, offset, buf }),
        (n(), a(), buf()).prop_map(|(id, offset, buf)| Request::BackendRead { id, offset, buf }),
        n().prop_map(|id| Request::BackendDestroy { id }),
        t().prop_map(|target| Request::Stats { target }),
        (t(), a()).prop_map(|(target, addr)| Request::ExportFrame { target, addr }),
        any::<u16>().prop_map(|mode| Request::PagerCreate { mode }),
        n().prop_map(|id| Request::PagerWait { id }),
        (n(), prop_oneof![
            buf().prop_map(mem_protocol::PagerAnswer::Copy),
            Just(mem_protocol::PagerAnswer::Zero),
            Just(mem_protocol::PagerAnswer::Fail),
        ])
            .prop_map(|(token, answer)| Request::PagerReply { token, answer }),
        (t(), a(), buf()).prop_map(|(target, from, buf)| Request::Layout { target, from, buf }),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let (a, n) = (num64, num32);
    prop_oneof![
        Just(Value::Unit),
        a().prop_map(Value::Addr),
        n().prop_map(Value::Id),
        (
            a(),
            a(),
            prot(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(vaddr, paddr, prot, large, shared, cow)| {
                let page_size = if large {
                    PageSize::Large
                } else {
                    PageSize::Small
                };
                Value::Query(QueryInfo {
                    vaddr,
                    paddr,
                    prot,
                    page_size,
                    shared,
                    cow,
                })
            }),
        (
            proptest::option::of(n()),
            a(),
            [n(), n(), n(), n(), n(), n(), n()],
            any::<u16>(),
            any::<bool>()
        )
            .prop_map(
                |(key, size, [uid, gid, cuid, cgid, nattch, cpid, lpid], mode, removed)| {
                    Value::ShmStat(ShmStat {
                        key,
                        size,
                        uid,
                        gid,
                        cuid,
                        cgid,
                        mode,
                        nattch,
                        removed,
                        cpid,
                        lpid,
                    })
                }
            ),
        (num32(), a(), any::<u8>(), num32()).prop_map(|(client, addr, reason, count)| Value::Note(
            Some(mem_protocol::FaultNote { client, addr, reason, count })
        )),
        Just(Value::Note(None)),
        (n(), n(), n(), a(), 0u8..3).prop_map(|(token, pager, client, offset, k)| Value::PagerFault(
            mem_protocol::PagerFault {
                token,
                pager,
                client,
                offset,
                access: [mem_protocol::Access::Read, mem_protocol::Access::Write, mem_protocol::Access::Exec][k as usize],
            }
        )),
        (a(), a(), n(), a()).prop_map(|(max_va, areas, written, next)| Value::Layout(
            mem_protocol::LayoutInfo { max_va, areas, written, next }
        )),
        proptest::collection::vec(a(), 17).prop_map(|s| Value::Stats(Stats {
            frames_in_use: s[0],
            frames_free: s[1],
            slots_in_use: s[2],
            slots_free: s[3],
            areas: s[4],
            faults_served: s[5],
            faults_unresolved: s[6],
            charged_pages: s[7],
            quota_pages: s[8],
            spaces: s[9],
            shm_segments: s[10],
            meta_bytes: s[11],
            meta_limit: s[12],
            slots_charged: s[13],
            slot_limit: s[14],
            pinned: s[15],
            pager_pending: s[16],
        })),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        value().prop_map(Reply::Ok),
        proptest::sample::select(Errno::ALL.to_vec()).prop_map(Reply::Err),
        proptest::sample::select(ProtocolError::ALL.to_vec()).prop_map(Reply::Protocol),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic_and_successes_are_stable(
        bytes in proptest::collection::vec(any::<u8>(), 0..=MAX_MESSAGE_BYTES + 8)
    ) {
        if let Ok(req) = decode_request(&bytes) {
            let mut buf = [0u8; MAX_REQUEST_BYTES];
            let again = encode_request(&req, &mut buf).unwrap();
            prop_assert!(again.len() <= bytes.len());
            prop_assert_eq!(decode_request(again), Ok(req));
        }
        if let Ok(reply) = decode_reply(&bytes) {
            let mut buf = [0u8; MAX_REPLY_BYTES];
            let again = encode_reply(&reply, &mut buf).unwrap();
            prop_assert!(again.len() <= bytes.len());
            prop_assert_eq!(decode_reply(again), Ok(reply));
        }
    }

    #[test]
    fn plausible_bytes_never_panic(
        tag in 0u8..32,
        rest in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xff), any::<u8>()], 0..64)
    ) {
        // Start with a known tag so the bodies, not just the tags, get exercised.
        let mut bytes = vec![tag];
        bytes.extend(rest);
        if let Ok(req) = decode_request(&bytes) {
            let mut buf = [0u8; MAX_REQUEST_BYTES];
            prop_assert_eq!(decode_request(encode_request(&req, &mut buf).unwrap()), Ok(req));
        }
        if let Ok(reply) = decode_reply(&bytes) {
            let mut buf = [0u8; MAX_REPLY_BYTES];
            prop_assert_eq!(decode_reply(encode_reply(&reply, &mut buf).unwrap()), Ok(reply));
        }
    }

    #[test]
    fn arbitrary_words_never_panic(
        words in proptest::collection::vec(
            prop_oneof![0u64..200, any::<u64>()], 0..=IPC_BUFFER_WORDS + 2)
    ) {
        // In place (the words viewed as bytes) and unpacked first (`from_words`) agree on
        // every input, errors included.
        let mut unpacked = [0u8; MAX_MESSAGE_BYTES];
        let via_bytes = from_words(&words, &mut unpacked).map(|b| b.to_vec());
        prop_assert_eq!(decode_request_words(&words), via_bytes.clone().and_then(|b| decode_request(&b)));
        prop_assert_eq!(decode_reply_words(&words), via_bytes.and_then(|b| decode_reply(&b)));
        if let Ok(req) = decode_request_words(&words) {
            let mut out = [0u64; IPC_BUFFER_WORDS];
            let n = encode_request_words(&req, &mut out).unwrap();
            prop_assert_eq!(decode_request_words(&out[..n]), Ok(req));
        }
        if let Ok(reply) = decode_reply_words(&words) {
            let mut out = [0u64; IPC_BUFFER_WORDS];
            let n = encode_reply_words(&reply, &mut out).unwrap();
            prop_assert_eq!(decode_reply_words(&out[..n]), Ok(reply));
        }
    }

    #[test]
    fn arbitrary_requests_round_trip(req in request()) {
        // Encoding in place over stale message registers gives exactly the packed bytes.
        let mut words = [u64::MAX; IPC_BUFFER_WORDS];
        let n = encode_request_words(&req, &mut words).unwrap();
        prop_assert_eq!(decode_request_words(&words[..n]), Ok(req));
        let mut buf = [0u8; MAX_REQUEST_BYTES];
        let bytes = encode_request(&req, &mut buf).unwrap();
        let mut packed = [0u64; IPC_BUFFER_WORDS];
        let m = to_words(bytes, &mut packed).unwrap();
        prop_assert_eq!(&words[..n], &packed[..m]);
        prop_assert_eq!(u32::from(bytes[0]), req.tag());
        prop_assert_eq!(decode_request(bytes), Ok(req));
    }

    #[test]
    fn arbitrary_replies_round_trip(reply in reply()) {
        let mut words = [u64::MAX; IPC_BUFFER_WORDS];
        let n = encode_reply_words(&reply, &mut words).unwrap();
        prop_assert_eq!(decode_reply_words(&words[..n]), Ok(reply));
        let mut buf = [0u8; MAX_REPLY_BYTES];
        let mut packed = [0u64; IPC_BUFFER_WORDS];
        let m = to_words(encode_reply(&reply, &mut buf).unwrap(), &mut packed).unwrap();
        prop_assert_eq!(&words[..n], &packed[..m]);
        prop_assert_eq!(decode_reply(encode_reply(&reply, &mut buf).unwrap()), Ok(reply));
    }
}
