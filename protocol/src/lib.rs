//! Wire contract of the memory server (placeholder module list; the request/reply types are
//! being written).
#![no_std]
#![forbid(unsafe_code)]

mod errno;
mod prot;

pub use errno::{Errno, OpResult};
pub use prot::{Access, PageSize, Prot, LARGE_PAGE_SIZE, PAGE_SIZE};
