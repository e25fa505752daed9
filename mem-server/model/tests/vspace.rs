//! ASID pool, page-table and page-mapping rules, with seL4's exact error codes.

mod common;

use common::*;
use mem_core::{Caching, Geometry, Kernel, KernelError, ObjectType};
use mem_model::ModelConfig;
use mem_protocol::{PageSize, Prot};

const VA: u64 = 0x8_0000_0000; // inside riscv64 user space

#[test]
fn asid_assign_rules() {
    let mut cfg = config();
    cfg.asid_pool_size = 2;
    let mut e = Env::from(cfg);
    let a = e.obj(ObjectType::VSpace);
    e.k.asid_assign(a).unwrap();
    assert_eq!(e.k.vspace_asid(a), Some(mem_model::ASID_BASE));
    assert_eq!(e.k.asid_assign(a), Err(KernelError::InvalidCapability));
    let b = e.obj(ObjectType::VSpace);
    e.k.asid_assign(b).unwrap();
    let c = e.obj(ObjectType::VSpace);
    assert_eq!(e.k.asid_assign(c), Err(KernelError::DeleteFirst));
    assert_eq!(e.k.free_asids(), 0);
    // Destroying a VSpace frees its ASID.
    e.k.cap_delete(a).unwrap();
    assert_eq!(e.k.free_asids(), 1);
    e.k.asid_assign(c).unwrap();
    // Not a VSpace.
    let pt = e.obj(ObjectType::PageTable);
    assert_eq!(e.k.asid_assign(pt), Err(KernelError::InvalidCapability));
    assert_eq!(e.k.asid_assign(e.next + 10), Err(KernelError::InvalidCapability));
}

#[test]
fn mapping_needs_an_asid() {
    let mut e = Env::new();
    let vs = e.obj(ObjectType::VSpace);
    let pt = e.obj(ObjectType::PageTable);
    let f = e.obj(ObjectType::SmallPage);
    assert_eq!(e.k.page_table_map(pt, vs, VA), Err(KernelError::InvalidCapability));
    assert_eq!(e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached), Err(KernelError::InvalidCapability));
    // Not a VSpace at all.
    assert_eq!(e.k.page_map(f, pt, VA, Prot::RW, Caching::Cached), Err(KernelError::InvalidCapability));
}

#[test]
fn map_without_page_table_is_failed_lookup() {
    let mut e = Env::new();
    let vs = e.vspace();
    let f = e.obj(ObjectType::SmallPage);
    assert_eq!(e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached), Err(KernelError::FailedLookup));
    let pt = e.obj(ObjectType::PageTable);
    e.k.page_table_map(pt, vs, VA).unwrap();
    // One level is still missing for a small page.
    assert_eq!(e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached), Err(KernelError::FailedLookup));
    let pt2 = e.obj(ObjectType::PageTable);
    e.k.page_table_map(pt2, vs, VA).unwrap();
    e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached).unwrap();
    assert!(e.k.is_mapped(f));
    let t = e.k.translate(vs, VA + 5).unwrap();
    assert_eq!(t.paddr, e.k.page_paddr(f).unwrap() + 5);
    assert_eq!(t.size, PageSize::Small);
    assert_eq!(t.prot, Prot::RW);
}

#[test]
fn page_table_map_rules() {
    let mut e = Env::new();
    let vs = e.vspace();
    let t1 = e.obj(ObjectType::PageTable);
    let t2 = e.obj(ObjectType::PageTable);
    let t3 = e.obj(ObjectType::PageTable);
    e.k.page_table_map(t1, vs, VA).unwrap();
    assert_eq!(e.k.page_table_map(t1, vs, VA + (1 << 30)), Err(KernelError::InvalidCapability));
    e.k.page_table_map(t2, vs, VA).unwrap();
    // Every level on the path has a table now.
    assert_eq!(e.k.page_table_map(t3, vs, VA + 4096), Err(KernelError::DeleteFirst));
    // Within the same 1 GiB, the next 2 MiB slot has no table yet: t3 goes to the last level.
    e.k.page_table_map(t3, vs, VA + MIB2).unwrap();
    assert_eq!(e.k.page_table_mapped(t3), Some(true));
    // At or above user_top.
    let t4 = e.obj(ObjectType::PageTable);
    let top = ModelConfig::RISCV64_USER_TOP;
    assert_eq!(e.k.page_table_map(t4, vs, top), Err(KernelError::InvalidArgument));
    // A frame cap is not a page table.
    let f = e.obj(ObjectType::SmallPage);
    assert_eq!(e.k.page_table_map(f, vs, VA), Err(KernelError::IllegalOperation));
}

#[test]
fn page_table_map_over_large_page_is_delete_first() {
    let mut e = Env::new();
    let vs = e.vspace();
    e.tables_for_large(vs, VA);
    let big = e.obj(ObjectType::LargePage);
    e.k.page_map(big, vs, VA, Prot::READ, Caching::Cached).unwrap();
    let pt = e.obj(ObjectType::PageTable);
    assert_eq!(e.k.page_table_map(pt, vs, VA + 4096), Err(KernelError::DeleteFirst));
}

#[test]
fn page_map_alignment_and_range() {
    let mut e = Env::new();
    let vs = e.vspace();
    e.tables_for_small(vs, VA);
    let f = e.obj(ObjectType::SmallPage);
    assert_eq!(e.k.page_map(f, vs, VA + 1, Prot::RW, Caching::Cached), Err(KernelError::AlignmentError));
    let big = e.obj(ObjectType::LargePage);
    assert_eq!(e.k.page_map(big, vs, VA + 4096, Prot::RW, Caching::Cached), Err(KernelError::AlignmentError));
    let top = ModelConfig::RISCV64_USER_TOP;
    assert_eq!(e.k.page_map(f, vs, top, Prot::RW, Caching::Cached), Err(KernelError::InvalidArgument));
    assert_eq!(e.k.page_map(f, vs, !0xfffu64, Prot::RW, Caching::Cached), Err(KernelError::InvalidArgument));
    assert_eq!(e.k.page_map(f, vs, VA, Prot::NONE, Caching::Cached), Err(KernelError::InvalidArgument));
    // The last page below user_top is mappable.
    e.tables_for_small(vs, top - 4096);
    e.k.page_map(f, vs, top - 4096, Prot::RW, Caching::Cached).unwrap();
}

#[test]
fn one_mapping_per_cap() {
    let mut e = Env::new();
    let vs = e.vspace();
    let other = e.vspace();
    let f = e.map_small(vs, VA, Prot::READ);
    e.tables_for_small(vs, VA + 4096);
    e.tables_for_small(other, VA);
    assert_eq!(e.k.page_map(f, vs, VA + 4096, Prot::READ, Caching::Cached), Err(KernelError::InvalidArgument));
    assert_eq!(e.k.page_map(f, other, VA, Prot::READ, Caching::Cached), Err(KernelError::InvalidCapability));
    // A copy of the cap may map the same frame once elsewhere.
    let c = e.slot();
    e.k.cap_copy(f, c).unwrap();
    assert!(!e.k.is_mapped(c));
    e.k.page_map(c, other, VA, Prot::RW, Caching::Cached).unwrap();
    assert_eq!(e.k.translate(other, VA).unwrap().paddr, e.k.translate(vs, VA).unwrap().paddr);
}

#[test]
fn remap_changes_rights() {
    let mut e = Env::new();
    let vs = e.vspace();
    let f = e.map_small(vs, VA, Prot::READ);
    assert_eq!(e.k.translate(vs, VA).unwrap().prot, Prot::READ);
    e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached).unwrap();
    assert_eq!(e.k.translate(vs, VA).unwrap().prot, Prot::RW);
    e.k.page_map(f, vs, VA, Prot::RWX, Caching::Cached).unwrap();
    assert_eq!(e.k.translate(vs, VA).unwrap().prot, Prot::RWX);
}

#[test]
fn occupied_entry_rules() {
    let mut e = Env::new();
    let vs = e.vspace();
    e.map_small(vs, VA, Prot::READ);
    // Another frame where a frame is mapped.
    let g = e.obj(ObjectType::SmallPage);
    assert_eq!(e.k.page_map(g, vs, VA, Prot::READ, Caching::Cached), Err(KernelError::DeleteFirst));
    // A large page where a table is: the walk goes past its level.
    let big = e.obj(ObjectType::LargePage);
    assert_eq!(e.k.page_map(big, vs, VA, Prot::READ, Caching::Cached), Err(KernelError::FailedLookup));
    // A small page under a large one: the walk stops above its level.
    let base = VA + 4 * MIB2;
    e.k.page_map(big, vs, base, Prot::READ, Caching::Cached).unwrap();
    assert_eq!(e.k.page_map(g, vs, base + 4096, Prot::READ, Caching::Cached), Err(KernelError::FailedLookup));
    // A large page over a large page.
    let big2 = e.obj(ObjectType::LargePage);
    assert_eq!(e.k.page_map(big2, vs, base, Prot::READ, Caching::Cached), Err(KernelError::DeleteFirst));
}

#[test]
fn large_page_translate() {
    let mut e = Env::new();
    let vs = e.vspace();
    e.tables_for_large(vs, VA);
    let big = e.obj(ObjectType::LargePage);
    e.k.page_map(big, vs, VA, Prot::RW, Caching::Cached).unwrap();
    let t = e.k.translate(vs, VA + 0x12_3456).unwrap();
    assert_eq!(t.size, PageSize::Large);
    assert_eq!(t.paddr, e.k.page_paddr(big).unwrap() + 0x12_3456);
    assert_eq!(t.frame_object, e.k.cap_object(big).unwrap());
    assert!(e.k.translate(vs, VA + MIB2).is_none());
    assert_eq!(e.k.mappings(vs).len(), 1);
}

#[test]
fn page_unmap_rules() {
    let mut e = Env::new();
    let vs = e.vspace();
    let f = e.map_small(vs, VA, Prot::RW);
    e.k.page_unmap(f).unwrap();
    assert!(e.k.translate(vs, VA).is_none());
    assert!(!e.k.is_mapped(f));
    // Unmapping an unmapped cap is a no-op; the frame can be mapped elsewhere now.
    e.k.page_unmap(f).unwrap();
    e.tables_for_small(vs, VA + MIB2);
    e.k.page_map(f, vs, VA + MIB2, Prot::RW, Caching::Cached).unwrap();
    let pt = e.obj(ObjectType::PageTable);
    assert_eq!(e.k.page_unmap(pt), Err(KernelError::IllegalOperation));
}

#[test]
fn page_table_unmap_clears_entries() {
    let mut e = Env::new();
    let vs = e.vspace();
    let tables = e.tables_for_small(vs, VA);
    let f = e.obj(ObjectType::SmallPage);
    e.k.page_map(f, vs, VA, Prot::RW, Caching::Cached).unwrap();
    let leaf = *tables.last().unwrap();
    e.k.page_table_unmap(leaf).unwrap();
    assert_eq!(e.k.page_table_mapped(leaf), Some(false));
    assert!(e.k.translate(vs, VA).is_none());
    assert!(!e.k.is_mapped(f));
    // The cap still records its mapping, as in seL4: mapping elsewhere is refused...
    assert!(e.k.cap_mapping(f).is_some());
    e.k.page_table_map(leaf, vs, VA).unwrap();
    assert!(e.k.translate(vs, VA).is_none(), "the table came back empty");
    assert_eq!(e.k.page_map(f, vs, VA + 4096, Prot::RW, Caching::Cached), Err(KernelError::InvalidArgument));
    // ...until page_unmap, which finds nothing to remove and clears the record.
    e.k.page_unmap(f).unwrap();
    assert!(e.k.cap_mapping(f).is_none());
    e.k.page_map(f, vs, VA + 4096, Prot::RW, Caching::Cached).unwrap();
    assert!(e.k.is_mapped(f));
}

#[test]
fn page_table_unmap_needs_final_cap() {
    let mut e = Env::new();
    let vs = e.vspace();
    let pt = e.obj(ObjectType::PageTable);
    // An unmapped table cannot be copied.
    let c = e.slot();
    assert_eq!(e.k.cap_copy(pt, c), Err(KernelError::IllegalOperation));
    e.k.page_table_map(pt, vs, VA).unwrap();
    e.k.cap_copy(pt, c).unwrap();
    assert_eq!(e.k.page_table_unmap(pt), Err(KernelError::RevokeFirst));
    e.k.cap_delete(c).unwrap();
    assert_eq!(e.k.page_table_mapped(pt), Some(true), "deleting a non-final cap keeps the mapping");
    e.k.page_table_unmap(pt).unwrap();
    e.k.page_table_unmap(pt).unwrap();
    assert_eq!(e.k.page_table_unmap(vs), Err(KernelError::IllegalOperation));
}

#[test]
fn four_level_geometry() {
    let mut e = Env::from(config_with(Geometry::FOUR_LEVEL_48, 1 << 47));
    let vs = e.vspace();
    let va = 0x7fff_0000_0000;
    let tables = e.tables_for_small(vs, va);
    assert_eq!(tables.len(), 3);
    let f = e.obj(ObjectType::SmallPage);
    e.k.page_map(f, vs, va, Prot::READ, Caching::Cached).unwrap();
    assert!(e.k.translate(vs, va).is_some());
    // A large page where a last-level table is: the walk goes past its level.
    let big = e.obj(ObjectType::LargePage);
    assert_eq!(e.k.page_map(big, vs, va, Prot::READ, Caching::Cached), Err(KernelError::FailedLookup));
    let pt = e.obj(ObjectType::PageTable);
    e.k.page_table_map(pt, vs, va + MIB2).unwrap();
    // The large-page level had a table already, so the new table went to the last level.
    assert_eq!(e.k.page_map(big, vs, va + MIB2, Prot::READ, Caching::Cached), Err(KernelError::FailedLookup));
    e.k.page_table_unmap(pt).unwrap();
    e.k.page_map(big, vs, va + MIB2, Prot::READ, Caching::Cached).unwrap();
    assert_eq!(e.k.translate(vs, va + MIB2 + 7).unwrap().size, PageSize::Large);
}

#[test]
fn aarch64_root_is_ten_bits() {
    let mut e = Env::from(config_with(Geometry::AARCH64_40, ModelConfig::AARCH64_USER_TOP));
    let vs = e.vspace();
    let va = (1u64 << 40) - 4096;
    let f = e.map_small(vs, va, Prot::RW);
    assert!(e.k.translate(vs, va).is_some());
    assert_eq!(e.k.page_paddr(f).unwrap() + 3, e.k.translate(vs, va + 3).unwrap().paddr);
    let g = e.obj(ObjectType::SmallPage);
    assert_eq!(e.k.page_map(g, vs, 1 << 40, Prot::RW, Caching::Cached), Err(KernelError::InvalidArgument));
}
