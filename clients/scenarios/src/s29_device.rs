//! Scenario 29, device: a driver client reads a device of the QEMU `virt` board that the
//! kernel does not use — the real-time clock (aarch64: PL031 at `0x0901_0000`; riscv64:
//! Goldfish RTC at `0x0010_1000`) — through a page the administrator maps into it with
//! `MapPhys` (uncached), and checks what the device must show.
//!
//! `arg`: where the administrator maps the device page; `peer`: its physical address.
//! 1. Its own `MapPhys` of the device is EPERM (a client holds no grant); STEP(1).
//! 2. After the answer: Query shows the page mapped, shared and without a physical address
//!    (clients never see one); Layout shows a device area there. Then the registers:
//!    - PL031: the eight identification bytes (PeriphID0..3, PCellID0..3 at `0xfe0`) are
//!      `31 10 14 00 0d f0 05 b1`; the data register holds a Unix time after 2020 and
//!      advances (by one second, polled); a write to the load register reads back.
//!    - Goldfish: the time (nanoseconds, low word first) is after 2020 and advances between
//!      two reads; a write to IRQ_ENABLED reads back (1, then 0 again).
//! 3. munmap of the device page; STEP(2); after the answer it reads the address again:
//!    unresolved (NO_AREA), the thread stays stopped.
//!
//! Failure codes: 2901 own MapPhys not EPERM (detail errno, 0 if it succeeded); 2902 Query
//! (detail errno); 2903 not shared or a paddr shown (detail paddr); 2904 Layout (detail
//! errno); 2905 no device area at `arg` (detail kind code); 2906 an ID byte (detail value,
//! addr = register offset); 2907 time before 2020 (detail value); 2908 time did not
//! advance (detail the later value); 2909 a written register did not read back (detail
//! value); 2910 munmap (detail errno).

use mem_client::Client;
use mem_protocol::{AreaKindCode, Errno, Placement, Prot, Request, Target, PAGE_SIZE};

use crate::report::{ensure, ensure_eq, errno_detail, step, Check, Fail, Outcome};

/// 2020-01-01T00:00:00Z as a Unix time.
const Y2020: u64 = 1_577_836_800;

pub fn run(c: &mut Client, arg: u64, peer: u32) -> Outcome {
    let (va, pa) = (arg, u64::from(peer));
    let own = Request::MapPhys { target: Target::Own, addr: 0, placement: Placement::Anywhere, paddr: pa, len: PAGE_SIZE, prot: Prot::READ };
    match c.request(&own) {
        Err(e) if e.errno() == Errno::Perm => {}
        Err(e) => return Err(Fail::new(2901).detail(errno_detail(e.errno()))),
        Ok(_) => return Err(Fail::new(2901)),
    }
    step(1, &[]);

    let q = c.query(va).or_fail(2902)?;
    ensure(q.shared, 2903)?;
    ensure_eq(q.paddr, 0, 2903, va)?;
    let mut kind = None;
    c.layout(Target::Own, va, |e| {
        if e.start <= va && va < e.end && kind.is_none() {
            kind = Some(e.kind);
        }
    })
    .or_fail(2904)?;
    if kind != Some(AreaKindCode::Phys) {
        return Err(Fail::new(2905).detail(kind.map_or(u64::MAX, |k| k as u64)));
    }
    rtc::check(va)?;

    c.munmap(va, PAGE_SIZE).or_fail(2910)?;
    step(2, &[va]);
    // SAFETY: deliberately reading an address that is no longer mapped: the server cannot
    // resolve the fault and this thread stays stopped (the root task expects the note).
    unsafe { rtc::read32(va) };
    Ok(())
}

/// The RTC's registers, 32 bits wide, read and written uncached through the mapping.
mod rtc {
    use super::*;

    /// Read the register at `addr`.
    ///
    /// # Safety
    /// `addr` must be 4-byte aligned in a readable mapping (the device page), or the caller
    /// must intend the fault.
    pub unsafe fn read32(addr: u64) -> u32 {
        // SAFETY: per the function's contract.
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    }

    /// Write the register at `addr`.
    ///
    /// # Safety
    /// `addr` must be 4-byte aligned in a writable mapping of the device page.
    unsafe fn write32(addr: u64, v: u32) {
        // SAFETY: per the function's contract.
        unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
    }

    /// PL031 (ARM PrimeCell RTC).
    #[cfg(target_arch = "aarch64")]
    pub fn check(va: u64) -> Outcome {
        const DR: u64 = 0x000;
        const LR: u64 = 0x008;
        const ID: [u32; 8] = [0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
        for (i, &want) in ID.iter().enumerate() {
            let off = 0xfe0 + 4 * i as u64;
            // SAFETY: the device page is mapped read-write at `va`; `off` is a register.
            let got = unsafe { read32(va + off) } & 0xff;
            ensure_eq(u64::from(got), u64::from(want), 2906, off)?;
        }
        // SAFETY: as above (the data register).
        let t0 = u64::from(unsafe { read32(va + DR) });
        if t0 < Y2020 {
            return Err(Fail::new(2907).detail(t0));
        }
        // The counter ticks once a second: poll it (a few million reads at most).
        let mut t1 = t0;
        for _ in 0..50_000_000u32 {
            // SAFETY: as above.
            t1 = u64::from(unsafe { read32(va + DR) });
            if t1 != t0 {
                break;
            }
        }
        if t1 <= t0 || t1 > t0 + 5 {
            return Err(Fail::new(2908).detail(t1));
        }
        // Writes reach the device: the load register keeps what was written (the current
        // time, so the clock does not move).
        // SAFETY: as above (the load register is writable).
        let back = unsafe {
            write32(va + LR, t1 as u32);
            read32(va + LR)
        };
        ensure_eq(u64::from(back), t1, 2909, LR)
    }

    /// Goldfish RTC (QEMU riscv `virt`).
    #[cfg(target_arch = "riscv64")]
    pub fn check(va: u64) -> Outcome {
        const TIME_LOW: u64 = 0x00;
        const TIME_HIGH: u64 = 0x04;
        const IRQ_ENABLED: u64 = 0x10;
        // Reading the low word latches the high word.
        // SAFETY (all register accesses below): the device page is mapped read-write at
        // `va`; every offset is one of its registers.
        let now = || unsafe {
            let lo = read32(va + TIME_LOW);
            let hi = read32(va + TIME_HIGH);
            u64::from(hi) << 32 | u64::from(lo)
        };
        let t0 = now();
        if t0 / 1_000_000_000 < Y2020 {
            return Err(Fail::new(2907).detail(t0));
        }
        let mut t1 = now();
        for _ in 0..1000 {
            if t1 != t0 {
                break;
            }
            t1 = now();
        }
        if t1 <= t0 {
            return Err(Fail::new(2908).detail(t1));
        }
        for v in [1, 0] {
            // SAFETY: as above.
            let back = unsafe {
                write32(va + IRQ_ENABLED, v);
                read32(va + IRQ_ENABLED)
            };
            ensure_eq(u64::from(back), u64::from(v), 2909, IRQ_ENABLED)?;
        }
        Ok(())
    }
}
