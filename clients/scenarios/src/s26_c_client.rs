//! Scenario 26, c-client: the C component of `clients/c-client/c_client.c` (compiled by
//! the cross gcc in `build.rs`, using only the header mem-capi generates) runs its checks of
//! mmap/munmap/mprotect/msync, System V shm and malloc; this module only calls it.
//!
//! Failure codes: 2600 + the C check's number (detail: what the C code put in `detail`,
//! usually the errno).

use crate::report::{Fail, Outcome};

extern "C" {
    /// 0 on success, else the number of the failed check; `detail` says more.
    fn c_client_main(detail: *mut u64) -> i32;
}

pub fn run() -> Outcome {
    let mut detail = 0u64;
    // SAFETY: `c_client_main` is plain C that only writes `*detail` (a valid local) and
    // uses memory it maps or allocates through mem-capi itself.
    let r = unsafe { c_client_main(&mut detail) };
    match r {
        0 => Ok(()),
        n => Err(Fail::new(2600 + u64::from(n.unsigned_abs())).detail(detail)),
    }
}
