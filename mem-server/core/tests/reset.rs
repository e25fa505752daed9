//! `Reset` (axmem's `unmap_user_areas`, the first half of an exec): everything the client
//! had is gone — its image, its own mappings, attachments, shared and backend mappings —
//! while its system areas survive with their contents: the pages the administrator
//! exported (IPC buffer, boot page; `pin.rs`) and the shared buffer. Its charge falls back
//! to those pages and its page tables, and the space can be mapped again. Exporting a page
//! makes it an area of its own that never merges with what the client maps next to it.
mod common;

use common::*;
use mem_core::admin::BufferConfig;
use mem_core::mmap::MmapArgs;
use mem_core::{Config, Cred, Errno, MemCore, Prot, Unresolved};
use mem_model::{ModelConfig, ModelKernel};
use mem_protocol::{Placement, ShmKey};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;
const IPC: u64 = 0x7000_0000;
const BUF: u64 = 0x7010_0000;
const BOOT: u64 = 0x7020_0000;
const BUF_PAGES: u64 = 4;
const IMAGE: u64 = 0x40_0000;
const DATA: u64 = 0x1000_0000;

fn harness() -> H {
    let mcfg = ModelConfig::riscv64(128 * MB);
    let mut cfg = Config::new(mcfg.geometry);
    cfg.user_hi = cfg.user_hi.min(mcfg.user_top);
    cfg.admins = vec![ADMIN];
    cfg.large_pages = false;
    cfg.buffer = Some(BufferConfig { vaddr: BUF, pages: BUF_PAGES, view: None });
    let core = MemCore::new(ModelKernel::new(mcfg.clone()), cfg, &untypeds(&mcfg), mcfg.first_free_slot(), mcfg.cnode_slots);
    H { core, cfg: mcfg }
}

/// A client as the launcher makes it: image, boot page and IPC buffer, both exported.
fn launched(h: &mut H, c: u32) {
    h.core.admin_create(c, Cred { uid: 1000, gid: 1000 }, 4096).unwrap();
    h.core.region(c, IMAGE, 8 * PAGE, Prot::READ.union(Prot::EXEC), &[0x13; 3 * PAGE as usize]).unwrap();
    h.core.region(c, IMAGE + 8 * PAGE, 4 * PAGE, Prot::RW, &[0x2a; 100]).unwrap();
    h.core.region(c, BOOT, PAGE, Prot::READ, b"boot record").unwrap();
    h.core.region(c, IPC, PAGE, Prot::RW, &[0]).unwrap();
    h.core.admin_export(c, IPC).unwrap();
    h.core.admin_export(c, BOOT).unwrap();
}

fn areas(h: &H, c: u32) -> Vec<(u64, u64)> {
    h.core.layout(c).unwrap().into_iter().map(|(s, e, _)| (s, e)).collect()
}

#[test]
fn reset_keeps_the_system_pages_and_nothing_else() {
    let mut h = harness();
    launched(&mut h, 2);
    h.write(2, IPC, b"ipc words").unwrap();
    let system_pages = 2 + BUF_PAGES;
    let sys_before = h.core.stats(None).unwrap();
    // What the client maps: data it writes, a mapping right next to its IPC buffer (never
    // merged with it), a private segment it attached and removed, shared anonymous memory,
    // an mprotect'd piece.
    let d = h.core.mmap(2, &MmapArgs::anon(64 * PAGE, Prot::RW).at(DATA, Placement::FixedNoReplace)).unwrap();
    for i in 0..64 {
        h.write_u64(2, d + i * PAGE, i).unwrap();
    }
    h.core.mprotect(2, d + 8 * PAGE, 8 * PAGE, Prot::READ).unwrap();
    let next = h.core.mmap(2, &MmapArgs::anon(PAGE, Prot::RW).at(IPC + PAGE, Placement::FixedNoReplace)).unwrap();
    h.write_u64(2, next, 7).unwrap();
    assert!(areas(&h, 2).contains(&(IPC, IPC + PAGE)), "the IPC buffer stays an area of its own");
    let shm = h.core.shmget(2, ShmKey::Private, 4 * PAGE, true, false, 0o600).unwrap();
    let at = h.core.shmat(2, shm, None, false).unwrap();
    h.write_u64(2, at, 9).unwrap();
    h.core.shm_remove(2, shm).unwrap();
    let shared = h.core.mmap(2, &MmapArgs { shared: true, ..MmapArgs::anon(2 * PAGE, Prot::RW) }).unwrap();
    h.write_u64(2, shared, 3).unwrap();
    assert_eq!(h.core.stats(None).unwrap().shm_segments, 1);

    h.core.reset(2).unwrap();

    assert_eq!(areas(&h, 2), vec![(IPC, IPC + PAGE), (BUF, BUF + BUF_PAGES * PAGE), (BOOT, BOOT + PAGE)]);
    assert_eq!(h.core.mapped_pages(2), system_pages, "only the system pages are mapped");
    let after = h.core.stats(Some(2)).unwrap();
    // What stays charged: the system pages and page tables (the VSpace root and at most two
    // tables on each of the five paths used here), never a data page.
    assert!(after.charged_pages >= system_pages + 2 && after.charged_pages <= system_pages + 2 + 10, "charge back to the system pages and tables: {after:?}");
    assert_eq!(after.pinned, 2);
    assert_eq!(h.core.stats(None).unwrap().shm_segments, 0, "the removed segment went with its last attachment");
    assert!(h.core.stats(None).unwrap().frames_in_use < sys_before.frames_in_use, "the image's frames went back");
    assert_eq!(h.read(2, IPC, 9).unwrap(), b"ipc words", "the IPC buffer keeps its bytes");
    assert_eq!(h.read(2, BOOT, 11).unwrap(), b"boot record");
    for gone in [IMAGE, IMAGE + 8 * PAGE, d, d + 8 * PAGE, next, at, shared] {
        assert_eq!(h.read_u64(2, gone), Err(Unresolved::NoArea), "{gone:#x} is gone");
    }
    // The space can be mapped again, at the same addresses: fresh zero pages.
    h.core.region(2, IMAGE, 8 * PAGE, Prot::READ.union(Prot::EXEC), &[0x14; 10]).unwrap();
    let d2 = h.core.mmap(2, &MmapArgs::anon(64 * PAGE, Prot::RW).at(DATA, Placement::FixedNoReplace)).unwrap();
    assert_eq!((d2, h.read_u64(2, d2 + 5 * PAGE).unwrap()), (DATA, 0));
    assert_eq!(h.read(2, IMAGE, 1).unwrap(), [0x14]);
    h.check();
    // A second Reset at once changes nothing more; destroying the space frees everything.
    h.core.reset(2).unwrap();
    assert_eq!(areas(&h, 2).len(), 3);
    h.core.admin_destroy(2).unwrap();
    h.check();
}

/// Exporting a page in the middle of an area splits it around the page; the client's own
/// mappings beside a system page never merge with it, and a Fixed mapping over it removes
/// it like any other area (the pinned frame stays held: `pin.rs`).
#[test]
fn an_exported_page_is_an_area_of_its_own() {
    let mut h = harness();
    h.core.admin_create(2, Cred { uid: 1000, gid: 1000 }, 4096).unwrap();
    h.core.region(2, IPC, 3 * PAGE, Prot::RW, &[1; 3 * PAGE as usize]).unwrap();
    assert_eq!(areas(&h, 2)[0], (IPC, IPC + 3 * PAGE));
    h.core.admin_export(2, IPC + PAGE).unwrap();
    assert_eq!(&areas(&h, 2)[..3], &[(IPC, IPC + PAGE), (IPC + PAGE, IPC + 2 * PAGE), (IPC + 2 * PAGE, IPC + 3 * PAGE)]);
    // Exporting it again changes nothing; mprotect of it and back does not merge it.
    h.core.admin_export(2, IPC + PAGE).unwrap();
    h.core.mprotect(2, IPC, 3 * PAGE, Prot::READ).unwrap();
    h.core.mprotect(2, IPC, 3 * PAGE, Prot::RW).unwrap();
    assert_eq!(areas(&h, 2)[1], (IPC + PAGE, IPC + 2 * PAGE));
    // Not exportable: nothing changes.
    h.core.mmap(2, &MmapArgs::anon(2 * PAGE, Prot::NONE).at(DATA, Placement::FixedNoReplace)).unwrap();
    assert_eq!(h.core.admin_export(2, DATA + PAGE), Err(Errno::Inval));
    assert!(areas(&h, 2).contains(&(DATA, DATA + 2 * PAGE)));
    h.core.reset(2).unwrap();
    assert_eq!(areas(&h, 2), vec![(IPC + PAGE, IPC + 2 * PAGE), (BUF, BUF + BUF_PAGES * PAGE)]);
    h.core.mmap(2, &MmapArgs::anon(PAGE, Prot::RW).at(IPC + PAGE, Placement::Fixed)).unwrap();
    h.core.reset(2).unwrap();
    assert_eq!(areas(&h, 2), vec![(BUF, BUF + BUF_PAGES * PAGE)], "mapped over: an ordinary area now");
    assert_eq!(h.core.stats(Some(2)).unwrap().pinned, 1, "the frame stays pinned until the space goes");
    h.check();
}
