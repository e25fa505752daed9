//! The frame window: how the server reads and writes the contents of a frame it holds a
//! cap to (zeroing, copy-on-write copies, backend data, `Region` contents).
//!
//! A frame cap can be mapped only once, and the original caps are usually mapped in a
//! client, so each operation works on a copy: copy the cap into a scratch slot, map the
//! copy in the server's own VSpace ([`server_slot::VSPACE`]) at a window address, touch the
//! bytes with plain pointer operations, then delete the copy (deleting a mapped frame cap
//! unmaps it and flushes the TLB entry): three system calls per frame.
//!
//! Window addresses ([`WINDOW_SLOTS`] of each size, one per frame an operation touches at
//! once): 4 KiB frames at `SERVER_WINDOW_VADDR + i * 4096` (the root task pre-maps the leaf
//! table there), 2 MiB frames at `SERVER_LARGE_WINDOW_VADDR + i * 2 MiB` (no leaf table,
//! so the frame sits in the level above). Which size a frame is comes from
//! [`Sel4Kernel::frame_bytes`].
//!
//! Instruction caches: bytes written through the window may become code a client runs
//! (program images, copy-on-write copies of code, backend pages). On aarch64 they are made
//! visible to instruction fetch with `Page_Unify_Instruction` on the window copy before it
//! goes away (the kernel cleans the data cache to the point of unification and invalidates
//! the instruction cache by address, which the architecture broadcasts to every core: this
//! is what real hardware needs too). On riscv64 the server executes `fence.i` after every
//! write (its own hart). seL4 16 offers user level no remote instruction fence (its
//! `ifence()` with the SBI remote fence is never called), so on multi-hart hardware a
//! client thread must itself execute `fence.i` before running code the server wrote while
//! the thread may have been on another hart: the scenario client does so when it starts.
//! QEMU keeps caches coherent either way.

use core::ptr;
use core::sync::atomic::{compiler_fence, Ordering};

use mem_core::{KResult, KernelError, Slot};
use mem_protocol::system::{SERVER_LARGE_WINDOW_VADDR, SERVER_WINDOW_VADDR};
use mem_protocol::{LARGE_PAGE_SIZE, PAGE_SIZE};

use crate::kernel_sel4::{abs, Sel4Kernel};

/// Window slots per frame size (the most frames one operation maps at once: a copy's
/// source and destination).
pub const WINDOW_SLOTS: usize = 2;

/// A frame mapped in the window: where its bytes are and how many there are.
struct Mapped {
    ptr: *mut u8,
    bytes: u64,
}

/// Does `offset..offset + len` fit in a frame of `size` bytes?
fn fits(offset: u64, len: u64, size: u64) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= size)
}

impl Sel4Kernel {
    /// Map a copy of `frame`'s cap at window slot `i` (scratch slot `i`).
    fn map_window(&mut self, i: usize, frame: Slot) -> KResult<Mapped> {
        let bytes = self.frame_bytes(frame);
        let vaddr = if bytes == LARGE_PAGE_SIZE {
            SERVER_LARGE_WINDOW_VADDR + i as u64 * LARGE_PAGE_SIZE
        } else {
            SERVER_WINDOW_VADDR + i as u64 * PAGE_SIZE
        };
        let scratch = self.scratch[i];
        // Not `Kernel::cap_copy`: the scratch copy must not enter the size bookkeeping.
        let mut copied = abs(scratch).copy(&abs(frame), sel4::CapRights::all());
        if copied == Err(sel4::Error::DeleteFirst) {
            // A copy left behind by an earlier failed delete: clear it and retry once.
            let _ = abs(scratch).delete();
            copied = abs(scratch).copy(&abs(frame), sel4::CapRights::all());
        }
        copied.map_err(crate::kernel_sel4::kerr)?;
        if let Err(e) = self.map_in_server(scratch, vaddr) {
            let _ = abs(scratch).delete();
            return Err(e);
        }
        Ok(Mapped {
            ptr: vaddr as *mut u8,
            bytes,
        })
    }

    /// Remove window slot `i` (unmaps by deleting the scratch copy).
    fn unmap_window(&mut self, i: usize) {
        compiler_fence(Ordering::SeqCst);
        let _ = abs(self.scratch[i]).delete();
    }

    /// Make `len` bytes at `offset` of window slot `i` coherent with instruction fetch.
    #[cfg(target_arch = "aarch64")]
    fn sync_icache(&mut self, i: usize, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let scratch = u64::from(self.scratch[i]);
        compiler_fence(Ordering::SeqCst);
        let _ = sel4::with_ipc_buffer_mut(|ipc| {
            ipc.inner_mut()
                .seL4_ARM_Page_Unify_Instruction(scratch, offset, offset + len)
        });
    }

    #[cfg(target_arch = "riscv64")]
    fn sync_icache(&mut self, _i: usize, _offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        compiler_fence(Ordering::SeqCst);
        // SAFETY: `fence.i` only orders this hart's instruction fetches after its earlier
        // stores; it touches no memory or register and is allowed in user mode (Zifencei).
        unsafe { core::arch::asm!("fence.i", options(nostack, preserves_flags)) };
    }

    /// [`mem_core::Kernel::frame_zero`]: fill the whole frame with zeroes.
    pub(crate) fn window_zero(&mut self, frame: Slot) -> KResult {
        let m = self.map_window(0, frame)?;
        // SAFETY: `m.ptr` is the start of the window slot where the frame of `m.bytes`
        // bytes was just mapped read-write in this address space; nothing else refers to
        // that range, and the mapping stays until `unmap_window` below.
        unsafe { ptr::write_bytes(m.ptr, 0, m.bytes as usize) };
        self.unmap_window(0);
        Ok(())
    }

    /// [`mem_core::Kernel::frame_copy`]: copy `len` bytes (4 KiB multiples) between two frames.
    pub(crate) fn window_copy(
        &mut self,
        src: Slot,
        src_off: u64,
        dst: Slot,
        dst_off: u64,
        len: u64,
    ) -> KResult {
        if !(src_off | dst_off | len).is_multiple_of(PAGE_SIZE) {
            return Err(KernelError::AlignmentError);
        }
        if !fits(src_off, len, self.frame_bytes(src)) || !fits(dst_off, len, self.frame_bytes(dst))
        {
            return Err(KernelError::RangeError);
        }
        let s = self.map_window(0, src)?;
        let d = match self.map_window(1, dst) {
            Ok(d) => d,
            Err(e) => {
                self.unmap_window(0);
                return Err(e);
            }
        };
        // SAFETY: both windows were just mapped (slots 0 and 1: disjoint address ranges,
        // even when both copies name the same frame) and the range checks above keep
        // `offset + len` within each frame's mapping; the mappings stay until the unmaps.
        unsafe {
            ptr::copy_nonoverlapping(
                s.ptr.add(src_off as usize),
                d.ptr.add(dst_off as usize),
                len as usize,
            )
        };
        self.sync_icache(1, dst_off, len);
        self.unmap_window(1);
        self.unmap_window(0);
        Ok(())
    }

    /// [`mem_core::Kernel::frame_write`]: write `data` at `offset` of the frame.
    pub(crate) fn window_write(&mut self, frame: Slot, offset: u64, data: &[u8]) -> KResult {
        if !fits(offset, data.len() as u64, self.frame_bytes(frame)) {
            return Err(KernelError::RangeError);
        }
        if data.is_empty() {
            return Ok(());
        }
        let m = self.map_window(0, frame)?;
        // SAFETY: the frame is mapped read-write at `m.ptr` for `m.bytes` bytes and the
        // check above keeps `offset + data.len()` within it; `data` is server memory
        // outside the window, so the ranges do not overlap.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), m.ptr.add(offset as usize), data.len()) };
        self.sync_icache(0, offset, data.len() as u64);
        self.unmap_window(0);
        Ok(())
    }

    /// [`mem_core::Kernel::frame_read`]: read `buf.len()` bytes at `offset` of the frame.
    pub(crate) fn window_read(&mut self, frame: Slot, offset: u64, buf: &mut [u8]) -> KResult {
        if !fits(offset, buf.len() as u64, self.frame_bytes(frame)) {
            return Err(KernelError::RangeError);
        }
        if buf.is_empty() {
            return Ok(());
        }
        let m = self.map_window(0, frame)?;
        // SAFETY: the frame is mapped at `m.ptr` for `m.bytes` bytes and the check above
        // keeps `offset + buf.len()` within it; `buf` is server memory outside the window.
        unsafe {
            ptr::copy_nonoverlapping(m.ptr.add(offset as usize), buf.as_mut_ptr(), buf.len())
        };
        self.unmap_window(0);
        Ok(())
    }
}

// The window's fixed addresses must not overlap: two small slots below the large ones.
const _: () =
    assert!(SERVER_WINDOW_VADDR + WINDOW_SLOTS as u64 * PAGE_SIZE <= SERVER_LARGE_WINDOW_VADDR);
const _: () = assert!(SERVER_LARGE_WINDOW_VADDR.is_multiple_of(LARGE_PAGE_SIZE));
