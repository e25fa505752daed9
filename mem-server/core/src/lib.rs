//! `mem-core`: all policy of the seL4 memory server, portable and host-tested.
//!
//! [`MemCore`] owns the server's kernel resources (untyped memory, cap slots, object pools)
//! and one address space per client, and implements every operation of the protocol:
//! mmap/munmap/mprotect/msync, faults (lazy, copy-on-write, fault-around, large pages),
//! query, physical mappings, populate, reset, clone, SysV shared memory, backend objects,
//! budgets and full reclaim, and the administrator's requests (creating, cloning and
//! destroying spaces with their shared buffers, exporting pinned frames, fault notes). It
//! reaches seL4 only through the [`Kernel`] trait, implemented by the seL4 component and by
//! the host model (`mem-model`). [`MemCore::dispatch`] is the one place that matches on
//! `Request`.
//!
//! Isolation rules (each has host tests): everything the server spends for a client is
//! charged to it and bounded before the work (`ledger.rs`); frames the kernel uses outside
//! a mapping are pinned (`pin.rs`); objects have owners and permissions (`shm.rs`,
//! `backend.rs`); a failed request changes nothing.
//!
//! Layout (one file per operation where that keeps files small):
//! - resources: `slots.rs`, `res.rs` (untyped, pools, frame refcounts), `objects.rs`,
//!   `ledger.rs` (budgets)
//! - structure: `gaps.rs` + `area.rs` (areas, O(log n) first-fit), `pagetable.rs` (shadow
//!   page tables), `space.rs` (per-client state, map/release primitives)
//! - operations: `mmap.rs`, `munmap.rs`, `mprotect.rs`, `fault.rs`, `query.rs`, `phys.rs`,
//!   `populate.rs`, `region.rs`, `clone.rs`, `reset.rs`, `shm.rs`, `backend.rs`, `msync.rs`
//! - administration: `lifecycle.rs` (create/destroy), `admin.rs` (the administrator's
//!   requests, shared buffers), `pin.rs`, `notes.rs`
//! - boundary: `check.rs` (validating client values), `dispatch.rs` (protocol requests)
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod admin;
pub mod area;
pub mod backend;
pub mod buffer;
pub mod check;
pub mod clone;
pub mod dispatch;
pub mod dying;
pub mod fault;
pub mod freeze;
pub mod gaps;
pub mod invariants;
pub mod kernel;
pub mod layout;
pub mod ledger;
pub mod lifecycle;
pub mod mmap;
pub mod mprotect;
pub mod msync;
pub mod munmap;
pub mod notes;
pub mod objects;
pub mod pager;
pub mod pagetable;
pub mod phys;
pub mod pin;
pub mod populate;
pub mod query;
pub mod region;
pub mod res;
pub mod reset;
pub mod shm;
pub mod slots;
pub mod space;
pub mod spacemap;
pub mod step;

use alloc::vec::Vec;

pub use admin::{Answer, BufferConfig};
pub use dispatch::Sender;
pub use kernel::{Caching, Geometry, KResult, Kernel, KernelError, ObjectType, Slot};
pub use ledger::Limits;
pub use mem_protocol::{Access, Errno, PageSize, Prot};
pub use res::UntypedDesc;
pub use space::Cred;

use objects::Objects;
use res::Res;
use space::{Deferred, Space};

/// System-wide shm limits (Linux `SHMMNI`, `SHMMAX`, `SHMMIN`, `SHMALL`) and per-user
/// ones: a segment outlives its creator, so what a user's segments hold after its clients
/// are gone is bounded per uid (`per_uid_pages`, `per_uid_segments`). `total_pages` is
/// clamped to the RAM the server owns at start, and the per-uid limits to
/// `1 / uid_share` of the system-wide ones, so that no user can take the whole system
/// limit and deny shm to every other user (with the default 4, at least four users each
/// get their share).
#[derive(Clone, Copy, Debug)]
pub struct ShmLimits {
    pub max_segments: u32,
    pub max_bytes: u64,
    pub min_bytes: u64,
    pub total_pages: u64,
    pub per_uid_pages: u64,
    pub per_uid_segments: u32,
    /// The per-uid limits are at most the system-wide ones divided by this (at least 1).
    pub uid_share: u32,
}

/// Server configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub geometry: Geometry,
    /// Lowest user address a mapping may use (like Linux `mmap_min_addr`).
    pub user_lo: u64,
    /// One past the highest user address (seL4_UserTop).
    pub user_hi: u64,
    /// Fault-around for anonymous memory: up to this many lazy pages after the faulting
    /// one are mapped with it (stopping at the area end, a present page or the quota).
    /// 0 = off.
    pub fault_around: u32,
    /// Fault-around only where it pays: when the access looks sequential (the page before
    /// the faulting one is mapped, same area; not the first page of the latest mapping)
    /// and the client keeps at least twice
    /// `fault_around` pages of quota free (so near its quota every page is allocated on
    /// its own touch, as without fault-around).
    pub fault_around_sequential: bool,
    /// Back aligned 2 MiB chunks of anonymous areas with large pages.
    pub large_pages: bool,
    /// Frames retyped per `Untyped_Retype` when the pool is empty (max 256).
    pub retype_batch: u32,
    /// Most frame references one step drops when objects die (`dying.rs`); an object
    /// with more is released a slice at a time later. Unbounded: at once.
    pub release_slice: u64,
    pub max_spaces: u32,
    pub shm: ShmLimits,
    /// Per-client budgets (`ledger.rs`).
    pub limits: Limits,
    /// Clients allowed to act on other clients' spaces and to create/destroy them.
    pub admins: Vec<u32>,
    /// Client ids `CreateSpace`/`Clone` may create: `[lo, hi)` (EINVAL otherwise).
    pub client_ids: (u32, u32),
    /// `(client, paddr, len)`: device memory a non-admin client may map.
    pub device_grants: Vec<(u32, u64, u64)>,
    /// The shared buffer every new space gets (`admin.rs`), if any.
    pub buffer: Option<BufferConfig>,
    /// Secret seed for randomised structures (the gap index); set it from the boot record.
    pub seed: u64,
    /// Unresolved faults per client that the seL4 side prints (later ones are only
    /// counted and noted).
    pub log_unresolved: u32,
    /// The direct map: every small frame the server retypes is mapped in the server's own
    /// VSpace for good, frame slot `s` at `base + s * 4 KiB` (`Kernel::direct_map`), so
    /// zeroing and copying frames need no mapping each time. `None`: off.
    pub direct_map: Option<u64>,
}

impl Config {
    /// Defaults for a geometry: user range from 64 KiB to the top of the lower half.
    pub fn new(geometry: Geometry) -> Self {
        Config {
            geometry,
            user_lo: 0x1_0000,
            user_hi: 1u64 << (geometry.va_bits() - 1),
            fault_around: 0,
            fault_around_sequential: false,
            large_pages: true,
            retype_batch: 64,
            release_slice: u64::MAX,
            max_spaces: 512,
            shm: ShmLimits {
                max_segments: 4096,
                max_bytes: 1 << 32,
                min_bytes: 1,
                total_pages: 1 << 22,
                per_uid_pages: 1 << 20,
                per_uid_segments: 512,
                uid_share: 4,
            },
            limits: Limits::default(),
            admins: Vec::new(),
            client_ids: (1, u32::MAX),
            device_grants: Vec::new(),
            buffer: None,
            seed: 0x5eed,
            log_unresolved: 4,
            direct_map: None,
        }
    }
}

pub use mem_protocol::Stats;

/// Why a fault could not be resolved (the seL4 side stops or forwards the client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// No address space for this client.
    NoSpace,
    /// The address is in no area.
    NoArea,
    /// The area's rights do not allow the access.
    Denied,
    /// Out of memory or quota.
    NoMemory,
    /// The page's pager is gone (`pager.rs`).
    Pager,
    /// Not resolved yet: the fault went to the area's pager and the faulting thread's reply
    /// cap was saved; it is answered when the pager answers (no reply now, nothing to
    /// report).
    Deferred,
}

/// The memory server's state.
pub struct MemCore<K: Kernel> {
    pub(crate) k: K,
    pub(crate) res: Res,
    pub(crate) objs: Objects,
    pub(crate) spaces: spacemap::SpaceMap,
    pub(crate) shm: shm::Registry,
    pub(crate) backends: backend::Backends,
    pub(crate) pagers: pager::Pagers,
    /// A note was queued outside the fault path (`MemCore::take_notes_raised`).
    pub(crate) notes_raised: bool,
    /// The request being dispatched saved its caller's reply cap: no reply now.
    pub(crate) held: bool,
    pub(crate) deferred: Deferred,
    pub(crate) cfg: Config,
    pub(crate) faults: u64,
    pub(crate) unresolved: u64,
    /// Sum of the `meta_limit`s of all spaces (reserved heap, `ledger.rs`).
    pub(crate) reserved_meta: u64,
    /// Spaces created so far (mixed into each space's seed).
    pub(crate) created: u64,
    pub(crate) notes: notes::Notes,
    /// Frames (4 KiB units) the server took for itself (its heap, the direct map's
    /// tables), never given back, and the cap slots they hold.
    pub(crate) server_pages: u64,
    pub(crate) server_slots: u32,
    /// Clones in progress (`clone.rs`): while 0, no request needs the freeze check.
    pub(crate) cloning_now: u32,
    /// Frames of dead objects still to be released (`dying.rs`).
    pub(crate) dying: dying::Dying,
}

impl<K: Kernel> MemCore<K> {
    /// A server owning `untypeds` and the CNode slots `[slot_lo, slot_hi)`.
    pub fn new(k: K, mut cfg: Config, untypeds: &[UntypedDesc], slot_lo: Slot, slot_hi: Slot) -> Self {
        let hi = slot_hi.min(pagetable::MAX_SLOT + 1);
        let ram_pages: u64 = untypeds.iter().filter(|u| !u.device).map(|u| (1u64 << u.size_bits.min(63)) >> 12).sum();
        cfg.shm.total_pages = cfg.shm.total_pages.min(ram_pages);
        let share = cfg.shm.uid_share.max(1);
        cfg.shm.per_uid_pages = cfg.shm.per_uid_pages.min(cfg.shm.total_pages / u64::from(share));
        cfg.shm.per_uid_segments = cfg.shm.per_uid_segments.min(cfg.shm.max_segments / share);
        MemCore {
            k,
            res: Res::new(untypeds, slot_lo, hi, cfg.retype_batch, cfg.direct_map),
            objs: Objects::default(),
            spaces: spacemap::SpaceMap::default(),
            shm: shm::Registry::default(),
            backends: backend::Backends::default(),
            pagers: pager::Pagers::default(),
            notes_raised: false,
            held: false,
            deferred: Deferred::default(),
            cfg,
            faults: 0,
            unresolved: 0,
            reserved_meta: 0,
            created: 0,
            notes: notes::Notes::default(),
            server_pages: 0,
            server_slots: 0,
            cloning_now: 0,
            dying: dying::Dying::default(),
        }
    }

    /// A frame for the server's own use (its heap): taken from the pools for good and
    /// counted in `frames_in_use`. Call before any client exists.
    pub fn take_server_frame(&mut self, size: PageSize) -> Result<Slot, Errno> {
        let f = self.res.alloc_frame(&mut self.k, size)?;
        self.server_pages += res::pages_of(size);
        self.server_slots += 1;
        Ok(f)
    }

    /// Create the leaf page tables of the direct map (`Config::direct_map`) in the server's
    /// own VSpace, for the whole slot range (the root task made the levels above): once, at
    /// start, before any client exists. They are the server's: counted in `frames_in_use`,
    /// never given back. Returns how many.
    pub fn prepare_direct_map(&mut self) -> Result<u64, Errno> {
        let Some(base) = self.cfg.direct_map else { return Ok(0) };
        let end = base + u64::from(self.res.slots.top()) * 4096;
        let step = 1u64 << self.cfg.geometry.shift(self.cfg.geometry.leaf_level(PageSize::Small) - 1);
        let mut made = 0;
        let mut at = base;
        while at < end {
            let t = self.res.alloc_table(&mut self.k)?;
            match self.k.server_table_map(t, at) {
                Ok(()) => made += 1,
                Err(KernelError::DeleteFirst) => self.res.free_table(t),
                Err(_) => {
                    self.res.free_table(t);
                    // Frames are reached the slow way; the tables made so far stay unused.
                    self.res.disable_direct_map();
                    self.server_pages += made;
                    self.server_slots += made as u32;
                    return Err(Errno::NoMem);
                }
            }
            at += step;
        }
        self.server_pages += made;
        self.server_slots += made as u32;
        Ok(made)
    }

    /// Set the server heap that may be promised to clients (`Limits::meta_capacity`).
    pub fn set_meta_capacity(&mut self, bytes: u64) {
        self.cfg.limits.meta_capacity = bytes;
    }

    /// The kernel (tests read client memory through the host model).
    pub fn kernel(&self) -> &K {
        &self.k
    }

    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.k
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Have seL4 clear the untyped memory now rather than on first use (`res::Res::preclear`).
    pub fn preclear(&mut self) -> usize {
        self.res.preclear(&mut self.k)
    }

    /// Releases the kernel refused that wait for a retry (0 in a healthy system).
    pub fn deferred_count(&self) -> usize {
        self.deferred.0.len()
    }

    /// Retry releases the kernel refused earlier; returns how many still wait.
    pub fn settle(&mut self) -> usize {
        self.deferred.flush(&mut self.k, &mut self.res)
    }

    /// Frames to zero off the request path: up to `out.len()` dirty small frames lent to
    /// the caller (see `res::Res::lend_dirty`); give them back with [`MemCore::zeroed`].
    pub fn lend_dirty(&mut self, out: &mut [Slot]) -> usize {
        self.res.lend_dirty(out)
    }

    /// Lent frames come back, zeroed: later faults take them without zeroing.
    pub fn zeroed(&mut self, frames: &[Slot]) {
        self.res.zeroed(frames)
    }

    /// Lent frames come back not zeroed after all: dirty again.
    pub fn unlend(&mut self, frames: &[Slot]) {
        self.res.unlend(frames)
    }

    /// Is there idle work: dirty frames to zero?
    pub fn has_dirty_frames(&self) -> bool {
        self.res.dirty_frames() != 0
    }

    /// Idle work: retry deferred releases and zero up to `budget` freed frames.
    pub fn maintain(&mut self, budget: usize) -> usize {
        self.settle();
        self.res.maintain(&mut self.k, budget)
    }

    /// Give pooled objects back to their untypeds where possible (see `res::Res::trim`).
    pub fn trim(&mut self) -> usize {
        self.settle();
        self.res.trim(&mut self.k, &mut self.deferred)
    }

    /// The VSpace cap of `client` (the seL4 side binds it to the client's TCB).
    pub fn vspace_of(&self, client: u32) -> Option<Slot> {
        self.spaces.get(&client).map(|s| s.pt.vspace())
    }

    /// Does `client` have an address space?
    pub fn has_space(&self, client: u32) -> bool {
        self.spaces.contains_key(&client)
    }

    /// Is `client` an administrator (root task)?
    pub fn is_admin(&self, client: u32) -> bool {
        self.cfg.admins.contains(&client)
    }

    /// Global counters, or one client's (areas, charges, budget, faults) with
    /// `Some(client)`.
    pub fn stats(&self, client: Option<u32>) -> Result<Stats, Errno> {
        let mut s = Stats {
            frames_in_use: self.res.frames_in_use,
            frames_free: self.res.frames_free(),
            slots_in_use: u64::from(self.res.slots.in_use() - self.res.slots_pooled() - self.res.direct_copies - self.server_slots),
            slots_free: u64::from(self.res.slots.free_count() + self.res.slots_pooled() + self.res.direct_copies),
            faults_served: self.faults,
            faults_unresolved: self.unresolved,
            spaces: self.spaces.len() as u64,
            shm_segments: self.shm.len() as u64,
            ..Stats::default()
        };
        match client {
            None => {
                s.areas = self.spaces.values().map(|sp| sp.areas.len() as u64).sum();
                s.charged_pages = self.spaces.values().map(|sp| sp.charged).sum();
                s.quota_pages = self.spaces.values().map(|sp| sp.budget.quota).sum();
                s.meta_bytes = self.spaces.values().map(|sp| sp.meta()).sum();
                s.meta_limit = self.reserved_meta;
                s.slots_charged = self.spaces.values().map(|sp| sp.budget.slots).sum();
                s.slot_limit = self.spaces.values().map(|sp| sp.budget.slot_limit).sum();
                s.pinned = self.spaces.values().map(|sp| sp.pinned).sum();
                s.pager_pending = self.pagers.pending_count() as u64;
            }
            Some(c) => {
                let sp = self.spaces.get(&c).ok_or(Errno::Srch)?;
                s.areas = sp.areas.len() as u64;
                s.charged_pages = sp.charged;
                s.quota_pages = sp.budget.quota;
                s.faults_served = sp.faults;
                s.faults_unresolved = sp.unresolved;
                s.meta_bytes = sp.meta();
                s.meta_limit = sp.budget.meta_limit;
                s.slots_charged = sp.budget.slots;
                s.slot_limit = sp.budget.slot_limit;
                s.pinned = sp.pinned;
                s.pager_pending = self.pagers.pending_for_owner(c);
            }
        }
        Ok(s)
    }

    /// What `caller` may see of `stats(who)`: everything for an administrator; for anyone
    /// else its own counters only, the system-wide figures as 0.
    pub fn stats_for(&self, caller: u32, who: Option<u32>) -> Result<Stats, Errno> {
        let s = self.stats(who)?;
        if self.is_admin(caller) {
            return Ok(s);
        }
        let own = self.spaces.get(&caller).ok_or(Errno::Srch)?;
        Ok(Stats {
            areas: s.areas,
            charged_pages: s.charged_pages,
            quota_pages: s.quota_pages,
            faults_served: own.faults,
            faults_unresolved: own.unresolved,
            meta_bytes: s.meta_bytes,
            meta_limit: s.meta_limit,
            slots_charged: s.slots_charged,
            slot_limit: s.slot_limit,
            pinned: s.pinned,
            pager_pending: s.pager_pending,
            ..Stats::default()
        })
    }

    /// The areas of `client` as `(start, end, prot)` (tests and the differential test).
    pub fn layout(&self, client: u32) -> Result<Vec<(u64, u64, Prot)>, Errno> {
        let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
        Ok(sp.areas.iter().map(|(s, a)| (s, a.end, a.prot)).collect())
    }

    /// Server metadata bytes on the heap (benchmarks: bytes per mapped page).
    pub fn metadata_bytes(&self) -> usize {
        self.res.heap_bytes()
            + self.spaces.values().map(|sp| sp.pt.heap_bytes() + sp.areas.heap_bytes()).sum::<usize>()
    }

    /// Heap bytes reserved for the spaces' metadata (the sum of their `meta_limit`s).
    pub fn reserved_meta(&self) -> u64 {
        self.reserved_meta
    }

    /// Cap slots of the server that are free, and the longest run of them (what one
    /// `Untyped_Retype` batch can use).
    pub fn slot_capacity(&self) -> (u32, u32) {
        (self.res.slots.free_count(), self.res.slots.longest_free_run())
    }

    /// Height of `client`'s free-range index (tests: its shape stays logarithmic).
    pub fn gap_height(&self, client: u32) -> usize {
        self.spaces.get(&client).map_or(0, |sp| sp.areas.gap_height())
    }

    /// Dirty (not yet zeroed) and clean small frames in the pool.
    pub fn pool_frames(&self) -> (u64, u64) {
        (self.res.dirty_frames(), self.res.clean_frames())
    }

    /// Pages mapped in `client`'s space (4 KiB units).
    pub fn mapped_pages(&self, client: u32) -> u64 {
        self.spaces.get(&client).map_or(0, |s| s.pt.pages)
    }

    pub(crate) fn space_mut(&mut self, client: u32) -> Result<&mut Space, Errno> {
        self.spaces.get_mut(&client).ok_or(Errno::Srch)
    }
}
