//! Frame contents and the CPU view: frame data operations, user reads and writes with
//! rights, page-crossing faults, device memory, physical reads.

mod common;

use common::*;
use mem_core::{Caching, Kernel, KernelError, ObjectType};
use mem_model::UserFault;
use mem_protocol::{Access, Prot};

const VA: u64 = 0x20_0000;

#[test]
fn frame_write_read_bounds() {
    let mut e = Env::new();
    let f = e.obj(ObjectType::SmallPage);
    e.k.frame_write(f, 4090, b"abcdef").unwrap();
    let mut buf = [0u8; 6];
    e.k.frame_read(f, 4090, &mut buf).unwrap();
    assert_eq!(&buf, b"abcdef");
    assert_eq!(e.k.frame_write(f, 4091, b"abcdef"), Err(KernelError::RangeError));
    assert_eq!(e.k.frame_read(f, 4091, &mut buf), Err(KernelError::RangeError));
    assert_eq!(e.k.frame_write(f, u64::MAX, b"a"), Err(KernelError::RangeError));
    let pt = e.obj(ObjectType::PageTable);
    assert_eq!(e.k.frame_write(pt, 0, b"a"), Err(KernelError::InvalidCapability));
    assert_eq!(e.k.frame_read(e.next, 0, &mut buf), Err(KernelError::InvalidCapability));
    assert_eq!(e.k.frame_zero(pt), Err(KernelError::InvalidCapability));
    e.k.frame_zero(f).unwrap();
    e.k.frame_read(f, 4090, &mut buf).unwrap();
    assert_eq!(buf, [0; 6]);
}

#[test]
fn frame_copy_rules() {
    let mut e = Env::new();
    let small = e.obj(ObjectType::SmallPage);
    let big = e.obj(ObjectType::LargePage);
    e.k.frame_write(small, 100, b"hello").unwrap();
    e.k.frame_copy(small, 0, big, 4096 * 7, 4096).unwrap();
    let mut buf = [0u8; 5];
    e.k.frame_read(big, 4096 * 7 + 100, &mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    assert_eq!(e.k.frame_copy(small, 0, big, 1, 4096), Err(KernelError::AlignmentError));
    assert_eq!(e.k.frame_copy(small, 0, big, 0, 100), Err(KernelError::AlignmentError));
    assert_eq!(e.k.frame_copy(small, 0, big, 0, 8192), Err(KernelError::RangeError));
    assert_eq!(e.k.frame_copy(big, MIB2 - 4096, small, 0, 8192), Err(KernelError::RangeError));
    // Overlapping copy inside one large frame behaves like memmove.
    e.k.frame_write(big, 0, b"A").unwrap();
    e.k.frame_write(big, 4096, b"B").unwrap();
    e.k.frame_copy(big, 0, big, 4096, 8192).unwrap();
    let mut b = [0u8; 1];
    e.k.frame_read(big, 4096, &mut b).unwrap();
    assert_eq!(&b, b"A");
    e.k.frame_read(big, 8192, &mut b).unwrap();
    assert_eq!(&b, b"B");
    // Copying zero pages over written ones zeroes them.
    let z = e.obj(ObjectType::SmallPage);
    e.k.frame_copy(z, 0, big, 4096, 4096).unwrap();
    e.k.frame_read(big, 4096, &mut b).unwrap();
    assert_eq!(b, [0]);
}

#[test]
fn user_write_denied_on_read_only() {
    let mut e = Env::new();
    let vs = e.vspace();
    let f = e.map_small(vs, VA, Prot::READ);
    e.k.frame_write(f, 8, b"data").unwrap();
    assert_eq!(e.k.user_write(vs, VA + 8, b"x"), Err(UserFault { vaddr: VA + 8, access: Access::Write }));
    let mut buf = [0u8; 4];
    e.k.user_read(vs, VA + 8, &mut buf).unwrap();
    assert_eq!(&buf, b"data");
    assert!(e.k.user_access(vs, VA, Access::Exec).is_err());
    // Remap with write: now writable.
    e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached).unwrap();
    e.k.user_write(vs, VA + 8, b"DATA").unwrap();
    e.k.frame_read(f, 8, &mut buf).unwrap();
    assert_eq!(&buf, b"DATA");
}

#[test]
fn write_implies_read() {
    let mut e = Env::new();
    let vs = e.vspace();
    e.map_small(vs, VA, Prot::WRITE);
    e.k.user_write(vs, VA, b"w").unwrap();
    let mut b = [0u8; 1];
    e.k.user_read(vs, VA, &mut b).unwrap();
    assert_eq!(&b, b"w");
    e.map_small(vs, VA + 4096, Prot::EXEC);
    assert!(e.k.user_access(vs, VA + 4096, Access::Exec).is_ok());
    assert!(e.k.user_read(vs, VA + 4096, &mut b).is_err());
}

#[test]
fn accesses_cross_pages_and_fault_at_the_first_bad_page() {
    let mut e = Env::new();
    let vs = e.vspace();
    let a = e.map_small(vs, VA, Prot::RW);
    let b = e.map_small(vs, VA + 4096, Prot::RW);
    e.map_small(vs, VA + 8192, Prot::READ);
    let data: Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
    e.k.user_write(vs, VA + 100, &data).unwrap();
    let mut back = vec![0u8; 6000];
    e.k.user_read(vs, VA + 100, &mut back).unwrap();
    assert_eq!(back, data);
    let mut x = [0u8; 1];
    e.k.frame_read(b, 0, &mut x).unwrap();
    assert_eq!(x[0], data[4096 - 100]);
    // Write runs into the read-only third page: fault at its first byte, earlier bytes land.
    let r = e.k.user_write(vs, VA + 8000, &[9u8; 300]);
    assert_eq!(r, Err(UserFault { vaddr: VA + 8192, access: Access::Write }));
    e.k.frame_read(b, 8000 - 4096, &mut x).unwrap();
    assert_eq!(x[0], 9);
    // All-or-nothing variant writes nothing.
    let r = e.k.user_write_all(vs, VA + 8000, &[7u8; 300]);
    assert_eq!(r, Err(UserFault { vaddr: VA + 8192, access: Access::Write }));
    e.k.frame_read(b, 8000 - 4096, &mut x).unwrap();
    assert_eq!(x[0], 9);
    // Reads fault past the last mapped page.
    let mut big = vec![0u8; 8192];
    let r = e.k.user_read(vs, VA + 8192, &mut big);
    assert_eq!(r, Err(UserFault { vaddr: VA + 12288, access: Access::Read }));
    // Unmapped or invalid VSpace slot: a fault.
    assert!(e.k.user_read(a, VA, &mut x).is_err());
}

#[test]
fn large_page_user_access() {
    let mut e = Env::new();
    let vs = e.vspace();
    let base = 4 * MIB2;
    e.tables_for_large(vs, base);
    let big = e.obj(ObjectType::LargePage);
    e.k.page_map(big, vs, base, Prot::RW, Caching::Cached).unwrap();
    e.k.user_write(vs, base + MIB2 - 2, b"xy").unwrap();
    let mut b = [0u8; 2];
    e.k.frame_read(big, MIB2 - 2, &mut b).unwrap();
    assert_eq!(&b, b"xy");
    assert!(e.k.user_write(vs, base + MIB2 - 1, b"xy").is_err());
}

#[test]
fn frames_are_shared_between_mappings() {
    let mut e = Env::new();
    let vs = e.vspace();
    let other = e.vspace();
    let f = e.map_small(vs, VA, Prot::RW);
    let c = e.slot();
    e.k.cap_copy(f, c).unwrap();
    e.tables_for_small(other, VA * 3);
    e.k.page_map(c, other, VA * 3, Prot::READ, Caching::Cached).unwrap();
    e.k.user_write(vs, VA + 1, b"shared").unwrap();
    let mut b = [0u8; 6];
    e.k.user_read(other, VA * 3 + 1, &mut b).unwrap();
    assert_eq!(&b, b"shared");
}

#[test]
fn device_memory_persists_and_phys_read() {
    let mut e = Env::new();
    let d = e.slot();
    e.k.untyped_retype(DEV, ObjectType::SmallPage, d, 1).unwrap();
    e.k.frame_write(d, 16, b"regs").unwrap();
    let mut b = [0u8; 4];
    e.k.phys_read(DEV_BASE + 16, &mut b);
    assert_eq!(&b, b"regs");
    // Destroy the frame and make a new one over the same device memory: contents remain.
    e.k.cap_delete(d).unwrap();
    let d2 = e.slot();
    e.k.untyped_retype(DEV, ObjectType::SmallPage, d2, 1).unwrap();
    e.k.frame_read(d2, 16, &mut b).unwrap();
    assert_eq!(&b, b"regs");
    // A device can write too.
    assert!(e.k.phys_write(DEV_BASE + 20, b"DMA!"));
    e.k.frame_read(d2, 20, &mut b).unwrap();
    assert_eq!(&b, b"DMA!");
}

#[test]
fn phys_read_of_ram() {
    let mut e = Env::new();
    let _a = e.obj(ObjectType::SmallPage);
    let f = e.obj(ObjectType::SmallPage);
    e.k.frame_write(f, 4094, b"ab").unwrap();
    let pa = e.k.page_paddr(f).unwrap();
    let mut b = [1u8; 4];
    e.k.phys_read(pa + 4094, &mut b);
    assert_eq!(&b, b"ab\0\0");
    assert!(e.k.phys_write(pa, b"Z"));
    let mut z = [0u8; 1];
    e.k.frame_read(f, 0, &mut z).unwrap();
    assert_eq!(&z, b"Z");
    // Nothing lives beyond the watermark.
    assert!(!e.k.phys_write(pa + 4096, b"Z"));
    e.k.cap_delete(f).unwrap();
    e.k.phys_read(pa + 4094, &mut b);
    assert_eq!(b, [0; 4]);
}

#[test]
fn destroyed_frame_contents_do_not_leak() {
    let mut e = Env::new();
    let f = e.obj(ObjectType::SmallPage);
    e.k.frame_write(f, 0, b"secret").unwrap();
    e.k.cap_delete(f).unwrap();
    // Untyped reset at the next retype: the same memory comes back zeroed.
    let g = e.obj(ObjectType::SmallPage);
    let mut b = [1u8; 6];
    e.k.frame_read(g, 0, &mut b).unwrap();
    assert_eq!(b, [0; 6]);
}
