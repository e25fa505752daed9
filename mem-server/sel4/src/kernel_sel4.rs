//! [`mem_core::Kernel`] on real seL4: every trait method is the matching seL4 invocation on
//! a slot of the server's own CNode.
//!
//! CSpace: the root task gives the server a CNode of 2^[`SERVER_CNODE_BITS`] slots whose
//! guard covers the remaining `64 - SERVER_CNODE_BITS` bits with value 0, so a CPtr equal to
//! a slot number, looked up at full word depth, names that slot. Caps are invoked by that
//! CPtr; CNode operations (copy, delete) take an [`sel4::AbsoluteCPtr`] relative to
//! [`server_slot::CNODE`] with depth 64 (the word size); retype puts its objects straight
//! into that CNode (destination node = the root itself, depth 0, offset = slot).
//!
//! Object types: `SmallPage` is the 4 KiB granule frame, `LargePage` the 2 MiB frame,
//! `PageTable` the intermediate translation table (riscv `PageTable`, aarch64 `PT`),
//! `VSpace` the VSpace root (riscv: a `PageTable`, aarch64: `VSpace`). Client VSpaces get
//! their ASID from [`server_slot::ASID_POOL`].
//!
//! `page_map` turns a [`Prot`] into seL4 rights and attributes: write gives read-write,
//! read or execute alone gives read-only (seL4 has no user execute-only mapping on
//! aarch64), and without execute the mapping gets `ExecuteNever`. [`Caching::Uncached`]
//! (device frames) drops `PageCacheable` on aarch64, so seL4 maps device memory
//! (nGnRnE) and never normal cacheable memory over device registers; on riscv64 a mapping
//! has no memory type (the platform's PMAs decide). An empty `Prot` is
//! `InvalidArgument` without a system call. `sel4::Error` maps 1:1 onto [`KernelError`].
//!
//! The frame contents operations (zero, copy, read, write) go through the frame window of
//! `window.rs`. Neighbours: `window.rs`, `server.rs` (the only user), `mem-core`'s
//! `kernel.rs` (the exact semantics every method must have).

use alloc::vec;
use alloc::vec::Vec;

use mem_core::{Caching, KResult, Kernel, KernelError, ObjectType, Slot};
use mem_protocol::system::{server_slot, SERVER_CNODE_BITS, SERVER_DIRECT_VADDR};
use mem_protocol::{Prot, LARGE_PAGE_SIZE, PAGE_SIZE};
use sel4::{cap, CapRights, VmAttributes};

/// seL4 invocations for `mem-core`, plus the state the frame window needs.
pub struct Sel4Kernel {
    /// Empty slots for the window's temporary frame cap copies (one per window slot).
    pub(crate) scratch: [Slot; crate::window::WINDOW_SLOTS],
    /// Bit per slot: it holds a 2 MiB frame cap (retyped as `LargePage`, or a copy of one):
    /// seL4 has no call that tells a frame's size, and the window must map each frame at
    /// the right level. A fixed bitmap for the whole CNode (32 KiB), never grown.
    large: Vec<u64>,
    /// Per slot: the slot of the direct-map copy of the small frame in it (0: the frame
    /// is not direct-mapped and its data operations use the window). The copy is mapped
    /// at [`direct_vaddr`]. 2 MiB for the whole CNode, never grown.
    direct: Vec<u32>,
    /// `Page_Map` rights, built once (building a seL4 rights bitfield costs tens of
    /// instructions; every fault maps a page).
    rights_rw: sel4::sys::seL4_CapRights,
    rights_ro: sel4::sys::seL4_CapRights,
}

/// Where the direct map (`mem-core`'s `Config::direct_map`) puts the small frame in `slot`.
pub(crate) fn direct_vaddr(slot: Slot) -> u64 {
    SERVER_DIRECT_VADDR + u64::from(slot) * PAGE_SIZE
}

impl Sel4Kernel {
    /// A kernel whose window uses the empty slots `scratch` (never handed to `mem-core`).
    pub fn new(scratch: [Slot; crate::window::WINDOW_SLOTS]) -> Self {
        Sel4Kernel {
            scratch,
            large: vec![0; (1usize << SERVER_CNODE_BITS) / 64],
            direct: vec![0; 1usize << SERVER_CNODE_BITS],
            rights_rw: CapRights::read_write().into_inner(),
            rights_ro: CapRights::read_only().into_inner(),
        }
    }

    /// The direct-map copy of the frame in `slot`, if the frame is direct-mapped.
    pub(crate) fn direct_copy(&self, slot: Slot) -> Option<Slot> {
        self.direct.get(slot as usize).copied().filter(|&c| c != 0)
    }

    fn set_direct(&mut self, slot: Slot, copy: Slot) {
        if let Some(d) = self.direct.get_mut(slot as usize) {
            *d = copy;
        }
    }

    fn is_large(&self, slot: Slot) -> bool {
        let i = slot as usize;
        self.large.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set_large(&mut self, slot: Slot, large: bool) {
        let i = slot as usize;
        if let Some(w) = self.large.get_mut(i / 64) {
            if large {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    /// Size in bytes of the frame whose cap is in `slot` (as far as this kernel has seen
    /// it being created or copied).
    pub(crate) fn frame_bytes(&self, slot: Slot) -> u64 {
        if self.is_large(slot) {
            LARGE_PAGE_SIZE
        } else {
            PAGE_SIZE
        }
    }

    /// Map the frame in `slot` read-write, never executable, at `vaddr` of the server's own
    /// VSpace (shared-buffer views and the frame window; the tables are the root task's).
    pub fn map_in_server(&mut self, slot: Slot, vaddr: u64) -> KResult {
        let attrs = VmAttributes::DEFAULT | VmAttributes::EXECUTE_NEVER;
        let vspace = cap::VSpace::from_bits(server_slot::VSPACE);
        let frame = cap::UnspecifiedPage::from_bits(slot.into());
        frame
            .frame_map(vspace, vaddr as usize, CapRights::read_write(), attrs)
            .map_err(kerr)
    }
}

/// `sel4::Error` as `mem-core`'s [`KernelError`] (the same ten seL4 error codes).
pub fn kerr(e: sel4::Error) -> KernelError {
    match e {
        sel4::Error::InvalidArgument => KernelError::InvalidArgument,
        sel4::Error::InvalidCapability => KernelError::InvalidCapability,
        sel4::Error::IllegalOperation => KernelError::IllegalOperation,
        sel4::Error::RangeError => KernelError::RangeError,
        sel4::Error::AlignmentError => KernelError::AlignmentError,
        sel4::Error::FailedLookup => KernelError::FailedLookup,
        sel4::Error::TruncatedMessage => KernelError::TruncatedMessage,
        sel4::Error::DeleteFirst => KernelError::DeleteFirst,
        sel4::Error::RevokeFirst => KernelError::RevokeFirst,
        sel4::Error::NotEnoughMemory => KernelError::NotEnoughMemory,
    }
}

/// The raw result of a `sel4-sys` invocation as a [`KResult`].
fn sys_result(err: sel4::sys::seL4_Error::Type) -> KResult {
    match sel4::Error::from_sys(err) {
        None => Ok(()),
        Some(e) => Err(kerr(e)),
    }
}

/// The server's CNode.
fn cnode() -> cap::CNode {
    cap::CNode::from_bits(server_slot::CNODE)
}

/// `slot` of the server's CNode as a CNode-operation operand (depth = word size).
pub(crate) fn abs(slot: Slot) -> sel4::AbsoluteCPtr {
    cnode().absolute_cptr(sel4::CPtr::from_bits(slot.into()))
}

const _: () = assert!(SERVER_CNODE_BITS as usize <= 32, "slots are u32");

#[cfg(target_arch = "riscv64")]
mod arch {
    //! riscv64: one page-table object type for every level, the root included.
    use mem_core::{KResult, ObjectType, Slot};
    use sel4::{cap, ObjectBlueprint, ObjectBlueprintRiscV, VmAttributes};

    /// Attributes of a device (uncached) mapping: riscv64 page-table entries carry no
    /// memory type, so the same as any other.
    pub const UNCACHED: VmAttributes = VmAttributes::DEFAULT;

    pub fn blueprint(ty: ObjectType) -> ObjectBlueprint {
        ObjectBlueprint::Arch(match ty {
            ObjectType::SmallPage => ObjectBlueprintRiscV::_4kPage,
            ObjectType::LargePage => ObjectBlueprintRiscV::MegaPage,
            ObjectType::PageTable | ObjectType::VSpace => ObjectBlueprintRiscV::PageTable,
        })
    }

    pub fn page_table_map(table: Slot, vspace: Slot, vaddr: u64) -> KResult {
        let vspace = cap::VSpace::from_bits(vspace.into());
        cap::PageTable::from_bits(table.into())
            .page_table_map(vspace, vaddr as usize, VmAttributes::DEFAULT)
            .map_err(super::kerr)
    }

    pub fn page_table_unmap(table: Slot) -> KResult {
        let err = sel4::with_ipc_buffer_mut(|ipc| {
            ipc.inner_mut().seL4_RISCV_PageTable_Unmap(table.into())
        });
        super::sys_result(err)
    }

    pub fn page_map(frame: Slot, vspace: Slot, vaddr: u64, rights: sel4::sys::seL4_CapRights, attrs: VmAttributes) -> KResult {
        let err = sel4::with_ipc_buffer_mut(|ipc| {
            ipc.inner_mut()
                .seL4_RISCV_Page_Map(frame.into(), vspace.into(), vaddr, rights, attrs.into_inner())
        });
        super::sys_result(err)
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    //! aarch64: `PT` for every intermediate level, a distinct `VSpace` root object.
    use mem_core::{KResult, ObjectType, Slot};
    use sel4::{cap, ObjectBlueprint, ObjectBlueprintAArch64, ObjectBlueprintArm, VmAttributes};

    /// Attributes of a device (uncached) mapping: without `PageCacheable` seL4 maps the
    /// page as device memory.
    pub const UNCACHED: VmAttributes = VmAttributes::NONE;

    pub fn blueprint(ty: ObjectType) -> ObjectBlueprint {
        ObjectBlueprint::Arch(match ty {
            ObjectType::SmallPage => ObjectBlueprintArm::SmallPage,
            ObjectType::LargePage => ObjectBlueprintArm::LargePage,
            ObjectType::PageTable => ObjectBlueprintArm::PT,
            ObjectType::VSpace => ObjectBlueprintArm::SeL4Arch(ObjectBlueprintAArch64::VSpace),
        })
    }

    pub fn page_table_map(table: Slot, vspace: Slot, vaddr: u64) -> KResult {
        let vspace = cap::VSpace::from_bits(vspace.into());
        cap::PT::from_bits(table.into())
            .pt_map(vspace, vaddr as usize, VmAttributes::DEFAULT)
            .map_err(super::kerr)
    }

    pub fn page_table_unmap(table: Slot) -> KResult {
        let err =
            sel4::with_ipc_buffer_mut(|ipc| ipc.inner_mut().seL4_ARM_PageTable_Unmap(table.into()));
        super::sys_result(err)
    }

    pub fn page_map(frame: Slot, vspace: Slot, vaddr: u64, rights: sel4::sys::seL4_CapRights, attrs: VmAttributes) -> KResult {
        let err = sel4::with_ipc_buffer_mut(|ipc| {
            ipc.inner_mut()
                .seL4_ARM_Page_Map(frame.into(), vspace.into(), vaddr, rights, attrs.into_inner())
        });
        super::sys_result(err)
    }
}

#[cfg(not(any(target_arch = "riscv64", target_arch = "aarch64")))]
compile_error!("mem-server-sel4 supports riscv64 and aarch64");

impl Kernel for Sel4Kernel {
    fn untyped_retype(&mut self, untyped: Slot, ty: ObjectType, dest: Slot, count: u32) -> KResult {
        let ut = cap::Untyped::from_bits(untyped.into());
        // Destination node: the server's CNode itself (depth 0 from the root), `dest` the
        // offset inside it.
        let node = cnode().absolute_cptr_for_self();
        #[cfg(feature = "bench")]
        let start = crate::meter::start();
        let r = ut.untyped_retype(&arch::blueprint(ty), &node, dest as usize, count as usize);
        #[cfg(feature = "bench")]
        crate::meter::step(start, crate::meter::KIND_RETYPE);
        r.map_err(kerr)?;
        for s in dest..dest.saturating_add(count) {
            self.set_large(s, ty == ObjectType::LargePage);
        }
        Ok(())
    }

    fn asid_assign(&mut self, vspace: Slot) -> KResult {
        let pool = cap::AsidPool::from_bits(server_slot::ASID_POOL);
        pool.asid_pool_assign(cap::VSpace::from_bits(vspace.into()))
            .map_err(kerr)
    }

    fn page_table_map(&mut self, table: Slot, vspace: Slot, vaddr: u64) -> KResult {
        arch::page_table_map(table, vspace, vaddr)
    }

    fn page_table_unmap(&mut self, table: Slot) -> KResult {
        arch::page_table_unmap(table)
    }

    fn page_map(&mut self, frame: Slot, vspace: Slot, vaddr: u64, prot: Prot, caching: Caching) -> KResult {
        if prot.is_empty() {
            return Err(KernelError::InvalidArgument);
        }
        let rights = if prot.writable() {
            self.rights_rw.clone()
        } else {
            self.rights_ro.clone()
        };
        let base = match caching {
            Caching::Cached => VmAttributes::DEFAULT,
            Caching::Uncached => arch::UNCACHED,
        };
        let attrs = if prot.executable() { base } else { base | VmAttributes::EXECUTE_NEVER };
        #[cfg(feature = "bench")]
        let start = crate::meter::start();
        let r = arch::page_map(frame, vspace, vaddr, rights, attrs);
        #[cfg(feature = "bench")]
        crate::meter::MAP.add(start);
        if r.is_ok() && prot.executable() {
            // What the server copied into a frame becomes visible to instruction fetch when
            // the frame is mapped executable (as Linux syncs at `set_pte_at`): copies are
            // not synced when they are made (`window.rs`).
            self.sync_mapped_code(frame);
        }
        r
    }

    fn page_unmap(&mut self, frame: Slot) -> KResult {
        cap::UnspecifiedPage::from_bits(frame.into())
            .frame_unmap()
            .map_err(kerr)
    }

    fn page_paddr(&mut self, frame: Slot) -> KResult<u64> {
        let pa = cap::UnspecifiedPage::from_bits(frame.into())
            .frame_get_address()
            .map_err(kerr)?;
        Ok(pa as u64)
    }

    fn cap_copy(&mut self, src: Slot, dest: Slot) -> KResult {
        abs(dest).copy(&abs(src), CapRights::all()).map_err(kerr)?;
        let large = self.is_large(src);
        self.set_large(dest, large);
        Ok(())
    }

    fn cap_delete(&mut self, slot: Slot) -> KResult {
        abs(slot).delete().map_err(kerr)?;
        self.set_large(slot, false);
        self.set_direct(slot, 0);
        Ok(())
    }

    fn cap_revoke(&mut self, slot: Slot) -> KResult {
        // The copies the core still uses in its own CNode are never revoked this way (it
        // revokes only originals whose other copies are gone), except the direct-map copy:
        // the revoke deletes it with everything else, so the frame is no longer reached
        // through the direct map (the core maps it again with `direct_map`).
        self.set_direct(slot, 0);
        abs(slot).revoke().map_err(kerr)
    }

    fn server_map(&mut self, frame: Slot, vaddr: u64) -> KResult {
        self.map_in_server(frame, vaddr)
    }

    fn server_table_map(&mut self, table: Slot, vaddr: u64) -> KResult {
        arch::page_table_map(table, server_slot::VSPACE as Slot, vaddr)
    }

    fn direct_map(&mut self, frame: Slot, copy: Slot, vaddr: u64) -> KResult {
        if self.is_large(frame) || vaddr != direct_vaddr(frame) {
            // The data operations find a direct-mapped frame by its slot alone.
            return Err(KernelError::InvalidArgument);
        }
        // Not `Kernel::cap_copy`: the copy must not enter the size bookkeeping.
        abs(copy).copy(&abs(frame), CapRights::all()).map_err(kerr)?;
        if let Err(e) = self.map_in_server(copy, vaddr) {
            let _ = abs(copy).delete();
            return Err(e);
        }
        self.set_direct(frame, copy);
        Ok(())
    }

    fn direct_unmap(&mut self, frame: Slot, copy: Slot) -> KResult {
        // Forget it first: whatever the kernel says, the mapping is not used again.
        if self.direct_copy(frame) == Some(copy) {
            self.set_direct(frame, 0);
        }
        abs(copy).delete().map_err(kerr)
    }

    fn save_caller(&mut self, slot: Slot) -> KResult {
        abs(slot).save_caller().map_err(kerr)
    }

    fn reply_saved(&mut self, slot: Slot, reply: Option<&mem_protocol::Reply>) -> KResult {
        let n = match reply {
            // Every reply fits (checked at compile time in mem-protocol).
            Some(r) => sel4::with_ipc_buffer_mut(|ipc| {
                mem_protocol::encode_reply_words(r, ipc.msg_regs_mut()).unwrap_or(0)
            }),
            None => 0,
        };
        // `Send` on a reply cap never blocks and never faults the sender (an empty or
        // stale slot is ignored by the kernel); the cap is used up.
        cap::Endpoint::from_bits(slot.into()).send(sel4::MessageInfo::new(0, 0, 0, n));
        Ok(())
    }

    fn frame_zero(&mut self, frame: Slot) -> KResult {
        #[cfg(feature = "bench")]
        let start = crate::meter::now();
        let r = self.window_zero(frame);
        // Per 4 KiB: a 2 MiB frame counts 512.
        #[cfg(feature = "bench")]
        crate::meter::ZERO.add_events(start, self.frame_bytes(frame) / PAGE_SIZE);
        r
    }

    fn frame_copy(
        &mut self,
        src: Slot,
        src_offset: u64,
        dst: Slot,
        dst_offset: u64,
        len: u64,
    ) -> KResult {
        self.window_copy(src, src_offset, dst, dst_offset, len)
    }

    fn frame_write(&mut self, frame: Slot, offset: u64, data: &[u8]) -> KResult {
        self.window_write(frame, offset, data)
    }

    fn frame_read(&mut self, frame: Slot, offset: u64, buf: &mut [u8]) -> KResult {
        self.window_read(frame, offset, buf)
    }
}
