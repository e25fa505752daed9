//! The server's views of the shared buffers, and the descriptor-ring protocol for bulk data.
//!
//! Every caller with bulk data has a shared buffer of [`SharedLayout::PAGES`] pages: the
//! administrator's (the root task's frames, copied by the root task into
//! [`server_slot::ADMIN_BUFFER`]..) and one per client, created by `mem-core` when it
//! creates the client's space (its `BufferConfig`: mapped in the client at
//! `CLIENT_BUFFER_VADDR`, and in the server through cap copies the core charges to the
//! client). The server sees badge `b`'s buffer at `SERVER_BUFFERS_VADDR + b *
//! BUFFER_STRIDE` ([`view_base`]): the admin's frames mapped here at start, a client's
//! while the core says it has a view (`MemCore::has_view`).
//!
//! # Ring protocol (both sides must match; the client side is `clients/lib`)
//!
//! Layout: [`SharedLayout::TO_SERVER_RING`] and [`SharedLayout::FROM_SERVER_RING`] each hold
//! one `sel4_shared_ring_buffer::RawRingBuffer<Descriptor>` (indices, then 512 descriptors;
//! ~12 KiB of the 16 KiB reserved); the data area follows at [`SharedLayout::DATA`].
//! A [`BufRef`]'s `offset` counts from the start of the whole buffer (so data-area bytes
//! have offsets `DATA..DATA + DATA_LEN`); one naming anything outside the data area is
//! `EFAULT`.
//!
//! - Roles: on the to-server ring the client is the writer (`roles::Write`) and the server
//!   the reader (`roles::Read`); on the from-server ring the server writes and the client
//!   reads. Both rings start as zeroed memory (indices 0) and nobody writes initial state:
//!   each side builds its views with `InitializationStrategy::ReadState`. The server keeps
//!   no ring state of its own; it re-reads the indices from the buffer at every request.
//! - Request with bulk data (`Request::bulk`: `Region` with `data`, `BackendWrite`,
//!   `BackendRead`, `Layout`, `PagerReply` with a page): before the
//!   `Call`, the client enqueues (and commits) `Descriptor::new(offset, len, cookie)` with
//!   `offset`/`len` equal to the request's `BufRef` (the cookie is the client's, returned
//!   unchanged).
//! - The server dequeues every descriptor on the to-server ring. All but the last are stale
//!   (left by requests that failed before reaching the ring) and go straight back on the
//!   from-server ring. The last must equal the `BufRef` (offset and len) and lie in the data
//!   area, else the reply is `EFAULT` (an empty ring too). The server then carries out the
//!   request (reading or writing the data area) and, before replying, enqueues that
//!   descriptor on the from-server ring: the bytes are the client's again.
//! - After every reply the client dequeues everything on the from-server ring; the last
//!   descriptor is the one just handed back. A full from-server ring drops returns (the
//!   request itself is not affected). A ring whose indices are inconsistent
//!   (`PeerMisbehaviorError`) makes the request fail with `EFAULT`.
//! - Requests without bulk data never touch the rings.

use core::ptr::NonNull;

use mem_core::{Errno, Slot};
use mem_protocol::system::{
    server_slot, SharedLayout, ADMIN_BADGE, BUFFER_STRIDE, MAX_BADGES, SERVER_BUFFERS_VADDR,
};
use mem_protocol::{BufRef, PAGE_SIZE};
use sel4_shared_memory::SharedMemoryRef;
use sel4_shared_ring_buffer::roles::{Read, RingBufferRole, Write};
use sel4_shared_ring_buffer::{
    Descriptor, InitializationStrategy, RawRingBuffer, RingBuffer, RING_BUFFER_SIZE,
};

use crate::kernel_sel4::Sel4Kernel;

/// Bytes of one shared buffer.
pub const BUFFER_BYTES: u64 = SharedLayout::PAGES * PAGE_SIZE;

const _: () = assert!(BUFFER_BYTES <= BUFFER_STRIDE, "a buffer fits its view slot");
const _: () = assert!(
    core::mem::size_of::<RawRingBuffer<Descriptor>>() as u64
        <= SharedLayout::FROM_SERVER_RING - SharedLayout::TO_SERVER_RING
        && core::mem::size_of::<RawRingBuffer<Descriptor>>() as u64
            <= SharedLayout::DATA - SharedLayout::FROM_SERVER_RING,
    "each ring fits its pages"
);

/// Where the server sees badge `badge`'s shared buffer.
pub const fn view_base(badge: u32) -> u64 {
    SERVER_BUFFERS_VADDR + badge as u64 * BUFFER_STRIDE
}

/// A mapped buffer view: its start address. Only [`Buffers::view`] makes one, from the
/// admin's mapping or a client view the core has mapped; it is used within the handling of
/// one request, during which nothing unmaps the sender's own view (no request with bulk
/// data removes its sender's buffer).
#[derive(Clone, Copy)]
pub struct View(u64);

/// The administrator's buffer view; clients' views are the core's.
#[derive(Default)]
pub struct Buffers {
    /// The admin's buffer is mapped (its frames are the root task's, never unmapped).
    admin: bool,
}

impl Buffers {
    /// Map the admin's buffer (frames at `server_slot::ADMIN_BUFFER`..) into its view.
    pub fn map_admin(&mut self, k: &mut Sel4Kernel) -> Result<(), mem_core::KernelError> {
        for i in 0..SharedLayout::PAGES {
            let slot = (server_slot::ADMIN_BUFFER + i) as Slot;
            k.map_in_server(slot, view_base(ADMIN_BADGE) + i * PAGE_SIZE)?;
        }
        self.admin = true;
        Ok(())
    }

    /// `badge`'s buffer view, if it has one (`client_view`: the core says the client's
    /// view is mapped: `MemCore::has_view`).
    pub fn view(&self, badge: u32, client_view: bool) -> Option<View> {
        let mapped = if badge == ADMIN_BADGE { self.admin } else { client_view && badge < MAX_BADGES };
        mapped.then(|| View(view_base(badge)))
    }

    /// Take the descriptor of a bulk-data request of `badge` naming `b` (see the module
    /// docs): drain the to-server ring, hand stale descriptors back, check the last one.
    pub fn take(&mut self, view: Option<View>, b: BufRef) -> Result<Descriptor, Errno> {
        let base = view.ok_or(Errno::Fault)?.0;
        // SAFETY: `base` comes from a `View`, a mapped buffer view; the two rings are at
        // their fixed offsets, page aligned, each inside the view (checked at compile
        // time), and these views are dropped before this function returns.
        let (mut to, mut from) = unsafe {
            (
                ring::<Read>(base, SharedLayout::TO_SERVER_RING),
                ring::<Write>(base, SharedLayout::FROM_SERVER_RING),
            )
        };
        let mut last: Option<Descriptor> = None;
        for _ in 0..RING_BUFFER_SIZE {
            match to.dequeue() {
                Ok(Some(d)) => {
                    if let Some(stale) = last.replace(d) {
                        let _ = from.enqueue_and_commit(stale);
                    }
                }
                Ok(None) => break,
                Err(_) => return Err(Errno::Fault),
            }
        }
        let d = last.ok_or(Errno::Fault)?;
        let in_data = u64::from(b.offset) >= SharedLayout::DATA
            && b.fits_in(SharedLayout::DATA + SharedLayout::DATA_LEN);
        if !in_data || d.encoded_addr() != b.offset as usize || d.len() != b.len {
            let _ = from.enqueue_and_commit(d);
            return Err(Errno::Fault);
        }
        Ok(d)
    }

    /// Hand descriptor `d` back to `badge` on its from-server ring.
    pub fn give_back(&mut self, view: Option<View>, d: Descriptor) {
        if let Some(View(base)) = view {
            // SAFETY: as in `take`: a mapped view, the ring at its fixed offset inside it,
            // the view dropped at the end of this block.
            let mut from = unsafe { ring::<Write>(base, SharedLayout::FROM_SERVER_RING) };
            let _ = from.enqueue_and_commit(d);
        }
    }

    /// `badge`'s whole shared buffer (what `BufRef` offsets count from), if mapped.
    ///
    /// The caller may write the bytes concurrently (a client with several threads): they
    /// are plain data to the server, which only copies them.
    pub fn bytes(&mut self, view: Option<View>) -> Option<&mut [u8]> {
        let base = view?.0;
        // SAFETY: a `View` names BUFFER_BYTES bytes mapped read-write that stay mapped while
        // the request that made it is handled (see `View`), which outlasts this borrow of
        // `self`; no ring view exists while this slice is alive (those live only inside
        // `take` / `give_back`). The client sharing the frames can only change byte values,
        // which are valid for `u8` whatever they are.
        Some(unsafe { core::slice::from_raw_parts_mut(base as *mut u8, BUFFER_BYTES as usize) })
    }
}

/// A ring of the buffer view at `base`, at byte `offset`, with the indices found there.
///
/// # Safety
/// `base + offset` must be the 8-byte aligned start of a `RawRingBuffer<Descriptor>` inside
/// a mapped buffer view, and the returned ring must not outlive that mapping.
unsafe fn ring<R: RingBufferRole>(base: u64, offset: u64) -> RingBuffer<'static, R, Descriptor> {
    let raw = (base + offset) as *mut RawRingBuffer<Descriptor>;
    // SAFETY: `raw` is non-null (a view address far above 0), per the function's contract.
    let raw = unsafe { NonNull::new_unchecked(raw) };
    // SAFETY: per the function's contract the pointer names a live ring in shared memory;
    // `SharedMemoryRef` accesses it only through raw-pointer reads and writes of plain-data
    // (`FromBytes`) descriptors and atomic loads and stores of the indices.
    let shared = unsafe { SharedMemoryRef::new(raw) };
    RingBuffer::new(shared, InitializationStrategy::ReadState)
}
