//! Scenarios 12..=15, the adversaries of the isolation issue: an attacker (12), a victim
//! (13) and a bystander (14) run at the same time, one attack class per scenario (`arg`);
//! a cleaner (15) removes what an attacker left in the system on purpose.
//!
//! Classes (`arg`): 1 ipcbuf (replace its own IPC-buffer page to get the pinned frame
//! reused), 2 heap (make the server spend unbounded metadata), 3 dos (use up backends, shm
//! and cap slots), 4 quota (leave keyed shm behind), 5 backend (use another user's
//! backend), 6 fault (forge faults, flood the log), 7 info (learn physical addresses and
//! system figures).
//!
//! - victim (13): 64 pages with a pattern; for class 5 a backend (mode 0600) with a secret;
//!   STEP(1, addr, backend id); after the answer: the pattern and the secret are intact and
//!   a new mapping works; PASS.
//! - attacker (12): the attack of its class (below); PASS when every step got the answer
//!   isolation requires (an error where it must fail, ENOMEM at the budget).
//! - bystander (14): mmap + touch, shmget + shmat + write/read + shmdt + IPC_RMID,
//!   BackendCreate + write/read + destroy; PASS.
//! - cleaner (15, `arg` = key): shmget(key) and IPC_RMID; PASS.
//!
//! Failure codes: attacker 120x/121x heap, 123x dos, 124x quota, 125x backend, 126x fault,
//! 127x info, 1299 unknown class; 13xx victim, 14xx bystander, 15xx cleaner; the detail is
//! the errno (or value), as in the other scenarios.

use mem_client::linux::{
    IPC_CREAT, IPC_EXCL, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED,
    MS_SYNC, PROT_NONE, PROT_READ, PROT_RW,
};
use mem_client::Client;
use mem_protocol::system::{client_slot, CLIENT_IPC_BUFFER_VADDR};
use mem_protocol::{Errno, Reply, Target, PAGE_SIZE};

use crate::mem::{peek, poke, PAGE_END};
use crate::report::{ensure, ensure_eq, errno_detail, expect_errno, step, Check, Fail, Outcome};

const VICTIM_PAGES: u64 = 64;
const SECRET: &[u8] = b"victim's secret";
/// Where the heap attacker puts its attachments and areas (far from everything else).
const HEAP_BASE: u64 = 0x10_0000_0000;
const AREA_BASE: u64 = 0x18_0000_0000;
/// The key the quota attacker leaves behind (the root task passes it to the cleaner).
pub const LEFT_KEY: u32 = 0xad_0004;

fn pattern(i: u64) -> u64 {
    0x71c7_0000_0000 + i
}

pub fn victim(c: &mut Client, class: u64) -> Outcome {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let a = c.mmap(0, VICTIM_PAGES * PAGE_SIZE, PROT_RW, flags).or_fail(1301)?;
    for i in 0..VICTIM_PAGES {
        // SAFETY: inside the RW mapping the server just returned.
        unsafe {
            poke(a + i * PAGE_SIZE, pattern(i));
            poke(a + i * PAGE_SIZE + PAGE_END, !pattern(i));
        }
    }
    let backend = if class == 5 {
        let b = c.backend_create(4 * PAGE_SIZE, 0o600).or_fail(1302)?;
        c.backend_write(b, 0, SECRET).or_fail(1303)?;
        b
    } else {
        0
    };
    step(1, &[a, u64::from(backend)]);
    for i in 0..VICTIM_PAGES {
        let p = a + i * PAGE_SIZE;
        // SAFETY: the mapping is still there (only this client can change it).
        let (x, y) = unsafe { (peek(p), peek(p + PAGE_END)) };
        ensure_eq(x, pattern(i), 1304, p)?;
        ensure_eq(y, !pattern(i), 1305, p + PAGE_END)?;
    }
    if class == 5 {
        let mut got = [0u8; SECRET.len()];
        c.backend_read(backend, 0, &mut got).or_fail(1306)?;
        ensure(got == *SECRET, 1307)?;
    }
    let m = c.mmap(0, 4 * PAGE_SIZE, PROT_RW, flags).or_fail(1308)?;
    // SAFETY: inside the RW mapping the server just returned.
    unsafe { poke(m, 0x1309) };
    // SAFETY: as above.
    ensure_eq(unsafe { peek(m) }, 0x1309, 1309, m)?;
    Ok(())
}

pub fn bystander(c: &mut Client) -> Outcome {
    let a = c.mmap(0, 16 * PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS).or_fail(1401)?;
    for i in 0..16 {
        // SAFETY: inside the RW mapping the server just returned.
        unsafe { poke(a + i * PAGE_SIZE, 0xb0 + i) };
    }
    for i in 0..16 {
        // SAFETY: as above.
        ensure_eq(unsafe { peek(a + i * PAGE_SIZE) }, 0xb0 + i, 1402, a + i * PAGE_SIZE)?;
    }
    let id = c.shmget(None, 4 * PAGE_SIZE, IPC_CREAT | 0o600).or_fail(1403)?;
    let s = c.shmat(id, None, false).or_fail(1404)?;
    // SAFETY: the 4-page segment is attached read-write at `s`.
    unsafe { poke(s + PAGE_SIZE, 0x5105) };
    // SAFETY: as above.
    ensure_eq(unsafe { peek(s + PAGE_SIZE) }, 0x5105, 1405, s)?;
    c.shmdt(s).or_fail(1406)?;
    c.shmctl_rmid(id).or_fail(1407)?;
    let b = c.backend_create(4 * PAGE_SIZE, 0o600).or_fail(1408)?;
    c.backend_write(b, 100, b"bystander").or_fail(1409)?;
    let mut got = [0u8; 9];
    c.backend_read(b, 100, &mut got).or_fail(1410)?;
    ensure(&got == b"bystander", 1411)?;
    c.backend_destroy(b).or_fail(1412)?;
    c.munmap(a, 16 * PAGE_SIZE).or_fail(1413)?;
    Ok(())
}

pub fn cleaner(c: &mut Client, key: u64) -> Outcome {
    let id = c.shmget(Some(key as u32), 0, 0o600).or_fail(1501)?;
    c.shmctl_rmid(id).or_fail(1502)?;
    Ok(())
}

pub fn attacker(c: &mut Client, class: u64, peer: u32) -> Outcome {
    match class {
        1 => ipcbuf(c),
        2 => heap(c),
        3 => dos(c),
        4 => quota(c),
        5 => backend(c, peer),
        6 => fault(c),
        7 => info(c, peer),
        other => Err(Fail::new(1299).detail(other)),
    }
}

/// Replace the IPC-buffer page with a fresh one and fill it: the frame the kernel uses for
/// this thread's messages is pinned, so it can never become another client's page.
fn ipcbuf(c: &mut Client) -> Outcome {
    // One request that replaces the page (the reply comes back through the pinned frame,
    // which is no longer mapped here: whatever it reads as is not checked).
    let _ = c.mmap(CLIENT_IPC_BUFFER_VADDR, PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    for w in 0..PAGE_SIZE / 8 {
        // SAFETY: the page at the IPC-buffer address is this client's own (fresh) page;
        // nothing in this program holds a reference into it across this loop.
        unsafe { poke(CLIENT_IPC_BUFFER_VADDR + w * 8, 0xa77a_c4e5_0000_0000 + w) };
    }
    Ok(())
}

/// Metadata the server would spend: attachments of one page every 2 MiB (a shadow table
/// each), one-page areas, one munmap over all of them, msync of a huge mapping.
fn heap(c: &mut Client) -> Outcome {
    let id = c.shmget(None, PAGE_SIZE, IPC_CREAT | 0o600).or_fail(1201)?;
    let mut n = 0u64;
    let stop = loop {
        let at = HEAP_BASE + n * (2 << 20);
        if let Err(e) = c.shmat(id, Some(at), false) {
            break e;
        }
        n += 1;
        if let Err(e) = c.populate(at, PAGE_SIZE) {
            break e;
        }
        if n > 100_000 {
            return Err(Fail::new(1202).detail(n));
        }
    };
    expect_errno::<()>(Err(stop), Errno::NoMem, 1203)?;
    ensure(n > 10, 1204)?;
    // One munmap over every attachment (detaches them all), then the areas.
    c.munmap(HEAP_BASE, n * (2 << 20)).or_fail(1208)?;
    c.shmctl_rmid(id).or_fail(1209)?;
    let mut m = 0u64;
    let stop = loop {
        let at = AREA_BASE + m * 2 * PAGE_SIZE;
        if let Err(e) = c.mmap(at, PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE) {
            break e;
        }
        m += 1;
        if m > 1_000_000 {
            return Err(Fail::new(1205).detail(m));
        }
    };
    expect_errno::<()>(Err(stop), Errno::NoMem, 1206)?;
    ensure(m > 100, 1215)?;
    c.munmap(AREA_BASE, m * 2 * PAGE_SIZE).or_fail(1207)?;
    let b = c.backend_create(1 << 30, 0o600).or_fail(1210)?;
    let a = c.mmap_backend(0, 1 << 30, PROT_RW, true, b, 0).or_fail(1211)?;
    // SAFETY: the first page of the shared mapping is writable.
    unsafe { poke(a, 1) };
    c.msync(a, 1 << 30, MS_SYNC).or_fail(1212)?;
    c.munmap(a, 1 << 30).or_fail(1213)?;
    c.backend_destroy(b).or_fail(1214)?;
    Ok(())
}

/// Use up what a client may create: backends, shm segments (kept alive by attachments,
/// marked removed), and cap slots / pages through a shared mapping.
fn dos(c: &mut Client) -> Outcome {
    let mut backends = 0u32;
    let stop = loop {
        match c.backend_create(PAGE_SIZE, 0o600) {
            Ok(_) => backends += 1,
            Err(e) => break e,
        }
        if backends > 10_000 {
            return Err(Fail::new(1231).detail(u64::from(backends)));
        }
    };
    expect_errno::<()>(Err(stop), Errno::NFile, 1232)?;
    let mut segs = 0u32;
    let stop = loop {
        let id = match c.shmget(Some(0xad_3000 + segs), PAGE_SIZE, IPC_CREAT | IPC_EXCL | 0o600) {
            Ok(id) => id,
            Err(e) => break e,
        };
        c.shmat(id, None, false).or_fail(1233)?;
        c.shmctl_rmid(id).or_fail(1234)?;
        segs += 1;
        if segs > 10_000 {
            return Err(Fail::new(1235).detail(u64::from(segs)));
        }
    };
    if stop != Errno::NoSpc && stop != Errno::NoMem {
        return Err(Fail::new(1236).detail(errno_detail(stop)));
    }
    // Pages and cap copies: a big shared mapping populated until the budget says no.
    let len = 8192 * PAGE_SIZE;
    let a = c.mmap(0, len, PROT_RW, MAP_SHARED | MAP_ANONYMOUS).or_fail(1237)?;
    expect_errno(c.populate(a, len), Errno::NoMem, 1238)?;
    Ok(())
}

/// Leave a keyed segment with touched pages behind (not removed).
fn quota(c: &mut Client) -> Outcome {
    let pages = 1024;
    let id = c.shmget(Some(LEFT_KEY), pages * PAGE_SIZE, IPC_CREAT | IPC_EXCL | 0o600).or_fail(1241)?;
    let a = c.shmat(id, None, false).or_fail(1242)?;
    c.populate(a, pages * PAGE_SIZE).or_fail(1243)?;
    // More than the quota cannot be had by segments either.
    expect_errno(c.shmget(Some(LEFT_KEY + 1), 8192 * PAGE_SIZE, IPC_CREAT | 0o600), Errno::NoMem, 1244)?;
    Ok(())
}

/// Another user's backend (mode 0600): every use refused.
fn backend(c: &mut Client, id: u32) -> Outcome {
    expect_errno(c.mmap_backend(0, PAGE_SIZE, PROT_RW, true, id, 0), Errno::Acces, 1251)?;
    expect_errno(c.mmap_backend(0, PAGE_SIZE, PROT_READ, false, id, 0), Errno::Acces, 1252)?;
    let mut got = [0u8; 8];
    expect_errno(c.backend_read(id, 0, &mut got), Errno::Acces, 1253)?;
    expect_errno(c.backend_write(id, 0, b"evil"), Errno::Acces, 1254)?;
    expect_errno(c.backend_destroy(id), Errno::Perm, 1255)?;
    Ok(())
}

/// Forge faults: a fault label on the request cap is a protocol error; fault messages sent
/// on its own fault cap only ever concern itself (and are logged a few times only).
fn fault(c: &mut Client) -> Outcome {
    use sel4::sys::{seL4_Fault_tag, seL4_VMFault_Msg};
    let len = seL4_VMFault_Msg::seL4_VMFault_Length as usize;
    let words = [0x1000u64, 0xdead_0000, 0, 0, 0, 0];
    let (_, reply) = c.call_raw(seL4_Fault_tag::seL4_Fault_VMFault, &words[..len.min(6)]);
    match reply.decode() {
        Ok(Reply::Protocol(_)) => {}
        _ => return Err(Fail::new(1261).detail(reply.words().first().copied().unwrap_or(0))),
    }
    let fault_ep = sel4::cap::Endpoint::from_bits(client_slot::FAULT);
    for i in 0..100u64 {
        sel4::with_ipc_buffer_mut(|ipc| {
            let mr = ipc.msg_regs_mut();
            let n = len.min(mr.len());
            mr[..n].fill(0);
            // IP, address: an unmapped page far from everything.
            mr[0] = 0x1000;
            if n > 1 {
                mr[1] = 0x3e_0000_0000 + i * PAGE_SIZE;
            }
        });
        fault_ep.send(sel4::MessageInfo::new(seL4_Fault_tag::seL4_Fault_VMFault, 0, 0, len));
    }
    Ok(())
}

/// What a client may learn: no physical address, no system-wide figure, nothing of another
/// client.
fn info(c: &mut Client, victim: u32) -> Outcome {
    let a = c.mmap(0, PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS).or_fail(1271)?;
    // SAFETY: inside the RW mapping the server just returned.
    unsafe { poke(a, 7) };
    let q = c.query(a).or_fail(1272)?;
    ensure_eq(q.paddr, 0, 1273, a)?;
    let s = c.stats(Target::Own).or_fail(1274)?;
    ensure_eq(s.frames_free + s.frames_in_use + s.slots_free + s.slots_in_use + s.spaces + s.shm_segments, 0, 1275, 0)?;
    ensure(s.quota_pages > 0 && s.charged_pages > 0, 1276)?;
    expect_errno(c.stats(Target::Client(victim)), Errno::Perm, 1277)?;
    expect_errno(c.query_in(Target::Client(victim), 0x1_0000), Errno::Perm, 1278)?;
    expect_errno(c.layout(Target::Client(victim), 0, |_| {}), Errno::Perm, 1279)?;
    // Its own layout shows its own area only (no system figures, nothing of the victim).
    let mut own = 0;
    c.layout(Target::Own, 0, |e| own += u64::from(e.start <= a && a < e.end)).or_fail(1279)?;
    ensure_eq(own, 1, 1279, a)?;
    Ok(())
}
