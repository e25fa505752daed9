//! Scenario 5, shm: System V shared memory between a writer, a reader and an intruder.
//!
//! - writer (arg 0): shmget(KEY, 3 pages, IPC_CREAT | IPC_EXCL | 0600), shmat, write the
//!   pattern, STEP(1, shmid, addr). After the answer: IPC_RMID; IPC_STAT says removed with
//!   one attachment; the data still reads back; STEP(2). After the answer: shmdt; shmat by
//!   id fails with EINVAL or EIDRM; PASS.
//! - reader (arg 1): shmget(KEY, 3 pages, 0600), shmat read-only, check the pattern, shmdt,
//!   PASS.
//! - intruder (arg 2, another uid/gid): shmget(KEY, 3 pages, 0600) fails with EACCES; PASS.
//!
//! Failure codes: writer 501 shmget, 502 shmat, 503 IPC_RMID, 504 IPC_STAT (detail errno),
//! 505 not marked removed, 506 nattch != 1 (detail nattch), 507 data lost after RMID
//! (detail value, addr), 508 shmdt, 509 shmat after removal did not fail with EINVAL/EIDRM
//! (detail errno, 0 if it succeeded); reader 511 shmget, 512 shmat, 513 pattern wrong
//! (detail value, addr), 514 shmdt; intruder 521 shmget was not EACCES (detail errno, 0 if
//! it succeeded); 599 unknown role (detail arg).

use mem_client::linux::{IPC_CREAT, IPC_EXCL};
use mem_client::Client;
use mem_protocol::{Errno, PAGE_SIZE};

use crate::mem::{peek, poke, PAGE_END};
use crate::report::{ensure, ensure_eq, errno_detail, expect_errno, step, Check, Fail, Outcome};

/// The segment's key.
pub const KEY: u32 = 0x5eed;
const PAGES: u64 = 3;
const SIZE: u64 = PAGES * PAGE_SIZE;
const MODE: i32 = 0o600;

fn value(i: u64, end: bool) -> u64 {
    0x5eed_0000 + (i << 4) + end as u64
}

pub fn run(c: &mut Client, arg: u64) -> Outcome {
    match arg {
        0 => writer(c),
        1 => reader(c),
        2 => intruder(c),
        other => Err(Fail::new(599).detail(other)),
    }
}

/// Check the pattern in the 3 pages at `addr`; `code` on a mismatch.
fn check_pattern(addr: u64, code: u64) -> Outcome {
    for i in 0..PAGES {
        let page = addr + i * PAGE_SIZE;
        // SAFETY: the segment (3 pages) is attached at `addr`, at least readable.
        let (start, end) = unsafe { (peek(page), peek(page + PAGE_END)) };
        ensure_eq(start, value(i, false), code, page)?;
        ensure_eq(end, value(i, true), code, page + PAGE_END)?;
    }
    Ok(())
}

fn writer(c: &mut Client) -> Outcome {
    let id = c.shmget(Some(KEY), SIZE, IPC_CREAT | IPC_EXCL | MODE).or_fail(501)?;
    let addr = c.shmat(id, None, false).or_fail(502)?;
    for i in 0..PAGES {
        let page = addr + i * PAGE_SIZE;
        // SAFETY: the segment is attached read-write at `addr`.
        unsafe {
            poke(page, value(i, false));
            poke(page + PAGE_END, value(i, true));
        }
    }
    step(1, &[u64::from(id), addr]);
    c.shmctl_rmid(id).or_fail(503)?;
    let st = c.shmctl_stat(id).or_fail(504)?;
    ensure(st.removed, 505)?;
    ensure_eq(u64::from(st.nattch), 1, 506, addr)?;
    check_pattern(addr, 507)?;
    step(2, &[u64::from(id), addr]);
    c.shmdt(addr).or_fail(508)?;
    match c.shmat(id, None, false) {
        Err(Errno::Inval) | Err(Errno::Idrm) => Ok(()),
        Err(e) => Err(Fail::new(509).detail(errno_detail(e))),
        Ok(a) => Err(Fail::new(509).at(a)),
    }
}

fn reader(c: &mut Client) -> Outcome {
    let id = c.shmget(Some(KEY), SIZE, MODE).or_fail(511)?;
    let addr = c.shmat(id, None, true).or_fail(512)?;
    check_pattern(addr, 513)?;
    c.shmdt(addr).or_fail(514)?;
    Ok(())
}

fn intruder(c: &mut Client) -> Outcome {
    expect_errno(c.shmget(Some(KEY), SIZE, MODE), Errno::Acces, 521)
}
