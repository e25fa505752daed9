//! Differential test against the host Linux kernel: the same random mmap/munmap/mprotect
//! sequences run (a) in a scratch window of a separate Linux process through libc and (b) on
//! the core (harness `H`, host seL4 model); return values, errno and the page-by-page layout
//! of the window must agree after every operation.
//!
//! Linux side: this test binary re-executes itself (`current_exe()`) with `LINUX_DIFF_WORKER`
//! set, running only the `linux_worker` test, which then acts as the worker: it reads the
//! operations on stdin, applies them with libc in a window of `WIN_PAGES` pages it found
//! free (guard space on both sides), reads `/proc/self/maps` after each one and writes the
//! results between marker lines on stdout. A fresh process keeps the window away from the
//! threads and allocations of the test harness (no `fork` in a multithreaded process).
//!
//! Addresses are window-relative: Linux address = linux base + offset, core address =
//! `CORE_BASE` + offset; errno never depends on absolute addresses, because operations stay
//! inside the window except the deliberately invalid ones (huge lengths, which fail the same
//! way at any window address).
//!
//! Intended differences, not generated:
//! - Non-fixed placement: Linux allocates top-down from `mmap_base`, the core first-fit
//!   bottom-up. Only `Fixed`, `FixedNoReplace` and `Hint` are used; when Linux does not take
//!   a hint, its mapping (placed elsewhere) is unmapped and the core must not have taken an
//!   occupied hint either (a core mapping placed elsewhere is unmapped too).
//! - Layouts are compared page by page (mapped? r/w/x as the maps file shows them, against
//!   the core's `Prot` as given; W-only shows as `-w-`) *and* by where each area starts: a
//!   new mapping merges with equal neighbours and an mprotect'd piece with its equal
//!   neighbours on both sides, so the core's areas must be Linux's VMAs, one for one
//!   (`/proc/self/maps` and `Layout` show the same list).
//!
//! Divergences this test found and that were fixed in the core are pinned by the tests at
//! the end: mprotect with a length running past the top of the user range, the errno of a
//! fixed mmap that is both unaligned and too long, and the rounding of an unaligned hint
//! (Linux rounds down, on every architecture).
//!
//! Knobs: `LINUX_DIFF_SEQS`, `LINUX_DIFF_OPS`, `LINUX_DIFF_SEED`, `LINUX_DIFF_SHOW`
//! (mismatches printed).
#![cfg(target_os = "linux")]

mod common;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Errno, Prot};
use mem_protocol::Placement;

const PAGE: u64 = 4096;
/// Pages in the scratch window.
const WIN_PAGES: u64 = 64;
/// Free pages kept on each side of the Linux window when it is chosen.
const GUARD_PAGES: u64 = 64;
/// The window in the core's space (riscv64 Sv39: user range below 2^38).
const CORE_BASE: u64 = 0x10_0000_0000;
/// Candidate Linux window bases (far from brk, from the top-down mmap area and from the
/// legacy bottom-up base at TASK_SIZE / 3).
const LINUX_CANDIDATES: [u64; 6] =
    [0x10_0000_0000, 0x18_0000_0000, 0x20_0000_0000, 0x28_0000_0000, 0x30_0000_0000, 0x38_0000_0000];
const CLIENT: u32 = 1;
const WORKER_ENV: &str = "LINUX_DIFF_WORKER";
const BEGIN: &str = "@@LINUX_DIFF_BEGIN";
const END: &str = "@@LINUX_DIFF_END";

/// Lengths far beyond any user range (Linux TASK_SIZE is at most 2^56), so the result does
/// not depend on the window address: `PAGE_ALIGN` wraps to 0 for `u64::MAX` (ENOMEM for mmap
/// and mprotect, EINVAL for munmap), the others are rejected as too long (mmap ENOMEM, munmap
/// EINVAL) — except mprotect, which Linux processes up to the first hole when
/// `addr + PAGE_ALIGN(len)` does not overflow (1 << 62, 1 << 63, (1 << 62) + 1).
const HUGE_LENS: [u64; 6] = [u64::MAX, u64::MAX - (PAGE - 1), u64::MAX - PAGE, 1 << 63, 1 << 62, (1 << 62) + 1];

// ---------------------------------------------------------------------------------------
// Operations, results, layouts
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Fixed,
    NoReplace,
    Hint,
}

/// One operation; `off` is a byte offset from the window base (always inside the window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Mmap { kind: Kind, off: u64, len: u64, prot: u8 },
    Munmap { off: u64, len: u64 },
    Mprotect { off: u64, len: u64, prot: u8 },
}

/// The outcome of one operation, window relative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    /// munmap / mprotect success.
    Ok,
    /// mmap success at this window offset.
    At(u64),
    /// A hinted mmap placed outside the window (unmapped again at once).
    Moved,
    /// Failure with this Linux errno.
    Err(i32),
}

/// Page-by-page view of the window: `None` = unmapped, `Some(prot bits | START)`, where
/// [`START`] marks the first page of an area (a VMA on Linux).
type Layout = Vec<Option<u8>>;

/// Layout bit: an area (VMA) starts at this page.
const START: u8 = 8;

fn show_layout(l: &Layout) -> String {
    l.iter().map(|p| p.map_or('.', |b| char::from(b'0' + b))).collect()
}

fn show_ret(r: Ret) -> String {
    match r {
        Ret::Ok => "ok".into(),
        Ret::At(o) => format!("at:{o:#x}"),
        Ret::Moved => "moved".into(),
        Ret::Err(e) => format!("err:{e}({})", Errno::from_linux(e).map_or("?", |e| e.name())),
    }
}

fn encode_ops(seqs: &[Vec<Op>]) -> String {
    let mut s = String::new();
    for seq in seqs {
        for op in seq {
            match *op {
                Op::Mmap { kind, off, len, prot } => {
                    let k = match kind {
                        Kind::Fixed => 'f',
                        Kind::NoReplace => 'n',
                        Kind::Hint => 'h',
                    };
                    writeln!(s, "m {k} {off} {len} {prot}").unwrap();
                }
                Op::Munmap { off, len } => writeln!(s, "u {off} {len}").unwrap(),
                Op::Mprotect { off, len, prot } => writeln!(s, "p {off} {len} {prot}").unwrap(),
            }
        }
        s.push_str("end\n");
    }
    s
}

fn decode_ops(text: &str) -> Vec<Vec<Op>> {
    let mut seqs = Vec::new();
    let mut cur = Vec::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| w[i].parse::<u64>().expect("number");
        match w.first().copied() {
            Some("end") => seqs.push(std::mem::take(&mut cur)),
            Some("m") => {
                let kind = match w[1] {
                    "f" => Kind::Fixed,
                    "n" => Kind::NoReplace,
                    _ => Kind::Hint,
                };
                cur.push(Op::Mmap { kind, off: num(2), len: num(3), prot: num(4) as u8 });
            }
            Some("u") => cur.push(Op::Munmap { off: num(1), len: num(2) }),
            Some("p") => cur.push(Op::Mprotect { off: num(1), len: num(2), prot: num(3) as u8 }),
            _ => {}
        }
    }
    seqs
}

// ---------------------------------------------------------------------------------------
// Linux side (the worker process)
// ---------------------------------------------------------------------------------------

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Page-by-page layout of `[base, base + pages * PAGE)` from `/proc/self/maps`.
fn maps_layout(base: u64, pages: u64) -> Layout {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let end = base + pages * PAGE;
    let mut l = vec![None; pages as usize];
    for line in maps.lines() {
        let mut it = line.split_whitespace();
        let (Some(range), Some(perms)) = (it.next(), it.next()) else { continue };
        let (s, e) = range.split_once('-').expect("maps range");
        let s = u64::from_str_radix(s, 16).expect("maps start");
        let e = u64::from_str_radix(e, 16).expect("maps end");
        if e <= base || s >= end {
            continue;
        }
        let p = perms.as_bytes();
        let bits = u8::from(p[0] == b'r') | u8::from(p[1] == b'w') << 1 | u8::from(p[2] == b'x') << 2;
        for a in (s.max(base)..e.min(end)).step_by(PAGE as usize) {
            l[((a - base) / PAGE) as usize] = Some(if a == s { bits | START } else { bits });
        }
    }
    l
}

/// Find a free window with free guard space around it (reserved with
/// MAP_FIXED_NOREPLACE to prove it is free, then unmapped).
fn find_linux_window() -> u64 {
    let total = (WIN_PAGES + 2 * GUARD_PAGES) * PAGE;
    for cand in LINUX_CANDIDATES {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
        let r = unsafe { libc::mmap(cand as *mut libc::c_void, total as usize, libc::PROT_NONE, flags, -1, 0) };
        if r == libc::MAP_FAILED {
            continue;
        }
        // SAFETY: `r` is the mapping just made, `total` bytes long.
        unsafe { libc::munmap(r, total as usize) };
        if r as u64 == cand && maps_layout(cand, WIN_PAGES + 2 * GUARD_PAGES).iter().all(Option::is_none) {
            return cand + GUARD_PAGES * PAGE;
        }
    }
    panic!("no free scratch window among {LINUX_CANDIDATES:x?}");
}

/// Apply `op` in the Linux window at `base`.
fn linux_apply(base: u64, op: Op) -> Ret {
    let win_end = base + WIN_PAGES * PAGE;
    // SAFETY (all calls below): every address is inside the scratch window, which only this
    // worker uses, or the call is one that fails without effect (unaligned address, zero or
    // huge length); a huge mprotect stops at the first hole, at the latest the free guard
    // space after the window.
    unsafe {
        match op {
            Op::Mmap { kind, off, len, prot } => {
                let extra = match kind {
                    Kind::Fixed => libc::MAP_FIXED,
                    Kind::NoReplace => libc::MAP_FIXED_NOREPLACE,
                    Kind::Hint => 0,
                };
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra;
                let r = libc::mmap((base + off) as *mut libc::c_void, len as usize, i32::from(prot), flags, -1, 0);
                if r == libc::MAP_FAILED {
                    return Ret::Err(errno());
                }
                let r = r as u64;
                if r >= base && r < win_end {
                    Ret::At(r - base)
                } else {
                    assert_eq!(kind, Kind::Hint, "a fixed mmap at {:#x} returned {r:#x}", base + off);
                    libc::munmap(r as *mut libc::c_void, len as usize);
                    Ret::Moved
                }
            }
            Op::Munmap { off, len } => {
                if libc::munmap((base + off) as *mut libc::c_void, len as usize) == 0 {
                    Ret::Ok
                } else {
                    Ret::Err(errno())
                }
            }
            Op::Mprotect { off, len, prot } => {
                if libc::mprotect((base + off) as *mut libc::c_void, len as usize, i32::from(prot)) == 0 {
                    Ret::Ok
                } else {
                    Ret::Err(errno())
                }
            }
        }
    }
}

/// The worker: only active in the re-executed process.
#[test]
fn linux_worker() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("read ops");
    let seqs = decode_ops(&input);
    let base = find_linux_window();
    let mut out = String::with_capacity(seqs.iter().map(Vec::len).sum::<usize>() * 80);
    writeln!(out, "\n{BEGIN}\nbase {base:#x}").unwrap();
    for seq in &seqs {
        for &op in seq {
            let r = linux_apply(base, op);
            let l = maps_layout(base, WIN_PAGES);
            let r = match r {
                Ret::Ok => "ok".to_string(),
                Ret::At(o) => format!("at {o}"),
                Ret::Moved => "moved".to_string(),
                Ret::Err(e) => format!("err {e}"),
            };
            writeln!(out, "{r} {}", show_layout(&l)).unwrap();
        }
        // SAFETY: the window belongs to this worker.
        unsafe { libc::munmap(base as *mut libc::c_void, (WIN_PAGES * PAGE) as usize) };
        let after = maps_layout(base - GUARD_PAGES * PAGE, WIN_PAGES + 2 * GUARD_PAGES);
        assert!(after.iter().all(Option::is_none), "window and guards not empty after a sequence");
        out.push_str("end\n");
    }
    writeln!(out, "{END}").unwrap();
    let mut so = std::io::stdout().lock();
    so.write_all(out.as_bytes()).unwrap();
    so.flush().unwrap();
}

fn parse_layout(s: &str) -> Layout {
    s.bytes().map(|c| (c != b'.').then(|| c - b'0')).collect()
}

/// Run `seqs` in a Linux worker process: per sequence, per op, (result, layout after).
fn run_linux(seqs: &[Vec<Op>]) -> Vec<Vec<(Ret, Layout)>> {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["linux_worker", "--exact", "--nocapture", "--test-threads=1"])
        .env(WORKER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the Linux worker");
    let input = encode_ops(seqs);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).expect("write ops");
    });
    let output = child.wait_with_output().expect("worker output");
    writer.join().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "Linux worker failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let body = stdout
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(b, _)| b)
        .unwrap_or_else(|| panic!("no worker results in:\n{stdout}"));
    let mut res = Vec::new();
    let mut cur = Vec::new();
    for line in body.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            [] | ["base", _] => {}
            ["end"] => res.push(std::mem::take(&mut cur)),
            ["ok", l] => cur.push((Ret::Ok, parse_layout(l))),
            ["moved", l] => cur.push((Ret::Moved, parse_layout(l))),
            ["at", o, l] => cur.push((Ret::At(o.parse().unwrap()), parse_layout(l))),
            ["err", e, l] => cur.push((Ret::Err(e.parse().unwrap()), parse_layout(l))),
            _ => panic!("bad worker line {line:?}"),
        }
    }
    assert_eq!(res.len(), seqs.len(), "worker answered every sequence");
    for (r, s) in res.iter().zip(seqs) {
        assert_eq!(r.len(), s.len(), "worker answered every op");
    }
    res
}

// ---------------------------------------------------------------------------------------
// Core side
// ---------------------------------------------------------------------------------------

fn new_core() -> H {
    let mut h = H::with(mem_model::ModelConfig::riscv64(16 << 20), |c| c.large_pages = false);
    let cfg = h.core.config();
    assert!(
        cfg.user_lo <= CORE_BASE && CORE_BASE + WIN_PAGES * PAGE <= cfg.user_hi,
        "core window inside the user range"
    );
    h.client(CLIENT, 1000, 1000, 1 << 20);
    h
}

fn core_layout(h: &H) -> Layout {
    let mut l = vec![None; WIN_PAGES as usize];
    let end = CORE_BASE + WIN_PAGES * PAGE;
    for (s, e, prot) in h.core.layout(CLIENT).unwrap() {
        for a in (s.max(CORE_BASE)..e.min(end)).step_by(PAGE as usize) {
            l[((a - CORE_BASE) / PAGE) as usize] = Some(if a == s { prot.bits() | START } else { prot.bits() });
        }
    }
    l
}

fn prot(bits: u8) -> Prot {
    Prot::from_bits(bits).expect("valid prot bits")
}

fn err(e: Errno) -> Ret {
    Ret::Err(e.linux())
}

/// Apply `op` to the core; `linux` is what Linux answered (only used for hints: a hint
/// Linux declined is not held against a core that took a *free* hinted range).
fn core_apply(h: &mut H, op: Op, linux: Ret) -> Result<Ret, String> {
    let addr = |off: u64| CORE_BASE + off;
    let in_win = |a: u64| (CORE_BASE..CORE_BASE + WIN_PAGES * PAGE).contains(&a);
    Ok(match op {
        Op::Mmap { kind, off, len, prot: p } => {
            let placement = match kind {
                Kind::Fixed => Placement::Fixed,
                Kind::NoReplace => Placement::FixedNoReplace,
                Kind::Hint => Placement::Hint,
            };
            let before = core_layout(h);
            match h.core.mmap(CLIENT, &MmapArgs::anon(len, prot(p)).at(addr(off), placement)) {
                Err(e) => err(e),
                Ok(a) if in_win(a) => {
                    if kind == Kind::Hint && linux == Ret::Moved {
                        let pages = len.div_ceil(PAGE);
                        let first = ((a - CORE_BASE) / PAGE) as usize;
                        let free = before[first..first + pages as usize].iter().all(Option::is_none);
                        if !free {
                            return Err(format!("core took the hint {a:#x} over mapped pages"));
                        }
                        // Linux declined a free hint (its policy, not the core's concern).
                        h.core.munmap(CLIENT, a, len).unwrap();
                        Ret::Moved
                    } else {
                        Ret::At(a - CORE_BASE)
                    }
                }
                Ok(a) => {
                    if kind != Kind::Hint {
                        return Err(format!("fixed mmap returned {a:#x} outside the window"));
                    }
                    h.core.munmap(CLIENT, a, len).unwrap();
                    Ret::Moved
                }
            }
        }
        Op::Munmap { off, len } => match h.core.munmap(CLIENT, addr(off), len) {
            Ok(()) => Ret::Ok,
            Err(e) => err(e),
        },
        Op::Mprotect { off, len, prot: p } => match h.core.mprotect(CLIENT, addr(off), len, prot(p)) {
            Ok(()) => Ret::Ok,
            Err(e) => err(e),
        },
    })
}

// ---------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------


struct Gen {
    prots: Vec<u8>,
}

impl Gen {
    /// A page-aligned range inside the window: (offset, length), `max_pages` long at most;
    /// sometimes a length that is not a page multiple (rounded up by both).
    fn range(&self, r: &mut Rng, max_pages: u64) -> (u64, u64) {
        let first = r.range(0, WIN_PAGES - 1);
        let pages = r.range(1, max_pages).min(WIN_PAGES - first);
        let mut len = pages * PAGE;
        if r.chance(20) {
            len -= r.range(1, PAGE - 1);
        }
        (first * PAGE, len)
    }

    fn kind(&self, r: &mut Rng) -> Kind {
        match r.range(0, 9) {
            0..=4 => Kind::Fixed,
            5..=7 => Kind::NoReplace,
            _ => Kind::Hint,
        }
    }

    /// An edge case: unaligned address, zero or huge length, in any operation.
    fn edge(&self, r: &mut Rng) -> Op {
        let (mut off, mut len) = self.range(r, 8);
        if r.chance(50) {
            off += r.range(1, PAGE - 1);
        }
        match r.range(0, 2) {
            0 => len = 0,
            1 => len = r.pick(&HUGE_LENS),
            _ => {}
        }
        let prot = r.pick(&self.prots);
        match r.range(0, 2) {
            0 => Op::Mmap { kind: self.kind(r), off, len, prot },
            1 => Op::Munmap { off, len },
            _ => Op::Mprotect { off, len, prot },
        }
    }

    /// A mprotect range starting on a page `mapped` marks as mapped, mostly staying inside
    /// the mapped run (sometimes running into the hole after it).
    fn protect_range(&self, r: &mut Rng, mapped: &[bool]) -> Option<(u64, u64)> {
        let starts: Vec<u64> = (0..WIN_PAGES).filter(|&p| mapped[p as usize]).collect();
        if starts.is_empty() {
            return None;
        }
        let first = r.pick(&starts);
        let run = (first..WIN_PAGES).take_while(|&p| mapped[p as usize]).count() as u64;
        let pages = if r.chance(80) { r.range(1, run) } else { run + r.range(1, 4) };
        let mut len = pages.min(WIN_PAGES - first) * PAGE;
        if r.chance(20) {
            len -= r.range(1, PAGE - 1);
        }
        Some((first * PAGE, len))
    }

    /// The next operation; `mapped` is a rough guess of the window's mapped pages, only used
    /// to aim mprotect at mapped runs more often than chance would.
    fn op(&self, r: &mut Rng, mapped: &[bool]) -> Op {
        let prot = r.pick(&self.prots);
        match r.range(0, 99) {
            0..=39 => {
                let (off, len) = self.range(r, 8);
                Op::Mmap { kind: self.kind(r), off, len, prot }
            }
            40..=57 => {
                let (off, len) = self.range(r, 16);
                Op::Munmap { off, len }
            }
            58..=89 => {
                let aimed = if r.chance(70) { self.protect_range(r, mapped) } else { None };
                let (off, len) = aimed.unwrap_or_else(|| self.range(r, 16));
                Op::Mprotect { off, len, prot }
            }
            _ => self.edge(r),
        }
    }

    fn seq(&self, r: &mut Rng, ops: usize) -> Vec<Op> {
        let mut mapped = vec![false; WIN_PAGES as usize];
        let mut seq = Vec::with_capacity(ops);
        for _ in 0..ops {
            let op = self.op(r, &mapped);
            // Track mmaps and munmaps that obviously succeed (aligned, sane length).
            let pages = |off: u64, len: u64| {
                let ok = off.is_multiple_of(PAGE) && len != 0 && len < 1 << 56;
                let first = (off / PAGE) as usize;
                ok.then(|| first..(first + len.div_ceil(PAGE) as usize).min(WIN_PAGES as usize))
            };
            match op {
                Op::Mmap { kind, off, len, .. } => {
                    if let Some(ps) = pages(off, len) {
                        if kind == Kind::Fixed || mapped[ps.clone()].iter().all(|m| !m) {
                            mapped[ps].fill(true);
                        }
                    }
                }
                Op::Munmap { off, len } => {
                    if let Some(ps) = pages(off, len) {
                        mapped[ps].fill(false);
                    }
                }
                Op::Mprotect { .. } => {}
            }
            seq.push(op);
        }
        seq
    }
}

/// Protections this host lets an anonymous private mapping have (W+X or X may be refused by
/// a security module): probed with mmap and with mprotect from RW.
fn host_prots() -> Vec<u8> {
    (0u8..8)
        .filter(|&p| unsafe {
            // SAFETY: a fresh private anonymous mapping placed by the kernel, unmapped again.
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            let a = libc::mmap(std::ptr::null_mut(), PAGE as usize, i32::from(p), flags, -1, 0);
            if a == libc::MAP_FAILED {
                return false;
            }
            libc::munmap(a, PAGE as usize);
            let b = libc::mmap(std::ptr::null_mut(), PAGE as usize, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0);
            if b == libc::MAP_FAILED {
                return false;
            }
            let ok = libc::mprotect(b, PAGE as usize, i32::from(p)) == 0;
            libc::munmap(b, PAGE as usize);
            ok
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------------------

fn show_ops(ops: &[Op]) -> String {
    ops.iter().enumerate().map(|(i, op)| format!("    {i:2}: {op:?}\n")).collect()
}

/// Run `seqs` on Linux and on the core; returns (ops compared, mismatch reports).
fn differential(seqs: &[Vec<Op>]) -> (usize, Vec<String>) {
    differential_stats(seqs, &mut std::collections::BTreeMap::new())
}

/// `differential`, also counting Linux's outcomes per operation kind in `stats`.
fn differential_stats(seqs: &[Vec<Op>], stats: &mut std::collections::BTreeMap<String, usize>) -> (usize, Vec<String>) {
    let linux = run_linux(seqs);
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (si, (seq, lres)) in seqs.iter().zip(&linux).enumerate() {
        let mut h = new_core();
        for (oi, (&op, (lret, llay))) in seq.iter().zip(lres).enumerate() {
            // A panic in the core (assertion, invariant) is reported with the sequence too.
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let got = core_apply(&mut h, op, *lret);
                h.check();
                (got, core_layout(&h))
            }));
            let (got, clay) = match step {
                Ok(x) => x,
                Err(p) => {
                    let msg =
                        p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                    let msg = msg.unwrap_or_default();
                    mismatches.push(format!(
                        "sequence {si}, op {oi}: {op:?}\n  core panicked: {msg}\n  ops:\n{}",
                        show_ops(&seq[..=oi])
                    ));
                    break;
                }
            };
            compared += 1;
            let name = match op {
                Op::Mmap { kind, .. } => format!("mmap-{kind:?}"),
                Op::Munmap { .. } => "munmap".into(),
                Op::Mprotect { .. } => "mprotect".into(),
            };
            let outcome = match lret {
                Ret::At(_) => "ok".to_string(),
                r => show_ret(*r),
            };
            *stats.entry(format!("{name} {outcome}")).or_default() += 1;
            let bad = match &got {
                Err(_) => true,
                Ok(cret) => cret != lret || &clay != llay,
            };
            if bad {
                let cret = got.map_or_else(|e| e, show_ret);
                mismatches.push(format!(
                    "sequence {si}, op {oi}: {op:?}\n  linux: {:<16} {}\n  core:  {:<16} {}\n  \
                     (layout: one char per page, '.' unmapped, else '0' + prot bits r=1 w=2 x=4, + 8 where an area starts)\n  ops:\n{}",
                    show_ret(*lret),
                    show_layout(llay),
                    cret,
                    show_layout(&clay),
                    show_ops(&seq[..=oi]),
                ));
                break; // the states differ from here on
            }
        }
    }
    (compared, mismatches)
}

/// Can this host run the comparison (4 KiB pages, a readable `/proc/self/maps`)?
fn host_supported() -> bool {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page != PAGE as libc::c_long {
        println!("linux_diff: skipped, host page size {page} is not 4 KiB");
        return false;
    }
    if std::fs::read_to_string("/proc/self/maps").is_err() {
        println!("linux_diff: skipped, /proc/self/maps is not readable");
        return false;
    }
    true
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn linux_differential_random() {
    if !host_supported() {
        return;
    }
    let t0 = std::time::Instant::now();
    let n_seqs = env_num("LINUX_DIFF_SEQS", 200);
    let n_ops = env_num("LINUX_DIFF_OPS", 40) as usize;
    let seed = env_num("LINUX_DIFF_SEED", 0x5eed_11e4_d1ff);
    let prots = host_prots();
    assert!(prots.contains(&1) && prots.contains(&3), "the host allows R and RW mappings");
    let g = Gen { prots: prots.clone() };
    let seqs: Vec<Vec<Op>> =
        (0..n_seqs).map(|i| g.seq(&mut Rng(seed ^ i.wrapping_mul(0x1234_5678_9abc_def1)), n_ops)).collect();
    let mut stats = std::collections::BTreeMap::new();
    let (compared, mismatches) = differential_stats(&seqs, &mut stats);
    let total: usize = seqs.iter().map(Vec::len).sum();
    println!(
        "linux_diff: {n_seqs} sequences, {compared}/{total} ops compared, prots {prots:?}, seed {seed:#x}, {} mismatches, {:?}",
        mismatches.len(),
        t0.elapsed()
    );
    let stats: Vec<String> = stats.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("linux_diff: Linux outcomes: {}", stats.join(", "));
    for m in mismatches.iter().take(env_num("LINUX_DIFF_SHOW", 3) as usize) {
        println!("{m}");
    }
    assert!(mismatches.is_empty(), "{} sequences diverge from Linux; first:\n{}", mismatches.len(), mismatches[0]);
}

/// Hand-written sequences for the corners the brief names (always generated too, but
/// pinned here so they do not depend on the random stream).
#[test]
fn linux_differential_corners() {
    use Kind::*;
    if !host_supported() {
        return;
    }
    let p = PAGE;
    let seqs = vec![
        // mprotect across a hole: pieces before the hole change, then ENOMEM.
        vec![
            Op::Mmap { kind: Fixed, off: 0, len: 2 * p, prot: 1 },
            Op::Mmap { kind: Fixed, off: 3 * p, len: 2 * p, prot: 3 },
            Op::Mprotect { off: p, len: 3 * p, prot: 7 },
            Op::Mprotect { off: 2 * p, len: 2 * p, prot: 0 },
            Op::Mprotect { off: 0, len: 5 * p, prot: 3 },
            Op::Mprotect { off: 0, len: 0, prot: 1 },
            Op::Mprotect { off: 10 * p, len: 0, prot: 1 },
            Op::Mprotect { off: 10 * p, len: p, prot: 1 },
        ],
        // munmap spanning holes and several areas; len 0; unaligned.
        vec![
            Op::Mmap { kind: Fixed, off: 0, len: 3 * p, prot: 1 },
            Op::Mmap { kind: Fixed, off: 5 * p, len: 3 * p, prot: 2 },
            Op::Mmap { kind: Fixed, off: 9 * p, len: p, prot: 4 },
            Op::Munmap { off: p, len: 9 * p - 1 },
            Op::Munmap { off: 0, len: 0 },
            Op::Munmap { off: 1, len: p },
            Op::Munmap { off: 30 * p, len: 4 * p },
        ],
        // Fixed replaces, FixedNoReplace fails on any overlap, hints on free/occupied ranges.
        vec![
            Op::Mmap { kind: Fixed, off: 4 * p, len: 4 * p, prot: 3 },
            Op::Mmap { kind: Fixed, off: 6 * p, len: 4 * p, prot: 1 },
            Op::Mmap { kind: NoReplace, off: 9 * p, len: 2 * p, prot: 1 },
            Op::Mmap { kind: NoReplace, off: 10 * p, len: 2 * p, prot: 7 },
            Op::Mmap { kind: Hint, off: 4 * p, len: p, prot: 3 },
            Op::Mmap { kind: Hint, off: 20 * p, len: 2 * p, prot: 2 },
            Op::Mmap { kind: Hint, off: 3 * p, len: p, prot: 5 },
            Op::Mmap { kind: Fixed, off: 3 * p + 1, len: p, prot: 1 },
            Op::Mmap { kind: NoReplace, off: 3 * p, len: 0, prot: 1 },
            Op::Mmap { kind: Hint, off: 3 * p, len: 0, prot: 1 },
        ],
        // Huge lengths that fail the same way everywhere.
        vec![
            Op::Mmap { kind: Fixed, off: 0, len: 4 * p, prot: 3 },
            Op::Mmap { kind: Fixed, off: p, len: u64::MAX, prot: 1 },
            Op::Mmap { kind: Fixed, off: p, len: 1 << 62, prot: 1 },
            Op::Mmap { kind: NoReplace, off: 40 * p, len: 1 << 63, prot: 1 },
            Op::Mmap { kind: Hint, off: 40 * p, len: 1 << 62, prot: 1 },
            Op::Mmap { kind: Hint, off: 40 * p + 5, len: u64::MAX - p, prot: 1 },
            Op::Munmap { off: p, len: 1 << 62 },
            Op::Munmap { off: p, len: u64::MAX },
            Op::Munmap { off: p + 1, len: 1 << 62 },
            Op::Mprotect { off: p, len: u64::MAX, prot: 1 },
            Op::Mprotect { off: p, len: u64::MAX - p, prot: 1 },
            Op::Mprotect { off: p + 1, len: 1 << 62, prot: 1 },
            Op::Mprotect { off: 10 * p, len: 1 << 62, prot: 1 },
        ],
    ];
    let (compared, mismatches) = differential(&seqs);
    println!("linux_diff corners: {compared} ops compared, {} mismatches", mismatches.len());
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Divergences the differential test once found in the core, pinned as regression tests
// ---------------------------------------------------------------------------------------

#[test]
fn linux_differential_bug_mprotect_past_user_top() {
    if !host_supported() {
        return;
    }
    let p = PAGE;
    let seqs = vec![vec![
        Op::Mmap { kind: Kind::Fixed, off: 0, len: 2 * p, prot: 1 },
        Op::Mmap { kind: Kind::Fixed, off: 2 * p, len: 2 * p, prot: 2 },
        Op::Mprotect { off: p, len: 1 << 62, prot: 3 },
        Op::Mprotect { off: 0, len: 1 << 63, prot: 0 },
    ]];
    let (_, mismatches) = differential(&seqs);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn linux_differential_bug_fixed_unaligned_huge_len() {
    if !host_supported() {
        return;
    }
    let p = PAGE;
    let seqs = vec![vec![
        Op::Mmap { kind: Kind::Fixed, off: p + 1, len: 1 << 62, prot: 1 },
        Op::Mmap { kind: Kind::NoReplace, off: p + 1, len: 1 << 63, prot: 1 },
        Op::Mmap { kind: Kind::Fixed, off: p + 1, len: u64::MAX - p, prot: 1 },
    ]];
    let (_, mismatches) = differential(&seqs);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn linux_differential_bug_unaligned_hint_rounding() {
    if !host_supported() {
        return;
    }
    let p = PAGE;
    let seqs = vec![vec![
        Op::Mmap { kind: Kind::Hint, off: 20 * p + 1, len: p, prot: 3 },
        Op::Mmap { kind: Kind::Hint, off: 30 * p + p - 1, len: 2 * p, prot: 1 },
    ]];
    let (_, mismatches) = differential(&seqs);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// A new anonymous mapping merges with equal neighbours as Linux merges VMAs (one page at
/// `0xe5000`, then one at `0xe6000`: one VMA `e5000-e7000`), whichever way it is placed, and
/// never with a neighbour of other rights; a mapping replacing the middle of an equal area
/// leaves one area. Compared with the host kernel area by area (the layout marks where each
/// area starts).
#[test]
fn linux_differential_bug_mmap_merges_with_equal_neighbours() {
    use Kind::*;
    if !host_supported() {
        return;
    }
    let p = PAGE;
    let seqs = vec![
        // The differential finding: two one-page private RW mappings side by side.
        vec![Op::Mmap { kind: Fixed, off: 5 * p, len: p, prot: 3 }, Op::Mmap { kind: Fixed, off: 6 * p, len: p, prot: 3 }],
        // Below, above, between two equal areas (three become one); other rights stay apart.
        vec![
            Op::Mmap { kind: NoReplace, off: 10 * p, len: 2 * p, prot: 1 },
            Op::Mmap { kind: NoReplace, off: 8 * p, len: 2 * p, prot: 1 },
            Op::Mmap { kind: NoReplace, off: 14 * p, len: p, prot: 1 },
            Op::Mmap { kind: Hint, off: 12 * p, len: 2 * p, prot: 1 },
            Op::Mmap { kind: Fixed, off: 15 * p, len: p, prot: 3 },
            Op::Mmap { kind: Fixed, off: 7 * p, len: p, prot: 0 },
            Op::Mmap { kind: Fixed, off: 6 * p, len: p, prot: 0 },
        ],
        // A Fixed mapping over the middle of an equal area: still one area; of other rights:
        // three; then mprotect back to equal rights: one again.
        vec![
            Op::Mmap { kind: Fixed, off: 20 * p, len: 8 * p, prot: 3 },
            Op::Mmap { kind: Fixed, off: 22 * p, len: 2 * p, prot: 3 },
            Op::Mmap { kind: Fixed, off: 24 * p, len: 2 * p, prot: 1 },
            Op::Mprotect { off: 24 * p, len: 2 * p, prot: 3 },
            Op::Munmap { off: 21 * p, len: p },
            Op::Mmap { kind: Hint, off: 21 * p, len: p, prot: 3 },
        ],
    ];
    let (compared, mismatches) = differential(&seqs);
    assert_eq!(compared, seqs.iter().map(Vec::len).sum::<usize>());
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
