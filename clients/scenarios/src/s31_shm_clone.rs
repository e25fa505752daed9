//! Scenario 31, shm-clone: an `IPC_PRIVATE` segment shared between a parent and its
//! copy-on-write clone (as between a Linux process and its fork), and refused to everyone
//! else.
//!
//! - parent (arg 0): shmget(IPC_PRIVATE, 3 pages, 0600), shmat, write `P1(i)` to page `i`;
//!   STEP(1, shmid, addr). While it waits the root task clones it and runs the child and an
//!   outsider. After the answer: page 1 holds the child's `P2` (written through its own
//!   attachment), pages 0 and 2 still `P1`; IPC_STAT says one attachment (the child is
//!   gone); IPC_RMID, shmdt; the segment is gone (shmat by id: EINVAL or EIDRM); PASS.
//! - child (role 1; `arg = 1 | addr`, `peer = shmid`): the inherited attachment at `addr`
//!   is the same segment (reads `P1`); a second shmat of the id works (a clone may use its
//!   parent's private segments) and shows `P1`; `P2` written at page 1 through it appears
//!   at `addr` too; IPC_STAT says three attachments; shmdt of the second; PASS.
//! - outsider (role 2, `peer = shmid`; same user, not a clone): shmat of the id is EINVAL
//!   (a private segment is not found by id outside its creator's family), its own
//!   IPC_PRIVATE segment gets another id; PASS.
//!
//! Failure codes: parent 3101 shmget, 3102 shmat (detail errno), 3103 a page holds the
//! wrong value (detail value, addr), 3104 IPC_STAT (detail errno), 3105 nattch (detail
//! nattch), 3106 IPC_RMID / shmdt (detail errno), 3107 the segment survived removal
//! (detail errno, 0 if shmat worked); child 3111 the inherited attachment is not the segment
//! (detail value, addr), 3112 shmat (detail errno), 3113 wrong value through the second
//! attachment (detail value, addr), 3114 the write did not show at `addr` (detail value),
//! 3115 IPC_STAT / nattch (detail errno or nattch), 3116 shmdt; outsider 3121 shmat was not
//! EINVAL (detail errno, 0 if it worked), 3122 shmget (detail errno), 3123 same id; 3199
//! unknown role (detail arg).

use mem_client::linux::IPC_CREAT;
use mem_client::Client;
use mem_protocol::{Errno, PAGE_SIZE};

use crate::mem::{peek, poke};
use crate::report::{ensure, ensure_eq, errno_detail, step, Check, Fail, Outcome};

const PAGES: u64 = 3;
const SIZE: u64 = PAGES * PAGE_SIZE;
const ROLE_MASK: u64 = PAGE_SIZE - 1;

fn p1(i: u64) -> u64 {
    0x31_0000 + i
}
const P2: u64 = 0x31_beef;

pub fn run(c: &mut Client, arg: u64, peer: u32) -> Outcome {
    match arg & ROLE_MASK {
        0 => parent(c),
        1 => child(c, arg & !ROLE_MASK, peer),
        2 => outsider(c, peer),
        _ => Err(Fail::new(3199).detail(arg)),
    }
}

/// The value at page `i` of the attachment at `at`.
fn page(at: u64, i: u64) -> u64 {
    // SAFETY: callers pass an address where the 3-page segment is attached (readable).
    unsafe { peek(at + i * PAGE_SIZE) }
}

fn parent(c: &mut Client) -> Outcome {
    let id = c.shmget(None, SIZE, IPC_CREAT | 0o600).or_fail(3101)?;
    let at = c.shmat(id, None, false).or_fail(3102)?;
    for i in 0..PAGES {
        // SAFETY: the segment is attached read-write at `at`.
        unsafe { poke(at + i * PAGE_SIZE, p1(i)) };
    }
    step(1, &[u64::from(id), at]);
    for i in 0..PAGES {
        let want = if i == 1 { P2 } else { p1(i) };
        ensure_eq(page(at, i), want, 3103, at + i * PAGE_SIZE)?;
    }
    let st = c.shmctl_stat(id).or_fail(3104)?;
    ensure_eq(u64::from(st.nattch), 1, 3105, at)?;
    c.shmctl_rmid(id).or_fail(3106)?;
    c.shmdt(at).or_fail(3106)?;
    match c.shmat(id, None, false) {
        Err(Errno::Inval) | Err(Errno::Idrm) => Ok(()),
        Err(e) => Err(Fail::new(3107).detail(errno_detail(e))),
        Ok(_) => Err(Fail::new(3107)),
    }
}

fn child(c: &mut Client, at: u64, id: u32) -> Outcome {
    for i in 0..PAGES {
        ensure_eq(page(at, i), p1(i), 3111, at + i * PAGE_SIZE)?;
    }
    let second = c.shmat(id, None, false).or_fail(3112)?;
    for i in 0..PAGES {
        ensure_eq(page(second, i), p1(i), 3113, second + i * PAGE_SIZE)?;
    }
    // SAFETY: the segment is attached read-write at `second`.
    unsafe { poke(second + PAGE_SIZE, P2) };
    ensure_eq(page(at, 1), P2, 3114, at + PAGE_SIZE)?;
    let st = c.shmctl_stat(id).or_fail(3115)?;
    ensure_eq(u64::from(st.nattch), 3, 3115, at)?;
    c.shmdt(second).or_fail(3116)
}

fn outsider(c: &mut Client, id: u32) -> Outcome {
    match c.shmat(id, None, false) {
        Err(Errno::Inval) => {}
        Err(e) => return Err(Fail::new(3121).detail(errno_detail(e))),
        Ok(_) => return Err(Fail::new(3121)),
    }
    let mine = c.shmget(None, SIZE, IPC_CREAT | 0o600).or_fail(3122)?;
    ensure(mine != id, 3123)?;
    c.shmctl_rmid(mine).or_fail(3122)
}
