//! Bench builds only (`bench` feature, `make bench-sel4`): what some of the server's work
//! costs it, in guest instructions, measured inside the server:
//!
//! - `zero`: zeroing one frame, wherever it happens (in the zeroing thread, its share of
//!   the main thread's batch handling included, or on demand in a fault);
//! - `fault-server`: the server's own (user-level) part of resolving one VM fault, from
//!   the message's arrival to the reply, kernel calls it makes included; `fault-core` the
//!   part of that in `mem-core`; `page-map` one `Page_Map` invocation (system call
//!   included).
//!
//! Printed as `BENCH-INSTR <name> <tenths per event>` when anyone sends `Nop` and some
//! meter counted something, then reset.
//!
//! Only `zero` always counts. The per-message meters (`fault-server`, `fault-core`,
//! `page-map`, the step maxima, the per-tag meters) count only while [`ON`] is set: the
//! administrator switches them with a [`BENCH_METERS_LABEL`] message, on for the latency
//! part of the benchmark and off for the speed rows, which so measure the server as it is
//! built without the `bench` feature (plus one flag test per message). The counter is the one the root task started
//! (aarch64 cycle counter at every exception level; riscv64 `instret`), which counts guest
//! instructions under QEMU's `-icount`.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use mem_protocol::system::BENCH_METERS_LABEL;

/// The per-message meters count (see the module docs).
pub static ON: AtomicBool = AtomicBool::new(false);

/// Are the per-message meters on?
#[inline(always)]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The start of a metered interval: `now()` while the meters are on.
#[inline(always)]
pub fn start() -> Option<u64> {
    on().then(now)
}

/// Some meter counted something since the last report.
static DIRTY: AtomicBool = AtomicBool::new(false);

/// A sum of instructions and a count of events.
pub struct Meter {
    name: &'static str,
    instructions: AtomicU64,
    events: AtomicU64,
}

pub static ZERO: Meter = Meter::new("zero");
/// The longest the server spent on one message (a request, a fault, a zeroing batch's
/// signal) since the last report: its latency bound as measured.
pub static STEP_MAX: AtomicU64 = AtomicU64::new(0);
/// What that message was: a request's tag, or one of the `KIND_` values.
pub static STEP_MAX_KIND: AtomicU64 = AtomicU64::new(0);
/// The longest step of each kind since the last report.
static STEP_MAX_OF: [AtomicU64; KINDS] = [const { AtomicU64::new(0) }; KINDS];
const KINDS: usize = 105;
/// Step kinds besides request tags: a VM fault, another message, taking back a zeroed
/// batch (`zeroer.rs`), and what is not counted (the `Nop` that prints the meters).
pub const KIND_FAULT: u64 = 100;
pub const KIND_OTHER: u64 = 101;
pub const KIND_ZEROER: u64 = 102;
pub const KIND_NONE: u64 = 103;
/// Not a step but a part of one: an `Untyped_Retype` call (the kernel clears memory).
pub const KIND_RETYPE: u64 = 104;

/// Count one message of `kind` that started at `start` (a value of [`start`]) towards
/// [`STEP_MAX`].
pub fn step(start: Option<u64>, kind: u64) {
    let Some(start) = start else { return };
    if kind == KIND_NONE {
        return;
    }
    DIRTY.store(true, Ordering::Relaxed);
    let d = now().wrapping_sub(start);
    if d > STEP_MAX.load(Ordering::Relaxed) && kind != KIND_RETYPE {
        STEP_MAX.store(d, Ordering::Relaxed);
        STEP_MAX_KIND.store(kind, Ordering::Relaxed);
    }
    if let Some(m) = STEP_MAX_OF.get(kind as usize) {
        if d > m.load(Ordering::Relaxed) {
            m.store(d, Ordering::Relaxed);
        }
    }
}
pub static FAULT: Meter = Meter::new("fault-server");
pub static FAULT_CORE: Meter = Meter::new("fault-core");
pub static MAP: Meter = Meter::new("page-map");

impl Meter {
    const fn new(name: &'static str) -> Meter {
        Meter { name, instructions: AtomicU64::new(0), events: AtomicU64::new(0) }
    }

    /// Count one event that started at `start` (a value of [`start`]: nothing when off).
    pub fn add(&self, start: Option<u64>) {
        if let Some(start) = start {
            self.add_events(start, 1);
        }
    }

    /// Count `n` events that took `instructions` in all.
    pub fn add_raw(&self, instructions: u64, n: u64) {
        DIRTY.store(true, Ordering::Relaxed);
        self.instructions.fetch_add(instructions, Ordering::Relaxed);
        self.events.fetch_add(n, Ordering::Relaxed);
    }

    /// Count `n` events (zero: instructions only) that took the time since `start`.
    pub fn add_events(&self, start: u64, n: u64) {
        DIRTY.store(true, Ordering::Relaxed);
        self.instructions.fetch_add(now().wrapping_sub(start), Ordering::Relaxed);
        self.events.fetch_add(n, Ordering::Relaxed);
    }

    fn report(&self) {
        let i = self.instructions.swap(0, Ordering::Relaxed);
        let n = self.events.swap(0, Ordering::Relaxed);
        crate::say!("BENCH-INSTR {} {}", self.name, i * 10 / n.max(1));
        crate::say!("BENCH-EVENTS {} {n}", self.name);
    }
}

#[cfg(target_arch = "aarch64")]
pub fn now() -> u64 {
    let v: u64;
    // SAFETY: reading PMCCNTR_EL0, which the kernel lets user level read in bench builds
    // (KernelArmExportPMUUser), has no side effect.
    unsafe { core::arch::asm!("isb", "mrs {}, pmccntr_el0", out(reg) v, options(nostack)) };
    v
}

#[cfg(target_arch = "riscv64")]
pub fn now() -> u64 {
    let v: u64;
    // SAFETY: reading the instret counter has no side effect.
    unsafe { core::arch::asm!("rdinstret {}", out(reg) v, options(nomem, nostack)) };
    v
}

/// Meters per request tag (`Request::tag`): `request` the server's whole user-level part
/// of a request (from the message's arrival to the reply, decode and encode included),
/// `dispatch` the part in `MemCore::dispatch`. Printed (and reset) when the administrator
/// sends `Nop`, as `BENCH-INSTR <name>-<tag> <tenths per request>`.
pub struct TagMeters {
    name: &'static str,
    instructions: [AtomicU64; TAGS],
    events: [AtomicU64; TAGS],
}

const TAGS: usize = 32;

pub static REQUEST: TagMeters = TagMeters::new("request");
pub static DISPATCH: TagMeters = TagMeters::new("dispatch");

impl TagMeters {
    const fn new(name: &'static str) -> TagMeters {
        #[allow(clippy::declare_interior_mutable_const)]
        const Z: AtomicU64 = AtomicU64::new(0);
        TagMeters { name, instructions: [Z; TAGS], events: [Z; TAGS] }
    }

    /// Count one request of `tag` that started at `start` (nothing when off).
    pub fn add(&self, tag: u32, start: Option<u64>) {
        let Some(start) = start else { return };
        let t = (tag as usize).min(TAGS - 1);
        self.instructions[t].fetch_add(now().wrapping_sub(start), Ordering::Relaxed);
        self.events[t].fetch_add(1, Ordering::Relaxed);
    }

    pub fn report(&self) {
        for t in 0..TAGS {
            let n = self.events[t].swap(0, Ordering::Relaxed);
            let i = self.instructions[t].swap(0, Ordering::Relaxed);
            if n > 0 {
                crate::say!("BENCH-INSTR {}-{t} {}", self.name, i * 10 / n);
                crate::say!("BENCH-EVENTS {}-{t} {n}", self.name);
            }
        }
    }
}

/// Print every meter and start over, if any counted something (so that a run of `Nop`s,
/// the null-request benchmark, prints nothing after the first).
pub fn report() {
    if !DIRTY.swap(false, Ordering::Relaxed) {
        return;
    }
    let all = [&ZERO, &FAULT, &FAULT_CORE, &MAP];
    if all.iter().all(|m| m.events.load(Ordering::Relaxed) == 0) {
        return;
    }
    ZERO.report();
    FAULT.report();
    FAULT_CORE.report();
    MAP.report();
    crate::say!("BENCH-STEP-MAX {}", STEP_MAX.swap(0, Ordering::Relaxed));
    crate::say!("BENCH-STEP-MAX-KIND {}", STEP_MAX_KIND.swap(0, Ordering::Relaxed));
    for (kind, m) in STEP_MAX_OF.iter().enumerate() {
        let d = m.swap(0, Ordering::Relaxed);
        if d > 0 {
            crate::say!("BENCH-STEP-MAX-OF {kind} {d}");
        }
    }
}
