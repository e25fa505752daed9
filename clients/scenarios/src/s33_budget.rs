//! Scenarios 33 and 34: budgets that cannot be escaped (`mem-core` `lifecycle.rs`
//! hand-over, `shm.rs` per-uid share).
//!
//! 33, budget-chain (a fork-and-exit chain; `arg` = round `r` in the low 12 bits, the
//! parent's object address above them, 0 in round 0): if `r > 0`, the parent's shared
//! object is mapped here too (inherited by the clone) and holds the parent's round number;
//! then a new shared anonymous object of [`CHAIN_PAGES`] pages (half the quota), populated,
//! its first word `r`; STEP(1, its address), never answered (the root task clones this
//! client, then destroys it).
//!
//! 34, shm-share (`arg` = role and first key): role 0 (filler): keyed segments of
//! [`SEG_PAGES`] pages (keys `key, key + 1, ...`, one page of each touched) until the
//! server says no; STEP(1, [made, errno]) — ENOSPC once its user has its share of the
//! system-wide limit, ENOMEM when its own quota is full; never answered. Role 1 (taker, of
//! another user): segments from `key` until its quota is full: it must get them (ENOMEM,
//! never ENOSPC), STEP(1, [made, errno]), never answered. Role 2 (cleaner): IPC_RMID of the
//! keys `key .. key + peer`; PASS.
//!
//! Failure codes: 3301 the parent's object does not hold its round (detail value, addr),
//! 3302 mmap / populate (detail errno); 3401 shmget failed with an errno other than
//! ENOSPC / ENOMEM (detail errno), 3402 the taker got ENOSPC (detail segments made), 3403
//! cleaner: shmget of a key (detail errno, addr = key), 3404 IPC_RMID (detail errno);
//! 3499 unknown role (detail arg).

use mem_client::linux::{IPC_CREAT, IPC_EXCL, MAP_ANONYMOUS, MAP_SHARED, PROT_RW};
use mem_client::Client;
use mem_protocol::{Errno, PAGE_SIZE};

use crate::mem::{peek, poke};
use crate::report::{ensure_eq, errno_detail, step, Check, Fail, Outcome};

/// Pages of each round's shared object: half of the 4,096-page quota.
pub const CHAIN_PAGES: u64 = 2048;
/// Pages of each shm segment of scenario 34.
pub const SEG_PAGES: u64 = 512;
const ROLE_BITS: u64 = 12;

pub fn chain(c: &mut Client, arg: u64) -> Outcome {
    let round = arg & ((1 << ROLE_BITS) - 1);
    let parent_obj = arg & !((1 << ROLE_BITS) - 1);
    if round > 0 {
        // SAFETY: the clone inherited the parent's shared mapping at `parent_obj`
        // (readable); the parent is alive while this runs.
        let v = unsafe { peek(parent_obj) };
        ensure_eq(v, round - 1, 3301, parent_obj)?;
    }
    let len = CHAIN_PAGES * PAGE_SIZE;
    let a = c.mmap(0, len, PROT_RW, MAP_SHARED | MAP_ANONYMOUS).or_fail(3302)?;
    c.populate(a, len).or_fail(3302)?;
    // SAFETY: inside the RW mapping just made.
    unsafe { poke(a, round) };
    step(1, &[a]);
    Ok(())
}

pub fn shm_share(c: &mut Client, arg: u64, peer: u32) -> Outcome {
    let key = (arg >> ROLE_BITS) as u32;
    match arg & ((1 << ROLE_BITS) - 1) {
        0 | 1 => {
            let taker = arg & 1 == 1;
            let mut made = 0u32;
            let errno = loop {
                match c.shmget(Some(key + made), SEG_PAGES * PAGE_SIZE, IPC_CREAT | IPC_EXCL | 0o600) {
                    Ok(id) => {
                        let at = c.shmat(id, None, false).or_fail(3401)?;
                        // SAFETY: the segment is attached read-write at `at`.
                        unsafe { poke(at, u64::from(key + made)) };
                        c.shmdt(at).or_fail(3401)?;
                        made += 1;
                    }
                    Err(e @ (Errno::NoSpc | Errno::NoMem)) => break e,
                    Err(e) => return Err(Fail::new(3401).detail(errno_detail(e))),
                }
            };
            if taker && errno == Errno::NoSpc {
                return Err(Fail::new(3402).detail(u64::from(made)));
            }
            step(1, &[u64::from(made), errno_detail(errno)]);
            Ok(())
        }
        2 => {
            for k in key..key + peer {
                let id = c.shmget(Some(k), 0, 0o600).map_err(|e| Fail::new(3403).detail(errno_detail(e)).at(u64::from(k)))?;
                c.shmctl_rmid(id).or_fail(3404)?;
            }
            Ok(())
        }
        _ => Err(Fail::new(3499).detail(arg)),
    }
}
