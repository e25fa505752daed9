//! Budgets: everything the server spends on behalf of one client is charged to it and
//! bounded, and checked *before* the work is done (over budget is ENOMEM to that request).
//!
//! Three currencies, all derived from the page quota `Q` the administrator gives a client
//! (`CreateSpace` / `Clone`):
//!
//! - **pages** (`Q`): the client's private frames, the seL4 page tables of its VSpace, the
//!   frames of the shared objects it owns (shm segments in full at `shmget`; shared
//!   anonymous and backend objects as their pages appear) and pinned frames.
//! - **server metadata** (heap bytes, `meta_limit(Q) = meta_base + Q * meta_per_page`):
//!   the space record and its root shadow table, one [`cost::AREA`] per area, one
//!   [`cost::TABLE`] per shadow page table, one [`cost::OBJECT`] plus [`cost::OBJ_PAGE`] per
//!   present page for each object it owns, [`cost::SEGMENT`] / [`cost::BACKEND`] per shm
//!   segment / backend it created. The costs are upper bounds of what the heap holds for
//!   each item, allocator overhead and retained capacity included (a host test measures
//!   real allocations against them). The whole `meta_limit` is *reserved* in the server's
//!   heap when the space is created (`Limits::meta_capacity` is the heap the server can
//!   promise), so one client's metadata can never exhaust the heap another one needs.
//! - **cap slots** (`slot_limit(Q) = slot_base + Q * slots_per_page`): cap copies the server
//!   makes for this client's mappings (each mapping of a shared, device or copy-on-write
//!   page, and the server's view of its shared buffer). A frame's own cap is part of the
//!   page charge.
//!
//! Plus counts: areas (`max_map_count`, like Linux `vm.max_map_count`), shm segments and
//! backends a client may create. Neighbours: `space.rs` (the charged numbers), every
//! operation that creates state.

use mem_protocol::Errno;

/// Upper bounds of server heap bytes per item (see the module docs).
pub mod cost {
    /// One area: its `BTreeMap` entry (nodes are at least half full, so at most about two
    /// entries' worth of node each, plus the internal levels) and its gap node in the
    /// free-range index (an arena grown by doubling).
    pub const AREA: u64 = 448;
    /// One shadow page table: 512 entries of 8 bytes, its slab slot and allocator overhead.
    pub const TABLE: u64 = 4096 + 128;
    /// One memory object (shm segment, shared anonymous mapping, backend store or cache):
    /// its record and slab slot.
    pub const OBJECT: u64 = 384;
    /// One present page of an object (an entry in its sparse page map).
    pub const OBJ_PAGE: u64 = 64;
    /// One shm segment record (registry entries, key index, attach bookkeeping).
    pub const SEGMENT: u64 = 384;
    /// One backend record.
    pub const BACKEND: u64 = 256;
    /// The space record itself, its entries in the server's maps and its shared-buffer
    /// bookkeeping, not counting the root shadow table.
    pub const SPACE: u64 = 4096;
    /// A pager record (`pager.rs`), with room for its queue of pending faults.
    pub const PAGER: u64 = 256;
    /// A pending pager fault, charged to the faulting client.
    pub const PENDING: u64 = 192;
}

/// Per-client limits, as formulas of the page quota (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Metadata every space may use regardless of its quota (bytes).
    pub meta_base: u64,
    /// Metadata per page of quota (bytes).
    pub meta_per_page: u64,
    /// Cap copies every space may cause regardless of its quota.
    pub slot_base: u64,
    /// Cap copies per page of quota.
    pub slots_per_page: u64,
    /// Most areas in one space (Linux `vm.max_map_count`).
    pub max_map_count: u32,
    /// Most shm segments one client may have created and not yet seen destroyed.
    pub max_segments: u32,
    /// Most backends one client may own.
    pub max_backends: u32,
    /// Server heap bytes that may be promised to clients in total (the sum of the
    /// `meta_limit`s of all spaces); `CreateSpace`/`Clone` beyond it fail with ENOMEM.
    pub meta_capacity: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            meta_base: 64 * 1024,
            meta_per_page: 256,
            slot_base: 256,
            slots_per_page: 1,
            max_map_count: 65530,
            max_segments: 128,
            max_backends: 64,
            meta_capacity: u64::MAX,
        }
    }
}

impl Limits {
    /// `meta_limit(Q)`: the most server heap a client with quota `quota` can make the server
    /// hold for it, and what is reserved for it.
    pub fn meta_limit(&self, quota: u64) -> u64 {
        // Clamped so that the sum over all spaces cannot overflow ("unlimited" quotas).
        self.meta_base.saturating_add(quota.saturating_mul(self.meta_per_page)).min(u64::MAX >> 16)
    }

    /// `slot_limit(Q)`: the most cap copies a client with quota `quota` can cause.
    pub fn slot_limit(&self, quota: u64) -> u64 {
        self.slot_base.saturating_add(quota.saturating_mul(self.slots_per_page))
    }
}

/// What one space has been given and what it holds, besides its areas and tables (which
/// are counted from the structures themselves).
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget {
    /// Page quota.
    pub quota: u64,
    pub meta_limit: u64,
    pub slot_limit: u64,
    /// Metadata bytes of objects, segments and backends charged to this space.
    pub obj_meta: u64,
    /// Cap copies charged.
    pub slots: u64,
    /// Segments and backends created (counted against the per-client limits).
    pub segments: u32,
    pub backends: u32,
    /// Pagers created (`pager.rs`, at most `pager::MAX_PAGERS`).
    pub pagers: u32,
}

impl Budget {
    pub fn new(limits: &Limits, quota: u64) -> Budget {
        Budget { quota, meta_limit: limits.meta_limit(quota), slot_limit: limits.slot_limit(quota), ..Budget::default() }
    }

    /// Charge `n` cap copies, or ENOMEM if that exceeds the slot limit.
    pub fn take_slots(&mut self, n: u64) -> Result<(), Errno> {
        if self.slots.saturating_add(n) > self.slot_limit {
            return Err(Errno::NoMem);
        }
        self.slots += n;
        Ok(())
    }

    pub fn put_slots(&mut self, n: u64) {
        debug_assert!(self.slots >= n, "slot charge underflow");
        self.slots = self.slots.saturating_sub(n);
    }

    pub fn put_meta(&mut self, bytes: u64) {
        debug_assert!(self.obj_meta >= bytes, "metadata charge underflow");
        self.obj_meta = self.obj_meta.saturating_sub(bytes);
    }
}
