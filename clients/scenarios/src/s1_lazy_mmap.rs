//! Scenario 1, lazy-mmap: 64 lazy RW pages; write `i * 0x1111 + 7` at the start and the
//! end of page `i`; read everything back. Every first touch is a fault the server serves.
//!
//! Failure codes: 101 mmap failed (detail errno), 102 start of a page reads wrong
//! (detail value, addr), 103 end of a page reads wrong.

use mem_client::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_RW};
use mem_client::Client;
use mem_protocol::PAGE_SIZE;

use crate::mem::{peek, poke, PAGE_END};
use crate::report::{ensure_eq, Check, Outcome};

const PAGES: u64 = 64;

fn value(i: u64) -> u64 {
    i * 0x1111 + 7
}

pub fn run(c: &mut Client) -> Outcome {
    let base = c
        .mmap(0, PAGES * PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
        .or_fail(101)?;
    for i in 0..PAGES {
        let page = base + i * PAGE_SIZE;
        // SAFETY: `page` is inside the RW mapping the server just returned.
        unsafe {
            poke(page, value(i));
            poke(page + PAGE_END, value(i));
        }
    }
    for i in 0..PAGES {
        let page = base + i * PAGE_SIZE;
        // SAFETY: as above.
        let (start, end) = unsafe { (peek(page), peek(page + PAGE_END)) };
        ensure_eq(start, value(i), 102, page)?;
        ensure_eq(end, value(i), 103, page + PAGE_END)?;
    }
    Ok(())
}
