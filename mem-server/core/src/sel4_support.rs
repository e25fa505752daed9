//! Services the seL4 component needs beyond the protocol operations.
//!
//! - [`MemCore::frame_of`]: the frame behind a mapped page (ExportFrame: the root task gets
//!   a copy of a client's IPC-buffer frame cap to configure its TCB).
//! - Shared buffers: the pages a client shares with the server for bulk data. They are a
//!   shared object mapped in the client; the server maps the same frames in its own VSpace
//!   through cap copies, and holds one frame reference per page for that mapping, so a
//!   client that unmaps its buffer can never make the server write into a reused frame.
//! - Cap slots for the component's own cap copies, from the core's allocator.
//! Neighbours: `mmap.rs`, `populate.rs`, `objects.rs`, `res.rs`, `dispatch.rs`.

use alloc::vec::Vec;
use mem_protocol::{Backing, Errno, PageSize, Placement, Prot, PAGE_SIZE};

use crate::area::AreaKind;
use crate::kernel::{Kernel, Slot};
use crate::mmap::MmapArgs;
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// The frame (slot of its original cap) mapped at `vaddr` in `client`'s space.
    pub fn frame_of(&self, client: u32, vaddr: u64) -> Result<Slot, Errno> {
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        sp.areas.find(vaddr).ok_or(Errno::Fault)?;
        let (pte, _, _) = sp.pt.lookup(vaddr).ok_or(Errno::NoEnt)?;
        Ok(pte.frame())
    }

    /// Create `client`'s shared buffer: `pages` pages of shared memory at `vaddr`, present
    /// at once. Returns its frames in order; the server holds a reference on each until
    /// [`MemCore::release_shared_buffer`].
    pub fn create_shared_buffer(&mut self, client: u32, vaddr: u64, pages: u64) -> Result<Vec<Slot>, Errno> {
        if self.spaces.get(&client).ok_or(Errno::Srch)?.server_buffer.is_some() {
            return Err(Errno::Exist);
        }
        let len = pages.checked_mul(PAGE_SIZE).ok_or(Errno::Inval)?;
        let a = MmapArgs {
            addr: vaddr,
            len,
            prot: Prot::RW,
            max_prot: Prot::RW,
            placement: Placement::FixedNoReplace,
            shared: true,
            backing: Backing::Anonymous,
            populate: false,
        };
        let start = self.mmap(client, &a)?;
        if let Err(e) = self.populate_range(client, start, start + len) {
            let _ = self.remove_range(client, start, start + len);
            return Err(e);
        }
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        let Some((_, area)) = sp.areas.find(start) else { return Err(Errno::Fault) };
        let AreaKind::Shared { obj, .. } = area.kind else { return Err(Errno::Fault) };
        let o = self.objs.get(obj).ok_or(Errno::Fault)?;
        let frames: Vec<Slot> = (0..pages).map(|i| o.page(i).unwrap_or(0)).collect();
        if frames.contains(&0) {
            let _ = self.remove_range(client, start, start + len);
            return Err(Errno::NoMem);
        }
        for &f in &frames {
            self.res.frame_ref(f);
        }
        self.space_mut(client)?.server_buffer = Some(frames.clone());
        Ok(frames)
    }

    /// The frames of `client`'s shared buffer, if it has one (the server's mapping).
    pub fn shared_buffer(&self, client: u32) -> Option<&[Slot]> {
        self.spaces.get(&client)?.server_buffer.as_deref()
    }

    /// Drop the server's references on `client`'s shared-buffer frames. Call after the
    /// server removed its own mappings of them (and before or after `destroy_space`).
    pub fn release_shared_buffer(&mut self, client: u32) -> Result<(), Errno> {
        let frames = self.space_mut(client)?.server_buffer.take().ok_or(Errno::NoEnt)?;
        for f in frames {
            self.res.frame_unref(f, PageSize::Small);
        }
        Ok(())
    }

    /// A free slot of the server's CNode for the component's own use.
    pub fn alloc_slot(&mut self) -> Result<Slot, Errno> {
        self.res.slots.alloc()
    }

    /// Give back a slot from [`MemCore::alloc_slot`] (it must be empty again).
    pub fn free_slot(&mut self, s: Slot) {
        self.res.slots.free(s);
    }
}
