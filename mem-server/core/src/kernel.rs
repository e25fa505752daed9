//! The kernel interface: every seL4 invocation the memory server makes, as one small trait.
//!
//! The core (`space`, `fault`, `shm`, …) never talks to seL4 directly; it calls a [`Kernel`].
//! Two implementations exist: the seL4 one in the mem-server component (the only place with
//! seL4 invocations) and the host model in `mem-model`, which enforces seL4's rules
//! (one mapping per frame cap, page tables must exist, retype alignment/fan-out/exhaustion,
//! error codes) and can inject a failure at any call.
//!
//! Capabilities are named by [`Slot`]: an index into the server's own CNode. Slot numbers are
//! allocated by the core (`slots.rs`); the kernel only checks that they are empty or hold the
//! right kind of capability. Slot 0 is the null slot and never holds an object.

use mem_protocol::{PageSize, Prot, Reply};

/// A slot in the server's CNode.
pub type Slot = u32;

/// seL4 error codes (`seL4_Error`), as the kernel returns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelError {
    InvalidArgument,
    InvalidCapability,
    IllegalOperation,
    RangeError,
    AlignmentError,
    FailedLookup,
    TruncatedMessage,
    DeleteFirst,
    RevokeFirst,
    NotEnoughMemory,
}

/// Result of a kernel invocation.
pub type KResult<T = ()> = Result<T, KernelError>;

/// Kernel object types the server creates from untyped memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// A 4 KiB frame.
    SmallPage,
    /// A 2 MiB frame.
    LargePage,
    /// A page table of any non-root level (seL4 16 uses one type for all levels on both arches).
    PageTable,
    /// A VSpace root (aarch64 `VSpaceObject`, riscv64 root `PageTable`).
    VSpace,
}

impl ObjectType {
    /// log2 of the object's size in bytes; retype aligns the untyped watermark to this.
    pub const fn size_bits(self) -> u8 {
        match self {
            ObjectType::SmallPage | ObjectType::PageTable => 12,
            ObjectType::LargePage => 21,
            // aarch64 with a 40-bit IPA has a 2-page root; riscv64's is one page. We use the
            // larger so the core's accounting is conservative on both.
            ObjectType::VSpace => 13,
        }
    }
}

/// How the hardware may cache a mapping: RAM is `Cached`; device registers (frames of a
/// device untyped, `MapPhys`) must be `Uncached`, so every load and store reaches the device
/// in program order (aarch64: device memory type; riscv64: the platform's physical memory
/// attributes decide, the mapping carries none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caching {
    Cached,
    Uncached,
}

/// Page-table geometry of the target architecture: `levels` tables (root included) each
/// indexing 9 bits, except the root which indexes `root_bits` bits. Pages are 4 KiB; a large
/// page (2 MiB) is a leaf one level above the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub levels: u8,
    pub root_bits: u8,
}

impl Geometry {
    /// riscv64 Sv39: 3 levels of 9 bits, 39-bit virtual addresses.
    pub const RISCV64_SV39: Geometry = Geometry { levels: 3, root_bits: 9 };
    /// aarch64 seL4 with hypervisor support and a 40-bit IPA: 3 levels, 10-bit root.
    pub const AARCH64_40: Geometry = Geometry { levels: 3, root_bits: 10 };
    /// A 4-level 48-bit layout (aarch64 without hypervisor, x86_64): used in tests too.
    pub const FOUR_LEVEL_48: Geometry = Geometry { levels: 4, root_bits: 9 };

    /// Number of virtual-address bits translated.
    pub const fn va_bits(self) -> u32 {
        12 + 9 * (self.levels as u32 - 1) + self.root_bits as u32
    }
    /// Bit position of the lowest address bit indexed by table level `level` (0 = root).
    pub const fn shift(self, level: u8) -> u32 {
        12 + 9 * (self.levels - 1 - level) as u32
    }
    /// Number of entries in a table of `level`.
    pub const fn entries(self, level: u8) -> usize {
        if level == 0 {
            1 << self.root_bits
        } else {
            512
        }
    }
    /// Index into a table of `level` for `vaddr`.
    pub const fn index(self, level: u8, vaddr: u64) -> usize {
        ((vaddr >> self.shift(level)) as usize) & (self.entries(level) - 1)
    }
    /// The level whose leaf entries map pages of `size`.
    pub const fn leaf_level(self, size: PageSize) -> u8 {
        match size {
            PageSize::Small => self.levels - 1,
            PageSize::Large => self.levels - 2,
        }
    }
}

/// Every capability operation the memory server performs.
///
/// Semantics follow seL4 16 (non-MCS) on aarch64 and riscv64. Implementations must not
/// panic on bad arguments: they return the error seL4 would.
pub trait Kernel {
    /// `seL4_Untyped_Retype`: create `count` objects of `ty` from the untyped in `untyped`
    /// into the empty slots `dest .. dest + count`. The untyped's watermark is first aligned
    /// to the object size. Errors: `RangeError` for `count` of 0 or above the fan-out limit
    /// (256), `DeleteFirst` if a destination slot is occupied, `NotEnoughMemory` if the
    /// objects do not fit, `InvalidCapability` for an empty slot, `IllegalOperation` for a
    /// cap of another type. Device untypeds yield device frames only (`InvalidArgument`
    /// otherwise), not zeroed. An untyped with no children left restarts at watermark 0
    /// (seL4 resets it): `res::Res::trim` relies on this to give memory back.
    fn untyped_retype(&mut self, untyped: Slot, ty: ObjectType, dest: Slot, count: u32) -> KResult;

    /// `seL4_ASIDPool_Assign`: give the VSpace in `vspace` an ASID from the server's pool.
    /// `InvalidCapability` if it already has one, `DeleteFirst` if the pool is full.
    fn asid_assign(&mut self, vspace: Slot) -> KResult;

    /// `PageTable_Map`: map the (unmapped) page table in `table` into `vspace` at the
    /// highest level that has no table yet on the path to `vaddr`.
    /// `DeleteFirst` if every level down to the last already has a table (or a large page
    /// occupies the slot), `InvalidCapability` if `table` is already mapped or `vspace` has
    /// no ASID, `InvalidArgument` for `vaddr` at or above the user top.
    fn page_table_map(&mut self, table: Slot, vspace: Slot, vaddr: u64) -> KResult;

    /// `PageTable_Unmap`: remove `table` from wherever it is mapped (no-op if unmapped).
    /// The table's own entries are cleared; frame caps that were mapped through it still
    /// record their old mapping until `page_unmap`, so the core unmaps frames first.
    /// `RevokeFirst` if the table has other caps.
    fn page_table_unmap(&mut self, table: Slot) -> KResult;

    /// `Page_Map`: map the frame in `frame` at `vaddr` in `vspace` with `prot` (write implies
    /// read in hardware). If the cap is already mapped at exactly this `vspace`/`vaddr` this
    /// changes its rights (a remap). Errors: `InvalidArgument` if the cap is mapped at
    /// another address of the same VSpace, if `prot` is empty (seL4 itself would accept it:
    /// the seL4 implementation checks) or if the page ends above the user top;
    /// `InvalidCapability` if it is mapped in another VSpace or `vspace` has no ASID;
    /// `AlignmentError` for a misaligned `vaddr`; `FailedLookup` if the walk does not end at
    /// the page's level (table missing, a large page or a table in the way); `DeleteFirst`
    /// if another page sits in the entry; `IllegalOperation` if `frame` is not a frame cap.
    /// Write without read is passed to seL4 as read-write (seL4 would make it kernel-only).
    /// `caching` is the mapping's memory type (`Uncached` for device frames).
    fn page_map(&mut self, frame: Slot, vspace: Slot, vaddr: u64, prot: Prot, caching: Caching) -> KResult;

    /// `Page_Unmap`: unmap the frame cap in `frame` (no-op if it is not mapped).
    fn page_unmap(&mut self, frame: Slot) -> KResult;

    /// `Page_GetAddress`: physical address of the frame in `frame`.
    fn page_paddr(&mut self, frame: Slot) -> KResult<u64>;

    /// `CNode_Copy` with all rights from `src` into the empty slot `dest`. A copy of a frame
    /// cap is unmapped and may be mapped once elsewhere. `DeleteFirst` if `dest` is occupied,
    /// `FailedLookup` if `src` is empty, `IllegalOperation` for an unmapped page table or a
    /// VSpace without ASID, `RevokeFirst` for an untyped with children.
    fn cap_copy(&mut self, src: Slot, dest: Slot) -> KResult;

    /// `CNode_Delete`: delete the cap in `slot` (a mapped frame cap is unmapped first, as seL4
    /// does). Deleting the last cap of an object destroys the object. Empty slot: no-op.
    fn cap_delete(&mut self, slot: Slot) -> KResult;

    /// `CNode_Revoke`: delete every cap derived from the one in `slot` (copies the server
    /// handed out and whatever was derived from them, e.g. a TCB's IPC-buffer cap), keeping
    /// `slot` itself. The core calls it before reusing an object it gave away a cap to.
    fn cap_revoke(&mut self, slot: Slot) -> KResult;

    /// Map the frame cap in `frame` (a copy the core made for this) read-write and never
    /// executable at `vaddr` of the server's *own* VSpace, where the root task created the
    /// page tables (the server's views of client shared buffers). Deleting the cap unmaps
    /// it. Errors as `page_map` (`DeleteFirst` if something is mapped there already).
    fn server_map(&mut self, frame: Slot, vaddr: u64) -> KResult;

    /// Map the unmapped page table in `table` into the server's *own* VSpace as the leaf
    /// table (the one whose entries are 4 KiB pages) covering `vaddr`; the root task made
    /// every level above it. `DeleteFirst` if that leaf table exists already.
    fn server_table_map(&mut self, table: Slot, vaddr: u64) -> KResult;

    /// Give the server a lasting mapping of the small frame in `frame` (the direct map):
    /// copy its cap into the empty slot `copy` and map the copy read-write, never
    /// executable, at `vaddr` of the server's own VSpace (tables exist). From then on the
    /// data operations on `frame` may go through that mapping instead of mapping the frame
    /// for each one. On error nothing of it is left.
    fn direct_map(&mut self, frame: Slot, copy: Slot, vaddr: u64) -> KResult;

    /// Undo `direct_map` before `frame` is deleted: delete `copy` (which unmaps it).
    fn direct_unmap(&mut self, frame: Slot, copy: Slot) -> KResult;

    /// Non-MCS `CNode_SaveCaller`: move the reply cap of the thread whose message (a fault
    /// or a request) the server is handling now into the empty slot `slot`; the thread stays
    /// blocked until [`Kernel::reply_saved`]. (seL4 succeeds with nothing saved when there is
    /// no caller; `reply_saved` on that slot then fails.)
    fn save_caller(&mut self, slot: Slot) -> KResult;

    /// `Send` on the reply cap saved in `slot`: resume its thread with an empty message (a
    /// fault: the access is retried) or with `reply` (a request's answer). The reply cap is
    /// used up. `InvalidCapability` if the slot holds none.
    fn reply_saved(&mut self, slot: Slot, reply: Option<&Reply>) -> KResult;

    /// Fill a frame with zeroes (the seL4 server does this through a window in its VSpace).
    fn frame_zero(&mut self, frame: Slot) -> KResult;

    /// Copy the whole contents of frame `src` into frame `dst` (same size, or a 4 KiB part of
    /// a large frame: `src_offset`/`dst_offset` are byte offsets; offsets and `len` must be
    /// multiples of 4 KiB, else `AlignmentError`).
    fn frame_copy(&mut self, src: Slot, src_offset: u64, dst: Slot, dst_offset: u64, len: u64) -> KResult;

    /// Write `data` into frame `frame` at byte `offset`. `RangeError` if it does not fit.
    fn frame_write(&mut self, frame: Slot, offset: u64, data: &[u8]) -> KResult;

    /// Read `buf.len()` bytes from frame `frame` at byte `offset`.
    fn frame_read(&mut self, frame: Slot, offset: u64, buf: &mut [u8]) -> KResult;
}
