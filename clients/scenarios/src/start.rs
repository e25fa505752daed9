//! The start of a client process of `make simulate`, shared by `scenario-client` (this
//! crate) and `libc-client` (which includes this file by `#[path]`, as it does
//! `report.rs`): instruction fetch synced with the pages the server wrote, the IPC buffer,
//! the process's heap connected, and the `ClientBoot` record the root task wrote.

use mem_protocol::system::{client_slot, ClientBoot, CLIENT_BOOT_VADDR, CLIENT_IPC_BUFFER_VADDR};
use mem_protocol::PAGE_SIZE;

use crate::report::Fail;

/// Failure code: the ClientBoot record did not decode.
pub const BAD_BOOT_RECORD: u64 = 9002;

/// Everything a client thread needs before its first request.
pub fn process() {
    // The server wrote this program's pages: make them visible to instruction fetch on
    // this hart (riscv64; see mem-server/sel4/src/window.rs).
    #[cfg(target_arch = "riscv64")]
    // SAFETY: `fence.i` touches no memory or register; it is allowed in user mode.
    unsafe {
        core::arch::asm!("fence.i", options(nostack, preserves_flags))
    };
    // SAFETY: the root task maps this client's IPC buffer frame at CLIENT_IPC_BUFFER_VADDR
    // (page aligned, one page, writable) and sets it as the TCB's IPC buffer before the
    // thread starts; nothing else in this process refers to it.
    unsafe {
        sel4::set_ipc_buffer(&mut *(CLIENT_IPC_BUFFER_VADDR as *mut sel4::IpcBuffer));
    }
    // The process's heap (mem-capi's, its `#[global_allocator]`) and C calls use the same
    // endpoint cap as the client library.
    mem_capi::mem_connect(client_slot::SERVER);
}

/// The ClientBoot record the root task wrote at CLIENT_BOOT_VADDR.
pub fn read_boot() -> Result<ClientBoot, Fail> {
    // SAFETY: the root task maps the boot page (one readable page) at CLIENT_BOOT_VADDR
    // before the thread starts and never changes it while the thread runs.
    let page: &[u8] = unsafe { core::slice::from_raw_parts(CLIENT_BOOT_VADDR as *const u8, PAGE_SIZE as usize) };
    postcard::from_bytes::<ClientBoot>(page).map_err(|_| Fail::new(BAD_BOOT_RECORD))
}
