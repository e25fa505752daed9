//! Configuration of the host model: CNode size, untyped memory, ASID pool, limits.
//!
//! [`ModelConfig`] is what [`crate::ModelKernel::new`] consumes. The presets
//! [`ModelConfig::riscv64`] and [`ModelConfig::aarch64`] mimic what the root task hands the
//! memory server on QEMU `virt`: a RAM range cut into naturally aligned power-of-two
//! untypeds (the way seL4's bootinfo cuts free memory, see [`split_aligned`]) plus one
//! device untyped. Neighbours: `model.rs` (validates and applies it), `retype.rs` (uses the
//! fan-out limit), `vspace.rs` (uses the geometry and `user_top`).

use mem_core::{Geometry, Slot};

/// An untyped capability the model pre-installs in the server's CNode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UntypedSpec {
    /// CNode slot of the cap (never 0).
    pub slot: Slot,
    /// Physical base address, aligned to `1 << size_bits`.
    pub paddr: u64,
    /// log2 of the size in bytes.
    pub size_bits: u8,
    /// Device memory: only frames can be retyped from it, and they are not zeroed.
    pub device: bool,
}

impl UntypedSpec {
    /// Size in bytes.
    pub const fn bytes(&self) -> u64 {
        1u64 << self.size_bits
    }
    /// One past the last physical address.
    pub const fn end(&self) -> u64 {
        self.paddr + self.bytes()
    }
}

/// Everything [`crate::ModelKernel::new`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    pub geometry: Geometry,
    /// The server's CNode has slots `0 .. cnode_slots`; slot 0 is the null slot.
    pub cnode_slots: u32,
    /// Untyped caps present at start.
    pub untypeds: Vec<UntypedSpec>,
    /// ASIDs in the server's pool (a seL4 pool holds 512).
    pub asid_pool_size: u32,
    /// `CONFIG_RETYPE_FAN_OUT_LIMIT` (256 by default).
    pub fan_out_limit: u32,
    /// One past the highest mappable user address (exclusive form of `seL4_UserTop`).
    pub user_top: u64,
}

impl ModelConfig {
    /// Physical base of RAM on QEMU `virt` riscv64.
    pub const RISCV64_RAM_BASE: u64 = 0x8000_0000;
    /// Physical base of RAM on QEMU `virt` aarch64.
    pub const AARCH64_RAM_BASE: u64 = 0x4000_0000;
    /// Where the preset device untyped starts (below RAM on both boards).
    pub const DEVICE_BASE: u64 = 0x1000_0000;
    /// Size of the preset device untyped: 16 MiB.
    pub const DEVICE_BITS: u8 = 24;
    /// Offset of the preset RAM range from the RAM base: the part that kernel, root task and
    /// bootinfo would occupy. It is deliberately not a power of two, so the range splits
    /// into untypeds of many sizes (64 KiB, 128 KiB, … up to the largest that fits).
    pub const RAM_SKEW: u64 = 0x11_0000;
    /// CNode slots of the presets.
    pub const DEFAULT_SLOTS: u32 = 1 << 18;
    /// riscv64 `seL4_UserTop` (already exclusive).
    pub const RISCV64_USER_TOP: u64 = 0x0000_003f_ffff_f000;
    /// aarch64 with hypervisor and 40-bit IPA: `seL4_UserTop` is 0xff_ffff_ffff inclusive.
    pub const AARCH64_USER_TOP: u64 = 1 << 40;

    /// riscv64 Sv39 (QEMU `virt`): `total_bytes` of RAM (rounded down to 4 KiB) starting
    /// at `RISCV64_RAM_BASE + RAM_SKEW`, split like bootinfo, and a 16 MiB device untyped at
    /// `DEVICE_BASE`. RAM untypeds sit in slots `1..=n` in address order, the device one
    /// right after; [`ModelConfig::first_free_slot`] is the first slot after them.
    pub fn riscv64(total_bytes: u64) -> Self {
        Self::with_ram(
            Geometry::RISCV64_SV39,
            Self::RISCV64_USER_TOP,
            38,
            Self::RISCV64_RAM_BASE + Self::RAM_SKEW,
            total_bytes,
        )
    }

    /// aarch64 with a 40-bit IPA (seL4 with hypervisor support), same layout as
    /// [`ModelConfig::riscv64`] with RAM at `AARCH64_RAM_BASE + RAM_SKEW`.
    pub fn aarch64(total_bytes: u64) -> Self {
        Self::with_ram(
            Geometry::AARCH64_40,
            Self::AARCH64_USER_TOP,
            47,
            Self::AARCH64_RAM_BASE + Self::RAM_SKEW,
            total_bytes,
        )
    }

    /// Generic preset: RAM `[ram_start, ram_start + total_bytes)` split into naturally
    /// aligned untypeds of at most `max_bits`, then the 16 MiB device untyped.
    pub fn with_ram(geometry: Geometry, user_top: u64, max_bits: u8, ram_start: u64, total_bytes: u64) -> Self {
        let end = ram_start + (total_bytes & !0xfff);
        let mut untypeds: Vec<UntypedSpec> = split_aligned(ram_start, end, max_bits)
            .into_iter()
            .enumerate()
            .map(|(i, (paddr, size_bits))| UntypedSpec { slot: i as Slot + 1, paddr, size_bits, device: false })
            .collect();
        let slot = untypeds.len() as Slot + 1;
        untypeds.push(UntypedSpec { slot, paddr: Self::DEVICE_BASE, size_bits: Self::DEVICE_BITS, device: true });
        ModelConfig {
            geometry,
            cnode_slots: Self::DEFAULT_SLOTS,
            untypeds,
            asid_pool_size: 512,
            fan_out_limit: 256,
            user_top,
        }
    }

    /// The first slot above every preinstalled untyped (where the server's own slots start).
    pub fn first_free_slot(&self) -> Slot {
        self.untypeds.iter().map(|u| u.slot + 1).max().unwrap_or(1)
    }

    /// Total bytes of RAM (non-device) untypeds.
    pub fn ram_bytes(&self) -> u64 {
        self.untypeds.iter().filter(|u| !u.device).map(|u| u.bytes()).sum()
    }

    /// The RAM untypeds.
    pub fn ram_untypeds(&self) -> impl Iterator<Item = &UntypedSpec> + '_ {
        self.untypeds.iter().filter(|u| !u.device)
    }

    /// The device untypeds.
    pub fn device_untypeds(&self) -> impl Iterator<Item = &UntypedSpec> + '_ {
        self.untypeds.iter().filter(|u| u.device)
    }
}

/// Cut `[start, end)` into the largest naturally aligned power-of-two blocks (at least
/// 4 KiB, at most `1 << max_bits`), in address order: what seL4's boot code does with each
/// free memory region. `start` and `end` are rounded to 4 KiB inwards.
pub fn split_aligned(start: u64, end: u64, max_bits: u8) -> Vec<(u64, u8)> {
    let mut at = (start + 0xfff) & !0xfff;
    let end = end & !0xfff;
    let mut out = Vec::new();
    while at < end {
        let align_bits = if at == 0 { 63 } else { at.trailing_zeros() };
        let fit_bits = 63 - (end - at).leading_zeros();
        let bits = align_bits.min(fit_bits).min(u32::from(max_bits));
        out.push((at, bits as u8));
        at += 1u64 << bits;
    }
    out
}
