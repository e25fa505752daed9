//! Kernel failure injection: a fixed scenario touching every kind of kernel call the core
//! makes is run once cleanly to count its calls (N); then, for every index i < N, on a fresh
//! harness, call i is failed with a seL4 error and the scenario runs again, each step
//! allowed to fail (errno or unresolved fault) but never to panic. Afterwards the core's
//! invariants must hold and agree with the model; and once every space, shm segment and
//! backend is gone and the pools are trimmed, nothing may have leaked: no frame in use, no
//! deferred release, every CNode slot and RAM untyped as at the start.
//!
//! Bugs found are kept as `#[ignore = "BUG: ..."]` tests at the end of the file.
mod common;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::*;
use mem_core::mmap::MmapArgs;
use mem_core::{Cred, KernelError, ObjectType, Prot};
use mem_model::{ModelConfig, Op};
use mem_protocol::{Backing, MsyncFlags, Placement, ShmKey};

const PAGE: u64 = 4096;
const MB: u64 = 1 << 20;
const QUOTA: u64 = 1 << 20;
const SHM_KEY: u32 = 42;
/// Device page the scenario maps (inside the preset 16 MiB device untyped).
const DEV: u64 = ModelConfig::DEVICE_BASE + 0x3000;

/// The harness, with the direct map's tables made (before the calls are counted: making
/// them is start-up, its failures are tested on their own).
fn harness() -> H {
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| {
        c.large_pages = true;
        c.device_grants = vec![(1, ModelConfig::DEVICE_BASE, 1 << 20)];
        c.buffer = Some(mem_core::BufferConfig { vaddr: 0x7010_0000, pages: 4, view: Some((0x9000_0000, 0x20_0000)) });
        c.direct_map = Some(0x2_0000_0000);
    });
    h.core.prepare_direct_map().expect("direct map tables");
    h.core.kernel_mut().reset_stats();
    h
}

/// What the scenario created that may outlive its clients.
#[derive(Default, Debug)]
struct Made {
    /// Frames the server keeps for good (the direct map's page tables).
    server_frames: u64,
    shm: Vec<u32>,
    backends: Vec<u32>,
}

/// A step's result: in strict mode (the clean run) every step must succeed.
fn chk<T, E: std::fmt::Debug>(strict: bool, line: u32, r: Result<T, E>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if strict => panic!("clean scenario step at line {line} failed: {e:?}"),
        Err(_) => None,
    }
}

/// The scenario: every step may fail (unless `st`, strict); later steps skip what depends
/// on a failed one.
fn scenario(h: &mut H, st: bool) -> Made {
    let mut made = Made::default();
    let cred = Cred { uid: 1000, gid: 1000 };
    // A client that comes and goes: the last one, so its frames can go back to their
    // untypeds (trim), direct-map copies first.
    made.server_frames = h.core.stats(None).map(|s| s.frames_in_use).unwrap_or(0);
    if chk(st, line!(), h.core.admin_create(5, cred, QUOTA)).is_some() {
        if let Some(a) = chk(st, line!(), h.core.mmap(5, &MmapArgs::anon(8 * PAGE, Prot::RW))) {
            for i in 0..8 {
                chk(st, line!(), h.write_u64(5, a + i * PAGE, i));
            }
        }
        chk(st, line!(), h.core.admin_destroy(5));
        h.core.trim();
    }
    chk(st, line!(), h.core.admin_create(1, cred, QUOTA));
    if !h.core.has_space(1) {
        return made;
    }
    // Small anonymous area: lazy faults, populate, mprotect, partial munmap.
    let a = chk(st, line!(), h.core.mmap(1, &MmapArgs::anon(16 * PAGE, Prot::RW)));
    if let Some(a) = a {
        for i in 0..6 {
            chk(st, line!(), h.write_u64(1, a + i * PAGE, 0x1000 + i));
        }
        chk(st, line!(), h.core.populate(1, a + 8 * PAGE, 4 * PAGE));
        chk(st, line!(), h.core.mprotect(1, a + 2 * PAGE, 3 * PAGE, Prot::READ));
        chk(st, line!(), h.core.munmap(1, a + 9 * PAGE, 2 * PAGE));
    }
    // 4 MiB anonymous area (2 MiB aligned): two large pages; the first is split by an
    // mprotect inside it and then partly unmapped, the second stays large (COW below).
    let l = chk(st, line!(), h.core.mmap(1, &MmapArgs::anon(4 * MB, Prot::RW)));
    if let Some(l) = l {
        for k in 0..2 {
            chk(st, line!(), h.write_u64(1, l + k * 2 * MB + 5 * PAGE, 0x2000 + k));
        }
        chk(st, line!(), h.core.mprotect(1, l + 3 * PAGE, 2 * PAGE, Prot::READ));
        chk(st, line!(), h.core.munmap(1, l + 100 * PAGE, 10 * PAGE));
    }
    // An ELF-like region with initial contents (frame writes), and a query (Page_GetAddress).
    if let Some(r) = chk(st, line!(), h.core.region(1, 0x7000_0000, 3 * PAGE, Prot::RW, &[0x5a; 5000])) {
        chk(st, line!(), h.read_u64(1, r + PAGE));
        chk(st, line!(), h.core.query(1, r));
        // The IPC-buffer page: exported (pinned), a lazy one filled by the export.
        chk(st, line!(), h.core.admin_export(1, r));
        chk(st, line!(), h.core.admin_export(1, r + 2 * PAGE));
    }
    // SysV shm: a keyed segment (shared with the clone below) and a private one.
    let shm = chk(st, line!(), h.core.shmget(1, ShmKey::Key(SHM_KEY), 3 * PAGE, true, false, 0o600));
    let mut s1 = None;
    if let Some(id) = shm {
        made.shm.push(id);
        s1 = chk(st, line!(), h.core.shmat(1, id, None, false));
        if let Some(s1) = s1 {
            chk(st, line!(), h.write_u64(1, s1 + PAGE, 0x4000));
        }
    }
    if let Some(id) = chk(st, line!(), h.core.shmget(1, ShmKey::Private, 2 * PAGE, true, false, 0o600)) {
        made.shm.push(id);
        if let Some(s) = chk(st, line!(), h.core.shmat(1, id, None, false)) {
            chk(st, line!(), h.write_u64(1, s, 0x4002));
        }
    }
    // Backend: store write, shared mapping (cache fill from the store), msync, private map.
    let mut bm = None;
    let mut bp = None;
    if let Some(b) = chk(st, line!(), h.core.backend_create(1, 4 * PAGE, 0o600)) {
        made.backends.push(b);
        chk(st, line!(), h.core.backend_write(1, b, 100, b"hello"));
        chk(st, line!(), h.core.backend_write(1, b, 2 * PAGE - 2, b"wxyz"));
        let mut m = MmapArgs::anon(4 * PAGE, Prot::RW);
        m.shared = true;
        m.backing = Backing::Backend { id: b, offset: 0 };
        bm = chk(st, line!(), h.core.mmap(1, &m));
        if let Some(m) = bm {
            chk(st, line!(), h.read_u64(1, m + 96));
            chk(st, line!(), h.write_u64(1, m + PAGE, 0x5000));
            chk(st, line!(), h.write_u64(1, m + 3 * PAGE, 0x5001));
            chk(st, line!(), h.core.msync(1, m, 4 * PAGE, MsyncFlags::SYNC));
        }
        let mut p = MmapArgs::anon(2 * PAGE, Prot::RW);
        p.backing = Backing::Backend { id: b, offset: PAGE };
        bp = chk(st, line!(), h.core.mmap(1, &p));
        if let Some(p) = bp {
            chk(st, line!(), h.read_u64(1, p));
        }
        let mut buf = [0u8; 8];
        chk(st, line!(), h.core.backend_read(1, b, PAGE, &mut buf));
    }
    // Device memory (granted to client 1), shared anonymous memory.
    if let Some(d) = chk(st, line!(), h.core.map_phys(1, 0, Placement::Anywhere, DEV, 2 * PAGE, Prot::RW)) {
        chk(st, line!(), h.write_u64(1, d + PAGE, 0x6000));
    }
    let mut sh = MmapArgs::anon(2 * PAGE, Prot::RW);
    sh.shared = true;
    if let Some(s) = chk(st, line!(), h.core.mmap(1, &sh)) {
        chk(st, line!(), h.write_u64(1, s, 0x7000));
    }
    // A pager (client 3) serves an area of client 1: a fault queued before the pager
    // waits (answered with bytes), a fault handed to the waiting pager (answered with a
    // zero page), and a fault left pending when the pager's owner is destroyed.
    pager_part(h, st, cred);
    // Clone: private pages (small and large) become COW, shared areas stay shared.
    if chk(st, line!(), h.core.admin_clone(1, 2, QUOTA)).is_some() {
        if let Some(a) = a {
            chk(st, line!(), h.write_u64(2, a, 0x3000));
            chk(st, line!(), h.write_u64(1, a + PAGE, 0x3001));
            chk(st, line!(), h.read_u64(2, a + PAGE));
        }
        if let Some(l) = l {
            // Child copies the 2 MiB page; the parent then takes it over (last reference).
            chk(st, line!(), h.write_u64(2, l + 2 * MB + 7 * PAGE, 0x3002));
            chk(st, line!(), h.write_u64(1, l + 2 * MB + 8 * PAGE, 0x3003));
            chk(st, line!(), h.write_u64(1, l + 6 * PAGE, 0x3004));
        }
        if let Some(id) = shm {
            if let Some(s2) = chk(st, line!(), h.core.shmat(2, id, None, false)) {
                chk(st, line!(), h.read_u64(2, s2 + PAGE));
                chk(st, line!(), h.write_u64(2, s2 + 2 * PAGE, 0x4001));
            }
        }
        if let Some(m) = bm {
            chk(st, line!(), h.write_u64(2, m + 2 * PAGE, 0x5003));
        }
        if let Some(p) = bp {
            chk(st, line!(), h.write_u64(2, p + PAGE, 0x5002));
        }
        chk(st, line!(), h.core.destroy_space(2));
    }
    if let Some(s1) = s1 {
        chk(st, line!(), h.core.shmdt(1, s1));
    }
    // The pinned page unmapped (the space keeps its frame), a new area in its place.
    chk(st, line!(), h.core.munmap(1, 0x7000_0000, PAGE));
    chk(st, line!(), h.core.mmap(1, &MmapArgs::anon(PAGE, Prot::RW).at(0x7000_0000, Placement::Fixed)));
    chk(st, line!(), h.write_u64(1, 0x7000_0000, 0x8000));
    // Idle work: zero freed frames (Frame_Zero), then reuse one.
    h.core.maintain(16);
    if let Some(a) = a {
        chk(st, line!(), h.write_u64(1, a + 12 * PAGE, 0x9000));
    }
    made
}

/// A pager fault as the seL4 server sees it: `Deferred` (the thread waits) is the normal
/// outcome; the caller is `thread`.
fn pager_fault(h: &mut H, client: u32, addr: u64, thread: u64) -> Result<(), mem_core::Unresolved> {
    h.core.kernel_mut().set_caller(Some(thread));
    match h.core.handle_fault(client, addr, mem_core::Access::Write) {
        Err(mem_core::Unresolved::Deferred) => Ok(()),
        Ok(_) => Err(mem_core::Unresolved::NoArea),
        Err(e) => Err(e),
    }
}

fn pager_part(h: &mut H, st: bool, cred: Cred) {
    use mem_protocol::{PagerAnswer, Reply, Value};
    if chk(st, line!(), h.core.admin_create(3, cred, QUOTA)).is_none() {
        return;
    }
    let Some(pid) = chk(st, line!(), h.core.pager_create(3, 0o600)) else { return };
    let mut m = MmapArgs::anon(4 * PAGE, Prot::RW);
    m.backing = Backing::Pager { id: pid };
    let Some(p) = chk(st, line!(), h.core.mmap(1, &m)) else { return };
    // Queued first, then taken by PagerWait at once.
    if chk(st, line!(), pager_fault(h, 1, p, 11)).is_some() {
        h.core.kernel_mut().set_caller(Some(12));
        if let Some(Some(f)) = chk(st, line!(), h.core.pager_wait(3, pid)) {
            chk(st, line!(), h.core.pager_reply(3, f.token, PagerAnswer::Copy(mem_protocol::BufRef::new(0, 4096)), &[0x77; 4096]));
            chk(st, line!(), h.read_u64(1, p));
        }
    }
    // The pager waits first; the fault goes to it through its saved reply cap.
    h.core.kernel_mut().set_caller(Some(13));
    if let Some(None) = chk(st, line!(), h.core.pager_wait(3, pid)) {
        if chk(st, line!(), pager_fault(h, 1, p + PAGE, 14)).is_some() {
            let token = h.core.kernel_mut().take_delivered().into_iter().find_map(|(_, r)| match r {
                Some(Reply::Ok(Value::PagerFault(f))) => Some(f.token),
                _ => None,
            });
            if let Some(t) = token {
                chk(st, line!(), h.core.pager_reply(3, t, PagerAnswer::Zero, &[]));
                chk(st, line!(), h.write_u64(1, p + PAGE, 0x7100));
            }
        }
    }
    // Pending when the pager's owner goes: reported.
    chk(st, line!(), pager_fault(h, 1, p + 2 * PAGE, 15));
    chk(st, line!(), h.core.admin_destroy(3));
    h.core.kernel_mut().set_caller(None);
}

/// Model resources at the start, for the leak check.
struct Baseline {
    occupied: usize,
}

fn baseline(h: &H) -> Baseline {
    // Only the untyped caps were there before the server started (the direct map's
    // tables, made at start, are counted apart).
    Baseline { occupied: h.cfg.untypeds.len() }
}

/// After the scenario (injections cleared): invariants, then tear everything down and check
/// that nothing leaked.
fn teardown_and_check(h: &mut H, made: &Made, base: &Baseline) {
    h.core.kernel_mut().clear_injections();
    h.core.settle();
    h.core.check_invariants().unwrap_or_else(|e| panic!("invariants after the scenario: {e}"));
    h.check();
    check_frames(h);
    // The server still works for every surviving client.
    for c in h.clients() {
        let m = h.core.mmap(c, &MmapArgs::anon(2 * PAGE, Prot::RW)).expect("mmap after recovery");
        h.write_u64(c, m + PAGE, 0xabc).expect("write after recovery");
        assert_eq!(h.read_u64(c, m + PAGE), Ok(0xabc));
        h.core.munmap(c, m, 2 * PAGE).unwrap();
    }
    h.check();
    for c in h.clients() {
        h.core.destroy_space(c).unwrap_or_else(|e| panic!("destroy {c}: {e:?}"));
    }
    h.core.settle();
    // An administrator space to remove what outlives the clients.
    h.core.create_space(ADMIN, Cred { uid: 0, gid: 0 }, QUOTA).expect("admin space");
    let mut shm = made.shm.clone();
    if let Ok(id) = h.core.shmget(ADMIN, ShmKey::Key(SHM_KEY), 0, false, false, 0) {
        shm.push(id);
    }
    for id in shm {
        let _ = h.core.shm_remove(ADMIN, id);
    }
    for id in made.backends.iter().copied().chain(0..4) {
        let _ = h.core.backend_destroy(ADMIN, id);
    }
    h.core.destroy_space(ADMIN).expect("destroy admin");
    h.core.settle();
    h.core.check_invariants().unwrap_or_else(|e| panic!("invariants after teardown: {e}"));
    let st = h.core.stats(None).unwrap();
    assert_eq!(st.spaces, 0);
    assert_eq!(st.shm_segments, 0, "shm segments leaked");
    assert_eq!(st.frames_in_use, made.server_frames, "frames leaked: {st:?}");
    assert_eq!(h.core.deferred_count(), 0, "releases still deferred");
    assert_eq!(st.slots_in_use, 0, "slots leaked: {st:?}");
    h.core.trim();
    let k = h.core.kernel();
    assert_eq!(k.live_objects(ObjectType::LargePage), 0, "large frames survive trim");
    assert_eq!(k.live_objects(ObjectType::PageTable) as u64, made.server_frames, "page tables other than the direct map's survive trim");
    assert_eq!(h.core.stats(None).unwrap().frames_in_use, made.server_frames);
    assert_eq!(k.live_objects(ObjectType::VSpace), 0, "vspaces survive trim");
    // Device frames stay retyped by design (the device table holds them forever); every
    // other slot must be free again.
    let device_frames = k.live_objects(ObjectType::SmallPage);
    let max_device = ((DEV - ModelConfig::DEVICE_BASE) / PAGE + 2) as usize;
    assert!(device_frames <= max_device, "{device_frames} small frames survive trim (at most the {max_device} device pages)");
    assert_eq!(k.occupied_slots(), base.occupied + device_frames + made.server_frames as usize, "CNode slots leaked");
    for u in h.cfg.ram_untypeds() {
        // seL4 resets an untyped without children at its next retype: no children means
        // its whole size is available again (except where the direct map's tables live).
        if made.server_frames == 0 {
            assert_eq!(k.untyped_has_children(u.slot), Some(false), "untyped {} still has children after trim", u.slot);
        }
        let free = k.untyped_free_bytes(u.slot).unwrap();
        assert!(free == u.bytes() || free < u.bytes(), "untyped {}", u.slot);
    }
}

/// Making the direct map's tables at start: a refused table is skipped (those frames are
/// then reached the slow way), an error stops it; either way the count is exact.
#[test]
fn direct_map_tables_under_failures() {
    for (i, e) in [(0, KernelError::NotEnoughMemory), (3, KernelError::DeleteFirst), (7, KernelError::InvalidArgument)] {
        let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| c.direct_map = Some(0x2_0000_0000));
        h.core.kernel_mut().fail_nth_op(Op::ServerTableMap, i, e);
        let r = h.core.prepare_direct_map();
        let frames = h.core.stats(None).unwrap().frames_in_use;
        h.core.check_invariants().unwrap();
        match r {
            Ok(n) => assert_eq!(frames, n),
            Err(_) => assert_eq!(frames, i),
        }
        // Clients still work, frames with or without a direct mapping.
        h.client(1, 0, 0, 1 << 20);
        let a = h.core.mmap(1, &MmapArgs::anon(64 * PAGE, Prot::RW)).unwrap();
        for p in 0..64 {
            h.write_u64(1, a + p * PAGE, p).unwrap();
        }
        h.core.destroy_space(1).unwrap();
        h.core.trim();
        assert_eq!(h.core.stats(None).unwrap().frames_in_use, frames);
    }
}

/// The clean run: the scenario succeeds completely; returns the number of kernel calls.
fn clean_run() -> u64 {
    let mut h = harness();
    let base = baseline(&h);
    assert_eq!(h.core.kernel().calls(), 0);
    let made = scenario(&mut h, true);
    let n = h.core.kernel().calls();
    let ks = h.core.kernel().stats();
    assert_eq!(ks.errors, 0, "the clean scenario meets no kernel error");
    for op in Op::ALL {
        // Tables in the server's own VSpace are made at start only (see `harness`).
        if op != Op::ServerTableMap {
            assert!(ks.count(op) > 0, "the scenario never makes a {op:?} call: {ks:?}");
        }
    }
    assert_eq!(made.shm.len(), 2);
    assert_eq!(made.backends.len(), 1);
    // Everything the scenario did took effect.
    let s = h.core.stats(None).unwrap();
    // One fault is unresolved on purpose: it was pending at the pager whose owner went.
    assert_eq!(s.faults_unresolved, 1, "clean scenario: {s:?}");
    assert_eq!(s.pager_pending, 0);
    assert_eq!(h.clients(), vec![1]);
    teardown_and_check(&mut h, &made, &base);
    n
}

#[test]
fn clean_scenario_succeeds_and_leaves_nothing() {
    let n = clean_run();
    assert!(n > 100, "scenario makes {n} kernel calls");
}

/// How an injected run went wrong.
struct Failure {
    text: String,
}

/// Fail call `i` with `err`; returns a description of the failure, if any.
fn run_injected(i: u64, err: KernelError) -> Option<Failure> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut h = harness();
        let base = baseline(&h);
        h.core.kernel_mut().fail_nth_call(i, err);
        let made = scenario(&mut h, false);
        let injected = h.core.kernel().stats().injected;
        let last = h.core.kernel().last_error();
        let r = catch_unwind(AssertUnwindSafe(|| teardown_and_check(&mut h, &made, &base)));
        r.map_err(|e| (e, injected, last))
    }));
    let msg = |e: &Box<dyn std::any::Any + Send>| {
        e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
    };
    match r {
        Ok(Ok(())) => None,
        Ok(Err((e, injected, last))) => {
            Some(Failure { text: format!("call {i} ({err:?}, fired {injected}, last error {last:?}): after: {}", msg(&e)) })
        }
        Err(e) => Some(Failure { text: format!("call {i} ({err:?}): during the scenario: {}", msg(&e)) }),
    }
}

/// Every call index, failed with the error seL4 returns when memory runs out, and again
/// with `DeleteFirst` / `InvalidArgument` (alternating): the core must survive any refusal.
#[test]
fn every_injected_failure_keeps_invariants_and_leaks_nothing() {
    let n = clean_run();
    let start = std::time::Instant::now();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    let mut runs = 0;
    for i in 0..n {
        let other = if i % 2 == 0 { KernelError::DeleteFirst } else { KernelError::InvalidArgument };
        for err in [KernelError::NotEnoughMemory, other] {
            runs += 1;
            if let Some(f) = run_injected(i, err) {
                failures.push(f.text);
            }
        }
    }
    std::panic::set_hook(hook);
    eprintln!("injection sweep: N = {n} calls, {runs} runs in {:?}", start.elapsed());
    assert!(failures.is_empty(), "{} of {runs} injected runs failed:\n{}", failures.len(), failures.join("\n"));
}

// ---- regressions: bugs the sweep found in the core (minimal reproductions) ---------------------------------------

fn small_pages_client() -> H {
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| c.large_pages = false);
    h.client(1, 1000, 1000, QUOTA);
    h
}

/// pagetable.rs `PageTree::ensure_tables` creates the missing tables of a path one by one;
/// when a later `PageTable_Map` (or `alloc_table`) fails it returns `Err` and the count of
/// the tables it already created and recorded is lost, so space.rs `map_page` never charges
/// them: the client's charge is one page short per such failure (quota bypass) and the
/// invariant checker reports "charge recount N, counter N-1". Fix: charge each table as it
/// is created (pass the space's counter in, or return the count with the error), or unmap
/// and free the tables created by the failed call.
#[test]
fn regression_ensure_tables_failure_leaves_uncharged_table() {
    let mut h = small_pages_client();
    let a = h.core.mmap(1, &MmapArgs::anon(16 * PAGE, Prot::RW)).unwrap();
    // The first fault needs two tables below the Sv39 root: fail the second.
    h.core.kernel_mut().fail_nth_op(Op::PageTableMap, 1, KernelError::NotEnoughMemory);
    assert_eq!(h.core.handle_fault(1, a, mem_core::Access::Write), Err(mem_core::Unresolved::NoMemory));
    h.core.kernel_mut().clear_injections();
    h.core.check_invariants().unwrap();
    h.write_u64(1, a, 1).unwrap();
    h.check();
}

/// lib.rs `destroy_space`: when `PageTable_Unmap` of a table fails, the table is queued as
/// a `PendingRelease { delete: true, frame: None }`. The retry deletes its cap and frees its
/// slot with `slots.free`, but never calls `res.free_table`: `frames_in_use` stays one too
/// high forever and the untyped keeps a "live" object, so `trim` never reclaims that
/// untyped (its memory is lost until reboot); the table's slot, still inside its retype
/// batch, is recycled as a single slot. Fix: defer a table release that retries
/// `page_table_unmap` and then calls `res.free_table(t)` (keeping the cap in the pool).
#[test]
fn regression_destroy_space_table_unmap_failure_leaks_table() {
    let mut h = small_pages_client();
    let a = h.core.mmap(1, &MmapArgs::anon(16 * PAGE, Prot::RW)).unwrap();
    h.write_u64(1, a, 1).unwrap();
    h.core.kernel_mut().fail_nth_op(Op::PageTableUnmap, 0, KernelError::NotEnoughMemory);
    h.core.destroy_space(1).unwrap();
    h.core.kernel_mut().clear_injections();
    h.core.settle();
    assert_eq!(h.core.deferred_count(), 0);
    h.core.check_invariants().unwrap();
    assert_eq!(h.frames_in_use(), 0, "frames leaked");
    h.core.trim();
    for u in h.cfg.ram_untypeds() {
        assert_eq!(h.core.kernel().untyped_has_children(u.slot), Some(false), "untyped {} not reclaimed", u.slot);
    }
}

/// space.rs `split_large` copies the 2 MiB page into 512 small frames, then releases the
/// large mapping and maps the small pages one by one; if one `Page_Map` (or a table) is
/// refused, the frames not yet mapped are freed ("the bytes of the remaining pages are lost
/// with the large page", says the comment): mprotect/munmap fail with ENOMEM *and* the
/// client's data in the rest of the 2 MiB silently becomes zero. A failed mprotect must not
/// change memory contents. Fix: on a refused map, still record the remaining copies in the
/// shadow table without a hardware mapping (the fault path already re-maps recorded pages
/// that a refused remap left unmapped), or restore the large mapping.
#[test]
fn regression_split_large_map_failure_loses_data() {
    let mut h = H::with(ModelConfig::riscv64(64 * MB), |c| c.large_pages = true);
    h.client(1, 1000, 1000, QUOTA);
    let base = 0x4000_0000;
    h.core.mmap(1, &MmapArgs::anon(2 * MB, Prot::RW).at(base, Placement::Fixed)).unwrap();
    h.write_u64(1, base + 5 * PAGE, 0x55).unwrap();
    h.write_u64(1, base + 300 * PAGE, 0x300).unwrap();
    let vs = h.core.vspace_of(1).unwrap();
    assert_eq!(h.core.kernel().translate(vs, base).unwrap().size, mem_core::PageSize::Large);
    // The split maps the small pages in order: refuse the second one.
    h.core.kernel_mut().fail_nth_op(Op::PageMap, 1, KernelError::NotEnoughMemory);
    let r = h.core.mprotect(1, base + 3 * PAGE, 2 * PAGE, Prot::READ);
    h.core.kernel_mut().clear_injections();
    // The refused small page stays recorded (unmapped) and the fault path maps it back.
    assert_eq!(r, Ok(()));
    h.check();
    assert_eq!(h.read_u64(1, base + 5 * PAGE), Ok(0x55), "the split keeps the data");
    assert_eq!(h.read_u64(1, base + 300 * PAGE), Ok(0x300), "the split keeps the data");
    assert_eq!(h.write(1, base + 3 * PAGE, &[1]), Err(mem_core::Unresolved::Denied));
}
