//! The riscv64 / aarch64 presets and `split_aligned`, plus a 100,000-page smoke run that
//! keeps the model's per-operation cost honest.

mod common;

use std::time::Instant;

use mem_core::{Caching, Kernel, ObjectType, Slot};
use mem_model::{split_aligned, ModelConfig, ModelKernel};
use mem_protocol::Prot;

fn check_preset(cfg: &ModelConfig, total: u64) {
    assert_eq!(cfg.ram_bytes(), total & !0xfff);
    let mut all: Vec<_> = cfg.untypeds.clone();
    all.sort_by_key(|u| u.paddr);
    for w in all.windows(2) {
        assert!(w[0].end() <= w[1].paddr, "overlap {:?} {:?}", w[0], w[1]);
    }
    for u in &cfg.untypeds {
        assert_eq!(u.paddr % u.bytes(), 0, "{u:?} not naturally aligned");
        assert!(u.slot > 0 && u.slot < cfg.first_free_slot());
    }
    assert_eq!(cfg.device_untypeds().count(), 1);
    let sizes: std::collections::BTreeSet<u8> = cfg.ram_untypeds().map(|u| u.size_bits).collect();
    assert!(sizes.len() >= 4, "a mix of untyped sizes: {sizes:?}");
    let k = ModelKernel::new(cfg.clone());
    for u in &cfg.untypeds {
        assert_eq!(k.untyped_free_bytes(u.slot), Some(u.bytes()));
    }
    assert_eq!(k.occupied_slots(), cfg.untypeds.len());
}

#[test]
fn presets_are_consistent() {
    for total in [64 << 20, 1 << 30, (3 << 30) + 12345] {
        check_preset(&ModelConfig::riscv64(total), total);
        check_preset(&ModelConfig::aarch64(total), total);
    }
    let r = ModelConfig::riscv64(1 << 30);
    assert_eq!(r.user_top, 0x3f_ffff_f000);
    assert_eq!(r.fan_out_limit, 256);
    assert_eq!(r.asid_pool_size, 512);
    assert!(r.ram_untypeds().all(|u| u.paddr >= ModelConfig::RISCV64_RAM_BASE));
    let a = ModelConfig::aarch64(1 << 30);
    assert_eq!(a.user_top, 1 << 40);
    assert!(a.ram_untypeds().all(|u| u.paddr >= ModelConfig::AARCH64_RAM_BASE));
}

#[test]
fn split_is_bootinfo_like() {
    assert_eq!(split_aligned(0x1000, 0x4000, 47), vec![(0x1000, 12), (0x2000, 13)]);
    assert_eq!(split_aligned(0, 1 << 20, 47), vec![(0, 20)]);
    assert_eq!(split_aligned(0, 1 << 20, 18), (0..4).map(|i| (i << 18, 18)).collect::<Vec<_>>());
    assert_eq!(split_aligned(0x1800, 0x3800, 47), vec![(0x2000, 12)]);
    assert!(split_aligned(0x1800, 0x2800, 47).is_empty());
    assert!(split_aligned(0x5000, 0x5000, 47).is_empty());
}

#[test]
#[should_panic(expected = "overlap")]
fn overlapping_untypeds_are_rejected() {
    let mut cfg = common::config();
    cfg.untypeds[1].paddr = common::RAM_BASE;
    let _ = ModelKernel::new(cfg);
}

/// Map, touch and unmap 100,000 small pages in one VSpace the way the server does (batched
/// retypes, tables on demand). Prints the per-page cost; asserts only a loose bound so a
/// loaded machine does not fail it.
#[test]
fn hundred_thousand_pages() {
    let cfg = ModelConfig::riscv64(1 << 30);
    let mut next: Slot = cfg.first_free_slot();
    let big = cfg.ram_untypeds().max_by_key(|u| u.size_bits).unwrap().slot;
    let mut k = ModelKernel::new(cfg);
    let vs = next;
    next += 1;
    k.untyped_retype(big, ObjectType::VSpace, vs, 1).unwrap();
    k.asid_assign(vs).unwrap();
    let n: u64 = 100_000;
    let base: u64 = 0x10_0000_0000;
    let t0 = Instant::now();
    let mut frames = Vec::with_capacity(n as usize);
    let mut pt_next: Slot = 150_000;
    for i in 0..n {
        let va = base + i * 4096;
        if i % 256 == 0 {
            k.untyped_retype(big, ObjectType::SmallPage, next, 256).unwrap();
        }
        let f = next + (i % 256) as Slot;
        if i % 256 == 255 {
            next += 256;
        }
        if k.page_map(f, vs, va, Prot::RW, Caching::Cached).is_err() {
            loop {
                let pt = pt_next;
                pt_next += 1;
                k.untyped_retype(big, ObjectType::PageTable, pt, 1).unwrap();
                if k.page_table_map(pt, vs, va).is_err() {
                    k.cap_delete(pt).unwrap();
                    break;
                }
            }
            k.page_map(f, vs, va, Prot::RW, Caching::Cached).unwrap();
        }
        frames.push(f);
    }
    let mapped = t0.elapsed();
    for i in 0..frames.len() {
        let va = base + i as u64 * 4096;
        k.user_write(vs, va + 8, &(i as u64).to_le_bytes()).unwrap();
    }
    let written = t0.elapsed();
    // Copy-on-write style copies of written pages (shared chunks: no allocation).
    for w in frames.windows(2).step_by(2) {
        k.frame_copy(w[0], 0, w[1], 0, 4096).unwrap();
    }
    let copied = t0.elapsed();
    let mut word = [0u8; 8];
    k.user_read(vs, base + 4096 + 8, &mut word).unwrap();
    assert_eq!(u64::from_le_bytes(word), 0);
    k.user_write(vs, base + 4096 + 8, &[1]).unwrap();
    k.user_read(vs, base + 8, &mut word).unwrap();
    assert_eq!(u64::from_le_bytes(word), 0, "the copy's source is not affected");
    for &f in &frames {
        k.page_unmap(f).unwrap();
    }
    let total = t0.elapsed();
    assert_eq!(k.live_objects(ObjectType::SmallPage), n.div_ceil(256) as usize * 256);
    assert!(k.mappings(vs).is_empty());
    eprintln!(
        "100k pages: map {:?}/page, user_write {:?}/page, frame_copy {:?}/page, unmap {:?}/page",
        mapped / n as u32,
        (written - mapped) / n as u32,
        (copied - written) / (n as u32 / 2),
        (total - copied) / n as u32
    );
    assert!(total.as_secs() < 20);
}
