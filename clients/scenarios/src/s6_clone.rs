//! Scenario 6, clone: copy-on-write clone of a whole address space.
//!
//! - parent (arg 0): 16 RW pages, `0xA000 + i` written to page `i`; STEP(1, addr). While it
//!   waits the root task clones the space and runs the child. After the answer: every page
//!   still holds `0xA000 + i` (the child's writes stayed in the child); write `0xC000 + i`
//!   to pages 0..8; PASS.
//! - child (role 1): the root task gives it the parent's mapping address. Accepted
//!   encodings: `arg = 1 | addr` (the address is page aligned, so the role sits in the low
//!   12 bits), or `arg = 1` and `peer = addr` (when the address fits 32 bits). Checks
//!   `0xA000 + i` on every page, writes `0xB000 + i` on pages 8..16 and reads them back;
//!   PASS.
//!
//! Failure codes: parent 601 mmap (detail errno), 602 a page changed while the child ran
//! (detail value, addr); child 611 no mapping at the given address (Query failed, detail
//! errno, addr), 612 a page does not hold the parent's value (detail value, addr), 613 a
//! written page does not read back; 699 unknown role (detail arg).

use mem_client::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_RW};
use mem_client::Client;
use mem_protocol::PAGE_SIZE;

use crate::mem::{peek, poke};
use crate::report::{ensure_eq, errno_detail, step, Check, Fail, Outcome};

const PAGES: u64 = 16;
const ROLE_MASK: u64 = PAGE_SIZE - 1;

pub fn run(c: &mut Client, arg: u64, peer: u32) -> Outcome {
    match arg & ROLE_MASK {
        0 => parent(c),
        1 => {
            let addr = match arg & !ROLE_MASK {
                0 => u64::from(peer),
                a => a,
            };
            child(c, addr)
        }
        _ => Err(Fail::new(699).detail(arg)),
    }
}

fn parent(c: &mut Client) -> Outcome {
    let base = c
        .mmap(0, PAGES * PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
        .or_fail(601)?;
    for i in 0..PAGES {
        // SAFETY: inside the RW mapping the server just returned.
        unsafe { poke(base + i * PAGE_SIZE, 0xA000 + i) };
    }
    step(1, &[base]);
    for i in 0..PAGES {
        let page = base + i * PAGE_SIZE;
        // SAFETY: still our RW mapping (now copy-on-write after the clone).
        ensure_eq(unsafe { peek(page) }, 0xA000 + i, 602, page)?;
    }
    for i in 0..PAGES / 2 {
        // SAFETY: as above; a write copies the page if it is shared with the child.
        unsafe { poke(base + i * PAGE_SIZE, 0xC000 + i) };
    }
    Ok(())
}

fn child(c: &mut Client, base: u64) -> Outcome {
    if let Err(e) = c.query(base) {
        return Err(Fail::new(611).detail(errno_detail(e)).at(base));
    }
    for i in 0..PAGES {
        let page = base + i * PAGE_SIZE;
        // SAFETY: the clone gave this space the parent's RW mapping at `base` (checked
        // with Query above).
        ensure_eq(unsafe { peek(page) }, 0xA000 + i, 612, page)?;
    }
    for i in PAGES / 2..PAGES {
        // SAFETY: as above; the write copies the shared page.
        unsafe { poke(base + i * PAGE_SIZE, 0xB000 + i) };
    }
    for i in PAGES / 2..PAGES {
        let page = base + i * PAGE_SIZE;
        // SAFETY: as above.
        ensure_eq(unsafe { peek(page) }, 0xB000 + i, 613, page)?;
    }
    Ok(())
}
