//! Zeroing and copying whole pages: the bulk of the work in a first-touch or copy-on-write
//! fault once the frame is reachable (the direct map, or the window of `window.rs`).
//!
//! The `core` routines (`write_bytes`, `copy_nonoverlapping`) come from `compiler_builtins`,
//! which on these targets moves 8 bytes per ~3 instructions; a page is always 4 KiB
//! aligned and a multiple of 64 bytes long, so an unrolled loop of register-pair stores does
//! the same job in about a third of the instructions (aarch64: `stp` of two 8-byte registers;
//! riscv64: `sd`). General-purpose registers only: floating-point or vector registers would
//! make the server a user of the lazily switched FPU state, which costs kernel entries.
//! aarch64 `dc zva` is not usable: seL4 leaves `SCTLR_EL1.DZE` clear, so it traps at EL0.
//! Neighbours: `window.rs` (the only user).

/// Bytes each loop iteration handles; every length given here is a multiple of it.
pub const CHUNK: usize = 64;

/// Fill `len` bytes at `dst` with zeroes.
///
/// # Safety
/// `dst` must be valid for writes of `len` bytes and 8-byte aligned; `len` a multiple of
/// [`CHUNK`].
pub unsafe fn zero(dst: *mut u8, len: usize) {
    debug_assert!(len.is_multiple_of(CHUNK) && (dst as usize).is_multiple_of(8));
    if len == 0 {
        return;
    }
    let end = dst.wrapping_add(len);
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the caller guarantees `dst .. dst + len` is writable and aligned, and `len`
    // is a non-zero multiple of 64, so the loop stores exactly that range and ends with
    // `dst == end`; only the two named registers and the flags change.
    unsafe {
        core::arch::asm!(
            "2:",
            "stp xzr, xzr, [{d}]",
            "stp xzr, xzr, [{d}, #16]",
            "stp xzr, xzr, [{d}, #32]",
            "stp xzr, xzr, [{d}, #48]",
            "add {d}, {d}, #64",
            "cmp {d}, {e}",
            "b.ne 2b",
            d = inout(reg) dst => _,
            e = in(reg) end,
            options(nostack),
        );
    }
    #[cfg(target_arch = "riscv64")]
    // SAFETY: as above: the caller guarantees the range, the loop stores exactly
    // `dst .. end` in 64-byte steps; only the named register changes.
    unsafe {
        core::arch::asm!(
            "2:",
            "sd zero, 0({d})",
            "sd zero, 8({d})",
            "sd zero, 16({d})",
            "sd zero, 24({d})",
            "sd zero, 32({d})",
            "sd zero, 40({d})",
            "sd zero, 48({d})",
            "sd zero, 56({d})",
            "addi {d}, {d}, 64",
            "bne {d}, {e}, 2b",
            d = inout(reg) dst => _,
            e = in(reg) end,
            options(nostack),
        );
    }
}

/// Copy `len` bytes from `src` to `dst`.
///
/// # Safety
/// `src` valid for reads and `dst` for writes of `len` bytes, both 8-byte aligned, the two
/// ranges disjoint; `len` a multiple of [`CHUNK`].
pub unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) {
    debug_assert!(len.is_multiple_of(CHUNK));
    debug_assert!((dst as usize | src as usize).is_multiple_of(8));
    if len == 0 {
        return;
    }
    let end = dst.wrapping_add(len);
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the caller guarantees both ranges (aligned, disjoint, `len` a non-zero
    // multiple of 64); each iteration loads 64 bytes from `s` and stores them at `d`, and
    // the loop ends with `d == end`. Only named (scratch) registers and the flags change.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldp {a}, {b}, [{s}]",
            "ldp {c}, {f}, [{s}, #16]",
            "stp {a}, {b}, [{d}]",
            "stp {c}, {f}, [{d}, #16]",
            "ldp {a}, {b}, [{s}, #32]",
            "ldp {c}, {f}, [{s}, #48]",
            "stp {a}, {b}, [{d}, #32]",
            "stp {c}, {f}, [{d}, #48]",
            "add {s}, {s}, #64",
            "add {d}, {d}, #64",
            "cmp {d}, {e}",
            "b.ne 2b",
            d = inout(reg) dst => _,
            s = inout(reg) src => _,
            e = in(reg) end,
            a = out(reg) _,
            b = out(reg) _,
            c = out(reg) _,
            f = out(reg) _,
            options(nostack),
        );
    }
    #[cfg(target_arch = "riscv64")]
    // SAFETY: as above; each iteration moves 64 bytes through four scratch registers.
    unsafe {
        core::arch::asm!(
            "2:",
            "ld {a}, 0({s})",
            "ld {b}, 8({s})",
            "ld {c}, 16({s})",
            "ld {f}, 24({s})",
            "sd {a}, 0({d})",
            "sd {b}, 8({d})",
            "sd {c}, 16({d})",
            "sd {f}, 24({d})",
            "ld {a}, 32({s})",
            "ld {b}, 40({s})",
            "ld {c}, 48({s})",
            "ld {f}, 56({s})",
            "sd {a}, 32({d})",
            "sd {b}, 40({d})",
            "sd {c}, 48({d})",
            "sd {f}, 56({d})",
            "addi {s}, {s}, 64",
            "addi {d}, {d}, 64",
            "bne {d}, {e}, 2b",
            d = inout(reg) dst => _,
            s = inout(reg) src => _,
            e = in(reg) end,
            a = out(reg) _,
            b = out(reg) _,
            c = out(reg) _,
            f = out(reg) _,
            options(nostack),
        );
    }
}
