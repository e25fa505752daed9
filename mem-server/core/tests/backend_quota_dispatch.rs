//! Backend mappings and msync, quotas, and request dispatch through the protocol.
mod common;
use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Errno, Prot, Unresolved};
use mem_protocol::{
    decode_reply, decode_request, encode_reply, encode_request, Backing, BufRef, MsyncFlags, Placement, Reply, Request,
    Share, Target, Value,
};

const MB: u64 = 1 << 20;

fn backend_map(id: u32, len: u64, shared: bool) -> MmapArgs {
    let mut m = MmapArgs::anon(len, Prot::RW);
    m.backing = Backing::Backend { id, offset: 0 };
    m.shared = shared;
    m
}

#[test]
fn msync_writes_changed_bytes_back_to_the_backend() {
    let mut h = H::new(64 * MB);
    h.client(1, 1000, 1000, 1 << 20);
    h.client(2, 1001, 1000, 1 << 20);
    h.client(3, 2000, 2000, 1 << 20);
    let id = h.core.backend_create(1, 4 * 4096, 0o664).unwrap();
    h.core.backend_write(1, id, 4096 + 5, b"on disk").unwrap();
    let a = h.core.mmap(1, &backend_map(id, 4 * 4096, true)).unwrap();
    assert_eq!(h.read(1, a + 4096 + 5, 7).unwrap(), b"on disk", "cache filled from the store");
    h.write(1, a + 4096 + 5, b"CHANGED").unwrap();
    h.write(1, a + 3 * 4096, b"tail").unwrap();
    let mut buf = [0u8; 7];
    h.core.backend_read(1, id, 4096 + 5, &mut buf).unwrap();
    assert_eq!(&buf, b"on disk", "not written back before msync");
    // Another shared mapping sees the change at once (same cache pages).
    let b = h.core.mmap(2, &backend_map(id, 4 * 4096, true)).unwrap();
    assert_eq!(h.read(2, b + 4096 + 5, 7).unwrap(), b"CHANGED");
    h.core.msync(1, a, 4 * 4096, MsyncFlags::SYNC).unwrap();
    h.core.backend_read(2, id, 4096 + 5, &mut buf).unwrap();
    assert_eq!(&buf, b"CHANGED");
    let mut t = [0u8; 4];
    h.core.backend_read(1, id, 3 * 4096, &mut t).unwrap();
    assert_eq!(&t, b"tail");
    // Private mappings copy; their writes never reach the backend.
    let p = h.core.mmap(2, &backend_map(id, 4 * 4096, false)).unwrap();
    assert_eq!(h.read(2, p + 4096 + 5, 7).unwrap(), b"CHANGED");
    h.write(2, p + 4096 + 5, b"private").unwrap();
    h.core.msync(2, p, 4 * 4096, MsyncFlags::SYNC).unwrap();
    h.core.backend_read(1, id, 4096 + 5, &mut buf).unwrap();
    assert_eq!(&buf, b"CHANGED");
    assert_eq!(h.read(1, a + 4096 + 5, 7).unwrap(), b"CHANGED");
    h.check();
    // Errors.
    assert_eq!(h.core.msync(1, a + 1, 4096, MsyncFlags::SYNC), Err(Errno::Inval));
    assert_eq!(h.core.msync(1, 0x7000_0000, 4096, MsyncFlags::SYNC), Err(Errno::NoMem));
    assert_eq!(h.core.backend_write(3, id, 0, b"x"), Err(Errno::Acces), "others may not write (mode 0664)");
    assert_eq!(h.core.backend_write(1, id, 4 * 4096 - 1, b"xy"), Err(Errno::Overflow));
    let mut big = backend_map(id, 8 * 4096, true);
    big.backing = Backing::Backend { id, offset: 0 };
    assert_eq!(h.core.mmap(1, &big), Err(Errno::Overflow), "past the backend's end");
    assert_eq!(h.core.mmap(1, &backend_map(99, 4096, true)), Err(Errno::NoEnt));
    // Destroying the backend keeps live mappings working; everything goes with them.
    h.core.backend_destroy(1, id).unwrap();
    assert_eq!(h.read(2, b + 4096 + 5, 7).unwrap(), b"CHANGED");
    h.core.destroy_space(1).unwrap();
    h.core.destroy_space(2).unwrap();
    h.core.destroy_space(3).unwrap();
    assert_eq!(h.frames_in_use(), 0, "cache and store freed with the last mapping");
}

#[test]
fn quota_exhaustion_is_enomem_and_isolated() {
    let mut h = H::with(mem_model::ModelConfig::riscv64(64 * MB), |c| c.large_pages = false);
    h.client(1, 0, 0, 40);
    h.client(2, 0, 0, 1 << 20);
    let a = h.core.mmap(1, &MmapArgs::anon(100 * 4096, Prot::RW)).unwrap();
    let mut touched = 0;
    for i in 0..100 {
        match h.write_u64(1, a + i * 4096, i) {
            Ok(()) => touched += 1,
            Err(e) => {
                assert_eq!(e, Unresolved::NoMemory);
                break;
            }
        }
    }
    let s = h.core.stats(Some(1)).unwrap();
    assert!(touched > 30 && touched < 40, "touched {touched}");
    assert!(s.charged_pages <= 40, "charge {} within quota", s.charged_pages);
    assert_eq!(h.core.populate(1, a, 100 * 4096), Err(Errno::NoMem));
    assert_eq!(h.core.region(1, 0x900_0000, 50 * 4096, Prot::READ, &[1u8; 50 * 4096]), Err(Errno::NoMem));
    assert_eq!(h.core.layout(1).unwrap().len(), 1, "failed region removed again");
    // The other client is unaffected.
    let b = h.core.mmap(2, &MmapArgs::anon(200 * 4096, Prot::RW)).unwrap();
    for i in 0..200 {
        h.write_u64(2, b + i * 4096, i).unwrap();
    }
    // Freeing memory lets the first client continue.
    h.core.munmap(1, a, 10 * 4096).unwrap();
    h.write_u64(1, a + 50 * 4096, 1).unwrap();
    h.check();
}

#[test]
fn untyped_exhaustion_is_enomem_not_a_panic() {
    let mut h = H::with(mem_model::ModelConfig::riscv64(4 * MB), |c| c.large_pages = false);
    h.client(1, 0, 0, u64::MAX);
    let a = h.core.mmap(1, &MmapArgs::anon(2048 * 4096, Prot::RW)).unwrap();
    let mut ok = 0u64;
    let mut failed = false;
    for i in 0..2048 {
        if h.write_u64(1, a + i * 4096, i).is_err() {
            failed = true;
            break;
        }
        ok += 1;
    }
    assert!(failed && ok > 500, "ran out after {ok} pages");
    h.core.munmap(1, a, 4096 * 100).unwrap();
    h.write_u64(1, a + ok * 4096, 1).unwrap();
    assert_eq!(h.read_u64(1, a + ok * 4096).unwrap(), 1, "freed frames are reused");
    h.check();
}

fn roundtrip(h: &mut H, caller: u32, req: Request, buf: &mut [u8]) -> Reply {
    // Through the real encoding, as the seL4 server does.
    let mut bytes = [0u8; 1024];
    let enc = encode_request(&req, &mut bytes).unwrap().to_vec();
    let req = decode_request(&enc).unwrap();
    let reply = h.core.dispatch(caller, &req, buf).reply;
    let mut out = [0u8; 1024];
    let enc = encode_reply(&reply, &mut out).unwrap().to_vec();
    decode_reply(&enc).unwrap()
}

#[test]
fn dispatch_checks_privilege_buffers_and_serves_requests() {
    let mut h = H::new(64 * MB);
    let mut buf = vec![0u8; 8192];
    let r = roundtrip(&mut h, 5, Request::CreateSpace { client: 5, uid: 0, gid: 0, quota_pages: 100 }, &mut buf);
    assert_eq!(r, Reply::Err(Errno::Srch), "a sender without a space gets nothing");
    h.client(6, 0, 0, 100);
    let r = roundtrip(&mut h, 6, Request::CreateSpace { client: 5, uid: 0, gid: 0, quota_pages: 100 }, &mut buf);
    assert_eq!(r, Reply::Err(Errno::Perm), "only the admin creates spaces");
    h.core.destroy_space(6).unwrap();
    let r = roundtrip(&mut h, ADMIN, Request::CreateSpace { client: 5, uid: 7, gid: 7, quota_pages: 1000 }, &mut buf);
    assert_eq!(r, Reply::Ok(Value::Unit));
    buf[..5].copy_from_slice(b"hello");
    let region = Request::Region { target: Target::Client(5), addr: 0x10_0000, len: 8192, prot: Prot::READ, data: Some(BufRef::new(0, 5)) };
    assert_eq!(roundtrip(&mut h, ADMIN, region, &mut buf), Reply::Ok(Value::Addr(0x10_0000)));
    assert_eq!(h.read(5, 0x10_0000, 5).unwrap(), b"hello");
    let bad = Request::Region { target: Target::Own, addr: 0x20_0000, len: 8192, prot: Prot::READ, data: Some(BufRef::new(8190, 5)) };
    assert_eq!(roundtrip(&mut h, 5, bad, &mut buf), Reply::Err(Errno::Fault), "buffer reference outside the buffer");
    let other = Request::Munmap { target: Target::Client(ADMIN), addr: 0x10_0000, len: 4096 };
    assert_eq!(roundtrip(&mut h, 5, other, &mut buf), Reply::Err(Errno::Perm));
    let mm = Request::Mmap {
        target: Target::Own,
        addr: 0,
        len: 4096,
        prot: Prot::RW,
        max_prot: Prot::RW,
        placement: Placement::Anywhere,
        share: Share::Private,
        backing: Backing::Anonymous,
        populate: true,
    };
    let Reply::Ok(Value::Addr(a)) = roundtrip(&mut h, 5, mm, &mut buf) else { panic!("mmap failed") };
    let Reply::Ok(Value::Query(q)) = roundtrip(&mut h, 5, Request::Query { target: Target::Own, addr: a }, &mut buf) else {
        panic!("query failed")
    };
    assert_eq!(q.vaddr, a);
    let Reply::Ok(Value::Stats(s)) = roundtrip(&mut h, 5, Request::Stats { target: Target::Own }, &mut buf) else { panic!() };
    assert_eq!(s.areas, 2);
    assert_eq!(s.charged_pages, h.core.stats(Some(5)).unwrap().charged_pages);
    // Hostile values: each an error reply, the server keeps going.
    for req in [
        Request::Munmap { target: Target::Own, addr: u64::MAX, len: u64::MAX },
        Request::Mprotect { target: Target::Own, addr: 0xffff_ffff_ffff_f000, len: 4096, prot: Prot::RW },
        Request::Populate { target: Target::Own, addr: 3, len: 1 },
        Request::Query { target: Target::Own, addr: u64::MAX },
        Request::Msync { target: Target::Own, addr: 0, len: u64::MAX, flags: MsyncFlags::SYNC },
        Request::ShmAt { shmid: u32::MAX, addr: Some(u64::MAX), readonly: false },
        Request::BackendRead { id: 0, offset: u64::MAX, buf: BufRef::new(u32::MAX, u32::MAX) },
        Request::DestroySpace { client: 5 },
    ] {
        let r = roundtrip(&mut h, 5, req, &mut buf);
        assert!(matches!(r, Reply::Err(_)), "{req:?} -> {r:?}");
    }
    // Destroying takes steps (EAGAIN until the last).
    let destroyed = loop {
        match roundtrip(&mut h, ADMIN, Request::DestroySpace { client: 5 }, &mut buf) {
            Reply::Err(Errno::Again) => {}
            r => break r,
        }
    };
    assert_eq!(destroyed, Reply::Ok(Value::Unit));
    assert_eq!(h.frames_in_use(), 0);
}

#[test]
fn huge_shared_objects_cost_nothing_until_touched() {
    let mut h = H::new(64 * MB);
    h.client(1, 0, 0, 64);
    let before = h.core.metadata_bytes();
    let mut m = MmapArgs::anon(1 << 36, Prot::RW);
    m.shared = true;
    let a = h.core.mmap(1, &m).unwrap();
    let id = h.core.backend_create(1, 1 << 40, 0o600).unwrap();
    assert!(h.core.metadata_bytes() < before + 4096, "no per-page array allocated up front");
    h.write_u64(1, a + (1 << 35), 5).unwrap();
    assert_eq!(h.read_u64(1, a + (1 << 35)).unwrap(), 5);
    h.core.backend_write(1, id, (1 << 40) - 8, &7u64.to_le_bytes()).unwrap();
    let mut b = [0u8; 8];
    h.core.backend_read(1, id, (1 << 40) - 8, &mut b).unwrap();
    assert_eq!(u64::from_le_bytes(b), 7);
    h.check();
}

#[test]
fn shared_buffer_outlives_client_munmap_and_frame_export() {
    let mut h = H::new(64 * MB);
    h.client(ADMIN, 0, 0, 1 << 20);
    h.client(4, 0, 0, 1 << 20);
    let frames = h.core.create_shared_buffer(4, 0x7010_0000, 4).unwrap();
    assert_eq!(frames.len(), 4);
    assert_eq!(h.core.create_shared_buffer(4, 0x7020_0000, 4), Err(Errno::Exist));
    h.write(4, 0x7010_0000 + 4096, b"bulk").unwrap();
    let mut got = [0u8; 4];
    let paddr = h.core.query(4, 0x7010_0000 + 4096).unwrap().paddr;
    h.core.kernel().phys_read(paddr, &mut got);
    assert_eq!(&got, b"bulk", "the server's frames are the client's pages");
    // The client unmaps its buffer: the frames stay with the server.
    let before = h.frames_in_use();
    h.core.munmap(4, 0x7010_0000, 4 * 4096).unwrap();
    assert_eq!(h.frames_in_use(), before, "server references keep the frames");
    h.check();
    h.core.release_shared_buffer(4);
    assert_eq!(h.frames_in_use(), before - 4);
    // ExportFrame: admin only, present pages only.
    h.core.region(4, 0x7000_0000, 4096, Prot::RW, &[0]).unwrap();
    let mut buf = [0u8; 16];
    let req = Request::ExportFrame { target: Target::Client(4), addr: 0x7000_0000 };
    let a = h.core.dispatch(ADMIN, &req, &mut buf);
    assert_eq!(a.reply, Reply::Ok(Value::Unit));
    assert_eq!(a.cap, Some(h.core.mappings(4)[0].frame), "the cap of the page's frame goes out");
    assert_eq!(h.core.dispatch(4, &req, &mut buf).reply, Reply::Err(Errno::Perm));
    let lazy = Request::ExportFrame { target: Target::Client(4), addr: 0x7000_0000 + 8192 };
    assert_eq!(h.core.dispatch(ADMIN, &lazy, &mut buf).reply, Reply::Err(Errno::Fault));
    h.check();
    h.core.destroy_space(4).unwrap();
    h.core.destroy_space(ADMIN).unwrap();
    assert_eq!(h.frames_in_use(), 0);
}
