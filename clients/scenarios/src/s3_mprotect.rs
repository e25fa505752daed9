//! Scenario 3, mprotect.
//!
//! arg 0: 4 RW pages, written; mprotect RO; STEP(1, addr); then a write at `addr`, which
//! the server refuses (UNRESOLVED DENIED at `addr`; this thread stays blocked).
//! arg 1: RW mapping with maximum protection RW; mprotect RO, the data reads back;
//! mprotect RW, write and read back; mprotect RWX fails with EACCES; PASS.
//!
//! Failure codes: 301 mmap, 302 mprotect RO (detail errno), 303 the write to the
//! read-only page returned; 311 mmap with max_prot, 312 mprotect RO, 313 read under RO
//! (detail value), 314 mprotect RW, 315 read back after write (detail value), 316 mprotect
//! RWX was not EACCES (detail errno, 0 if it succeeded), 317 unknown role (detail arg),
//! 318 the final munmap.

use mem_client::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_RW, PROT_RWX};
use mem_client::Client;
use mem_protocol::{Errno, PAGE_SIZE};

use crate::mem::{peek, poke};
use crate::report::{ensure_eq, expect_errno, step, Check, Fail, Outcome};

const PAGES: u64 = 4;
const LEN: u64 = PAGES * PAGE_SIZE;

pub fn run(c: &mut Client, arg: u64) -> Outcome {
    match arg {
        0 => killed_by_write(c),
        1 => max_prot(c),
        other => Err(Fail::new(317).detail(other)),
    }
}

fn killed_by_write(c: &mut Client) -> Outcome {
    let addr = c.mmap(0, LEN, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS).or_fail(301)?;
    for i in 0..PAGES {
        // SAFETY: inside the RW mapping the server just returned.
        unsafe { poke(addr + i * PAGE_SIZE, 0x3000 + i) };
    }
    c.mprotect(addr, LEN, PROT_READ).or_fail(302)?;
    step(1, &[addr]);
    // SAFETY: deliberately writes a read-only page: the server refuses the fault and this
    // thread never runs again.
    unsafe { poke(addr, 0xdead) };
    Err(Fail::new(303).at(addr))
}

fn max_prot(c: &mut Client) -> Outcome {
    let addr = c
        .mmap_max_prot(0, LEN, PROT_RW, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
        .or_fail(311)?;
    // SAFETY: inside the RW mapping the server just returned.
    unsafe { poke(addr, 0x3100) };
    c.mprotect(addr, LEN, PROT_READ).or_fail(312)?;
    // SAFETY: the mapping is now read-only; reading is allowed.
    ensure_eq(unsafe { peek(addr) }, 0x3100, 313, addr)?;
    c.mprotect(addr, LEN, PROT_RW).or_fail(314)?;
    let last = addr + (PAGES - 1) * PAGE_SIZE;
    // SAFETY: RW again.
    unsafe {
        poke(addr, 0x3101);
        poke(last, 0x3102);
    }
    // SAFETY: as above.
    ensure_eq(unsafe { peek(addr) }, 0x3101, 315, addr)?;
    // SAFETY: as above.
    ensure_eq(unsafe { peek(last) }, 0x3102, 315, last)?;
    expect_errno(c.mprotect(addr, LEN, PROT_RWX), Errno::Acces, 316)?;
    c.munmap(addr, LEN).or_fail(318)?;
    Ok(())
}
