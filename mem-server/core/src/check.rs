//! Boundary checks: client-supplied numbers are allegations until they pass through here.
//!
//! Each function turns raw `u64`s into a checked page range or fails with the errno Linux
//! gives for the same mistake. Operation files call these first and afterwards work only
//! with ranges known to be page aligned, non-empty and free of overflow.

use mem_protocol::{Errno, PAGE_SIZE};

/// A page-aligned, non-empty range `[start, end)` with no overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRange {
    pub start: u64,
    pub end: u64,
}

impl PageRange {
    pub fn len(self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
    pub fn pages(self) -> u64 {
        self.len() / PAGE_SIZE
    }
}

pub fn is_aligned(x: u64) -> bool {
    x.is_multiple_of(PAGE_SIZE)
}

/// Round a length up to whole pages: 0 is EINVAL, overflow ENOMEM (Linux mmap).
pub fn page_len(len: u64) -> Result<u64, Errno> {
    if len == 0 {
        return Err(Errno::Inval);
    }
    len.checked_add(PAGE_SIZE - 1).map(|l| l & !(PAGE_SIZE - 1)).ok_or(Errno::NoMem)
}

/// A range for munmap/msync-like calls: aligned start (EINVAL), length rounded up, inside
/// `[0, hi)` (EINVAL otherwise, as Linux munmap says for kernel addresses).
pub fn unmap_range(addr: u64, len: u64, hi: u64) -> Result<PageRange, Errno> {
    if !is_aligned(addr) {
        return Err(Errno::Inval);
    }
    let len = page_len(len).map_err(|_| Errno::Inval)?;
    if addr > hi || len > hi - addr {
        return Err(Errno::Inval);
    }
    Ok(PageRange { start: addr, end: addr + len })
}

/// A range for mprotect: aligned start (EINVAL); `Ok(None)` for a zero length (a no-op
/// success in Linux); ENOMEM when the end overflows. A range running past the user range
/// is clamped to it, with `true` saying so: like Linux, the areas up to the first hole
/// (here: the user top) change, then the call fails with ENOMEM.
pub fn protect_range(addr: u64, len: u64, hi: u64) -> Result<Option<(PageRange, bool)>, Errno> {
    if !is_aligned(addr) {
        return Err(Errno::Inval);
    }
    if len == 0 {
        return Ok(None);
    }
    let len = page_len(len)?;
    let end = addr.checked_add(len).ok_or(Errno::NoMem)?;
    if addr >= hi {
        return Err(Errno::NoMem);
    }
    Ok(Some((PageRange { start: addr, end: end.min(hi) }, end > hi)))
}

/// A fixed mapping target, checked in Linux's order: a length that does not fit below
/// `hi` (ENOMEM), then alignment (EINVAL), then `addr < lo` (EPERM, like `mmap_min_addr`).
pub fn fixed_range(addr: u64, len: u64, lo: u64, hi: u64) -> Result<PageRange, Errno> {
    let len = page_len(len)?;
    let end = addr.checked_add(len).ok_or(Errno::NoMem)?;
    if end > hi {
        return Err(Errno::NoMem);
    }
    if !is_aligned(addr) {
        return Err(Errno::Inval);
    }
    if addr < lo {
        return Err(Errno::Perm);
    }
    Ok(PageRange { start: addr, end })
}

/// A single address inside the user range (EFAULT otherwise).
pub fn user_addr(addr: u64, lo: u64, hi: u64) -> Result<u64, Errno> {
    if addr < lo || addr >= hi {
        return Err(Errno::Fault);
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_alignment() {
        assert_eq!(page_len(0), Err(Errno::Inval));
        assert_eq!(page_len(1), Ok(4096));
        assert_eq!(page_len(u64::MAX), Err(Errno::NoMem));
        assert_eq!(unmap_range(0x1001, 10, 1 << 40), Err(Errno::Inval));
        assert_eq!(unmap_range(0x1000, 0, 1 << 40), Err(Errno::Inval));
        assert_eq!(unmap_range(1 << 40, 4096, 1 << 40), Err(Errno::Inval));
        assert_eq!(unmap_range(0x1000, 1, 1 << 40), Ok(PageRange { start: 0x1000, end: 0x2000 }));
        assert_eq!(protect_range(0x1000, 0, 1 << 40), Ok(None));
        assert_eq!(protect_range(0x1000, u64::MAX - 10, 1 << 40), Err(Errno::NoMem));
        assert_eq!(protect_range(0x1000, 1 << 41, 1 << 40), Ok(Some((PageRange { start: 0x1000, end: 1 << 40 }, true))));
        assert_eq!(protect_range(1 << 40, 4096, 1 << 40), Err(Errno::NoMem));
        assert_eq!(fixed_range(0x1000, 4096, 0x10000, 1 << 40), Err(Errno::Perm));
        assert_eq!(fixed_range(0x10000, 1 << 41, 0x10000, 1 << 40), Err(Errno::NoMem));
        assert_eq!(user_addr(u64::MAX, 0x10000, 1 << 40), Err(Errno::Fault));
    }
}
