//! Scenario 30, mmap-hint: `mmap` with an address but no `MAP_FIXED` (a hint), as Linux
//! places it.
//!
//! 1. A free hint is taken: 4 pages at `HINT` land exactly there (written).
//! 2. A taken hint is not: 2 pages hinted one page into them, and 2 pages hinted to
//!    straddle their start, land elsewhere, overlapping nothing mapped; the first mapping
//!    keeps its data and the new ones read zero.
//! 3. An unaligned free hint is rounded down to its page (Linux `round_hint_to_min`).
//! 4. Out-of-range hints are ignored, the mapping placed elsewhere in the user range: above
//!    the top of the user range, at the last page of the address space with a length that
//!    would wrap around, and at 0 (no hint at all).
//! 5. Layout shows every mapping where mmap said; all unmapped; PASS.
//!
//! Failure codes: 3001 mmap (detail errno, addr = hint); 3002 a free hint not taken
//! (detail the address returned, addr = hint); 3003 placed over a mapped range (detail the
//! address returned); 3004 the first mapping's data changed (detail value, addr); 3005 a
//! new mapping does not read zero (detail value, addr); 3006 placed outside the user range
//! (detail address); 3007 Layout (detail errno); 3008 a mapping missing from Layout (addr);
//! 3009 munmap (detail errno, addr).

extern crate alloc;

use alloc::vec::Vec;

use mem_client::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_RW};
use mem_client::Client;
use mem_protocol::{Target, PAGE_SIZE};

use crate::mem::{peek, poke};
use crate::report::{ensure_eq, Check, Fail, Outcome};

/// Free in every scenario client (its image is low, the system pages at `0x7000_0000`).
const HINT: u64 = 0x2000_0000;
/// Another free place, for the unaligned hint.
const HINT2: u64 = 0x2100_0000;

pub fn run(c: &mut Client) -> Outcome {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let mut maps: Vec<(u64, u64)> = Vec::new();
    let map = |c: &mut Client, maps: &mut Vec<(u64, u64)>, hint: u64, pages: u64| -> Result<u64, Fail> {
        let len = pages * PAGE_SIZE;
        let a = c.mmap(hint, len, PROT_RW, flags).map_err(|e| Fail::new(3001).detail(crate::report::errno_detail(e)).at(hint))?;
        if maps.iter().any(|&(s, l)| a < s + l && s < a + len) {
            return Err(Fail::new(3003).detail(a).at(hint));
        }
        for i in 0..pages {
            // SAFETY: inside the RW mapping the server just returned.
            let v = unsafe { peek(a + i * PAGE_SIZE) };
            ensure_eq(v, 0, 3005, a + i * PAGE_SIZE)?;
        }
        maps.push((a, len));
        Ok(a)
    };

    // 1. A free hint.
    let first = map(c, &mut maps, HINT, 4)?;
    ensure_eq(first, HINT, 3002, HINT)?;
    for i in 0..4 {
        // SAFETY: inside the RW mapping at HINT.
        unsafe { poke(HINT + i * PAGE_SIZE, 0x3000 + i) };
    }
    // 2. Taken hints: inside the mapping, and straddling its start.
    map(c, &mut maps, HINT + PAGE_SIZE, 2)?;
    map(c, &mut maps, HINT - PAGE_SIZE, 2)?;
    for i in 0..4 {
        // SAFETY: as above.
        ensure_eq(unsafe { peek(HINT + i * PAGE_SIZE) }, 0x3000 + i, 3004, HINT + i * PAGE_SIZE)?;
    }
    // 3. An unaligned free hint: rounded down.
    let r = map(c, &mut maps, HINT2 + 123, 1)?;
    ensure_eq(r, HINT2, 3002, HINT2 + 123)?;
    // 4. Out of range: ignored.
    for hint in [1u64 << 56, u64::MAX & !(PAGE_SIZE - 1), 0] {
        let a = map(c, &mut maps, hint, 2)?;
        if a >= 1 << 48 || a == 0 {
            return Err(Fail::new(3006).detail(a).at(hint));
        }
    }
    // 5. Layout agrees.
    let mut seen = 0usize;
    c.layout(Target::Own, 0, |e| {
        seen += maps.iter().filter(|&&(s, l)| e.start <= s && s + l <= e.end).count();
    })
    .or_fail(3007)?;
    if seen != maps.len() {
        return Err(Fail::new(3008).detail(seen as u64));
    }
    for &(s, l) in &maps {
        c.munmap(s, l).map_err(|e| Fail::new(3009).detail(crate::report::errno_detail(e)).at(s))?;
    }
    Ok(())
}
