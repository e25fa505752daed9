//! [`ModelKernel`]: the state of the modelled kernel, its constructor, the cap lookups
//! shared by all operations, and the call counters / failure-injection knobs.
//!
//! The operations themselves live next door: `retype.rs` (Untyped_Retype), `vspace.rs`
//! (ASID pool, page tables, pages), `caps.rs` (CNode copy/delete), `memory.rs` (frame bytes),
//! `kernel_impl.rs` (the `Kernel` trait, counting and injection around each call) and
//! `inspect.rs` (the test-side view: translation, user accesses, counts).

use std::cell::RefCell;

use mem_core::{Geometry, KResult, KernelError, Slot};

use crate::config::ModelConfig;
use crate::cspace::{CSpace, Cap, UtNode};
use crate::memory::DeviceMem;
use crate::objects::{ObjectId, ObjectStore};
use crate::stats::{Injector, KernelStats, Op};

/// The ASID a frame cap records when it is mapped in the server's own VSpace
/// (`server_map`); no client VSpace ever has it.
pub const SERVER_ASID: u32 = u32::MAX;

/// ASID of the first entry of the server's pool. Pool 0 (ASIDs 0..512) belongs to the root
/// task in seL4, so the server's pool made by `ASIDControl_MakePool` starts higher.
pub const ASID_BASE: u32 = 512;

/// The host model of seL4 16 implementing [`mem_core::Kernel`].
///
/// Error codes and check order follow seL4 16's `decode*Invocation` functions (riscv64
/// order where aarch64 differs); see the crate documentation for the exact rules.
#[derive(Debug)]
pub struct ModelKernel {
    pub(crate) cfg: ModelConfig,
    pub(crate) geo: Geometry,
    pub(crate) cs: CSpace,
    pub(crate) objs: ObjectStore,
    /// `asids[i]` is the VSpace holding ASID `ASID_BASE + i`.
    pub(crate) asids: Vec<Option<ObjectId>>,
    pub(crate) device: DeviceMem,
    /// Live RAM frames sorted by physical address, rebuilt lazily for `phys_read`.
    pub(crate) phys_index: RefCell<Option<Vec<(u64, ObjectId)>>>,
    pub(crate) stats: KernelStats,
    pub(crate) inject: Injector,
    pub(crate) last_error: Option<(Op, KernelError)>,
    /// The server's own VSpace as far as `server_map` uses it: page address → frame.
    pub(crate) server_view: std::collections::BTreeMap<u64, ObjectId>,
    /// Tables in the server's own VSpace (`server_table_map`): (level, base address).
    pub(crate) server_tables: std::collections::BTreeSet<(u8, u64)>,
    /// The direct map as the seL4 server records it: frame slot → (copy slot, address).
    /// Kept exactly as `Sel4Kernel` keeps its record (set by `direct_map`, forgotten by
    /// `direct_unmap` and by deleting or revoking the frame's slot), and checked on every
    /// data operation: a record whose copy is gone is a server that would fault on seL4.
    pub(crate) direct: std::collections::BTreeMap<Slot, (Slot, u64)>,
    /// The thread whose message the server is handling now (`set_caller`), for
    /// `save_caller`; the reply caps saved (slot → thread) and the replies sent on them.
    pub(crate) caller: Option<u64>,
    pub(crate) saved: std::collections::BTreeMap<Slot, u64>,
    pub(crate) delivered: Vec<(u64, Option<mem_protocol::Reply>)>,
}

impl ModelKernel {
    /// A model with the untyped caps of `cfg` installed and nothing else.
    ///
    /// Panics if the configuration is inconsistent (overlapping or misaligned untypeds,
    /// slots out of range or repeated, slot 0 used, a geometry the model cannot walk).
    pub fn new(cfg: ModelConfig) -> Self {
        let geo = cfg.geometry;
        assert!(geo.levels >= 2 && geo.levels <= 6, "model: unsupported number of levels");
        assert!(geo.root_bits >= 1 && geo.root_bits <= 16, "model: unsupported root size");
        assert!(geo.va_bits() <= 63, "model: address space too large");
        assert!(cfg.user_top <= 1u64 << geo.va_bits(), "model: user_top beyond the translated range");
        assert!(cfg.cnode_slots >= 2, "model: CNode too small");
        assert!(cfg.asid_pool_size >= 1, "model: empty ASID pool");
        assert!(cfg.fan_out_limit >= 1, "model: fan-out limit 0");
        let mut cs = CSpace::new(cfg.cnode_slots);
        let mut sorted: Vec<_> = cfg.untypeds.clone();
        sorted.sort_by_key(|u| u.paddr);
        for w in sorted.windows(2) {
            assert!(w[0].end() <= w[1].paddr, "model: untypeds {:?} and {:?} overlap", w[0], w[1]);
        }
        for u in &cfg.untypeds {
            assert!(u.slot != 0 && u.slot < cfg.cnode_slots, "model: bad untyped slot {}", u.slot);
            assert!(cs.is_empty(u.slot), "model: untyped slot {} used twice", u.slot);
            assert!((4..=47).contains(&u.size_bits), "model: bad untyped size_bits {}", u.size_bits);
            assert!(u.paddr & (u.bytes() - 1) == 0, "model: untyped at {:#x} not aligned", u.paddr);
            let node = UtNode {
                paddr: u.paddr,
                size_bits: u.size_bits,
                device: u.device,
                watermark: 0,
                children: 0,
                parent: None,
            };
            let i = cs.new_ut(node);
            cs.set(u.slot, Cap::Untyped(i));
        }
        ModelKernel {
            asids: vec![None; cfg.asid_pool_size as usize],
            device: DeviceMem::default(),
            phys_index: RefCell::new(None),
            stats: KernelStats::default(),
            inject: Injector::default(),
            last_error: None,
            server_view: std::collections::BTreeMap::new(),
            server_tables: std::collections::BTreeSet::new(),
            direct: std::collections::BTreeMap::new(),
            caller: None,
            saved: std::collections::BTreeMap::new(),
            delivered: Vec::new(),
            objs: ObjectStore::default(),
            cs,
            geo,
            cfg,
        }
    }

    /// The configuration this model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    // ---- counters and failure injection ------------------------------------------------

    /// Call counters since creation (or the last [`ModelKernel::reset_stats`]).
    pub fn stats(&self) -> KernelStats {
        self.stats
    }

    /// Number of trait calls so far (`stats().total`): the index the next call will have.
    pub fn calls(&self) -> u64 {
        self.stats.total
    }

    /// Zero the counters. Pending injections keep their absolute call indices, so set them
    /// after resetting.
    pub fn reset_stats(&mut self) {
        self.stats = KernelStats::default();
    }

    /// The last error returned by a trait call, with the call's kind.
    pub fn last_error(&self) -> Option<(Op, KernelError)> {
        self.last_error
    }

    /// Make the call with absolute index `index` (the value of [`ModelKernel::calls`] just
    /// before it) return `error` without any effect. Indices already passed never fire.
    pub fn fail_call(&mut self, index: u64, error: KernelError) {
        self.inject.at_call(index, error);
    }

    /// Make the `n`-th call from now (0 = the next one) fail with `error`.
    pub fn fail_nth_call(&mut self, n: u64, error: KernelError) {
        self.inject.at_call(self.stats.total + n, error);
    }

    /// Make the `n`-th call of kind `op` from now (0 = the next one) fail with `error`.
    pub fn fail_nth_op(&mut self, op: Op, n: u64, error: KernelError) {
        self.inject.at_op_call(op, self.stats.count(op) + n, error);
    }

    /// Make every call of kind `op` fail with `error` until [`ModelKernel::clear_injections`].
    pub fn fail_op_always(&mut self, op: Op, error: KernelError) {
        self.inject.always(op, error);
    }

    /// Drop all pending injections.
    pub fn clear_injections(&mut self) {
        self.inject.clear();
    }

    /// Injections not yet fired (persistent ones included).
    pub fn pending_injections(&self) -> usize {
        self.inject.len()
    }

    // ---- cap lookups shared by the operations -------------------------------------------

    /// The invoked cap (seL4's first operand): a missing or null cap is `InvalidCapability`.
    #[inline]
    pub(crate) fn invoked(&self, slot: Slot) -> KResult<Cap> {
        match self.cs.get(slot) {
            None | Some(Cap::Null) => Err(KernelError::InvalidCapability),
            Some(c) => Ok(c),
        }
    }

    /// A VSpace passed as an extra cap that must have an ASID: `(root, asid)`.
    /// Anything else (no cap, another type, no ASID yet) is `InvalidCapability`, as in
    /// seL4's `isValidNativeRoot` check.
    pub(crate) fn vspace_with_asid(&self, slot: Slot) -> KResult<(ObjectId, u32)> {
        let Some(Cap::VSpace(root)) = self.cs.get(slot) else {
            return Err(KernelError::InvalidCapability);
        };
        match self.objs.table(root).asid {
            Some(asid) => Ok((root, asid)),
            None => Err(KernelError::InvalidCapability),
        }
    }

    /// seL4's `findVSpaceForASID` check of a VSpace cap's ASID: `FailedLookup` if the ASID
    /// leads nowhere, `InvalidCapability` if it leads to another VSpace. (Cannot fail in the
    /// model, where an ASID lives exactly as long as its VSpace; kept for fidelity.)
    pub(crate) fn check_asid(&self, root: ObjectId, asid: u32) -> KResult {
        match self.vspace_of_asid(asid) {
            Some(v) if v == root => Ok(()),
            Some(_) => Err(KernelError::InvalidCapability),
            None => Err(KernelError::FailedLookup),
        }
    }

    /// `findVSpaceForASID`.
    #[inline]
    pub(crate) fn vspace_of_asid(&self, asid: u32) -> Option<ObjectId> {
        let i = asid.checked_sub(ASID_BASE)? as usize;
        self.asids.get(i).copied().flatten()
    }

    /// The physical index is stale (a frame was created or destroyed).
    #[inline]
    pub(crate) fn frames_changed(&mut self) {
        *self.phys_index.get_mut() = None;
    }
}
