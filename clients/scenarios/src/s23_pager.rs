//! Scenario pager (23: the pager, 24: its consumer): a client serves another client's
//! memory from its own store.
//!
//! **Pager** (23): `PagerCreate(0600)`, STEP(1, pager id); then answers `SERVE` faults
//! (`PagerWait` / `PagerReply`): the page at byte offset `o` of the area holds, in its word
//! `i`, `content(o + 8 i)` (computed, not stored); then STEP(2) and waits there (the root task
//! destroys it while the consumer has a fault pending).
//! **Consumer** (24, `arg` = pager id): maps `AREA_PAGES` pages served by the pager and reads
//! `SERVE` of them in a random order (a fixed permutation), checking every word; Stats(Own)
//! says exactly `SERVE` faults were served; STEP(1); then reads one more page (its fault stays
//! pending at the pager, which no longer answers) and is never resumed.
//!
//! **Intruder** (25, another uid, `arg` = the pager's id), while the pager serves: may not map
//! areas of that pager (EACCES), wait for its faults (EPERM) or answer any of them (every
//! token 0..256 refused: EPERM, or ENOENT if there is no such fault); its own pagers stop at
//! 16 (ENFILE); PASS.
//!
//! Failure codes: 2301 PagerCreate, 2302 PagerWait, 2303 PagerReply, 2401 mmap, 2402 a word
//! (detail: the value, addr), 2403 Stats, 2404 fault count (detail); intruder: 2501 mapped
//! (detail errno), 2502 waited, 2503 an answer taken (detail token), 2504 pager limit
//! (detail: pagers made), 2505 wrong errno (detail).

use mem_client::linux::PROT_RW;
use mem_client::Client;
use mem_protocol::{Errno, Target, PAGE_SIZE};

use crate::mem::peek;
use crate::report::{ensure, ensure_eq, errno_detail, step, Check, Fail, Outcome};

/// Pages of the consumer's area, and how many of them the pager serves before it stops.
pub const AREA_PAGES: u64 = 260;
pub const SERVE: u64 = 256;

/// The value at byte offset `at` (8-aligned) of the served memory.
fn content(at: u64) -> u64 {
    at.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5a5a_0000_0000_a5a5
}

pub fn pager(c: &mut Client) -> Outcome {
    let id = c.pager_create(0o600).or_fail(2301)?;
    step(1, &[u64::from(id)]);
    let mut page = [0u8; PAGE_SIZE as usize];
    for _ in 0..SERVE {
        let f = c.pager_wait(id).or_fail(2302)?;
        for (i, w) in page.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&content(f.offset + 8 * i as u64).to_le_bytes());
        }
        c.pager_supply(f.token, &page).or_fail(2303)?;
    }
    step(2, &[]);
    Ok(())
}

pub fn consumer(c: &mut Client, pager: u64) -> Outcome {
    let base = c.mmap_pager(0, AREA_PAGES * PAGE_SIZE, PROT_RW, 0, pager as u32).or_fail(2401)?;
    // A first Stats call, not counted (its reply's first decode may fault in stack pages
    // after the server's count).
    c.stats(Target::Own).or_fail(2403)?;
    let f0 = c.stats(Target::Own).or_fail(2403)?.faults_served;
    // Page order: a fixed permutation of 0..SERVE (multiplier odd, SERVE a power of two).
    for k in 0..SERVE {
        let p = (k * 77 + 13) % SERVE;
        for i in 0..PAGE_SIZE / 8 {
            let at = p * PAGE_SIZE + 8 * i;
            // SAFETY: inside the RW mapping just made; the server resolves the fault.
            let v = unsafe { peek(base + at) };
            ensure_eq(v, content(at), 2402, base + at)?;
        }
    }
    let f1 = c.stats(Target::Own).or_fail(2403)?.faults_served;
    ensure_eq(f1 - f0, SERVE, 2404, base)?;
    step(1, &[base]);
    // The pager no longer answers: this read waits until the root task acts.
    // SAFETY: inside the mapping.
    let _ = unsafe { peek(base + SERVE * PAGE_SIZE) };
    Ok(())
}

pub fn intruder(c: &mut Client, pager: u64) -> Outcome {
    let id = pager as u32;
    let errno = |r: Result<u64, Errno>| match r {
        Ok(_) => 0,
        Err(e) => errno_detail(e),
    };
    let e = errno(c.mmap_pager(0, 4 * PAGE_SIZE, PROT_RW, 0, id));
    ensure_eq(e, errno_detail(Errno::Acces), 2501, 0)?;
    let e = errno(c.pager_wait(id).map(|_| 0));
    ensure_eq(e, errno_detail(Errno::Perm), 2502, 0)?;
    for token in 0..256u32 {
        match c.pager_zero(token) {
            Ok(()) => return Err(Fail::new(2503).detail(u64::from(token))),
            Err(Errno::Perm) | Err(Errno::NoEnt) => {}
            Err(e) => return Err(Fail::new(2505).detail(errno_detail(e))),
        }
    }
    let mut made = 0u64;
    let last = loop {
        match c.pager_create(0o600) {
            Ok(_) if made < 64 => made += 1,
            r => break r,
        }
    };
    ensure(made == 16 && last == Err(Errno::NFile), 2504).map_err(|f| f.detail(made))?;
    Ok(())
}
