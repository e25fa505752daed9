//! Bytes of memory: RAM frames (bytes owned by the frame object, lazily allocated, fresh
//! frames read as zero) and device memory (a physical page store that outlives frame
//! objects, never zeroed by the kernel, reads back what was written).
//!
//! Used by the frame data operations in `kernel_impl.rs` and by the CPU view in
//! `inspect.rs`; `phys_read` / `phys_write` look up live RAM frames through a sorted index
//! that is rebuilt lazily after frames were created or destroyed (never on the hot path).
//! Neighbours: `objects.rs` (frame bodies), `model.rs` (state).

use std::collections::HashMap;

use crate::model::ModelKernel;
use crate::objects::{for_each_piece, Chunk, ObjectId, PAGE};

/// Device memory by physical page number; absent pages read as zero.
#[derive(Debug, Default)]
pub(crate) struct DeviceMem {
    pages: HashMap<u64, Box<[u8]>>,
}

impl DeviceMem {
    pub(crate) fn read(&self, paddr: u64, buf: &mut [u8]) {
        for_each_piece(paddr, buf.len(), |page, at, r| {
            let n = r.len();
            match self.pages.get(&page) {
                Some(p) => buf[r].copy_from_slice(&p[at..at + n]),
                None => buf[r].fill(0),
            }
        });
    }

    pub(crate) fn write(&mut self, paddr: u64, data: &[u8]) {
        for_each_piece(paddr, data.len(), |page, at, r| {
            let n = r.len();
            let p = self.pages.entry(page).or_insert_with(|| vec![0u8; PAGE as usize].into_boxed_slice());
            p[at..at + n].copy_from_slice(&data[r]);
        });
    }

    pub(crate) fn zero(&mut self, paddr: u64, len: u64) {
        for page in paddr / PAGE..(paddr + len) / PAGE {
            self.pages.remove(&page);
        }
    }
}

impl ModelKernel {
    /// Read `buf.len()` bytes of the live frame `id` at `off` (bounds already checked).
    pub(crate) fn read_frame(&self, id: ObjectId, off: u64, buf: &mut [u8]) {
        let o = self.objs.live(id);
        let f = o.frame().expect("model invariant: not a frame");
        if f.device {
            self.device.read(o.paddr + off, buf);
        } else {
            f.read(off, buf);
        }
    }

    /// Write `data` into the live frame `id` at `off` (bounds already checked).
    pub(crate) fn write_frame(&mut self, id: ObjectId, off: u64, data: &[u8]) {
        let o = self.objs.live_mut(id);
        let (size, paddr) = (o.size(), o.paddr);
        let f = o.frame_mut().expect("model invariant: not a frame");
        if f.device {
            self.device.write(paddr + off, data);
        } else {
            f.write(size, off, data);
        }
    }

    /// Zero the whole live frame `id`.
    pub(crate) fn zero_frame(&mut self, id: ObjectId) {
        let o = self.objs.live_mut(id);
        let (size, paddr) = (o.size(), o.paddr);
        let f = o.frame_mut().expect("model invariant: not a frame");
        if f.device {
            self.device.zero(paddr, size);
        } else {
            f.chunks = Vec::new();
        }
    }

    /// Copy `len` bytes (4 KiB multiples at 4 KiB-aligned offsets, bounds checked) between
    /// live frames; overlapping ranges of one frame behave like `memmove`. RAM pages that
    /// were never written stay unallocated; written ones are shared until written again.
    pub(crate) fn copy_frame(&mut self, src: ObjectId, src_off: u64, dst: ObjectId, dst_off: u64, len: u64) {
        let pages = (len / PAGE) as usize;
        let ram = |k: &Self, id| !k.objs.live(id).frame().expect("frame").device;
        if ram(self, src) && ram(self, dst) {
            let s = self.objs.live(src).frame().expect("frame");
            let first = (src_off / PAGE) as usize;
            let taken: Vec<Option<Chunk>> =
                (first..first + pages).map(|i| s.chunks.get(i).cloned().flatten()).collect();
            let o = self.objs.live_mut(dst);
            let size = o.size();
            let d = o.frame_mut().expect("frame");
            if taken.iter().all(Option::is_none) && d.chunks.is_empty() {
                return;
            }
            if d.chunks.is_empty() {
                d.chunks.resize_with((size / PAGE) as usize, || None);
            }
            let first = (dst_off / PAGE) as usize;
            for (i, c) in taken.into_iter().enumerate() {
                d.chunks[first + i] = c;
            }
            return;
        }
        let mut buf = vec![0u8; len as usize];
        self.read_frame(src, src_off, &mut buf);
        self.write_frame(dst, dst_off, &buf);
    }

    /// The live RAM frame containing `paddr`, with its base address.
    fn ram_frame_at(&self, paddr: u64) -> Option<(u64, ObjectId)> {
        let mut idx = self.phys_index.borrow_mut();
        let index = idx.get_or_insert_with(|| {
            let mut v: Vec<(u64, ObjectId)> = self
                .objs
                .iter()
                .filter(|(_, o)| o.frame().is_some_and(|f| !f.device))
                .map(|(id, o)| (o.paddr, id))
                .collect();
            v.sort_unstable();
            v
        });
        let i = index.partition_point(|&(base, _)| base <= paddr).checked_sub(1)?;
        let (base, id) = index[i];
        (paddr < base + self.objs.live(id).size()).then_some((base, id))
    }

    /// Read physical memory: bytes of live RAM frames, device memory as last written, and
    /// zero anywhere else (free untyped memory, page tables — whose entries the model does
    /// not store as bytes — and holes).
    pub fn phys_read(&self, paddr: u64, buf: &mut [u8]) {
        for_each_piece(paddr, buf.len(), |page, at, r| {
            let pa = page * PAGE + at as u64;
            match self.ram_frame_at(pa) {
                Some((base, id)) => self.read_frame(id, pa - base, &mut buf[r]),
                None => self.device.read(pa, &mut buf[r]),
            }
        });
    }

    /// Write physical memory, as a DMA-capable device would: into live RAM frames and
    /// device untyped ranges. Returns `false` (writing nothing of that piece) where a 4 KiB
    /// piece falls elsewhere.
    pub fn phys_write(&mut self, paddr: u64, data: &[u8]) -> bool {
        let mut all = true;
        let mut pieces = Vec::new();
        for_each_piece(paddr, data.len(), |page, at, r| pieces.push((page * PAGE + at as u64, r)));
        for (pa, r) in pieces {
            if let Some((base, id)) = self.ram_frame_at(pa) {
                self.write_frame(id, pa - base, &data[r]);
            } else if self.cfg.device_untypeds().any(|u| u.paddr <= pa && pa < u.end()) {
                self.device.write(pa, &data[r]);
            } else {
                all = false;
            }
        }
        all
    }
}
