//! The server's views of the shared buffers, and the descriptor-ring protocol for bulk data.
//!
//! Every caller with bulk data has a shared buffer of [`SharedLayout::PAGES`] pages: the
//! administrator's (the root task's frames, copied by the root task into
//! [`server_slot::ADMIN_BUFFER`]..) and one per client, created by the server when it
//! creates the client's space (`mem-core`'s `create_shared_buffer`, mapped in the client at
//! `CLIENT_BUFFER_VADDR`). The server sees badge `b`'s buffer at
//! `SERVER_BUFFERS_VADDR + b * BUFFER_STRIDE` ([`view_base`]): the admin's frames mapped
//! directly, a client's through cap copies from the core's slot allocator (deleted, and the
//! core's references released, before the client's space is destroyed).
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
//! - Request with bulk data (`Region` with `data`, `BackendWrite`, `BackendRead`): before the
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

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ptr::NonNull;

use mem_core::{Errno, Kernel, MemCore, Slot};
use mem_protocol::system::{
    server_slot, SharedLayout, ADMIN_BADGE, BUFFER_STRIDE, CLIENT_BUFFER_VADDR, MAX_BADGES,
    SERVER_BUFFERS_VADDR,
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

/// The server's mapped views of shared buffers, by badge.
#[derive(Default)]
pub struct Buffers {
    /// The admin's buffer is mapped (its frames are the root task's, never unmapped).
    admin: bool,
    /// Each client's view: the cap copies mapped at its [`view_base`], in page order.
    clients: BTreeMap<u32, Vec<Slot>>,
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

    /// Start of `badge`'s buffer view, if it has one.
    fn base(&self, badge: u32) -> Option<u64> {
        let mapped = if badge == ADMIN_BADGE {
            self.admin
        } else {
            self.clients.contains_key(&badge)
        };
        mapped.then(|| view_base(badge))
    }

    /// Create `client`'s shared buffer (in its space, at `CLIENT_BUFFER_VADDR`) and map
    /// the server's view of it. On failure nothing of the buffer is left in the server; the
    /// caller destroys the half-made space.
    pub fn create(&mut self, core: &mut MemCore<Sel4Kernel>, client: u32) -> Result<(), Errno> {
        if client >= MAX_BADGES || client == ADMIN_BADGE || self.clients.contains_key(&client) {
            return Err(Errno::Inval);
        }
        let frames = core.create_shared_buffer(client, CLIENT_BUFFER_VADDR, SharedLayout::PAGES)?;
        let mut copies = Vec::with_capacity(frames.len());
        for (i, &frame) in frames.iter().enumerate() {
            match map_copy(core, frame, view_base(client) + i as u64 * PAGE_SIZE) {
                Ok(s) => copies.push(s),
                Err(e) => {
                    unmap_copies(core, &copies);
                    let _ = core.release_shared_buffer(client);
                    return Err(e);
                }
            }
        }
        self.clients.insert(client, copies);
        Ok(())
    }

    /// Remove the server's view of `client`'s buffer and drop the core's references on
    /// its frames (before `DestroySpace`).
    pub fn remove(&mut self, core: &mut MemCore<Sel4Kernel>, client: u32) {
        if let Some(copies) = self.clients.remove(&client) {
            unmap_copies(core, &copies);
        }
        if core.shared_buffer(client).is_some() {
            let _ = core.release_shared_buffer(client);
        }
    }

    /// Take the descriptor of a bulk-data request of `badge` naming `b` (see the module
    /// docs): drain the to-server ring, hand stale descriptors back, check the last one.
    pub fn take(&mut self, badge: u32, b: BufRef) -> Result<Descriptor, Errno> {
        let base = self.base(badge).ok_or(Errno::Fault)?;
        // SAFETY: `base` is a mapped buffer view (checked just above); the two rings are at
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
    pub fn give_back(&mut self, badge: u32, d: Descriptor) {
        if let Some(base) = self.base(badge) {
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
    pub fn bytes(&mut self, badge: u32) -> Option<&mut [u8]> {
        let base = self.base(badge)?;
        // SAFETY: the view of BUFFER_BYTES bytes at `base` is mapped read-write for as long
        // as it is in `self` (removed only through `&mut self`), and the returned borrow of
        // `self` keeps it so; no ring view exists while this slice is alive (those live
        // only inside `take` / `give_back`). The client sharing the frames can only change
        // byte values, which are valid for `u8` whatever they are.
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

/// Copy `frame`'s cap into a fresh slot and map the copy at `vaddr` of the server.
fn map_copy(core: &mut MemCore<Sel4Kernel>, frame: Slot, vaddr: u64) -> Result<Slot, Errno> {
    let s = core.alloc_slot()?;
    if core.kernel_mut().cap_copy(frame, s).is_err() {
        core.free_slot(s);
        return Err(Errno::NoMem);
    }
    if core.kernel_mut().map_in_server(s, vaddr).is_err() {
        if core.kernel_mut().cap_delete(s).is_ok() {
            core.free_slot(s);
        }
        return Err(Errno::NoMem);
    }
    Ok(s)
}

/// Delete mapped cap copies (which unmaps them) and give their slots back.
fn unmap_copies(core: &mut MemCore<Sel4Kernel>, copies: &[Slot]) {
    for &s in copies {
        // A slot whose cap seL4 refused to delete stays allocated (never reused).
        if core.kernel_mut().cap_delete(s).is_ok() {
            core.free_slot(s);
        }
    }
}
