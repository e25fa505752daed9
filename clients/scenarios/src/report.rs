//! Reports to the root task and the failure type of the scenarios.
//!
//! A report is a `Call` on [`client_slot::REPORT`] with label [`REPORT_LABEL`]:
//! MR0 = [`REPORT_PASS`] / [`REPORT_FAIL`] / [`REPORT_STEP`], MR1 = step number or failure
//! code, MR2.. = values. For a FAIL: MR2 = detail (the errno's Linux number, or the value
//! read), MR3 = the address involved (or 0). The root task answers a STEP when the client
//! may go on and never answers a PASS / FAIL.

use core::sync::atomic::{AtomicBool, Ordering};

use mem_protocol::system::{client_slot, REPORT_FAIL, REPORT_LABEL, REPORT_PASS, REPORT_STEP};
use mem_protocol::Errno;

/// A failed check: its code (`scenario * 100 + check`), a detail value and an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fail {
    pub code: u64,
    pub detail: u64,
    pub addr: u64,
}

impl Fail {
    pub const fn new(code: u64) -> Fail {
        Fail {
            code,
            detail: 0,
            addr: 0,
        }
    }

    pub const fn detail(self, detail: u64) -> Fail {
        Fail { detail, ..self }
    }

    pub const fn at(self, addr: u64) -> Fail {
        Fail { addr, ..self }
    }
}

/// What a scenario returns: `Ok` means PASS.
pub type Outcome = Result<(), Fail>;

/// `Err(Fail(code))` unless `cond`.
pub fn ensure(cond: bool, code: u64) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(Fail::new(code))
    }
}

/// `Err(Fail(code, detail = got, addr))` unless `got == want`.
pub fn ensure_eq(got: u64, want: u64, code: u64, addr: u64) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(Fail::new(code).detail(got).at(addr))
    }
}

/// The failure detail of an errno: its Linux number.
pub fn errno_detail(e: Errno) -> u64 {
    e.linux() as u64
}

/// Turning an operation result into a scenario step.
pub trait Check<T> {
    /// The value, or `Fail(code, detail = errno)`.
    fn or_fail(self, code: u64) -> Result<T, Fail>;
}

impl<T> Check<T> for Result<T, Errno> {
    fn or_fail(self, code: u64) -> Result<T, Fail> {
        self.map_err(|e| Fail::new(code).detail(errno_detail(e)))
    }
}

/// `Ok` if `r` failed with `want`; else `Fail(code, detail = errno got, or 0 for success)`.
pub fn expect_errno<T>(r: Result<T, Errno>, want: Errno, code: u64) -> Outcome {
    match r {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(Fail::new(code).detail(errno_detail(e))),
        Ok(_) => Err(Fail::new(code)),
    }
}

/// Send one report; returns when (if ever) the root task answers.
fn call_report(kind: u64, mr1: u64, values: &[u64]) {
    let n = 2 + values.len();
    sel4::with_ipc_buffer_mut(|ipc| {
        let mrs = ipc.msg_regs_mut();
        mrs[0] = kind;
        mrs[1] = mr1;
        mrs[2..n].copy_from_slice(values);
    });
    sel4::cap::Endpoint::from_bits(client_slot::REPORT)
        .call(sel4::MessageInfo::new(REPORT_LABEL, 0, 0, n));
}

/// Report step `step` with `values` and wait until the root task answers.
pub fn step(step: u64, values: &[u64]) {
    call_report(REPORT_STEP, step, values);
}

/// Set once a final report is under way, so a panic inside it does not report again.
static FINAL_REPORT: AtomicBool = AtomicBool::new(false);

/// Report PASS; never returns.
pub fn pass() -> ! {
    final_report(REPORT_PASS, 0, &[])
}

/// Report FAIL; never returns.
pub fn fail(f: Fail) -> ! {
    final_report(REPORT_FAIL, f.code, &[f.detail, f.addr])
}

fn final_report(kind: u64, mr1: u64, values: &[u64]) -> ! {
    if !FINAL_REPORT.swap(true, Ordering::SeqCst) {
        // The root task never answers a final report; should it anyway, ask again.
        loop {
            call_report(kind, mr1, values);
        }
    }
    // A panic while reporting (e.g. the IPC buffer is borrowed): nothing left to say.
    loop {
        sel4::r#yield();
    }
}
