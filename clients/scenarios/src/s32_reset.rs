//! Scenario 32, reset: the administrator resets the client's address space (`Reset`,
//! axmem's `unmap_user_areas`) and starts the program again in it, as an exec would.
//!
//! First run (no page at [`MARK`]): maps and fills its own memory — 64 RW pages at [`DATA`]
//! (a quarter of them made read-only), 2 pages of shared anonymous memory, a private shm
//! segment attached and marked for removal, 16 pages populated lazily elsewhere; STEP(1,
//! DATA, MARK, shmid). The root task then resets the space (this thread is stopped first),
//! checks what is left, maps a page at `MARK` and loads and starts the program again.
//!
//! Second run (the page at `MARK` is there): nothing of the first run is left — no area
//! overlaps `DATA` (Layout), the segment is gone (shmat by id: EINVAL or EIDRM) — and the
//! space works as new: 64 pages mapped at `DATA` again (`MAP_FIXED_NOREPLACE`: the range is
//! free) read zero, are written and read back, unmapped; PASS.
//!
//! Failure codes: 3201 mmap (detail errno, addr), 3202 shmget / shmat / IPC_RMID (detail
//! errno), 3203 mprotect / populate (detail errno); second run: 3211 an area of the first
//! run is left (detail its start), 3212 Layout (detail errno), 3213 the segment survived
//! (detail errno, 0 if shmat worked), 3214 mmap at DATA (detail errno), 3215 a new page is
//! not zero or does not read back (detail value, addr), 3216 munmap (detail errno); 3217
//! the mark page does not hold the root task's bytes (detail value).

use mem_client::linux::{IPC_CREAT, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_RW};
use mem_client::Client;
use mem_protocol::{Errno, Target, PAGE_SIZE};

use crate::mem::{peek, poke};
use crate::report::{ensure_eq, errno_detail, step, Check, Fail, Outcome};

/// Where the first run maps its data (and the second maps it again).
const DATA: u64 = 0x3000_0000;
const DATA_PAGES: u64 = 64;
/// Where the root task maps a page before it starts the program again.
const MARK: u64 = 0x3100_0000;
/// What that page starts with (the root task writes it).
pub const MARK_WORD: u64 = 0x7265_7365_7421;
/// Where the first run keeps the id of its segment for the second (the root task puts it
/// in the mark page after `MARK_WORD`).
const MARK_SHMID: u64 = MARK + 8;

pub fn run(c: &mut Client) -> Outcome {
    if c.query(MARK).is_ok() {
        second(c)
    } else {
        first(c)
    }
}

fn first(c: &mut Client) -> Outcome {
    let data = c
        .mmap(DATA, DATA_PAGES * PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
        .map_err(|e| Fail::new(3201).detail(errno_detail(e)).at(DATA))?;
    for i in 0..DATA_PAGES {
        // SAFETY: inside the RW mapping just made.
        unsafe { poke(data + i * PAGE_SIZE, 0x3200 + i) };
    }
    c.mprotect(data, DATA_PAGES / 4 * PAGE_SIZE, PROT_READ).or_fail(3203)?;
    let shared = c.mmap(0, 2 * PAGE_SIZE, PROT_RW, MAP_SHARED | MAP_ANONYMOUS).or_fail(3201)?;
    // SAFETY: inside the RW mapping just made.
    unsafe { poke(shared, 1) };
    let id = c.shmget(None, 4 * PAGE_SIZE, IPC_CREAT | 0o600).or_fail(3202)?;
    let at = c.shmat(id, None, false).or_fail(3202)?;
    // SAFETY: the segment is attached read-write at `at`.
    unsafe { poke(at, 2) };
    c.shmctl_rmid(id).or_fail(3202)?;
    let lazy = c.mmap(0, 256 * PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS).or_fail(3201)?;
    c.populate(lazy + 64 * PAGE_SIZE, 16 * PAGE_SIZE).or_fail(3203)?;
    step(1, &[DATA, MARK, u64::from(id)]);
    // The root task stops this thread during the step and never answers it.
    Ok(())
}

fn second(c: &mut Client) -> Outcome {
    // SAFETY: the root task mapped the mark page (readable) at MARK.
    let (mark, id) = unsafe { (peek(MARK), peek(MARK_SHMID)) };
    ensure_eq(mark, MARK_WORD, 3217, MARK)?;
    let mut left = None;
    c.layout(Target::Own, 0, |e| {
        if e.start < DATA + DATA_PAGES * PAGE_SIZE && DATA < e.end && left.is_none() {
            left = Some(e.start);
        }
    })
    .or_fail(3212)?;
    if let Some(s) = left {
        return Err(Fail::new(3211).detail(s));
    }
    match c.shmat(id as u32, None, false) {
        Err(Errno::Inval) | Err(Errno::Idrm) => {}
        Err(e) => return Err(Fail::new(3213).detail(errno_detail(e))),
        Ok(_) => return Err(Fail::new(3213)),
    }
    let data = c
        .mmap(DATA, DATA_PAGES * PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
        .or_fail(3214)?;
    for i in 0..DATA_PAGES {
        let p = data + i * PAGE_SIZE;
        // SAFETY: inside the RW mapping just made.
        ensure_eq(unsafe { peek(p) }, 0, 3215, p)?;
        // SAFETY: as above.
        unsafe { poke(p, 0x3300 + i) };
        // SAFETY: as above.
        ensure_eq(unsafe { peek(p) }, 0x3300 + i, 3215, p)?;
    }
    c.munmap(data, DATA_PAGES * PAGE_SIZE).or_fail(3216)
}
