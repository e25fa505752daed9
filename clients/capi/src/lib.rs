//! C interface of the memory server's client library: the calls a C component of an seL4
//! system makes instead of Linux system calls, and its heap.
//!
//! - Set-up: [`mem_connect`] with the slot of the component's badged endpoint cap to the
//!   server; in components whose runtime is not rust-sel4's, [`mem_set_ipc_buffer`] once per
//!   thread (the library needs thread-local storage: a TLS block per thread, as libsel4's
//!   runtimes set up). Nothing else is needed: these calls
//!   carry no bulk data, so they need no shared buffer, and any thread may call at any
//!   time (each call is one seL4 `Call` on the caller's own IPC buffer).
//! - `mmap` (anonymous memory: `MAP_ANONYMOUS` with `MAP_PRIVATE` or `MAP_SHARED`,
//!   `MAP_FIXED`, `MAP_FIXED_NOREPLACE`, `MAP_POPULATE`; `fd` must be -1), `munmap`,
//!   `mprotect`, `msync`, `shmget`, `shmat`, `shmdt`, `shmctl` (`IPC_STAT`, `IPC_SET`,
//!   `IPC_RMID` with [`MemShmidDs`]): Linux flag values and return conventions; on
//!   failure `-1` (`MAP_FAILED` for `mmap`/`shmat`) and the Linux errno in [`mem_errno`]
//!   (per thread).
//! - `malloc`, `free`, `calloc`, `realloc`: `mem-heap` over pages the server maps (grows by
//!   `mmap`, gives large blocks and free segments back by `munmap`); null and `ENOMEM` when
//!   the client's quota is exhausted. The same heap is the Rust `#[global_allocator]` of the
//!   process (feature `global-allocator`, on by default). [`mem_heap_trim`] gives free
//!   memory back, [`mem_heap_stats`] and [`mem_stats`] say where things stand.
//!
//! The header (`mem_server.h`) is generated from this file by cbindgen at build time
//! (`build.rs`). Neighbours: `mem-client` (requests, Linux flags), `mem-heap`.

#![no_std]
#![feature(thread_local)]

use core::cell::Cell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicU64, Ordering};

use mem_client::heap::{Heap, HeapStats, Pages, ServerPages};
use mem_client::linux as lx;
use mem_client::{call_plain, Errno, Request, ShmCmd, Target, Value};

/// `PROT_NONE`.
pub const PROT_NONE: i32 = 0;
/// `PROT_READ`.
pub const PROT_READ: i32 = 1;
/// `PROT_WRITE`.
pub const PROT_WRITE: i32 = 2;
/// `PROT_EXEC`.
pub const PROT_EXEC: i32 = 4;
/// `MAP_SHARED`.
pub const MAP_SHARED: i32 = 0x01;
/// `MAP_PRIVATE`.
pub const MAP_PRIVATE: i32 = 0x02;
/// `MAP_FIXED`.
pub const MAP_FIXED: i32 = 0x10;
/// `MAP_ANONYMOUS`.
pub const MAP_ANONYMOUS: i32 = 0x20;
/// `MAP_POPULATE`.
pub const MAP_POPULATE: i32 = 0x8000;
/// `MAP_FIXED_NOREPLACE`.
pub const MAP_FIXED_NOREPLACE: i32 = 0x10_0000;
/// `MS_ASYNC`.
pub const MS_ASYNC: i32 = 1;
/// `MS_INVALIDATE`.
pub const MS_INVALIDATE: i32 = 2;
/// `MS_SYNC`.
pub const MS_SYNC: i32 = 4;
/// `IPC_PRIVATE`.
pub const IPC_PRIVATE: i32 = 0;
/// `IPC_CREAT`.
pub const IPC_CREAT: i32 = 0o1000;
/// `IPC_EXCL`.
pub const IPC_EXCL: i32 = 0o2000;
/// `IPC_RMID`.
pub const IPC_RMID: i32 = 0;
/// `IPC_SET`.
pub const IPC_SET: i32 = 1;
/// `IPC_STAT`.
pub const IPC_STAT: i32 = 2;
/// `SHM_RDONLY`.
pub const SHM_RDONLY: i32 = 0o10000;

// The header needs literal values (cbindgen), so they are written out here: they must be
// the client library's (Linux's) ones.
const _: () = {
    assert!(PROT_READ as u32 == lx::PROT_READ && PROT_WRITE as u32 == lx::PROT_WRITE && PROT_EXEC as u32 == lx::PROT_EXEC);
    assert!(MAP_SHARED as u32 == lx::MAP_SHARED && MAP_PRIVATE as u32 == lx::MAP_PRIVATE && MAP_FIXED as u32 == lx::MAP_FIXED);
    assert!(MAP_ANONYMOUS as u32 == lx::MAP_ANONYMOUS && MAP_POPULATE as u32 == lx::MAP_POPULATE);
    assert!(MAP_FIXED_NOREPLACE as u32 == lx::MAP_FIXED_NOREPLACE);
    assert!(MS_ASYNC == lx::MS_ASYNC && MS_INVALIDATE == lx::MS_INVALIDATE && MS_SYNC == lx::MS_SYNC);
    assert!(IPC_PRIVATE == lx::IPC_PRIVATE && IPC_CREAT == lx::IPC_CREAT && IPC_EXCL == lx::IPC_EXCL);
    assert!(SHM_RDONLY == lx::SHM_RDONLY);
};

/// Linux errno values the calls report most (every other one is Linux's too).
pub const MEM_EPERM: i32 = 1;
pub const MEM_ENOENT: i32 = 2;
pub const MEM_EBADF: i32 = 9;
pub const MEM_ENOMEM: i32 = 12;
pub const MEM_EACCES: i32 = 13;
pub const MEM_EEXIST: i32 = 17;
pub const MEM_EINVAL: i32 = 22;
pub const MEM_ENOSYS: i32 = 38;
pub const MEM_EIDRM: i32 = 43;

/// `struct shmid_ds` as far as the server keeps it (`shmctl` `IPC_STAT` fills it,
/// `IPC_SET` takes `uid`, `gid` and `mode` from it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MemShmidDs {
    /// The key (`IPC_PRIVATE` = 0 for private segments).
    pub key: i32,
    /// Size in bytes as requested.
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Current attachments.
    pub nattch: u32,
    /// 1 once `IPC_RMID` marked it (still attached somewhere).
    pub removed: u32,
    /// Client id of the creator and of the last attach/detach.
    pub cpid: u32,
    pub lpid: u32,
}

/// This client's figures (`Stats` of its own space).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MemStats {
    /// Pages charged to the client now (resident private pages, page tables, objects).
    pub charged_pages: u64,
    /// Its quota in pages.
    pub quota_pages: u64,
    /// Page faults the server resolved for it.
    pub faults_served: u64,
    /// Its areas (mappings).
    pub areas: u64,
    /// Server metadata bytes charged to it, and its limit.
    pub meta_bytes: u64,
    pub meta_limit: u64,
}

/// The heap's counters (bytes unless said otherwise).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MemHeapStats {
    /// Mapped now, and the most ever mapped at once.
    pub mapped: size_t,
    pub peak_mapped: size_t,
    /// `mmap`s and `munmap`s made (counts).
    pub maps: size_t,
    pub unmaps: size_t,
    /// Large blocks (mapped alone) live now (count).
    pub large_blocks: size_t,
    /// Failed `mmap`s (count).
    pub failures: size_t,
}

#[allow(non_camel_case_types)]
type size_t = usize;

/// Slot of the endpoint cap to the server (0: not connected).
static SERVER: AtomicU64 = AtomicU64::new(0);

#[thread_local]
static ERRNO: Cell<i32> = Cell::new(0);

fn server() -> Result<sel4::cap::Endpoint, Errno> {
    match SERVER.load(Ordering::Relaxed) {
        0 => Err(Errno::NoSys),
        s => Ok(sel4::cap::Endpoint::from_bits(s)),
    }
}

fn fail<T>(e: Errno, v: T) -> T {
    ERRNO.set(e.linux());
    v
}

fn call(req: &Request) -> Result<Value, Errno> {
    call_plain(server()?, req).map_err(|e| e.errno())
}

/// The heap's page provider: the server named by [`mem_connect`].
#[derive(Clone, Copy)]
pub struct ConnectedPages;

impl Pages for ConnectedPages {
    fn map(&self, len: usize) -> Result<usize, i32> {
        let s = SERVER.load(Ordering::Relaxed);
        if s == 0 {
            return Err(Errno::NoSys.linux());
        }
        ServerPages::new(s).map(len)
    }
    fn unmap(&self, addr: usize, len: usize) -> Result<(), i32> {
        ServerPages::new(SERVER.load(Ordering::Relaxed)).unmap(addr, len)
    }
    fn out_of_memory(&self, bytes: usize, errno: i32) {
        ServerPages::new(SERVER.load(Ordering::Relaxed)).out_of_memory(bytes, errno)
    }
}

/// The process's heap (C `malloc` and, with feature `global-allocator`, Rust's).
#[cfg_attr(feature = "global-allocator", global_allocator)]
pub static HEAP: Heap<ConnectedPages> = Heap::new(ConnectedPages);

/// Connect this process to the memory server through the endpoint cap in slot `server`
/// of its CSpace (its badged cap; `client_slot::SERVER` for processes our root task
/// starts). Returns 0, or -1 with `EINVAL` for slot 0.
#[no_mangle]
pub extern "C" fn mem_connect(server: u64) -> i32 {
    if server == 0 {
        return fail(Errno::Inval, -1);
    }
    SERVER.store(server, Ordering::Relaxed);
    0
}

/// Tell the library where this thread's IPC buffer is (`seL4_GetIPCBuffer()` in a libsel4
/// component). Needed once per thread in components whose runtime is not rust-sel4's
/// (which sets it itself); 0, or -1 with `EINVAL` for null.
///
/// # Safety
/// `ipc_buffer` must be this thread's IPC buffer (the one its TCB names), mapped for as
/// long as the thread calls this library, and used by nothing else of this thread while a
/// call is under way.
#[no_mangle]
pub unsafe extern "C" fn mem_set_ipc_buffer(ipc_buffer: *mut c_void) -> i32 {
    if ipc_buffer.is_null() {
        return fail(Errno::Inval, -1);
    }
    // SAFETY: per the function's contract.
    unsafe { sel4::set_ipc_buffer(&mut *(ipc_buffer as *mut sel4::IpcBuffer)) };
    0
}

/// The Linux errno of this thread's last failed call.
#[no_mangle]
pub extern "C" fn mem_errno() -> i32 {
    ERRNO.get()
}

const MAP_FAILED: *mut c_void = usize::MAX as *mut c_void;

/// `mmap(addr, len, prot, flags, fd, off)` of anonymous memory. As on Linux, `fd` is
/// ignored with `MAP_ANONYMOUS` and so is `off`, which must still be page aligned.
#[no_mangle]
pub extern "C" fn mmap(addr: *mut c_void, len: size_t, prot: i32, flags: i32, _fd: i32, off: i64) -> *mut c_void {
    if off & (mem_protocol::PAGE_SIZE as i64 - 1) != 0 {
        return fail(Errno::Inval, MAP_FAILED);
    }
    if flags & MAP_ANONYMOUS == 0 {
        // No files here: like Linux's mmap of fd -1 without MAP_ANONYMOUS.
        ERRNO.set(MEM_EBADF);
        return MAP_FAILED;
    }
    let req = match mem_client::mmap_request(addr as u64, len as u64, prot as u32, lx::PROT_RWX, flags as u32, mem_client::Backing::Anonymous) {
        Ok(r) => r,
        Err(e) => return fail(e, MAP_FAILED),
    };
    match call(&req) {
        Ok(Value::Addr(a)) => {
            let first = mem_protocol::MMAP_POPULATE_PAGES * mem_protocol::PAGE_SIZE;
            if flags & MAP_POPULATE != 0 && len as u64 > first {
                // The server maps one bounded step's worth with the mmap; the rest, best
                // effort as on Linux (the mapping stands anyway).
                let _ = call(&Request::Populate { target: Target::Own, addr: a + first, len: len as u64 - first });
            }
            a as *mut c_void
        }
        Ok(_) => fail(Errno::Inval, MAP_FAILED),
        Err(e) => fail(e, MAP_FAILED),
    }
}

fn unit(r: Result<Value, Errno>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => fail(e, -1),
    }
}

/// `munmap(addr, len)`.
#[no_mangle]
pub extern "C" fn munmap(addr: *mut c_void, len: size_t) -> i32 {
    unit(call(&Request::Munmap { target: Target::Own, addr: addr as u64, len: len as u64 }))
}

/// `mprotect(addr, len, prot)`.
#[no_mangle]
pub extern "C" fn mprotect(addr: *mut c_void, len: size_t, prot: i32) -> i32 {
    let Ok(p) = mem_client::prot_of(prot as u32) else { return fail(Errno::Inval, -1) };
    unit(call(&Request::Mprotect { target: Target::Own, addr: addr as u64, len: len as u64, prot: p }))
}

/// `msync(addr, len, flags)`.
#[no_mangle]
pub extern "C" fn msync(addr: *mut c_void, len: size_t, flags: i32) -> i32 {
    let Some(f) = mem_client::MsyncFlags::from_linux(flags) else { return fail(Errno::Inval, -1) };
    unit(call(&Request::Msync { target: Target::Own, addr: addr as u64, len: len as u64, flags: f }))
}

/// `shmget(key, size, shmflg)`: the shmid.
#[no_mangle]
pub extern "C" fn shmget(key: i32, size: size_t, shmflg: i32) -> i32 {
    let key = if key == IPC_PRIVATE { None } else { Some(key as u32) };
    match call(&mem_client::shmget_request(key, size as u64, shmflg)) {
        Ok(Value::Id(id)) => i32::try_from(id).unwrap_or_else(|_| fail(Errno::NoSpc, -1)),
        Ok(_) => fail(Errno::Inval, -1),
        Err(e) => fail(e, -1),
    }
}

/// `shmat(shmid, shmaddr, shmflg)` (`SHM_RDONLY` honoured).
#[no_mangle]
pub extern "C" fn shmat(shmid: i32, shmaddr: *const c_void, shmflg: i32) -> *mut c_void {
    let Ok(id) = u32::try_from(shmid) else { return fail(Errno::Inval, MAP_FAILED) };
    let addr = if shmaddr.is_null() { None } else { Some(shmaddr as u64) };
    match call(&Request::ShmAt { shmid: id, addr, readonly: shmflg & SHM_RDONLY != 0 }) {
        Ok(Value::Addr(a)) => a as *mut c_void,
        Ok(_) => fail(Errno::Inval, MAP_FAILED),
        Err(e) => fail(e, MAP_FAILED),
    }
}

/// `shmdt(shmaddr)`.
#[no_mangle]
pub extern "C" fn shmdt(shmaddr: *const c_void) -> i32 {
    unit(call(&Request::ShmDt { addr: shmaddr as u64 }))
}

/// `shmctl(shmid, cmd, buf)` for `IPC_STAT` (fills `buf`), `IPC_SET` (reads it) and
/// `IPC_RMID` (`buf` may be null).
///
/// # Safety
/// For `IPC_STAT` and `IPC_SET`, `buf` must point to a valid `MemShmidDs`.
#[no_mangle]
pub unsafe extern "C" fn shmctl(shmid: i32, cmd: i32, buf: *mut MemShmidDs) -> i32 {
    let Ok(id) = u32::try_from(shmid) else { return fail(Errno::Inval, -1) };
    match cmd {
        IPC_RMID => unit(call(&Request::ShmCtl { shmid: id, cmd: ShmCmd::Remove })),
        IPC_STAT | IPC_SET if buf.is_null() => fail(Errno::Fault, -1),
        IPC_STAT => match call(&Request::ShmCtl { shmid: id, cmd: ShmCmd::Stat }) {
            Ok(Value::ShmStat(s)) => {
                let ds = MemShmidDs {
                    key: s.key.map_or(IPC_PRIVATE, |k| k as i32),
                    size: s.size,
                    uid: s.uid,
                    gid: s.gid,
                    cuid: s.cuid,
                    cgid: s.cgid,
                    mode: u32::from(s.mode),
                    nattch: s.nattch,
                    removed: u32::from(s.removed),
                    cpid: s.cpid,
                    lpid: s.lpid,
                };
                // SAFETY: per the function's contract, `buf` is valid for a write.
                unsafe { buf.write(ds) };
                0
            }
            Ok(_) => fail(Errno::Inval, -1),
            Err(e) => fail(e, -1),
        },
        IPC_SET => {
            // SAFETY: per the function's contract, `buf` is valid for a read.
            let ds = unsafe { buf.read() };
            let Ok(mode) = u16::try_from(ds.mode & 0o777) else { return fail(Errno::Inval, -1) };
            unit(call(&Request::ShmCtl { shmid: id, cmd: ShmCmd::Set { uid: ds.uid, gid: ds.gid, mode } }))
        }
        _ => fail(Errno::Inval, -1),
    }
}

/// This client's figures from the server; 0, or -1 with the errno.
///
/// # Safety
/// `out` must point to a writable `MemStats`.
#[no_mangle]
pub unsafe extern "C" fn mem_stats(out: *mut MemStats) -> i32 {
    if out.is_null() {
        return fail(Errno::Fault, -1);
    }
    match call(&Request::Stats { target: Target::Own }) {
        Ok(Value::Stats(s)) => {
            let m = MemStats {
                charged_pages: s.charged_pages,
                quota_pages: s.quota_pages,
                faults_served: s.faults_served,
                areas: s.areas,
                meta_bytes: s.meta_bytes,
                meta_limit: s.meta_limit,
            };
            // SAFETY: per the function's contract.
            unsafe { out.write(m) };
            0
        }
        Ok(_) => fail(Errno::Inval, -1),
        Err(e) => fail(e, -1),
    }
}

/// `malloc(n)`: 16-byte aligned, or null with `ENOMEM`.
#[no_mangle]
pub extern "C" fn malloc(n: size_t) -> *mut c_void {
    let p = HEAP.c_malloc(n);
    if p.is_null() {
        ERRNO.set(MEM_ENOMEM);
    }
    p.cast()
}

/// `calloc(count, size)`: zero-filled, or null with `ENOMEM` (overflow included).
#[no_mangle]
pub extern "C" fn calloc(count: size_t, size: size_t) -> *mut c_void {
    let p = HEAP.c_calloc(count, size);
    if p.is_null() {
        ERRNO.set(MEM_ENOMEM);
    }
    p.cast()
}

/// `realloc(p, n)`: on failure null with `ENOMEM`, `p` unchanged.
///
/// # Safety
/// `p` is null or a live block of this heap.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, n: size_t) -> *mut c_void {
    // SAFETY: per the function's contract.
    let q = unsafe { HEAP.c_realloc(p.cast(), n) };
    if q.is_null() {
        ERRNO.set(MEM_ENOMEM);
    }
    q.cast()
}

/// `free(p)`.
///
/// # Safety
/// `p` is null or a live block of this heap.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: per the function's contract.
    unsafe { HEAP.c_free(p.cast()) }
}

/// Strict commit (1) or not (0): in strict mode every block the heap maps is populated at
/// once, so an exhausted quota makes `malloc` return NULL (errno `ENOMEM`) and no touch of
/// heap memory can ever fault beyond the quota (what C programs that check malloc expect);
/// otherwise large blocks stay lazy (a large `calloc` costs nothing until touched). Off by
/// default.
#[no_mangle]
pub extern "C" fn mem_heap_strict(on: i32) {
    mem_client::heap::set_strict_commit(on != 0);
}

/// Give free heap memory back to the server; 1 if anything was given back.
#[no_mangle]
pub extern "C" fn mem_heap_trim() -> i32 {
    i32::from(HEAP.trim())
}

/// The heap's counters.
#[no_mangle]
pub extern "C" fn mem_heap_stats() -> MemHeapStats {
    let s: HeapStats = HEAP.stats();
    MemHeapStats {
        mapped: s.mapped,
        peak_mapped: s.peak_mapped,
        maps: s.maps,
        unmaps: s.unmaps,
        large_blocks: s.large_blocks,
        failures: s.failures,
    }
}

/// Whether [`mem_connect`] was called (for Rust callers).
pub fn connected() -> bool {
    SERVER.load(Ordering::Relaxed) != 0
}

#[cfg(feature = "standalone")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    sel4::debug_println!("mem-capi: {}", info);
    loop {
        core::hint::spin_loop();
    }
}
