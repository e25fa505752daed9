//! Scenario 4, fixed-mmap: 8 pages `MAP_FIXED` at [`FIXED_ADDR`], written; `MAP_FIXED` of 2
//! fresh pages over pages 2..4 returns exactly that address and reads zero, pages 0, 1 and
//! 4..8 keep their data; `MAP_FIXED_NOREPLACE` over page 6 fails with EEXIST.
//!
//! Failure codes: 401 fixed mmap (detail errno), 402 it returned another address (detail
//! the address), 403 the replacing fixed mmap, 404 it returned another address, 405 a
//! replaced page is not zero (detail value, addr), 406 a kept page lost its data, 407
//! FIXED_NOREPLACE was not EEXIST (detail errno, 0 if it succeeded), 408 the final munmap.

use mem_client::linux::{MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_RW};
use mem_client::Client;
use mem_protocol::{Errno, PAGE_SIZE};

use crate::mem::{peek, poke, PAGE_END};
use crate::report::{ensure_eq, expect_errno, Check, Outcome};

/// Where the mapping goes: far from the program image (low addresses) and from the
/// process's fixed pages at 0x7000_0000.
pub const FIXED_ADDR: u64 = 0x5000_0000;
const PAGES: u64 = 8;

fn value(i: u64) -> u64 {
    0x4000 + i
}

pub fn run(c: &mut Client) -> Outcome {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    let base = c.mmap(FIXED_ADDR, PAGES * PAGE_SIZE, PROT_RW, flags).or_fail(401)?;
    ensure_eq(base, FIXED_ADDR, 402, base)?;
    for i in 0..PAGES {
        // SAFETY: inside the RW mapping the server just made at FIXED_ADDR.
        unsafe { poke(base + i * PAGE_SIZE, value(i)) };
    }
    let over = base + 2 * PAGE_SIZE;
    let got = c.mmap(over, 2 * PAGE_SIZE, PROT_RW, flags).or_fail(403)?;
    ensure_eq(got, over, 404, got)?;
    for i in 2..4 {
        let page = base + i * PAGE_SIZE;
        // SAFETY: the replacing RW mapping covers pages 2 and 3.
        let (start, end) = unsafe { (peek(page), peek(page + PAGE_END)) };
        ensure_eq(start, 0, 405, page)?;
        ensure_eq(end, 0, 405, page + PAGE_END)?;
    }
    for i in (0..2).chain(4..PAGES) {
        let page = base + i * PAGE_SIZE;
        // SAFETY: pages 0, 1, 4..8 of the first mapping are still mapped RW.
        ensure_eq(unsafe { peek(page) }, value(i), 406, page)?;
    }
    let noreplace = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    let r = c.mmap(base + 6 * PAGE_SIZE, PAGE_SIZE, PROT_RW, noreplace);
    expect_errno(r, Errno::Exist, 407)?;
    c.munmap(base, PAGES * PAGE_SIZE).or_fail(408)?;
    Ok(())
}
