//! Representative values of every request and reply variant, shared by the integration
//! tests. Covers every variant of every nested enum, zero and extreme field values, so that
//! the largest encodings here are the largest possible ones.
#![allow(dead_code)] // each test binary uses a different subset

use mem_protocol::{
    Backing, BufRef, Errno, MsyncFlags, PageSize, Placement, Prot, ProtocolError, QueryInfo, Reply,
    Request, Share, ShmCmd, ShmKey, ShmStat, Stats, Target, Value,
};

pub const TARGETS: [Target; 4] = [
    Target::Own,
    Target::Client(0),
    Target::Client(1),
    Target::Client(u32::MAX),
];
pub const PLACEMENTS: [Placement; 4] = [
    Placement::Anywhere,
    Placement::Hint,
    Placement::Fixed,
    Placement::FixedNoReplace,
];
pub const ADDRS: [u64; 5] = [0, 0x1000, 0x7fff_ffff_f000, u64::MAX - 0xfff, u64::MAX];

pub fn prots() -> Vec<Prot> {
    (0..8).map(|b| Prot::from_bits(b).unwrap()).collect()
}

pub fn msync_flags() -> Vec<MsyncFlags> {
    (0..8).filter_map(MsyncFlags::from_bits).collect()
}

/// Every request variant with every nested variant, plus the all-maximum form of each.
pub fn requests() -> Vec<Request> {
    let mut v = Vec::new();
    for (i, &target) in TARGETS.iter().enumerate() {
        let addr = ADDRS[i % ADDRS.len()];
        let len = ADDRS[(i + 2) % ADDRS.len()];
        v.push(Request::Munmap { target, addr, len });
        v.push(Request::Query { target, addr });
        v.push(Request::Populate { target, addr, len });
        v.push(Request::Reset { target });
        v.push(Request::Stats { target });
        v.push(Request::Clone {
            source: target,
            child: i as u32,
            quota_pages: len,
        });
    }
    for (i, prot) in prots().into_iter().enumerate() {
        let target = TARGETS[i % TARGETS.len()];
        let addr = ADDRS[i % ADDRS.len()];
        v.push(Request::Mprotect {
            target,
            addr,
            len: 4096,
            prot,
        });
        v.push(Request::Region {
            target,
            addr,
            len: u64::MAX,
            prot,
            data: if i % 2 == 0 {
                None
            } else {
                Some(BufRef::new(i as u32, u32::MAX))
            },
        });
        for (j, &placement) in PLACEMENTS.iter().enumerate() {
            v.push(Request::Mmap {
                target,
                addr,
                len: 8192,
                prot,
                max_prot: Prot::RWX,
                placement,
                share: if j % 2 == 0 {
                    Share::Private
                } else {
                    Share::Shared
                },
                backing: if j < 2 {
                    Backing::Anonymous
                } else {
                    Backing::Backend {
                        id: j as u32,
                        offset: addr,
                    }
                },
                populate: j % 3 == 0,
            });
            v.push(Request::MapPhys {
                target,
                addr,
                placement,
                paddr: ADDRS[j],
                len: 4096,
                prot,
            });
        }
    }
    for (i, flags) in msync_flags().into_iter().enumerate() {
        v.push(Request::Msync {
            target: TARGETS[i % TARGETS.len()],
            addr: ADDRS[i % ADDRS.len()],
            len: 1,
            flags,
        });
    }
    for key in [
        ShmKey::Private,
        ShmKey::Key(0),
        ShmKey::Key(0x1234),
        ShmKey::Key(u32::MAX),
    ] {
        for (create, exclusive) in [(false, false), (true, false), (true, true)] {
            v.push(Request::ShmGet {
                key,
                size: 4096,
                create,
                exclusive,
                mode: 0o640,
            });
        }
    }
    for cmd in [
        ShmCmd::Stat,
        ShmCmd::Remove,
        ShmCmd::Set {
            uid: 1000,
            gid: 100,
            mode: 0o600,
        },
    ] {
        v.push(Request::ShmCtl { shmid: 7, cmd });
    }
    for addr in [None, Some(0), Some(0x4000_0000)] {
        v.push(Request::ShmAt {
            shmid: 3,
            addr,
            readonly: addr.is_some(),
        });
    }
    v.extend([
        Request::CreateSpace {
            client: 0,
            uid: 0,
            gid: 0,
            quota_pages: 0,
        },
        Request::DestroySpace { client: 0 },
        Request::ShmDt { addr: 0x4000_0000 },
        Request::BackendCreate { size: 0, mode: 0o600 },
        Request::TakeNote,
        Request::Nop,
        Request::PagerCreate { mode: 0o600 },
        Request::PagerWait { id: 0 },
        Request::PagerReply { token: 1, answer: mem_protocol::PagerAnswer::Copy(BufRef::new(16, 4096)) },
        Request::PagerReply { token: 2, answer: mem_protocol::PagerAnswer::Zero },
        Request::PagerReply { token: 3, answer: mem_protocol::PagerAnswer::Fail },
        Request::Layout { target: Target::Own, from: 0, buf: BufRef::new(16, 4096) },
        Request::BackendWrite {
            id: 0,
            offset: 0,
            buf: BufRef::new(0, 0),
        },
        Request::BackendRead {
            id: 1,
            offset: 4096,
            buf: BufRef::new(16, 4096),
        },
        Request::BackendDestroy { id: 0 },
        Request::ExportFrame { target: Target::Client(3), addr: 0x7000_0000 },
    ]);
    v.extend(extreme_requests());
    v
}

/// Every request variant with every field at its largest encoding.
pub fn extreme_requests() -> Vec<Request> {
    let t = Target::Client(u32::MAX);
    let (a, m) = (u64::MAX, u32::MAX);
    let buf = BufRef::new(m, m);
    vec![
        Request::CreateSpace {
            client: m,
            uid: m,
            gid: m,
            quota_pages: a,
        },
        Request::DestroySpace { client: m },
        Request::Region {
            target: t,
            addr: a,
            len: a,
            prot: Prot::RWX,
            data: Some(buf),
        },
        Request::Mmap {
            target: t,
            addr: a,
            len: a,
            prot: Prot::RWX,
            max_prot: Prot::RWX,
            placement: Placement::FixedNoReplace,
            share: Share::Shared,
            backing: Backing::Backend { id: m, offset: a },
            populate: true,
        },
        Request::Munmap {
            target: t,
            addr: a,
            len: a,
        },
        Request::Mprotect {
            target: t,
            addr: a,
            len: a,
            prot: Prot::RWX,
        },
        Request::Msync {
            target: t,
            addr: a,
            len: a,
            flags: MsyncFlags::SYNC.union(MsyncFlags::INVALIDATE).unwrap(),
        },
        Request::Query { target: t, addr: a },
        Request::MapPhys {
            target: t,
            addr: a,
            placement: Placement::FixedNoReplace,
            paddr: a,
            len: a,
            prot: Prot::RWX,
        },
        Request::Populate {
            target: t,
            addr: a,
            len: a,
        },
        Request::Reset { target: t },
        Request::Clone {
            source: t,
            child: m,
            quota_pages: a,
        },
        Request::ShmGet {
            key: ShmKey::Key(m),
            size: a,
            create: true,
            exclusive: true,
            mode: u16::MAX,
        },
        Request::ShmAt {
            shmid: m,
            addr: Some(a),
            readonly: true,
        },
        Request::ShmDt { addr: a },
        Request::ShmCtl {
            shmid: m,
            cmd: ShmCmd::Set {
                uid: m,
                gid: m,
                mode: u16::MAX,
            },
        },
        Request::BackendCreate { size: a, mode: u16::MAX },
        Request::BackendWrite {
            id: m,
            offset: a,
            buf,
        },
        Request::BackendRead {
            id: m,
            offset: a,
            buf,
        },
        Request::BackendDestroy { id: m },
        Request::Stats { target: t },
        Request::ExportFrame { target: t, addr: a },
        Request::TakeNote,
        Request::Nop,
        Request::PagerCreate { mode: u16::MAX },
        Request::PagerWait { id: m },
        Request::PagerReply { token: m, answer: mem_protocol::PagerAnswer::Copy(buf) },
        Request::Layout { target: t, from: a, buf },
    ]
}

pub fn query_infos() -> Vec<QueryInfo> {
    let mut v = Vec::new();
    for (i, prot) in prots().into_iter().enumerate() {
        for page_size in [PageSize::Small, PageSize::Large] {
            v.push(QueryInfo {
                vaddr: ADDRS[i % ADDRS.len()],
                paddr: ADDRS[(i + 1) % ADDRS.len()],
                prot,
                page_size,
                shared: i % 2 == 0,
                cow: i % 3 == 0,
            });
        }
    }
    v
}

pub fn shm_stats() -> Vec<ShmStat> {
    let typical = ShmStat {
        key: Some(0x1234),
        size: 8192,
        uid: 1000,
        gid: 100,
        cuid: 1000,
        cgid: 100,
        mode: 0o640,
        nattch: 2,
        removed: false,
        cpid: 4,
        lpid: 5,
    };
    let m = u32::MAX;
    let extreme = ShmStat {
        key: Some(m),
        size: u64::MAX,
        uid: m,
        gid: m,
        cuid: m,
        cgid: m,
        mode: u16::MAX,
        nattch: m,
        removed: true,
        cpid: m,
        lpid: m,
    };
    vec![ShmStat::default(), typical, extreme]
}

pub fn stats() -> Vec<Stats> {
    let counting = Stats {
        frames_in_use: 1,
        frames_free: 2,
        slots_in_use: 3,
        slots_free: 4,
        areas: 5,
        faults_served: 6,
        faults_unresolved: 7,
        charged_pages: 8,
        quota_pages: 9,
        spaces: 10,
        shm_segments: 11,
        meta_bytes: 12,
        meta_limit: 13,
        slots_charged: 14,
        slot_limit: 15,
        pinned: 16,
        pager_pending: 17,
    };
    let a = u64::MAX;
    let extreme = Stats {
        frames_in_use: a,
        frames_free: a,
        slots_in_use: a,
        slots_free: a,
        areas: a,
        faults_served: a,
        faults_unresolved: a,
        charged_pages: a,
        quota_pages: a,
        spaces: a,
        shm_segments: a,
        meta_bytes: a,
        meta_limit: a,
        slots_charged: a,
        slot_limit: a,
        pinned: a,
        pager_pending: a,
    };
    vec![Stats::default(), counting, extreme]
}

/// Every reply variant with every nested variant, including extreme payloads.
pub fn replies() -> Vec<Reply> {
    let mut v = vec![Reply::Ok(Value::Unit)];
    for a in ADDRS {
        v.push(Reply::Ok(Value::Addr(a)));
    }
    for id in [0, 1, 0x7f, 0x80, u32::MAX] {
        v.push(Reply::Ok(Value::Id(id)));
    }
    v.extend(
        query_infos()
            .into_iter()
            .map(|q| Reply::Ok(Value::Query(q))),
    );
    v.extend(
        shm_stats()
            .into_iter()
            .map(|s| Reply::Ok(Value::ShmStat(s))),
    );
    v.extend(stats().into_iter().map(|s| Reply::Ok(Value::Stats(s))));
    v.push(Reply::Ok(Value::Note(None)));
    v.push(Reply::Ok(Value::Note(Some(mem_protocol::FaultNote { client: 3, addr: 0x1000, reason: 1, count: 1 }))));
    v.push(Reply::Ok(Value::Note(Some(mem_protocol::FaultNote { client: u32::MAX, addr: u64::MAX, reason: u8::MAX, count: u32::MAX }))));
    for (token, offset) in [(0, 0), (u32::MAX, u64::MAX)] {
        v.push(Reply::Ok(Value::PagerFault(mem_protocol::PagerFault {
            token,
            pager: token,
            client: token,
            offset,
            access: mem_protocol::Access::Exec,
        })));
    }
    v.push(Reply::Ok(Value::Layout(mem_protocol::LayoutInfo::default())));
    v.push(Reply::Ok(Value::Layout(mem_protocol::LayoutInfo { max_va: u64::MAX, areas: u64::MAX, written: u32::MAX, next: u64::MAX })));
    v.extend(Errno::ALL.into_iter().map(Reply::Err));
    v.extend(ProtocolError::ALL.into_iter().map(Reply::Protocol));
    v
}
