//! `libc-client`: the client program of `make simulate` that runs unmodified third-party C
//! programs on picolibc over the memory server (scenarios sqlite and lua,
//! clients/SCENARIOS.md).
//!
//! Started by the root task like `scenario-client` (its [`ClientBoot`](mem_protocol::system::ClientBoot) record at
//! [`CLIENT_BOOT_VADDR`](mem_protocol::system::CLIENT_BOOT_VADDR)): this file sets up the runtime (a 256 KiB static stack, TLS —
//! picolibc's `errno` lives in it —, the IPC buffer), connects mem-capi (the process's one
//! heap: C `malloc` and Rust's allocator), calls the C side (`clients/libc/`, compiled by
//! `build.rs`) and reports: scenario 40 is SQLite (`arg` 0: the full workload, which also
//! reports its numbers in STEP 1; `arg` 1: the run under a quota below its needs, which
//! must end in SQLITE_NOMEM), scenario 41 is Lua. Failure codes: 4000 + the C check's
//! number for SQLite, 4100 + it for Lua (detail: what the C side put there).
//!
//! Also here: the two functions the C shim (`clients/libc/shim.c`) needs from Rust, the
//! console character and the end of the component.

#![no_std]
#![no_main]

#[path = "../../scenarios/src/report.rs"]
#[allow(dead_code)]
mod report;
#[path = "../../scenarios/src/start.rs"]
mod start;

use mem_protocol::PAGE_SIZE;

use report::{Fail, Outcome};

/// SQLite's memory: the sort of 100,000 rows keeps ~60 KiB of stack at most.
const STACK_SIZE: usize = 256 * 1024;

sel4_runtime_common::declare_stack!(STACK_SIZE);
sel4_runtime_common::declare_entrypoint_with_stack_init!();
sel4_runtime_common::declare_rust_entrypoint! {
    entrypoint()
}
sel4_panicking_env::register_debug_put_char!(sel4::debug_put_char);

/// Scenario numbers (the root task's `scenarios/libc.rs`).
pub const SCENARIO_SQLITE: u32 = 40;
pub const SCENARIO_LUA: u32 = 41;

/// Failure codes outside the C checks.
mod code {
    pub const UNKNOWN_SCENARIO: u64 = 9001;
    // 9002: the ClientBoot record did not decode (`start::BAD_BOOT_RECORD`).
    /// The C side called `exit`/`abort` (detail: the status).
    pub const EXIT: u64 = 9003;
    pub const PANIC: u64 = 9999;
}

/// `struct sqlite_report` of `clients/libc/sqlite_client.c`.
#[repr(C)]
#[derive(Default)]
struct SqliteReport {
    detail: u64,
    faults: u64,
    charged_start: u64,
    charged_peak: u64,
    charged_closed: u64,
    charged_trimmed: u64,
    heap_peak: u64,
    sqlite_peak: u64,
    nomem_step: u64,
}

/// `struct lua_report` of `clients/libc/lua_client.c`.
#[repr(C)]
#[derive(Default)]
struct LuaReport {
    detail: u64,
    faults: u64,
    charged_start: u64,
    charged_peak: u64,
    charged_closed: u64,
    charged_trimmed: u64,
    heap_peak: u64,
    gc_kib_before: u64,
    gc_kib_after: u64,
}

extern "C" {
    fn libc_shim_init();
    fn sqlite_client_main(nomem: i32, r: *mut SqliteReport) -> i32;
    fn lua_client_main(r: *mut LuaReport) -> i32;
}

/// One character to the console (picolibc's stdout and stderr, `clients/libc/shim.c`).
#[no_mangle]
pub extern "C" fn libc_client_putc(c: u8) {
    sel4::debug_put_char(c);
}

/// `exit`, `_exit` and `abort` of the C side: the component ends with a FAIL report.
#[no_mangle]
pub extern "C" fn libc_client_exit(status: i32) -> ! {
    report::fail(Fail::new(code::EXIT).detail(status as u64))
}

fn entrypoint() -> ! {
    start::process();
    // SAFETY: plain C that only sets the heap's mode.
    unsafe { libc_shim_init() };
    match run() {
        Ok(()) => report::pass(),
        Err(f) => report::fail(f),
    }
}

fn run() -> Outcome {
    let boot = start::read_boot()?;
    match boot.scenario {
        SCENARIO_SQLITE => sqlite(boot.arg != 0),
        SCENARIO_LUA => lua(),
        n => Err(Fail::new(code::UNKNOWN_SCENARIO).detail(u64::from(n))),
    }
}

fn sqlite(nomem: bool) -> Outcome {
    let mut r = SqliteReport::default();
    // SAFETY: the C side writes only `*r` (a valid local) and memory it allocates itself.
    let res = unsafe { sqlite_client_main(i32::from(nomem), &mut r) };
    if res != 0 {
        return Err(Fail::new(4000 + u64::from(res.unsigned_abs())).detail(r.detail));
    }
    report::step(1, &[r.faults, r.charged_start, r.charged_peak, r.charged_trimmed, r.heap_peak / PAGE_SIZE, r.nomem_step]);
    Ok(())
}

fn lua() -> Outcome {
    let mut r = LuaReport::default();
    // SAFETY: as in `sqlite`.
    let res = unsafe { lua_client_main(&mut r) };
    if res != 0 {
        return Err(Fail::new(4100 + u64::from(res.unsigned_abs())).detail(r.detail));
    }
    report::step(1, &[r.faults, r.charged_start, r.charged_peak, r.charged_trimmed, r.heap_peak / PAGE_SIZE, r.gc_kib_before, r.gc_kib_after]);
    Ok(())
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let line = info.location().map_or(0, |l| u64::from(l.line()));
    sel4::debug_println!("libc-client: {}", info);
    report::fail(Fail::new(code::PANIC).detail(line))
}
