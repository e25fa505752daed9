//! `mem-core`: all policy of the seL4 memory server, portable and host-tested.
//!
//! [`MemCore`] owns the server's kernel resources (untyped memory, cap slots, object pools)
//! and one address space per client, and implements every operation of the protocol:
//! mmap/munmap/mprotect/msync, faults (lazy, copy-on-write, fault-around, large pages),
//! query, physical mappings, populate, reset, clone, SysV shared memory, backend objects,
//! quotas and full reclaim. It reaches seL4 only through the [`Kernel`] trait, implemented
//! by the seL4 component and by the host model (`mem-model`).
//!
//! Layout (one file per operation where that keeps files small):
//! - resources: `slots.rs`, `res.rs` (untyped, pools, frame refcounts), `objects.rs`
//! - structure: `gaps.rs` + `area.rs` (areas, O(log n) first-fit), `pagetable.rs` (shadow
//!   page tables), `space.rs` (per-client state, map/release primitives)
//! - operations: `mmap.rs`, `munmap.rs`, `mprotect.rs`, `fault.rs`, `query.rs`, `phys.rs`,
//!   `populate.rs`, `region.rs`, `clone.rs`, `reset.rs`, `shm.rs`, `backend.rs`, `msync.rs`
//! - boundary: `check.rs` (validating client values), `dispatch.rs` (protocol requests)
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod area;
pub mod backend;
pub mod check;
pub mod clone;
pub mod dispatch;
pub mod fault;
pub mod gaps;
pub mod invariants;
pub mod kernel;
pub mod mmap;
pub mod mprotect;
pub mod msync;
pub mod munmap;
pub mod objects;
pub mod pagetable;
pub mod phys;
pub mod populate;
pub mod query;
pub mod region;
pub mod res;
pub mod sel4_support;
pub mod reset;
pub mod shm;
pub mod slots;
pub mod space;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

pub use kernel::{Geometry, KResult, Kernel, KernelError, ObjectType, Slot};
pub use mem_protocol::{Access, Errno, PageSize, Prot};
pub use res::UntypedDesc;
pub use space::Cred;

use objects::Objects;
use res::Res;
use space::{Deferred, Space};

/// System-wide shm limits (Linux `SHMMNI`, `SHMMAX`, `SHMMIN`, `SHMALL`).
#[derive(Clone, Copy, Debug)]
pub struct ShmLimits {
    pub max_segments: u32,
    pub max_bytes: u64,
    pub min_bytes: u64,
    pub total_pages: u64,
}

/// Server configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub geometry: Geometry,
    /// Lowest user address a mapping may use (like Linux `mmap_min_addr`).
    pub user_lo: u64,
    /// One past the highest user address (seL4_UserTop).
    pub user_hi: u64,
    /// Extra lazy anonymous pages mapped after the faulting one (0 = off).
    pub fault_around: u32,
    /// Back aligned 2 MiB chunks of anonymous areas with large pages.
    pub large_pages: bool,
    /// Frames retyped per `Untyped_Retype` when the pool is empty (max 256).
    pub retype_batch: u32,
    pub max_spaces: u32,
    pub max_backends: u32,
    pub shm: ShmLimits,
    /// Clients allowed to act on other clients' spaces and to create/destroy them.
    pub admins: Vec<u32>,
    /// `(client, paddr, len)`: device memory a non-admin client may map.
    pub device_grants: Vec<(u32, u64, u64)>,
}

impl Config {
    /// Defaults for a geometry: user range from 64 KiB to the top of the lower half.
    pub fn new(geometry: Geometry) -> Self {
        Config {
            geometry,
            user_lo: 0x1_0000,
            user_hi: 1u64 << (geometry.va_bits() - 1),
            fault_around: 0,
            large_pages: true,
            retype_batch: 64,
            max_spaces: 512,
            max_backends: 256,
            shm: ShmLimits { max_segments: 4096, max_bytes: 1 << 32, min_bytes: 1, total_pages: 1 << 22 },
            admins: Vec::new(),
            device_grants: Vec::new(),
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
}

/// The memory server's state.
pub struct MemCore<K: Kernel> {
    pub(crate) k: K,
    pub(crate) res: Res,
    pub(crate) objs: Objects,
    pub(crate) spaces: BTreeMap<u32, Space>,
    pub(crate) shm: shm::Registry,
    pub(crate) backends: backend::Backends,
    pub(crate) deferred: Deferred,
    pub(crate) cfg: Config,
    pub(crate) faults: u64,
    pub(crate) unresolved: u64,
}

impl<K: Kernel> MemCore<K> {
    /// A server owning `untypeds` and the CNode slots `[slot_lo, slot_hi)`.
    pub fn new(k: K, cfg: Config, untypeds: &[UntypedDesc], slot_lo: Slot, slot_hi: Slot) -> Self {
        let hi = slot_hi.min(pagetable::MAX_SLOT + 1);
        MemCore {
            k,
            res: Res::new(untypeds, slot_lo, hi, cfg.retype_batch),
            objs: Objects::default(),
            spaces: BTreeMap::new(),
            shm: shm::Registry::default(),
            backends: backend::Backends::default(),
            deferred: Deferred::default(),
            cfg,
            faults: 0,
            unresolved: 0,
        }
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

    /// Releases the kernel refused that wait for a retry (0 in a healthy system).
    pub fn deferred_count(&self) -> usize {
        self.deferred.0.len()
    }

    /// Retry releases the kernel refused earlier; returns how many still wait.
    pub fn settle(&mut self) -> usize {
        self.deferred.flush(&mut self.k, &mut self.res)
    }

    /// Idle work: retry deferred releases and zero up to `budget` freed frames.
    pub fn maintain(&mut self, budget: usize) -> usize {
        self.settle();
        self.res.maintain(&mut self.k, budget)
    }

    /// Give pooled objects back to their untypeds where possible (see `res::Res::trim`).
    pub fn trim(&mut self) -> usize {
        self.settle();
        self.res.trim(&mut self.k)
    }

    /// Create the address space of `client` with a frame budget of `quota` pages.
    pub fn create_space(&mut self, client: u32, cred: Cred, quota: u64) -> Result<Slot, Errno> {
        self.settle();
        if self.spaces.contains_key(&client) {
            return Err(Errno::Exist);
        }
        if self.spaces.len() as u32 >= self.cfg.max_spaces {
            return Err(Errno::NFile);
        }
        let vspace = self.res.alloc_vspace(&mut self.k)?;
        let sp = Space {
            id: client,
            cred,
            areas: area::AreaMap::new(self.cfg.user_lo, self.cfg.user_hi),
            pt: pagetable::PageTree::new(self.cfg.geometry, vspace),
            quota,
            charged: 0,
            faults: 0,
            unresolved: 0,
            server_buffer: None,
        };
        self.spaces.insert(client, sp);
        Ok(vspace)
    }

    /// Destroy `client`'s address space, releasing every page, table and attachment.
    pub fn destroy_space(&mut self, client: u32) -> Result<(), Errno> {
        self.settle();
        if self.spaces.get(&client).is_some_and(|s| s.server_buffer.is_some()) {
            self.release_shared_buffer(client)?;
        }
        reset::clear_space(self, client)?;
        let mut sp = self.spaces.remove(&client).ok_or(Errno::Srch)?;
        // Tables, then the VSpace; any the kernel refuses wait in `deferred` (the VSpace
        // after its tables, so it is never reused with a stale table in it).
        for t in sp.pt.take_tables() {
            space::finish_release(&mut self.k, &mut self.res, &mut self.deferred, space::PendingRelease::Table(t));
        }
        space::finish_release(&mut self.k, &mut self.res, &mut self.deferred, space::PendingRelease::VSpace(sp.pt.vspace()));
        self.objs.disown(client);
        shm::forget_client(self, client);
        Ok(())
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

    /// Global counters, or one client's (areas, charge, quota, faults) with `Some(client)`.
    pub fn stats(&self, client: Option<u32>) -> Result<Stats, Errno> {
        let mut s = Stats {
            frames_in_use: self.res.frames_in_use,
            frames_free: self.res.frames_free(),
            slots_in_use: u64::from(self.res.slots.in_use() - self.res.slots_pooled()),
            slots_free: u64::from(self.res.slots.free_count() + self.res.slots_pooled()),
            faults_served: self.faults,
            faults_unresolved: self.unresolved,
            spaces: self.spaces.len() as u64,
            shm_segments: self.shm.len() as u64,
            areas: 0,
            charged_pages: 0,
            quota_pages: 0,
        };
        match client {
            None => {
                s.areas = self.spaces.values().map(|sp| sp.areas.len() as u64).sum();
                s.charged_pages = self.spaces.values().map(|sp| sp.charged).sum();
                s.quota_pages = self.spaces.values().map(|sp| sp.quota).sum();
            }
            Some(c) => {
                let sp = self.spaces.get(&c).ok_or(Errno::Srch)?;
                s.areas = sp.areas.len() as u64;
                s.charged_pages = sp.charged;
                s.quota_pages = sp.quota;
                s.faults_served = sp.faults;
                s.faults_unresolved = sp.unresolved;
            }
        }
        Ok(s)
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

    /// Pages mapped in `client`'s space (4 KiB units).
    pub fn mapped_pages(&self, client: u32) -> u64 {
        self.spaces.get(&client).map_or(0, |s| s.pt.pages)
    }

    pub(crate) fn space_mut(&mut self, client: u32) -> Result<&mut Space, Errno> {
        self.spaces.get_mut(&client).ok_or(Errno::Srch)
    }
}
