//! A server that panicked says why, at once, and never serves again.
//!
//! `mem-core` is built so that no request can make it panic; if it happens anyway (a bug),
//! the server must not hang the system silently. [`die`]:
//!
//! 1. writes the panic message into the IPC buffer's message registers
//!    ([`SERVER_DIED_LABEL`]: MR0 = byte length, the UTF-8 bytes from MR1 on);
//! 2. replies with it, so a caller blocked on a reply (the root task's request that caused
//!    the panic) learns at once;
//! 3. signals the root task's notification with [`NOTIFY_DIED`], which wakes it wherever it
//!    waits on its report endpoint;
//! 4. then receives forever: every request is answered with the same message (so a root
//!    task whose request was queued behind the fatal one learns too), faults are never
//!    answered (those threads stay stopped).
//!
//! Nothing here allocates or uses the `sel4` crate's IPC-buffer bookkeeping (the panic may
//! have happened while it was borrowed). Neighbours: `runtime.rs` (the panic handler).

use core::fmt::Write;
use core::panic::PanicInfo;

use mem_protocol::system::{server_slot, REQUEST_LABEL, SERVER_DIED_LABEL, SERVER_IPC_BUFFER_VADDR};
use mem_protocol::IPC_BUFFER_WORDS;
use sel4::sys::seL4_MessageInfo;

/// Bytes of reason that fit the message registers after the length word.
const REASON_BYTES: usize = (IPC_BUFFER_WORDS - 1) * 8;

/// A fixed buffer that keeps the first `REASON_BYTES` bytes written to it.
struct Reason {
    buf: [u8; REASON_BYTES],
    len: usize,
}

impl Write for Reason {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                break;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Stop serving for good, telling the root task `info` (see the module docs).
pub fn die(info: &PanicInfo) -> ! {
    let mut reason = Reason { buf: [0; REASON_BYTES], len: 0 };
    let _ = write!(reason, "{}", info.message());
    if let Some(l) = info.location() {
        let _ = write!(reason, " at {}:{}", l.file(), l.line());
    }
    // SAFETY: the server's IPC buffer is mapped at SERVER_IPC_BUFFER_VADDR for the life of
    // the thread. The panicking code may hold a borrow of it from the `sel4` crate, but
    // that code never runs again (this function never returns), so this is from now on the
    // only reference that is used.
    let ipc = unsafe { &mut *(SERVER_IPC_BUFFER_VADDR as *mut sel4::IpcBuffer) };
    let words = 1 + reason.len.div_ceil(8);
    let died = seL4_MessageInfo::new(SERVER_DIED_LABEL, 0, 0, words as u64);
    let fill = |ipc: &mut sel4::IpcBuffer| {
        let mr = ipc.msg_regs_mut();
        mr[0] = reason.len as u64;
        for (i, chunk) in reason.buf[..reason.len].chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            mr[1 + i] = u64::from_le_bytes(w);
        }
    };
    fill(ipc);
    ipc.inner_mut().seL4_Reply(died.clone());
    ipc.inner_mut().seL4_Signal(server_slot::NOTIFY + 1);
    let (mut info, _) = ipc.inner_mut().seL4_Recv(server_slot::ENDPOINT, ());
    loop {
        if info.get_label() == REQUEST_LABEL {
            fill(ipc);
            (info, _) = ipc.inner_mut().seL4_ReplyRecv(server_slot::ENDPOINT, died.clone(), ());
        } else {
            (info, _) = ipc.inner_mut().seL4_Recv(server_slot::ENDPOINT, ());
        }
    }
}
