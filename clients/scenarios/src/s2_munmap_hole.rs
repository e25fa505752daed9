//! Scenario 2, munmap-hole: 16 pages, all written; munmap pages 5..8; pages 4 and 8 keep
//! their data; STEP(1, hole address); then a read of the hole, which the server cannot
//! resolve (it sends the root task an UNRESOLVED NO_AREA note and this thread stays
//! blocked). The root task answers the STEP before that read.
//!
//! Failure codes: 201 mmap, 202 munmap (detail errno), 203 page 4 lost its data, 204 page 8
//! lost its data (detail value read, addr), 205 the read of the hole returned (detail value).

use mem_client::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_RW};
use mem_client::Client;
use mem_protocol::PAGE_SIZE;

use crate::mem::{peek, poke};
use crate::report::{ensure_eq, step, Check, Fail, Outcome};

const PAGES: u64 = 16;

fn value(i: u64) -> u64 {
    0x2000 + i
}

pub fn run(c: &mut Client) -> Outcome {
    let base = c
        .mmap(0, PAGES * PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
        .or_fail(201)?;
    for i in 0..PAGES {
        // SAFETY: inside the RW mapping the server just returned.
        unsafe { poke(base + i * PAGE_SIZE, value(i)) };
    }
    let hole = base + 5 * PAGE_SIZE;
    c.munmap(hole, 3 * PAGE_SIZE).or_fail(202)?;
    for (i, code) in [(4, 203), (8, 204)] {
        let page = base + i * PAGE_SIZE;
        // SAFETY: pages 4 and 8 are outside the unmapped hole, still mapped RW.
        ensure_eq(unsafe { peek(page) }, value(i), code, page)?;
    }
    step(1, &[hole]);
    // SAFETY: deliberately reads unmapped memory: the fault is not resolved and this
    // thread never runs again (the root task destroys it).
    let v = unsafe { peek(hole) };
    Err(Fail::new(205).detail(v).at(hole))
}
