//! `Untyped_Retype` rules: window and fan-out checks, occupied destinations, exhaustion,
//! alignment waste, device untypeds, reset of an untyped without children, untyped copies.

mod common;

use common::*;
use mem_core::{Kernel, KernelError, ObjectType};
use mem_model::CapKind;

#[test]
fn retype_creates_objects_and_caps() {
    let mut e = Env::new();
    let before = e.k.occupied_slots();
    let s = e.slot();
    e.k.untyped_retype(RAM, ObjectType::SmallPage, s, 10).unwrap();
    assert_eq!(e.k.live_objects(ObjectType::SmallPage), 10);
    assert_eq!(e.k.occupied_slots(), before + 10);
    assert_eq!(e.k.cap_kind(s), Some(CapKind::SmallPage));
    assert_eq!(e.k.cap_kind(s + 9), Some(CapKind::SmallPage));
    assert_eq!(e.k.untyped_free_bytes(RAM), Some((1 << RAM_BITS) - 10 * 4096));
    assert_eq!(e.k.page_paddr(s).unwrap(), RAM_BASE);
    assert_eq!(e.k.page_paddr(s + 9).unwrap(), RAM_BASE + 9 * 4096);
}

#[test]
fn fan_out_limits() {
    let mut e = Env::new();
    let s = e.next;
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::SmallPage, s, 0), Err(KernelError::RangeError));
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::SmallPage, s, 257), Err(KernelError::RangeError));
    assert_eq!(e.k.live_objects(ObjectType::SmallPage), 0);
    e.k.untyped_retype(RAM, ObjectType::SmallPage, s, 256).unwrap();
    assert_eq!(e.k.live_objects(ObjectType::SmallPage), 256);
}

#[test]
fn window_outside_cnode_is_range_error() {
    let mut e = Env::new();
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::SmallPage, 4090, 7), Err(KernelError::RangeError));
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::SmallPage, 4096, 1), Err(KernelError::RangeError));
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::SmallPage, 0, 1), Err(KernelError::RangeError));
    e.k.untyped_retype(RAM, ObjectType::SmallPage, 4090, 6).unwrap();
}

#[test]
fn occupied_destination_is_delete_first_and_creates_nothing() {
    let mut e = Env::new();
    let s = e.next;
    e.k.untyped_retype(RAM, ObjectType::SmallPage, s + 5, 1).unwrap();
    let free = e.k.untyped_free_bytes(RAM);
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::SmallPage, s, 10), Err(KernelError::DeleteFirst));
    assert_eq!(e.k.live_objects(ObjectType::SmallPage), 1);
    assert_eq!(e.k.untyped_free_bytes(RAM), free);
    assert_eq!(e.k.cap_kind(s), None);
    // Retyping into an untyped's own slot is occupied too.
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::SmallPage, DEV, 1), Err(KernelError::DeleteFirst));
}

#[test]
fn exhaustion_is_not_enough_memory() {
    let mut e = Env::new();
    let s = e.next;
    // 16 MiB = 8 large pages.
    e.k.untyped_retype(RAM, ObjectType::LargePage, s, 8).unwrap();
    assert_eq!(e.k.untyped_free_bytes(RAM), Some(0));
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::SmallPage, s + 8, 1), Err(KernelError::NotEnoughMemory));
    assert_eq!(e.k.live_objects(ObjectType::SmallPage), 0);
    // Too many at once fails as a whole.
    let mut e = Env::new();
    let s = e.next;
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::LargePage, s, 9), Err(KernelError::NotEnoughMemory));
    assert_eq!(e.k.live_objects(ObjectType::LargePage), 0);
}

#[test]
fn large_page_retype_wastes_alignment() {
    let mut e = Env::new();
    let a = e.obj(ObjectType::SmallPage);
    let b = e.obj(ObjectType::LargePage);
    assert_eq!(e.k.page_paddr(a).unwrap(), RAM_BASE);
    assert_eq!(e.k.page_paddr(b).unwrap(), RAM_BASE + MIB2);
    assert_eq!(e.k.untyped_free_bytes(RAM), Some((1 << RAM_BITS) - 2 * MIB2));
    // Seven large pages fit below 16 MiB only if the waste is counted: 7 * 2 MiB from 4 MiB
    // does not fit, 6 does.
    let s = e.next;
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::LargePage, s, 7), Err(KernelError::NotEnoughMemory));
    e.k.untyped_retype(RAM, ObjectType::LargePage, s, 6).unwrap();
    // A VSpace (8 KiB) after a page table is aligned to 8 KiB.
    let mut e = Env::new();
    let pt = e.obj(ObjectType::PageTable);
    let vs = e.obj(ObjectType::VSpace);
    let _ = (pt, vs);
    assert_eq!(e.k.untyped_free_bytes(RAM), Some((1 << RAM_BITS) - 16384));
}

#[test]
fn fresh_frames_are_zero() {
    let mut e = Env::new();
    let f = e.obj(ObjectType::LargePage);
    let mut buf = vec![0xffu8; 4096];
    e.k.frame_read(f, 4096 * 100, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn device_untyped_only_gives_frames() {
    let mut e = Env::new();
    let s = e.next;
    assert_eq!(e.k.untyped_retype(DEV, ObjectType::PageTable, s, 1), Err(KernelError::InvalidArgument));
    assert_eq!(e.k.untyped_retype(DEV, ObjectType::VSpace, s, 1), Err(KernelError::InvalidArgument));
    e.k.untyped_retype(DEV, ObjectType::SmallPage, s, 2).unwrap();
    e.k.untyped_retype(DEV, ObjectType::LargePage, s + 2, 1).unwrap();
    assert_eq!(e.k.page_paddr(s).unwrap(), DEV_BASE);
    assert_eq!(e.k.page_paddr(s + 2).unwrap(), DEV_BASE + MIB2);
}

#[test]
fn source_must_be_an_untyped() {
    let mut e = Env::new();
    let f = e.obj(ObjectType::SmallPage);
    let s = e.slot();
    assert_eq!(e.k.untyped_retype(f, ObjectType::SmallPage, s, 1), Err(KernelError::IllegalOperation));
    assert_eq!(e.k.untyped_retype(s, ObjectType::SmallPage, s + 1, 1), Err(KernelError::InvalidCapability));
    assert_eq!(e.k.untyped_retype(100_000, ObjectType::SmallPage, s, 1), Err(KernelError::InvalidCapability));
}

#[test]
fn untyped_without_children_resets_at_next_retype() {
    let mut e = Env::new();
    let a = e.obj(ObjectType::SmallPage);
    let b = e.obj(ObjectType::SmallPage);
    e.k.frame_write(b, 0, b"secret").unwrap();
    e.k.cap_delete(a).unwrap();
    // One child left: no reset, memory is not returned.
    let c = e.obj(ObjectType::SmallPage);
    assert_eq!(e.k.page_paddr(c).unwrap(), RAM_BASE + 2 * 4096);
    e.k.cap_delete(b).unwrap();
    e.k.cap_delete(c).unwrap();
    assert_eq!(e.k.untyped_has_children(RAM), Some(false));
    // The watermark still shows the old use until the next retype resets it.
    assert_eq!(e.k.untyped_free_bytes(RAM), Some((1 << RAM_BITS) - 3 * 4096));
    let d = e.obj(ObjectType::SmallPage);
    assert_eq!(e.k.page_paddr(d).unwrap(), RAM_BASE);
    assert_eq!(e.k.untyped_free_bytes(RAM), Some((1 << RAM_BITS) - 4096));
    let mut buf = [1u8; 6];
    e.k.frame_read(d, 0, &mut buf).unwrap();
    assert_eq!(buf, [0; 6]);
}

#[test]
fn failed_retype_does_not_reset() {
    let mut e = Env::new();
    let a = e.obj(ObjectType::SmallPage);
    e.k.cap_delete(a).unwrap();
    let s = e.next;
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::SmallPage, s, 300), Err(KernelError::RangeError));
    assert_eq!(e.k.untyped_free_bytes(RAM), Some((1 << RAM_BITS) - 4096));
}

#[test]
fn copies_count_as_children() {
    let mut e = Env::new();
    let a = e.obj(ObjectType::SmallPage);
    let c = e.slot();
    e.k.cap_copy(a, c).unwrap();
    e.k.cap_delete(a).unwrap();
    assert_eq!(e.k.untyped_has_children(RAM), Some(true));
    let b = e.obj(ObjectType::SmallPage);
    assert_eq!(e.k.page_paddr(b).unwrap(), RAM_BASE + 4096);
}

#[test]
fn untyped_copy_rules() {
    let mut e = Env::new();
    let c = e.slot();
    e.k.cap_copy(RAM, c).unwrap();
    assert_eq!(e.k.cap_kind(c), Some(CapKind::Untyped));
    // The original counts as full; the copy has the memory.
    assert_eq!(e.k.untyped_free_bytes(RAM), Some(0));
    assert_eq!(e.k.untyped_free_bytes(c), Some(1 << RAM_BITS));
    let f = e.slot();
    e.k.untyped_retype(c, ObjectType::SmallPage, f, 1).unwrap();
    assert_eq!(e.k.page_paddr(f).unwrap(), RAM_BASE);
    // The original has a child (the copy): no reset, and it is full.
    let g = e.slot();
    assert_eq!(e.k.untyped_retype(RAM, ObjectType::SmallPage, g, 1), Err(KernelError::NotEnoughMemory));
    // An untyped with children cannot be copied.
    assert_eq!(e.k.cap_copy(c, g), Err(KernelError::RevokeFirst));
    // Deleting the copy hands its frame to the original, which still has a child.
    e.k.cap_delete(c).unwrap();
    assert_eq!(e.k.untyped_has_children(RAM), Some(true));
    e.k.cap_delete(f).unwrap();
    assert_eq!(e.k.untyped_has_children(RAM), Some(false));
    e.k.untyped_retype(RAM, ObjectType::SmallPage, g, 1).unwrap();
    assert_eq!(e.k.page_paddr(g).unwrap(), RAM_BASE);
}
