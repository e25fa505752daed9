//! Large pages, query, physical (device) mappings, populate, reset, region data.
mod common;
use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Access, Errno, PageSize, Prot, Unresolved};
use mem_model::ModelConfig;
use mem_protocol::Placement;

const MB: u64 = 1 << 20;
const LARGE: u64 = 2 * MB;

fn h() -> H {
    let mut h = H::new(256 * MB);
    h.client(1, 1000, 1000, 1 << 20);
    h
}

#[test]
fn aligned_area_gets_large_pages_and_query_reports_them() {
    let mut h = h();
    let a = h.core.mmap(1, &MmapArgs::anon(4 * MB, Prot::RW)).unwrap();
    assert_eq!(a % LARGE, 0, "large anonymous areas are placed 2 MiB aligned");
    h.write_u64(1, a + 12345 * 8, 77).unwrap();
    let q = h.core.query(1, a + 4096).unwrap();
    assert_eq!(q.page_size, PageSize::Large);
    assert_eq!(q.vaddr, a);
    assert_eq!(q.paddr % LARGE, 0);
    assert_eq!(q.prot, Prot::RW);
    assert_eq!(h.core.mapped_pages(1), 512);
    assert!(h.accessible(1, a + LARGE - 8, Access::Write), "one fault maps 2 MiB");
    assert_eq!(h.core.stats(Some(1)).unwrap().faults_served, 1);
    // An unaligned area gets small pages.
    let b = h.core.mmap(1, &MmapArgs::anon(3 * 4096, Prot::RW).at(0x1234_5000, Placement::Fixed)).unwrap();
    h.write_u64(1, b, 1).unwrap();
    assert_eq!(h.core.query(1, b).unwrap().page_size, PageSize::Small);
    assert_eq!(h.core.query(1, b + 4096), Err(Errno::NoEnt), "lazy page not present");
    assert_eq!(h.core.query(1, 0x7000_0000), Err(Errno::Fault), "no area");
    h.check();
}

#[test]
fn partial_munmap_and_mprotect_split_a_large_page_keeping_bytes() {
    let mut h = h();
    let a = h.core.mmap(1, &MmapArgs::anon(2 * MB, Prot::RW)).unwrap();
    for i in 0..512u64 {
        h.write_u64(1, a + i * 4096 + 16, i ^ 0x5a5a).unwrap();
    }
    assert_eq!(h.core.query(1, a).unwrap().page_size, PageSize::Large);
    h.core.munmap(1, a + 100 * 4096, 4096).unwrap();
    assert_eq!(h.core.query(1, a).unwrap().page_size, PageSize::Small);
    assert_eq!(h.core.mapped_pages(1), 511);
    assert_eq!(h.read(1, a + 100 * 4096, 1), Err(Unresolved::NoArea));
    for i in (0..512u64).filter(|&i| i != 100) {
        assert_eq!(h.read_u64(1, a + i * 4096 + 16).unwrap(), i ^ 0x5a5a, "page {i}");
    }
    h.check();
    let b = h.core.mmap(1, &MmapArgs::anon(2 * MB, Prot::RW)).unwrap();
    h.write_u64(1, b + 300 * 4096, 3).unwrap();
    h.core.mprotect(1, b + 256 * 4096, 4096, Prot::READ).unwrap();
    assert_eq!(h.core.query(1, b + 256 * 4096).unwrap().page_size, PageSize::Small);
    assert_eq!(h.write(1, b + 256 * 4096, &[1]), Err(Unresolved::Denied));
    assert_eq!(h.read_u64(1, b + 300 * 4096).unwrap(), 3);
    h.write_u64(1, b + 257 * 4096, 4).unwrap();
    h.check();
}

#[test]
fn large_page_clone_is_copy_on_write() {
    let mut h = h();
    let a = h.core.mmap(1, &MmapArgs::anon(2 * MB, Prot::RW)).unwrap();
    h.write_u64(1, a + 8, 1).unwrap();
    h.core.clone_space(1, 2, 1 << 20).unwrap();
    assert_eq!(h.read_u64(2, a + 8).unwrap(), 1);
    h.write_u64(2, a + 8, 2).unwrap();
    assert_eq!(h.read_u64(1, a + 8).unwrap(), 1);
    assert_eq!(h.core.query(2, a).unwrap().page_size, PageSize::Large);
    assert_ne!(h.core.query(1, a).unwrap().paddr, h.core.query(2, a).unwrap().paddr);
    h.check();
}

#[test]
fn phys_mappings_need_authority_and_device_memory() {
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| c.device_grants = vec![(2, ModelConfig::DEVICE_BASE, 0x4000)]);
    h.client(ADMIN, 0, 0, 1 << 20);
    h.client(1, 1000, 1000, 1 << 20);
    h.client(2, 1000, 1000, 1 << 20);
    let dev = ModelConfig::DEVICE_BASE;
    assert_eq!(h.core.map_phys(1, 0, Placement::Anywhere, dev, 4096, Prot::RW), Err(Errno::Perm), "no authority");
    assert_eq!(h.core.map_phys(ADMIN, 0, Placement::Anywhere, 0x8020_0000, 4096, Prot::RW), Err(Errno::Perm), "RAM");
    assert_eq!(h.core.map_phys(ADMIN, 0, Placement::Anywhere, dev + 1, 4096, Prot::RW), Err(Errno::Inval));
    assert_eq!(h.core.map_phys(2, 0, Placement::Anywhere, dev + 0x4000, 4096, Prot::RW), Err(Errno::Perm), "outside grant");
    let v = h.core.map_phys(2, 0, Placement::Anywhere, dev + 0x1000, 0x3000, Prot::RW).unwrap();
    let q = h.core.query(2, v + 0x1000).unwrap();
    assert_eq!(q.paddr, dev + 0x2000);
    assert!(q.shared);
    h.write(2, v + 0x1000, b"mmio").unwrap();
    let mut buf = [0u8; 4];
    h.core.kernel().phys_read(dev + 0x2000, &mut buf);
    assert_eq!(&buf, b"mmio", "bytes reach the device");
    let w = h.core.map_phys(ADMIN, 0, Placement::Anywhere, dev + 0x2000, 4096, Prot::READ).unwrap();
    assert_eq!(h.read(ADMIN, w, 4).unwrap(), b"mmio", "two mappings of one device frame");
    let used = h.frames_in_use();
    h.core.munmap(2, v, 0x3000).unwrap();
    assert!(h.frames_in_use() <= used, "device frames are not RAM");
    h.check();
}

#[test]
fn populate_maps_everything_and_needs_full_coverage() {
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| c.large_pages = false);
    h.client(1, 0, 0, 1 << 20);
    let a = h.core.mmap(1, &MmapArgs::anon(10 * 4096, Prot::RW)).unwrap();
    h.core.populate(1, a + 4096, 5 * 4096).unwrap();
    assert_eq!(h.core.mapped_pages(1), 5);
    assert!(h.accessible(1, a + 5 * 4096, Access::Write));
    assert!(!h.accessible(1, a + 6 * 4096, Access::Read));
    assert_eq!(h.core.populate(1, a, 20 * 4096), Err(Errno::NoMem), "runs past the area");
    let mut p = MmapArgs::anon(4 * 4096, Prot::READ);
    p.populate = true;
    let b = h.core.mmap(1, &p).unwrap();
    assert!(h.accessible(1, b + 3 * 4096, Access::Read), "MAP_POPULATE");
    h.check();
}

#[test]
fn region_with_data_then_reset() {
    let mut h = h();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let a = h.core.region(1, 0x40_0000, 16 * 4096, Prot::RWX, &data).unwrap();
    assert_eq!(a, 0x40_0000);
    assert_eq!(h.read(1, a, data.len()).unwrap(), data);
    assert_eq!(h.read_u64(1, a + 12 * 4096).unwrap(), 0, "rest is lazy zero (bss)");
    assert_eq!(h.core.region(1, 0x40_0000, 4096, Prot::READ, &[]), Err(Errno::Exist));
    assert_eq!(h.core.region(1, 0x80_0000, 4096, Prot::READ, &data), Err(Errno::Inval), "data larger than region");
    h.check();
    let before = h.core.stats(None).unwrap();
    h.core.reset(1).unwrap();
    assert!(h.core.layout(1).unwrap().is_empty());
    assert_eq!(h.read(1, a, 1), Err(Unresolved::NoArea));
    assert!(h.core.stats(None).unwrap().frames_in_use < before.frames_in_use);
    h.check();
}

/// Device frames are mapped uncached wherever they are mapped (first map, after mprotect,
/// in a clone, after a fault maps them again), RAM stays cached; an executable device
/// mapping is refused.
#[test]
fn device_mappings_are_uncached_everywhere() {
    use mem_core::Caching;
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| c.large_pages = false);
    h.client(ADMIN, 0, 0, 1 << 20);
    h.client(1, 1000, 1000, 1 << 20);
    let dev = ModelConfig::DEVICE_BASE;
    let caching = |h: &H, c: u32, va: u64| {
        let vs = h.core.vspace_of(c).unwrap();
        h.core.kernel().translate(vs, va).map(|t| t.caching)
    };
    assert_eq!(h.core.map_phys_by(ADMIN, 1, 0, Placement::Anywhere, dev, 2 * 4096, Prot::RWX), Err(Errno::Inval), "no executable device memory");
    let v = h.core.map_phys_by(ADMIN, 1, 0, Placement::Anywhere, dev, 2 * 4096, Prot::RW).unwrap();
    let a = h.core.mmap(1, &MmapArgs::anon(4096, Prot::RW)).unwrap();
    h.write_u64(1, a, 5).unwrap();
    assert_eq!(caching(&h, 1, v), Some(Caching::Uncached));
    assert_eq!(caching(&h, 1, v + 4096), Some(Caching::Uncached));
    assert_eq!(caching(&h, 1, a), Some(Caching::Cached));
    h.core.mprotect(1, v, 4096, Prot::READ).unwrap();
    assert_eq!(caching(&h, 1, v), Some(Caching::Uncached), "after mprotect");
    h.core.mprotect(1, v + 4096, 4096, Prot::NONE).unwrap();
    h.core.mprotect(1, v + 4096, 4096, Prot::RW).unwrap();
    h.write_u64(1, v + 4096, 9).unwrap();
    assert_eq!(caching(&h, 1, v + 4096), Some(Caching::Uncached), "mapped again by the fault path");
    h.core.clone_space(1, 2, 1 << 20).unwrap();
    assert_eq!(caching(&h, 2, v), Some(Caching::Uncached), "in the clone");
    assert_eq!(h.read_u64(2, v + 4096).unwrap(), 9, "the clone sees the same device");
    h.check();
}

/// `MapPhys` through the one door: the administrator maps a device page into a driver that
/// holds no grant; the driver itself, or another client on its behalf, is refused (EPERM),
/// RAM and memory outside every device untyped are refused even to the administrator; the
/// mapping costs the driver no quota, one cap slot while it stands, and nothing after munmap
/// or destruction.
#[test]
fn administrator_maps_a_device_page_into_a_driver() {
    use mem_protocol::{Reply, Request, Target, Value};
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| c.large_pages = false);
    h.client(ADMIN, 0, 0, 1 << 20);
    h.client(2, 1000, 1000, 4096);
    let sys = h.core.stats(None).unwrap();
    h.client(1, 1000, 1000, 4096);
    let dev = ModelConfig::DEVICE_BASE + 0x3000;
    let mut buf = [0u8; 0];
    let mut ask = |h: &mut H, caller: u32, target: Target, paddr: u64, prot: Prot| {
        let req = Request::MapPhys { target, addr: 0, placement: Placement::Anywhere, paddr, len: 4096, prot };
        match h.core.dispatch(caller, &req, &mut buf).reply {
            Reply::Ok(Value::Addr(a)) => Ok(a),
            Reply::Err(e) => Err(e),
            r => panic!("unexpected reply {r:?}"),
        }
    };
    assert_eq!(ask(&mut h, 1, Target::Own, dev, Prot::RW), Err(Errno::Perm), "a driver without a grant");
    assert_eq!(ask(&mut h, 2, Target::Client(1), dev, Prot::RW), Err(Errno::Perm), "another client");
    assert_eq!(ask(&mut h, ADMIN, Target::Client(1), 0x8020_0000, Prot::RW), Err(Errno::Perm), "RAM");
    assert_eq!(ask(&mut h, ADMIN, Target::Client(1), 0x10_0000_0000, Prot::RW), Err(Errno::Perm), "no device there");
    assert_eq!(ask(&mut h, ADMIN, Target::Client(1), dev, Prot::RWX), Err(Errno::Inval), "executable");
    let before = h.core.stats(Some(1)).unwrap();
    let v = ask(&mut h, ADMIN, Target::Client(1), dev, Prot::RW).unwrap();
    h.write_u64(1, v + 8, 0x5eed).unwrap();
    let mut word = [0u8; 8];
    h.core.kernel().phys_read(dev + 8, &mut word);
    assert_eq!(u64::from_le_bytes(word), 0x5eed, "the driver's store reached the device");
    let during = h.core.stats(Some(1)).unwrap();
    // Only the two page tables on the new path (riscv64: a mid-level and a leaf table) are
    // charged, not the device page.
    assert_eq!(during.charged_pages, before.charged_pages + 2, "device pages are not charged");
    assert_eq!(during.slots_charged, before.slots_charged + 1, "one cap copy for the mapping");
    h.core.munmap(1, v, 4096).unwrap();
    assert_eq!(h.read_u64(1, v), Err(mem_core::Unresolved::NoArea), "gone after munmap");
    assert_eq!(h.core.stats(Some(1)).unwrap().slots_charged, before.slots_charged);
    let w = ask(&mut h, ADMIN, Target::Client(1), dev, Prot::READ).unwrap();
    assert_eq!(h.read_u64(1, w + 8).unwrap(), 0x5eed);
    h.core.destroy_space(1).unwrap();
    let after = h.core.stats(None).unwrap();
    assert_eq!((after.frames_free, after.slots_free), (sys.frames_free, sys.slots_free), "nothing leaked");
    assert_eq!(after.frames_in_use, sys.frames_in_use);
    h.check();
}
