//! Scenario 7, msync: a shared mapping of a backend object is written back by msync.
//!
//! BackendCreate(4 pages); BackendWrite "backend v1" at 0 (through the shared buffer); mmap
//! it shared; the mapping reads "backend v1"; write "backend v2" through the mapping;
//! BackendRead still gives "backend v1"; msync(MS_SYNC); BackendRead gives "backend v2";
//! munmap and BackendDestroy; PASS.
//!
//! Failure codes: 701 BackendCreate, 702 BackendWrite, 703 mmap (detail errno), 704 the
//! mapping does not show "backend v1" (addr), 705 BackendRead before msync (detail errno),
//! 706 the object changed before msync (detail first 8 bytes read), 707 msync, 708
//! BackendRead after msync, 709 the object lacks "backend v2" after msync (detail first 8
//! bytes), 710 munmap, 711 BackendDestroy.

use mem_client::linux::{MS_SYNC, PROT_RW};
use mem_client::Client;
use mem_protocol::PAGE_SIZE;

use crate::mem::{bytes_equal, write_bytes};
use crate::report::{Check, Fail, Outcome};

const PAGES: u64 = 4;
const LEN: u64 = PAGES * PAGE_SIZE;
const V1: &[u8] = b"backend v1";
const V2: &[u8] = b"backend v2";

/// The first 8 bytes of `b` as a little-endian word, for failure details.
fn head(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

pub fn run(c: &mut Client) -> Outcome {
    let id = c.backend_create(LEN, 0o600).or_fail(701)?;
    c.backend_write(id, 0, V1).or_fail(702)?;
    let addr = c.mmap_backend(0, LEN, PROT_RW, true, id, 0).or_fail(703)?;
    // SAFETY: `addr..addr + LEN` is the shared RW mapping the server just returned.
    let shows_v1 = unsafe { bytes_equal(addr, V1) };
    if !shows_v1 {
        return Err(Fail::new(704).at(addr));
    }
    // SAFETY: as above.
    unsafe { write_bytes(addr, V2) };
    let mut got = [0u8; 10];
    c.backend_read(id, 0, &mut got).or_fail(705)?;
    if got != V1 {
        return Err(Fail::new(706).detail(head(&got)));
    }
    c.msync(addr, LEN, MS_SYNC).or_fail(707)?;
    c.backend_read(id, 0, &mut got).or_fail(708)?;
    if got != V2 {
        return Err(Fail::new(709).detail(head(&got)));
    }
    c.munmap(addr, LEN).or_fail(710)?;
    c.backend_destroy(id).or_fail(711)?;
    Ok(())
}
