//! `Layout` (`layout.rs`): the areas of a space as the client reads them from its buffer,
//! paged, with kinds, rights and resident pages; and what a stranger may not read.
mod common;
use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Errno, Prot};
use mem_protocol::{AreaKindCode, BufRef, LayoutEntry, LayoutInfo, Reply, Request, ShmKey, Target, Value};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;

fn harness() -> H {
    let mut h = H::with(mem_model::ModelConfig::riscv64(64 * MB), |c| c.large_pages = false);
    h.client(1, 1000, 1000, 4096);
    h.client(2, 2000, 2000, 4096);
    h
}

/// One `Layout` request through dispatch with a buffer of `bytes` bytes.
fn ask(h: &mut H, caller: u32, target: Target, from: u64, bytes: usize) -> (Result<LayoutInfo, Errno>, Vec<LayoutEntry>) {
    let mut buf = vec![0xAAu8; 64 + bytes];
    let req = Request::Layout { target, from, buf: BufRef::new(64, bytes as u32) };
    match h.core.dispatch(caller, &req, &mut buf).reply {
        Reply::Ok(Value::Layout(info)) => {
            let entries = (0..info.written as usize)
                .map(|i| LayoutEntry::from_bytes(&buf[64 + i * LayoutEntry::BYTES..]).expect("entry decodes"))
                .collect();
            (Ok(info), entries)
        }
        Reply::Err(e) => (Err(e), Vec::new()),
        r => panic!("unexpected reply {r:?}"),
    }
}

/// Every entry, following `next` with a buffer of `per` entries.
fn all(h: &mut H, caller: u32, target: Target, per: usize) -> (LayoutInfo, Vec<LayoutEntry>) {
    let (mut from, mut out) = (0, Vec::new());
    loop {
        let (info, e) = ask(h, caller, target, from, per * LayoutEntry::BYTES);
        let info = info.expect("layout");
        assert!(info.written as usize <= per);
        out.extend(e);
        if info.next == 0 {
            return (LayoutInfo { written: out.len() as u32, ..info }, out);
        }
        assert!(info.next > from, "progress");
        from = info.next;
    }
}

#[test]
fn kinds_rights_resident_and_max_va() {
    let mut h = harness();
    let a = h.core.mmap(1, &MmapArgs::anon(8 * PAGE, Prot::RW)).unwrap();
    for p in [0, 1, 5] {
        h.write_u64(1, a + p * PAGE, 7).unwrap();
    }
    h.core.mprotect(1, a + 4 * PAGE, 4 * PAGE, Prot::READ).unwrap();
    let shmid = h.core.shmget(1, ShmKey::Private, 2 * PAGE, true, false, 0o600).unwrap();
    let s = h.core.shmat(1, shmid, None, true).unwrap();
    let (info, e) = all(&mut h, 1, Target::Own, 100);
    assert_eq!(info.areas, 3);
    assert_eq!(e.len(), 3);
    let anon_lo = e.iter().find(|x| x.start == a).expect("first half");
    assert_eq!((anon_lo.end, anon_lo.prot, anon_lo.max_prot, anon_lo.kind), (a + 4 * PAGE, Prot::RW, Prot::RWX, AreaKindCode::Anon));
    assert_eq!(anon_lo.resident_pages, 2);
    let anon_hi = e.iter().find(|x| x.start == a + 4 * PAGE).expect("second half");
    assert_eq!((anon_hi.end, anon_hi.prot, anon_hi.resident_pages), (a + 8 * PAGE, Prot::READ, 1));
    let shm = e.iter().find(|x| x.start == s).expect("shm attachment");
    assert_eq!((shm.end, shm.prot, shm.kind), (s + 2 * PAGE, Prot::READ, AreaKindCode::Shared));
    assert_eq!(info.max_va, e.iter().map(|x| x.end).max().unwrap());
    assert!(e.windows(2).all(|w| w[0].end <= w[1].start), "in address order, disjoint");
    // Same answer as the core's own view.
    let core: Vec<(u64, u64, Prot)> = h.core.layout(1).unwrap();
    assert_eq!(core, e.iter().map(|x| (x.start, x.end, x.prot)).collect::<Vec<_>>());
}

#[test]
fn paging_visits_every_area_once() {
    let mut h = harness();
    let mut starts = Vec::new();
    for i in 0..50u64 {
        // Alternate protections so that nothing merges.
        let prot = if i % 2 == 0 { Prot::RW } else { Prot::READ };
        starts.push(h.core.mmap(1, &MmapArgs::anon(PAGE, prot)).unwrap());
    }
    starts.sort();
    for per in [1, 3, 7, 50, 64] {
        let (info, e) = all(&mut h, 1, Target::Own, per);
        assert_eq!(info.areas, 50);
        assert_eq!(e.iter().map(|x| x.start).collect::<Vec<_>>(), starts, "per {per}");
    }
    // Starting inside an area includes that area.
    let (info, e) = ask(&mut h, 1, Target::Own, starts[10] + 8, 2 * LayoutEntry::BYTES);
    assert_eq!(info.unwrap().next, starts[12]);
    assert_eq!(e[0].start, starts[10]);
    // A buffer too small for one entry writes nothing and says where to go on.
    let (info, e) = ask(&mut h, 1, Target::Own, 0, LayoutEntry::BYTES - 1);
    assert_eq!((info.unwrap().written, info.unwrap().next, e.len()), (0, starts[0], 0));
    // Above the last area: nothing, done.
    let (info, _) = ask(&mut h, 1, Target::Own, info.unwrap().max_va, 4096);
    assert_eq!((info.unwrap().written, info.unwrap().next), (0, 0));
}

#[test]
fn empty_space_and_hostile_arguments() {
    let mut h = harness();
    let (info, e) = ask(&mut h, 1, Target::Own, 0, 4096);
    assert_eq!((info.unwrap(), e.len()), (LayoutInfo::default(), 0));
    h.core.mmap(1, &MmapArgs::anon(PAGE, Prot::RW)).unwrap();
    for from in [u64::MAX, 1 << 63, 0xffff_ffff_ffff_f000] {
        let (info, _) = ask(&mut h, 1, Target::Own, from, 4096);
        assert_eq!(info.unwrap().written, 0);
    }
    // A buffer reference outside the shared buffer: EFAULT, nothing written.
    let mut buf = vec![0u8; 128];
    for b in [BufRef::new(100, 100), BufRef::new(u32::MAX, 2), BufRef::new(0, u32::MAX)] {
        let r = h.core.dispatch(1, &Request::Layout { target: Target::Own, from: 0, buf: b }, &mut buf).reply;
        assert_eq!(r, Reply::Err(Errno::Fault));
    }
    assert!(buf.iter().all(|&x| x == 0));
}

#[test]
fn another_clients_layout_needs_the_administrator() {
    let mut h = harness();
    let a = h.core.mmap(2, &MmapArgs::anon(3 * PAGE, Prot::RW)).unwrap();
    let (r, _) = ask(&mut h, 1, Target::Client(2), 0, 4096);
    assert_eq!(r, Err(Errno::Perm));
    let (r, e) = ask(&mut h, ADMIN, Target::Client(2), 0, 4096);
    assert_eq!(r.unwrap().areas, 1);
    assert_eq!((e[0].start, e[0].end), (a, a + 3 * PAGE));
    // The client's own layout does not show the other's.
    let (r, _) = ask(&mut h, 1, Target::Own, 0, 4096);
    assert_eq!(r.unwrap().areas, 0);
    // A client without a space: ESRCH.
    let (r, _) = ask(&mut h, 9, Target::Own, 0, 4096);
    assert_eq!(r, Err(Errno::Srch));
}

#[test]
fn a_loaders_region_pieces_become_one_area() {
    let mut h = harness();
    let base = 0x40_0000;
    // Three consecutive pieces of one RX segment, then an RW one (not merged with them).
    for i in 0..3u64 {
        h.core.region(1, base + i * 16 * PAGE, 16 * PAGE, Prot::READ.union(Prot::EXEC), &[i as u8 + 1; 100]).unwrap();
    }
    h.core.region(1, base + 48 * PAGE, 4 * PAGE, Prot::RW, &[9; 10]).unwrap();
    let (_, e) = all(&mut h, 1, Target::Own, 100);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!((e[0].start, e[0].end, e[0].resident_pages), (base, base + 48 * PAGE, 3));
    assert_eq!((e[1].start, e[1].end), (base + 48 * PAGE, base + 52 * PAGE));
    // Contents kept; a piece can still be unmapped alone (the merged area splits).
    assert_eq!(h.read(1, base + 16 * PAGE, 1).unwrap(), vec![2]);
    h.core.munmap(1, base + 16 * PAGE, 16 * PAGE).unwrap();
    let (_, e) = all(&mut h, 1, Target::Own, 100);
    assert_eq!(e.iter().map(|x| (x.start, x.end)).collect::<Vec<_>>(), vec![
        (base, base + 16 * PAGE),
        (base + 32 * PAGE, base + 48 * PAGE),
        (base + 48 * PAGE, base + 52 * PAGE),
    ]);
    // A region that fails (over the budget of its data) leaves nothing behind and merges
    // with nothing.
    assert_eq!(h.core.region(1, base + 16 * PAGE, PAGE, Prot::RW, &[0; 2 * 4096]), Err(Errno::Inval));
    let (_, after) = all(&mut h, 1, Target::Own, 100);
    assert_eq!(after.len(), 3);
    h.check();
}

/// Adjacent equal mappings are one area in `Layout` (as one VMA in `/proc/self/maps`), and
/// count once against the area limit; a neighbour of other rights or a shared one stays apart.
#[test]
fn adjacent_equal_mappings_are_one_entry() {
    use mem_protocol::Placement;
    let mut h = harness();
    let base = 0x20_0000_0000;
    let before = h.core.layout(1).unwrap().len();
    let at = |off: u64, prot: Prot| MmapArgs::anon(PAGE, prot).at(base + off * PAGE, Placement::FixedNoReplace);
    assert_eq!(h.core.mmap(1, &at(5, Prot::RW)).unwrap(), base + 5 * PAGE);
    assert_eq!(h.core.mmap(1, &at(6, Prot::RW)).unwrap(), base + 6 * PAGE);
    assert_eq!(h.core.mmap(1, &at(4, Prot::RW)).unwrap(), base + 4 * PAGE);
    assert_eq!(h.core.mmap(1, &at(7, Prot::READ)).unwrap(), base + 7 * PAGE);
    let shared = MmapArgs { shared: true, ..at(3, Prot::RW) };
    assert_eq!(h.core.mmap(1, &shared).unwrap(), base + 3 * PAGE);
    assert_eq!(h.core.layout(1).unwrap().len(), before + 3);
    let (_, e) = all(&mut h, 1, Target::Own, 16);
    let mine: Vec<_> = e.iter().filter(|x| x.start >= base && x.end <= base + 16 * PAGE).map(|x| (x.start, x.end)).collect();
    assert_eq!(mine, vec![(base + 3 * PAGE, base + 4 * PAGE), (base + 4 * PAGE, base + 7 * PAGE), (base + 7 * PAGE, base + 8 * PAGE)]);
    // The merged area behaves as one: data written through one page, unmapping the middle
    // splits it again.
    h.write_u64(1, base + 6 * PAGE, 42).unwrap();
    h.core.munmap(1, base + 5 * PAGE, PAGE).unwrap();
    assert_eq!(h.read_u64(1, base + 6 * PAGE).unwrap(), 42);
    assert_eq!(h.core.layout(1).unwrap().len(), before + 4);
}
