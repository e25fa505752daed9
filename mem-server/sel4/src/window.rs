//! How the server reads and writes the contents of a frame it holds a cap to (zeroing,
//! copy-on-write copies, backend data, `Region` contents): the direct map, or the window.
//!
//! The direct map (`mem-core`'s `Config::direct_map`): every 4 KiB frame the server
//! retypes gets a second cap, mapped for good in the server's own VSpace at
//! [`crate::kernel_sel4::direct_vaddr`] (made once per frame, at retype, through
//! `Kernel::direct_map`). A frame with such a mapping is touched with plain pointer
//! operations and no system call at all; that is the common case (fault zeroing, copies).
//!
//! The window, for everything else (2 MiB frames, a frame whose direct mapping could not
//! be made): a frame cap can be mapped only once, and the original caps are usually
//! mapped in a client, so each operation works on a copy: copy the cap into a scratch slot,
//! map the copy in the server's own VSpace ([`server_slot::VSPACE`]) at a window address,
//! touch the bytes, then delete the copy (deleting a mapped frame cap unmaps it and flushes
//! the TLB entry): three system calls per frame.
//!
//! Window addresses ([`WINDOW_SLOTS`] of each size, one per frame an operation touches at
//! once): 4 KiB frames at `SERVER_WINDOW_VADDR + i * 4096` (the root task pre-maps the leaf
//! table there), 2 MiB frames at `SERVER_LARGE_WINDOW_VADDR + i * 2 MiB` (no leaf table,
//! so the frame sits in the level above). Which size a frame is comes from
//! [`Sel4Kernel::frame_bytes`].
//!
//! Instruction caches: bytes the server writes may become code a client runs (program
//! images, copy-on-write copies of code, backend pages). On aarch64 they are made visible
//! to instruction fetch with `Page_Unify_Instruction`: for `frame_write`, on the window or
//! direct-map copy right after the write (the frame may already be mapped executable
//! somewhere); for `frame_copy`, whose destination is always a fresh frame mapped
//! afterwards, on the client's cap when `page_map` maps it executable, as Linux does at
//! `set_pte_at` (data pages never pay for it). The kernel cleans the data cache to the
//! point of unification and invalidates the instruction cache by address, which the
//! architecture broadcasts to every core: this is what real hardware needs too. A frame
//! the server only zeroed is never synced: code a client writes into it itself needs the
//! client's own maintenance anyway, as on Linux. On riscv64 the server executes `fence.i` after every
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

use crate::kernel_sel4::{abs, direct_vaddr, Sel4Kernel};
use crate::pagemem;

/// Window slots per frame size (the most frames one operation maps at once: a copy's
/// source and destination).
pub const WINDOW_SLOTS: usize = 2;

/// A frame's bytes as an operation reaches them: where they are, how many there are, the
/// mapped cap to name for instruction-cache maintenance, and whether the window slot must
/// be given back afterwards.
struct Mapped {
    ptr: *mut u8,
    bytes: u64,
    #[cfg_attr(target_arch = "riscv64", allow(dead_code))]
    cap: Slot,
    window: Option<usize>,
}

/// Does `offset..offset + len` fit in a frame of `size` bytes?
fn fits(offset: u64, len: u64, size: u64) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= size)
}

impl Sel4Kernel {
    /// Reach `frame`'s bytes: through the direct map if it is there, else by mapping a copy
    /// of its cap at window slot `i` (scratch slot `i`).
    fn reach(&mut self, i: usize, frame: Slot) -> KResult<Mapped> {
        if let Some(copy) = self.direct_copy(frame) {
            return Ok(Mapped {
                ptr: direct_vaddr(frame) as *mut u8,
                bytes: PAGE_SIZE,
                cap: copy,
                window: None,
            });
        }
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
            cap: scratch,
            window: Some(i),
        })
    }

    /// Done with `m`: a window slot is removed (deleting the scratch copy unmaps it); the
    /// direct map stays.
    fn release(&mut self, m: &Mapped) {
        compiler_fence(Ordering::SeqCst);
        if let Some(i) = m.window {
            let _ = abs(self.scratch[i]).delete();
        }
    }

    /// Make `len` bytes at `offset` of the frame reached by `m` coherent with instruction
    /// fetch.
    #[cfg(target_arch = "aarch64")]
    fn sync_icache(&mut self, m: &Mapped, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let cap = u64::from(m.cap);
        compiler_fence(Ordering::SeqCst);
        let _ = sel4::with_ipc_buffer_mut(|ipc| {
            ipc.inner_mut()
                .seL4_ARM_Page_Unify_Instruction(cap, offset, offset + len)
        });
    }

    /// Make the whole frame whose cap in `frame` was just mapped coherent with instruction
    /// fetch (`Page_Unify_Instruction` on that mapped cap).
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn sync_mapped_code(&mut self, frame: Slot) {
        let bytes = self.frame_bytes(frame);
        compiler_fence(Ordering::SeqCst);
        let _ = sel4::with_ipc_buffer_mut(|ipc| {
            ipc.inner_mut()
                .seL4_ARM_Page_Unify_Instruction(u64::from(frame), 0, bytes)
        });
    }

    /// riscv64: the copies were fenced when made (`fence.i` acts on this hart only).
    #[cfg(target_arch = "riscv64")]
    pub(crate) fn sync_mapped_code(&mut self, _frame: Slot) {}

    #[cfg(target_arch = "riscv64")]
    fn sync_icache(&mut self, _m: &Mapped, _offset: u64, len: u64) {
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
        let m = self.reach(0, frame)?;
        // SAFETY: `m.ptr` is the page-aligned start of a read-write mapping of the whole
        // frame (`m.bytes`, a multiple of 4 KiB) in this address space (the direct map, or
        // the window slot until `release`); nothing else refers to that range meanwhile.
        unsafe { pagemem::zero(m.ptr, m.bytes as usize) };
        self.release(&m);
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
        if src == dst && src_off == dst_off {
            return Ok(());
        }
        let s = self.reach(0, src)?;
        let d = match self.reach(1, dst) {
            Ok(d) => d,
            Err(e) => {
                self.release(&s);
                return Err(e);
            }
        };
        // SAFETY: both frames are mapped (direct map or window slots 0 and 1, distinct
        // address ranges even when both copies name the same frame; a frame reached twice
        // through the direct map is one range, but then the offsets differ and 4 KiB
        // multiples do not overlap) and the range checks above keep `offset + len` within
        // each mapping; page-aligned offsets and lengths suit `pagemem::copy`.
        unsafe {
            pagemem::copy(
                d.ptr.add(dst_off as usize),
                s.ptr.add(src_off as usize),
                len as usize,
            )
        };
        // aarch64: synced when the copy is mapped executable (`Sel4Kernel::page_map`): every
        // copy goes into a frame that is mapped afterwards. riscv64: `fence.i` here.
        #[cfg(target_arch = "riscv64")]
        self.sync_icache(&d, dst_off, len);
        self.release(&d);
        self.release(&s);
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
        let m = self.reach(0, frame)?;
        // SAFETY: the frame is mapped read-write at `m.ptr` for `m.bytes` bytes and the
        // check above keeps `offset + data.len()` within it; `data` is server memory
        // outside the window and the direct map, so the ranges do not overlap.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), m.ptr.add(offset as usize), data.len()) };
        self.sync_icache(&m, offset, data.len() as u64);
        self.release(&m);
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
        let m = self.reach(0, frame)?;
        // SAFETY: the frame is mapped at `m.ptr` for `m.bytes` bytes and the check above
        // keeps `offset + buf.len()` within it; `buf` is server memory outside the window
        // and the direct map.
        unsafe {
            ptr::copy_nonoverlapping(m.ptr.add(offset as usize), buf.as_mut_ptr(), buf.len())
        };
        self.release(&m);
        Ok(())
    }
}

// The window's fixed addresses must not overlap: two small slots below the large ones.
const _: () =
    assert!(SERVER_WINDOW_VADDR + WINDOW_SLOTS as u64 * PAGE_SIZE <= SERVER_LARGE_WINDOW_VADDR);
const _: () = assert!(SERVER_LARGE_WINDOW_VADDR.is_multiple_of(LARGE_PAGE_SIZE));
