//! Scenario 10, hostile: malformed and out-of-range requests get error replies, and the
//! server keeps serving.
//!
//! Raw messages with label REQUEST_LABEL: empty, a framing length above the maximum, a
//! framing length longer than the words sent, garbage words, an unknown request tag,
//! non-zero padding: each answered with a Protocol error; messages shaped like the codec's
//! fast paths but wrong (bad protection bits, a trailing byte, a cut varint, a client id
//! above u32): Protocol errors too, and a non-canonical varint answered as its canonical
//! form; the benchmark's meter switch (`BENCH_METERS_LABEL`, administrator only) from a
//! client: `UnknownRequest`. Then: munmap of an unaligned
//! address → EINVAL; MAP_FIXED at 0xffff_ffc0_0000_0000 → an error; munmap with a huge
//! length → EINVAL; Region whose BufRef lies past the shared buffer → EFAULT;
//! Stats(Client(1)) → EPERM; Layout into bytes past the buffer, over the rings or at an
//! overflowing offset → EFAULT, Layout of the administrator → EPERM; a normal mmap and
//! touch works; Stats(Own) answers; PASS.
//!
//! Failure codes: 1001..=1006 a raw message was not answered with a Protocol error (detail
//! the reply's first word, addr = the raw reply tag or u64::MAX if it did not decode), 1007
//! the unknown tag was not `UnknownRequest`; 1011 unaligned munmap not EINVAL (detail errno,
//! 0 if it succeeded), 1012 the kernel-address MAP_FIXED succeeded (addr), 1013 huge munmap
//! not EINVAL, 1014 Region past the buffer not EFAULT, 1015 Stats(Client(1)) not EPERM,
//! 1016 mmap, 1017 touch reads back wrong (detail value, addr), 1018 Stats(Own), 1019
//! munmap, 1020 a hostile Layout buffer not EFAULT, 1021 Layout of another space not EPERM, 1022 a
//! wrong fast-path-shaped message not a Protocol error, 1023 a non-canonical varint answered
//! unlike its canonical form (detail: the reply tag), 1024 the meter switch from a client not
//! answered `UnknownRequest` (detail the reply's first word, addr the reply tag).

use mem_client::linux::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_RW};
use mem_client::{CallError, Client, BUFFER_BYTES};
use mem_protocol::system::{BENCH_METERS_LABEL, REQUEST_LABEL};
use mem_protocol::{
    to_words, BufRef, Errno, ProtocolError, Prot, Reply, Request, Target, MAX_MESSAGE_BYTES,
    PAGE_SIZE,
};

use crate::mem::{peek, poke};
use crate::report::{ensure_eq, expect_errno, Check, Fail, Outcome};

/// A kernel-half address no user mapping may use.
const KERNEL_ADDR: u64 = 0xffff_ffc0_0000_0000;

/// Send `words` raw; `Ok(the protocol error)` if the server answered with one.
fn raw_protocol_error(c: &mut Client, words: &[u64], code: u64) -> Result<ProtocolError, Fail> {
    let (_, reply) = c.call_raw(REQUEST_LABEL, words);
    let first = reply.words().first().copied().unwrap_or(0);
    match reply.decode() {
        Ok(Reply::Protocol(p)) => Ok(p),
        Ok(r) => Err(Fail::new(code).detail(first).at(u64::from(r.tag()))),
        Err(_) => Err(Fail::new(code).detail(first).at(u64::MAX)),
    }
}

/// `bytes` packed into message words as the codec frames them.
fn packed(bytes: &[u8]) -> ([u64; 8], usize) {
    let mut w = [0u64; 8];
    let n = to_words(bytes, &mut w).unwrap_or(0);
    (w, n)
}

/// Messages shaped like the codec's fast paths (`Munmap` = tag 4, `Mprotect` = tag 5) but
/// wrong: protection bits outside READ|WRITE|EXEC, a trailing byte, a truncated varint,
/// a client id above `u32::MAX` — each a Protocol error, as the general decoder says; and
/// a non-canonical varint (postcard accepts it) answered exactly as its canonical form.
fn fast_path_shapes(c: &mut Client) -> Outcome {
    let bad: [&[u8]; 4] = [
        // Mprotect(Own, 4096, 4096, bits 0x08).
        &[5, 0, 0x80, 0x20, 0x80, 0x20, 0x08],
        // Munmap(Own, 4096, 4096) and one byte more.
        &[4, 0, 0x80, 0x20, 0x80, 0x20, 0x00],
        // Munmap(Own, a varint cut short).
        &[4, 0, 0x80],
        // Munmap(Client(...)): the fifth byte of a u32 varint above 0x0f.
        &[4, 1, 0xff, 0xff, 0xff, 0xff, 0x1f, 0, 0],
    ];
    for bytes in bad {
        let (w, n) = packed(bytes);
        raw_protocol_error(c, &w[..n], 1022)?;
    }
    // Munmap(Own, 0x10_0000_0000, 4096), the address canonical and with a redundant zero
    // group: the same answer.
    let (w, n) = packed(&[4, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 0x80, 0x20]);
    let (w2, n2) = packed(&[4, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x82, 0x00, 0x80, 0x20]);
    let canonical = c.call_raw(REQUEST_LABEL, &w[..n]).1.decode();
    let stretched = c.call_raw(REQUEST_LABEL, &w2[..n2]).1.decode();
    if canonical != stretched || canonical.is_err() {
        return Err(Fail::new(1023).detail(u64::from(stretched.map(|r| r.tag()).unwrap_or(u32::MAX))));
    }
    Ok(())
}

pub fn run(c: &mut Client) -> Outcome {
    // Empty message.
    raw_protocol_error(c, &[], 1001)?;
    // Framing length above the largest message.
    raw_protocol_error(c, &[MAX_MESSAGE_BYTES as u64 + 1], 1002)?;
    // Framing says 16 bytes, one payload word follows.
    raw_protocol_error(c, &[16, 0], 1003)?;
    // Garbage: varint continuation bytes all the way.
    raw_protocol_error(c, &[8, 0xffff_ffff_ffff_ffff], 1004)?;
    // Unknown request tag (100 >= Request::TAG_COUNT).
    let p = raw_protocol_error(c, &[1, 100], 1005)?;
    if p != ProtocolError::UnknownRequest {
        return Err(Fail::new(1007).detail(p as u64));
    }
    // One byte announced, but the padding of the word is not zero.
    raw_protocol_error(c, &[1, 0x0100], 1006)?;
    fast_path_shapes(c)?;
    // The benchmark's meter switch is the administrator's, and only a bench server's: from
    // a client, any server answers it as an unknown request.
    let (_, reply) = c.call_raw(BENCH_METERS_LABEL, &[1]);
    if reply.decode() != Ok(Reply::Protocol(ProtocolError::UnknownRequest)) {
        let tag = reply.decode().map(|r| u64::from(r.tag())).unwrap_or(u64::MAX);
        return Err(Fail::new(1024).detail(reply.words().first().copied().unwrap_or(0)).at(tag));
    }

    expect_errno(c.munmap(0x1001, PAGE_SIZE), Errno::Inval, 1011)?;
    let fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    if let Ok(a) = c.mmap(KERNEL_ADDR, PAGE_SIZE, PROT_RW, fixed) {
        return Err(Fail::new(1012).at(a));
    }
    expect_errno(c.munmap(PAGE_SIZE, u64::MAX & !(PAGE_SIZE - 1)), Errno::Inval, 1013)?;

    let past = BufRef::new(BUFFER_BYTES as u32, PAGE_SIZE as u32);
    let region = Request::Region {
        target: Target::Own,
        addr: 0x6000_0000,
        len: PAGE_SIZE,
        prot: Prot::RW,
        data: Some(past),
    };
    let r = c.request(&region).map_err(CallError::errno);
    expect_errno(r, Errno::Fault, 1014)?;

    expect_errno(c.stats(Target::Client(1)), Errno::Perm, 1015)?;

    // Layout into bytes past the buffer, or over the rings: EFAULT; of the administrator's
    // space: EPERM.
    for buf in [past, BufRef::new(0, 4096), BufRef::new(u32::MAX, 24)] {
        let r = c.request(&Request::Layout { target: Target::Own, from: 0, buf }).map_err(CallError::errno);
        expect_errno(r, Errno::Fault, 1020)?;
    }
    expect_errno(c.layout(Target::Client(1), 0, |_| {}), Errno::Perm, 1021)?;

    let addr = c.mmap(0, PAGE_SIZE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS).or_fail(1016)?;
    // SAFETY: inside the RW mapping the server just returned.
    unsafe { poke(addr, 0x1010) };
    // SAFETY: as above.
    ensure_eq(unsafe { peek(addr) }, 0x1010, 1017, addr)?;
    c.stats(Target::Own).or_fail(1018)?;
    c.munmap(addr, PAGE_SIZE).or_fail(1019)?;
    Ok(())
}
