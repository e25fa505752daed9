//! Scenario 1, lazy-mmap: 64 lazy RW pages; write `i * 0x1111 + 7` at the start and the
//! end of page `i`; read everything back. Nothing is allocated before a page is touched.
//!
//! Pages 63 down to 32 are touched last-first: each first touch is one fault that maps one
//! page (32 faults). Pages 0 to 31 are touched in order: the server's fault-around maps up
//! to 15 pages ahead of an in-order touch, so they take 3 faults (page 0 alone; page 1 with
//! 2..16; page 17 with 18..31, stopping at page 32, already present). Counted with
//! `Stats(Own).faults_served`. The mapping's maximum protection is RW, so that it is an
//! area of its own whatever lies next to it (an equal neighbour would merge with it, as
//! Linux merges VMAs, and page 0 would no longer start the area the fault-around counts
//! from).
//!
//! Failure codes: 101 mmap failed (detail errno), 102 start of a page reads wrong
//! (detail value, addr), 103 end of a page reads wrong, 104 Stats failed, 105 faults of the
//! last-first touches (detail count), 106 faults of the in-order touches (detail count).

use mem_client::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_RW};
use mem_client::Client;
use mem_protocol::{Target, PAGE_SIZE};

use crate::mem::{peek, poke, PAGE_END};
use crate::report::{ensure_eq, Check, Outcome};

const PAGES: u64 = 64;

fn value(i: u64) -> u64 {
    i * 0x1111 + 7
}

fn touch(base: u64, i: u64) {
    let page = base + i * PAGE_SIZE;
    // SAFETY: `page` is inside the RW mapping the server returned.
    unsafe {
        poke(page, value(i));
        poke(page + PAGE_END, value(i));
    }
}

fn faults(c: &mut Client) -> Result<u64, crate::report::Fail> {
    Ok(c.stats(Target::Own).or_fail(104)?.faults_served)
}

pub fn run(c: &mut Client) -> Outcome {
    let base = c
        .mmap_max_prot(0, PAGES * PAGE_SIZE, PROT_RW, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
        .or_fail(101)?;
    // A first Stats call, not counted: the first decode of its reply may reach stack the
    // client never used before (a fault after the server's count, inside the window).
    faults(c)?;
    let f0 = faults(c)?;
    for i in (PAGES / 2..PAGES).rev() {
        touch(base, i);
    }
    let f1 = faults(c)?;
    ensure_eq(f1 - f0, PAGES / 2, 105, base)?;
    for i in 0..PAGES / 2 {
        touch(base, i);
    }
    let f2 = faults(c)?;
    ensure_eq(f2 - f1, 3, 106, base)?;
    for i in 0..PAGES {
        let page = base + i * PAGE_SIZE;
        // SAFETY: as above.
        let (start, end) = unsafe { (peek(page), peek(page + PAGE_END)) };
        ensure_eq(start, value(i), 102, page)?;
        ensure_eq(end, value(i), 103, page + PAGE_END)?;
    }
    Ok(())
}
