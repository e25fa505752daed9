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
//! - **Pages**: `AlignmentError`, `InvalidArgument` beyond `user_top` or for empty rights,
//!   `FailedLookup` when the walk does not end at the page's level (table missing, a large
//!   page in the way of a small one, a table in the way of a large one), `DeleteFirst` if
//!   the entry holds another page. One mapping per cap: same VSpace and address = remap
//!   (rights change), other address → `InvalidArgument`, other VSpace →
//!   `InvalidCapability`.
//! - **Caps** (`caps.rs`): copy → `DeleteFirst` / `FailedLookup`; delete of the last cap
//!   destroys the object.
//!
//! Around that: call counters and failure injection (`stats.rs`), frame bytes and
//! physical memory (`memory.rs`), and the CPU's view for tests (`inspect.rs`). Files:
//! `config.rs` (configuration and presets), `model.rs` (state), `objects.rs`,
//! `cspace.rs`, `kernel_impl.rs`.
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

pub use config::{split_aligned, ModelConfig, UntypedSpec};
pub use cspace::CapKind;
pub use inspect::{allows, Translation, UserFault};
pub use model::{ModelKernel, ASID_BASE};
pub use objects::ObjectId;
pub use stats::{KernelStats, Op};
