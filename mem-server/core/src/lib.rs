#![no_std]
#![forbid(unsafe_code)]
extern crate alloc;
pub mod kernel;
pub use kernel::{Geometry, KResult, Kernel, KernelError, ObjectType, Slot};
