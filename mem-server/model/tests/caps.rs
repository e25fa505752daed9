//! `CNode_Copy` / `CNode_Delete` rules and object lifetime: deleting the last cap
//! destroys, deleting a mapped frame cap unmaps, destroying a VSpace frees its ASID.

mod common;

use common::*;
use mem_core::{Caching, Kernel, KernelError, ObjectType};
use mem_protocol::Prot;

const VA: u64 = 0x10_0000;

#[test]
fn copy_rules() {
    let mut e = Env::new();
    let f = e.obj(ObjectType::SmallPage);
    let g = e.obj(ObjectType::SmallPage);
    let empty = e.slot();
    assert_eq!(e.k.cap_copy(f, g), Err(KernelError::DeleteFirst));
    assert_eq!(e.k.cap_copy(empty, e.next), Err(KernelError::FailedLookup));
    assert_eq!(e.k.cap_copy(f, 0), Err(KernelError::FailedLookup));
    assert_eq!(e.k.cap_copy(f, 4096), Err(KernelError::FailedLookup));
    assert_eq!(e.k.cap_copy(100_000, empty), Err(KernelError::FailedLookup));
    // Destination is checked before the source.
    assert_eq!(e.k.cap_copy(empty, g), Err(KernelError::DeleteFirst));
    e.k.cap_copy(f, empty).unwrap();
    let obj = e.k.cap_object(f).unwrap();
    assert_eq!(e.k.cap_object(empty), Some(obj));
    assert_eq!(e.k.frame_refcaps(obj), 2);
    assert_eq!(e.k.page_paddr(empty).unwrap(), e.k.page_paddr(f).unwrap());
}

#[test]
fn copy_of_vspace_needs_asid() {
    let mut e = Env::new();
    let vs = e.obj(ObjectType::VSpace);
    let c = e.slot();
    assert_eq!(e.k.cap_copy(vs, c), Err(KernelError::IllegalOperation));
    e.k.asid_assign(vs).unwrap();
    e.k.cap_copy(vs, c).unwrap();
    assert_eq!(e.k.vspace_asid(c), e.k.vspace_asid(vs));
    // Mapping through either cap lands in the same VSpace.
    let f = e.map_small(c, VA, Prot::RW);
    assert!(e.k.translate(vs, VA).is_some());
    // Deleting one of two caps keeps the VSpace and its ASID.
    let free = e.k.free_asids();
    e.k.cap_delete(c).unwrap();
    assert_eq!(e.k.free_asids(), free);
    assert!(e.k.is_mapped(f));
}

#[test]
fn delete_last_cap_destroys() {
    let mut e = Env::new();
    let f = e.obj(ObjectType::SmallPage);
    let c = e.slot();
    e.k.cap_copy(f, c).unwrap();
    let obj = e.k.cap_object(f).unwrap();
    let slots = e.k.occupied_slots();
    e.k.cap_delete(f).unwrap();
    assert_eq!(e.k.occupied_slots(), slots - 1);
    assert!(e.k.object_alive(obj));
    assert_eq!(e.k.frame_refcaps(obj), 1);
    e.k.cap_delete(c).unwrap();
    assert!(!e.k.object_alive(obj));
    assert_eq!(e.k.frame_refcaps(obj), 0);
    assert_eq!(e.k.live_objects(ObjectType::SmallPage), 0);
    // Memory is not returned while the untyped has other children.
    let keep = e.obj(ObjectType::SmallPage);
    let free = e.k.untyped_free_bytes(RAM);
    let g = e.obj(ObjectType::SmallPage);
    e.k.cap_delete(g).unwrap();
    assert_eq!(e.k.untyped_free_bytes(RAM), free.map(|b| b - 4096));
    let _ = keep;
}

#[test]
fn delete_empty_and_missing_slots() {
    let mut e = Env::new();
    let s = e.slot();
    e.k.cap_delete(s).unwrap();
    e.k.cap_delete(0).unwrap();
    assert_eq!(e.k.cap_delete(4096), Err(KernelError::FailedLookup));
}

#[test]
fn deleting_mapped_frame_cap_unmaps_it() {
    let mut e = Env::new();
    let vs = e.vspace();
    let f = e.map_small(vs, VA, Prot::RW);
    // A copy mapped elsewhere: deleting it (not final) removes only its own mapping.
    let c = e.slot();
    e.k.cap_copy(f, c).unwrap();
    e.tables_for_small(vs, VA + 4096);
    e.k.page_map(c, vs, VA + 4096, Prot::READ, Caching::Cached).unwrap();
    e.k.cap_delete(c).unwrap();
    assert!(e.k.translate(vs, VA + 4096).is_none());
    assert!(e.k.translate(vs, VA).is_some());
    e.k.cap_delete(f).unwrap();
    assert!(e.k.translate(vs, VA).is_none());
    assert_eq!(e.k.live_objects(ObjectType::SmallPage), 0);
}

#[test]
fn destroying_vspace_frees_asid_and_mappings() {
    let mut e = Env::new();
    let vs = e.vspace();
    let f = e.map_small(vs, VA, Prot::RW);
    let free = e.k.free_asids();
    e.k.cap_delete(vs).unwrap();
    assert_eq!(e.k.free_asids(), free + 1);
    assert_eq!(e.k.live_objects(ObjectType::VSpace), 0);
    assert!(!e.k.is_mapped(f));
    assert!(e.k.translate(vs, VA).is_none());
    // The frame cap still records the dead mapping; unmapping it is a harmless no-op.
    e.k.page_unmap(f).unwrap();
    // A new VSpace may get the same ASID; the old frame mapping does not reappear.
    let vs2 = e.vspace();
    e.tables_for_small(vs2, VA);
    assert!(e.k.translate(vs2, VA).is_none());
    e.k.page_map(f, vs2, VA, Prot::RW, Caching::Cached).unwrap();
}

#[test]
fn deleting_mapped_page_table_cap_unmaps_it() {
    let mut e = Env::new();
    let vs = e.vspace();
    let tables = e.tables_for_small(vs, VA);
    let f = e.obj(ObjectType::SmallPage);
    e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached).unwrap();
    let leaf = *tables.last().unwrap();
    e.k.cap_delete(leaf).unwrap();
    assert_eq!(e.k.live_objects(ObjectType::PageTable), tables.len() - 1);
    assert!(e.k.translate(vs, VA).is_none());
    assert!(!e.k.is_mapped(f));
    // The slot is free again for a new table at the same place.
    let pt = e.obj(ObjectType::PageTable);
    e.k.page_table_map(pt, vs, VA).unwrap();
    assert!(e.k.translate(vs, VA).is_none());
    // The frame's stale record is cleared by page_unmap, then it maps again.
    e.k.page_unmap(f).unwrap();
    e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached).unwrap();
    assert!(e.k.is_mapped(f));
}

#[test]
fn deleting_a_table_copy_keeps_the_mapping() {
    let mut e = Env::new();
    let vs = e.vspace();
    let pt = e.obj(ObjectType::PageTable);
    e.k.page_table_map(pt, vs, VA).unwrap();
    let c = e.slot();
    e.k.cap_copy(pt, c).unwrap();
    e.k.cap_delete(pt).unwrap();
    assert_eq!(e.k.page_table_mapped(c), Some(true));
    let pt2 = e.obj(ObjectType::PageTable);
    e.k.page_table_map(pt2, vs, VA).unwrap();
    let f = e.obj(ObjectType::SmallPage);
    e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached).unwrap();
}
