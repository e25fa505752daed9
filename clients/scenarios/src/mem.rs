//! Volatile memory touches of mapped pages (each one may fault and be served by the
//! memory server, or kill this thread if the server cannot resolve it).

use core::ptr;

use mem_protocol::PAGE_SIZE;

/// Offset of the last `u64` in a page.
pub const PAGE_END: u64 = PAGE_SIZE - 8;

/// Write `value` as a `u64` at `addr`.
///
/// # Safety
/// `addr` must be 8-byte aligned and lie in a writable mapping that nothing in this
/// program borrows as a Rust reference (pages handed out by the server's `mmap` / `shmat`
/// replies), or the caller must intend the fault (the hostile and killed-by-fault steps).
pub unsafe fn poke(addr: u64, value: u64) {
    // SAFETY: per the function's contract.
    unsafe { ptr::write_volatile(addr as *mut u64, value) }
}

/// Read the `u64` at `addr`.
///
/// # Safety
/// As for [`poke`], with a readable mapping.
pub unsafe fn peek(addr: u64) -> u64 {
    // SAFETY: per the function's contract.
    unsafe { ptr::read_volatile(addr as *const u64) }
}

/// Write `bytes` at `addr`, byte by byte.
///
/// # Safety
/// As for [`poke`], for `addr..addr + bytes.len()`.
pub unsafe fn write_bytes(addr: u64, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        // SAFETY: per the function's contract.
        unsafe { ptr::write_volatile((addr + i as u64) as *mut u8, b) }
    }
}

/// Whether the bytes at `addr` equal `bytes`.
///
/// # Safety
/// As for [`peek`], for `addr..addr + bytes.len()`.
pub unsafe fn bytes_equal(addr: u64, bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| {
        // SAFETY: per the function's contract.
        unsafe { ptr::read_volatile((addr + i as u64) as *const u8) == b }
    })
}
