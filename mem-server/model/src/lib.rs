//! `mem-model`: a host model of the seL4 16 kernel operations the memory server uses.
//!
//! [`ModelKernel`] implements [`mem_core::Kernel`] with seL4's rules and error codes, so
//! every host test and benchmark of the memory server runs against something that refuses
//! what seL4 refuses. Rules and codes come from seL4 16's sources (`untyped.c`, `cnode.c`,
//! `arch/riscv/kernel/vspace.c`, `arch/arm/64/kernel/vspace.c`); where the two
//! architectures differ, the riscv64 behaviour is modelled. In short:
//!
//! - **Retype** (`retype.rs`): `RangeError` for a count of 0 or above the fan-out limit or
//!   a window outside the CNode; `DeleteFirst` if any destination slot is occupied (checked
//!   before anything is created); `NotEnoughMemory` when the objects do not fit above the
//!   watermark aligned to the object size; `InvalidArgument` for non-frames from device
//!   memory. The invoked cap: null → `InvalidCapability`, another type →
//!   `IllegalOperation`. An untyped with no children restarts at 0 (seL4's reset).
//! - **ASIDs** (`vspace.rs`): assigning a VSpace that already has one →
//!   `InvalidCapability`; pool full → `DeleteFirst`. Mapping into a VSpace without ASID →
//!   `InvalidCapability`.
//! - **Page tables**: mapped at the first level on the path that has no table;
//!   `DeleteFirst` if there is none (or a page sits there); `InvalidCapability` if the
//!   table is already mapped; `InvalidArgument` at or above `user_top`. Unmap needs the
//!   final cap (`RevokeFirst`) and clears the table.
//! - **Pages**: `AlignmentError`, `InvalidArgument` beyond `user_top` or for empty rights
//!   (the trait's rule: seL4 would install an inaccessible entry), `FailedLookup` when the walk does not end at the page's level (table missing, a large
//!   page in the way of a small one, a table in the way of a large one), `DeleteFirst` if
//!   the entry holds another page. One mapping per cap: same VSpace and address = remap
//!   (rights change), other address → `InvalidArgument`, other VSpace →
//!   `InvalidCapability`.
//! - **Caps** (`caps.rs`): copy → `DeleteFirst` (destination first), `FailedLookup`
//!   (empty source); unmapped page tables and VSpaces without ASID cannot be copied
//!   (`IllegalOperation`). Deleting the last cap destroys the object; a mapped frame cap
//!   is unmapped on delete; a destroyed VSpace frees its ASID.
//!
//! Where seL4 keeps stale state, so does the model: a frame cap whose mapping vanished
//! (its table was unmapped or destroyed, its VSpace died) still *records* the mapping, so
//! mapping it elsewhere is refused until `page_unmap` (a no-op on the tables) clears the
//! record. [`ModelKernel::is_mapped`] tells whether the mapping really exists,
//! [`ModelKernel::cap_mapping`] what the cap records.
//!
//! Deliberate differences from seL4 on aarch64 (which the riscv64 rules are stricter
//! than): aarch64 `Page_Map` silently replaces an occupied entry instead of `DeleteFirst`,
//! and checks alignment before `user_top`. Also unlike seL4, slot 0 cannot be a
//! destination (the server's null slot), and the frame data operations (not invocations
//! in seL4) use `InvalidCapability` / `RangeError` / `AlignmentError` for bad arguments.
//!
//! Around that: call counters and failure injection (`stats.rs`), frame bytes and
//! physical memory (`memory.rs`), and the CPU's view for tests (`inspect.rs`). Files:
//! `config.rs` (configuration and presets), `model.rs` (state, constructor, knobs),
//! `objects.rs` (object slab, tables, frame bytes), `cspace.rs` (slots, untyped nodes),
//! `kernel_impl.rs` (the trait). Tests live in `tests/`, one file per area.
#![forbid(unsafe_code)]

mod caps;
mod config;
mod cspace;
mod inspect;
mod kernel_impl;
mod memory;
mod model;
mod objects;
mod retype;
mod stats;
mod vspace;
mod wrap;

pub use config::{split_aligned, ModelConfig, UntypedSpec};
pub use cspace::CapKind;
pub use inspect::{allows, Translation, UserFault};
pub use model::{ModelKernel, ASID_BASE};
pub use objects::ObjectId;
pub use stats::{KernelStats, Op};
pub use wrap::Around;

// For `kernel_via_around!`.
#[doc(hidden)]
pub use mem_core as __core;
#[doc(hidden)]
pub use mem_protocol as __protocol;
