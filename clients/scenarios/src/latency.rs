//! The latency part of `make bench-sel4` (instruction-counting kernel, one core): how long
//! one client's fault waits while another client — or the administrator — has the server
//! do something large.
//!
//! - victim (scenario 36): `VICTIM_PAGES` lazy pages in 1 MiB areas (never a 2 MiB page);
//!   STEP(1); then one store per page, last page of each area first (no fault-around),
//!   reading the instruction counter before and after each: every store is one fault's
//!   round trip. STEP(2, [worst, faults, sum of round trips]), never answered.
//! - aggressor (scenario 37, `arg` = the operation): builds what the operation needs,
//!   STEP(1); then the operation alone, its instructions counted, STEP(2, [total]), never
//!   answered. 1: munmap of [`BIG_PAGES`] populated pages; 2: munmap over [`AREAS`] areas;
//!   3: shmdt of an attached, filled [`SHM_PAGES`]-page segment marked for removal (it is
//!   destroyed with that detach; one user's segments are held to a quarter of the system
//!   limit, so not 65,536 pages on a 2 GiB board); 4: `Layout` of [`AREAS`] areas; 0 and 5:
//!   only the pages ([`BIG_PAGES`], [`CLONE_PAGES`], populated), for the administrator's
//!   operations (`DestroySpace`, `Clone`) the root task runs itself. Pages are 4 KiB (1 MiB
//!   areas, never a 2 MiB page).
//!
//! Failure codes: 3601 mmap / populate (detail errno), 3602 munmap, 3603 shm calls, 3604
//! Layout; 3699 unknown operation (detail arg).

use mem_client::linux::{IPC_CREAT, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_READ, PROT_RW};
use mem_client::Client;
use mem_protocol::{Target, PAGE_SIZE};

use crate::mem::poke;
use crate::report::{step, Check, Fail, Outcome};

/// Pages the victim touches.
pub const VICTIM_PAGES: u64 = 2048;
/// Pages of the big operations (256 MiB).
pub const BIG_PAGES: u64 = 65_536;
/// Pages of the space the administrator clones.
pub const CLONE_PAGES: u64 = 16_384;
/// Pages of the shm segment (64 MiB).
pub const SHM_PAGES: u64 = 16_384;
/// Areas of the many-areas operations (Linux's `vm.max_map_count`, 65,530, less the few
/// the program itself has).
pub const AREAS: u64 = 65_500;

const VICTIM_BASE: u64 = 0x30_0000_1000;
const AREA_PAGES: u64 = 256;
const AREA_STRIDE: u64 = 2 << 20;
const BIG_BASE: u64 = 0x28_0000_0000;
const AREAS_BASE: u64 = 0x38_0000_0000;

#[cfg(target_arch = "aarch64")]
fn now() -> u64 {
    let v: u64;
    // SAFETY: reading PMCCNTR_EL0 (the benchmark kernel exports it and the benchmark client
    // has started it) has no side effect.
    unsafe { core::arch::asm!("isb", "mrs {}, pmccntr_el0", out(reg) v, options(nostack)) };
    v
}

#[cfg(target_arch = "riscv64")]
fn now() -> u64 {
    let v: u64;
    // SAFETY: reading the instret counter has no side effect.
    unsafe { core::arch::asm!("rdinstret {}", out(reg) v, options(nomem, nostack)) };
    v
}

pub fn victim(c: &mut Client) -> Outcome {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    for a in 0..VICTIM_PAGES / AREA_PAGES {
        c.mmap(VICTIM_BASE + a * AREA_STRIDE, AREA_PAGES * PAGE_SIZE, PROT_RW, flags).or_fail(3601)?;
    }
    step(1, &[]);
    let (mut worst, mut sum) = (0u64, 0u64);
    for a in 0..VICTIM_PAGES / AREA_PAGES {
        for p in (0..AREA_PAGES).rev() {
            let at = VICTIM_BASE + a * AREA_STRIDE + p * PAGE_SIZE;
            let t0 = now();
            // SAFETY: inside the RW areas mapped above.
            unsafe { poke(at, p) };
            let d = now() - t0;
            worst = worst.max(d);
            sum += d;
        }
    }
    step(2, &[worst, VICTIM_PAGES, sum]);
    Ok(())
}

/// `pages` populated 4 KiB pages (never a 2 MiB page: 1 MiB areas one page past each
/// 2 MiB boundary, like the victim's) from `BIG_BASE`; the span they lie in.
fn big(c: &mut Client, pages: u64) -> Result<u64, Fail> {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    for a in 0..pages / AREA_PAGES {
        let at = BIG_BASE + PAGE_SIZE + a * AREA_STRIDE;
        c.mmap(at, AREA_PAGES * PAGE_SIZE, PROT_RW, flags).or_fail(3601)?;
        c.populate(at, AREA_PAGES * PAGE_SIZE).or_fail(3601)?;
    }
    Ok(pages / AREA_PAGES * AREA_STRIDE)
}

/// `AREAS` one-page areas of alternating rights (never merged), a page apart.
fn areas(c: &mut Client) -> Outcome {
    for i in 0..AREAS {
        let prot = if i % 2 == 0 { PROT_RW } else { PROT_READ };
        c.mmap(AREAS_BASE + 2 * i * PAGE_SIZE, PAGE_SIZE, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE).or_fail(3601)?;
    }
    Ok(())
}

pub fn aggressor(c: &mut Client, op: u64) -> Outcome {
    let total = match op {
        0 | 5 => {
            big(c, if op == 0 { BIG_PAGES } else { CLONE_PAGES })?;
            step(1, &[]);
            return Ok(());
        }
        1 => {
            let span = big(c, BIG_PAGES)?;
            step(1, &[]);
            let t0 = now();
            c.munmap(BIG_BASE, span).or_fail(3602)?;
            now() - t0
        }
        2 => {
            areas(c)?;
            step(1, &[]);
            let t0 = now();
            c.munmap(AREAS_BASE, 2 * AREAS * PAGE_SIZE).or_fail(3602)?;
            now() - t0
        }
        3 => {
            let len = SHM_PAGES * PAGE_SIZE;
            let id = c.shmget(None, len, IPC_CREAT | 0o600).or_fail(3603)?;
            let at = c.shmat(id, None, false).or_fail(3603)?;
            c.populate(at, len).or_fail(3603)?;
            c.shmctl_rmid(id).or_fail(3603)?;
            step(1, &[]);
            let t0 = now();
            c.shmdt(at).or_fail(3603)?;
            now() - t0
        }
        4 => {
            areas(c)?;
            step(1, &[]);
            let t0 = now();
            let mut n = 0u64;
            c.layout(Target::Own, 0, |_| n += 1).or_fail(3604)?;
            now() - t0
        }
        _ => return Err(Fail::new(3699).detail(op)),
    };
    step(2, &[total]);
    Ok(())
}
