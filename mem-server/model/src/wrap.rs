//! Wrappers around the model: a test or benchmark that needs to do something around every
//! kernel call (pause a heap counter, attribute allocations, drop a call) implements
//! [`Around`] and gets `mem_core::Kernel` from [`kernel_via_around!`], which forwards every
//! method to the wrapped [`ModelKernel`] through `around` with the call's [`Op`]. One list of
//! the trait's methods for every wrapper: a new `Kernel` method is added here once.
//! Neighbours: `kernel_impl.rs` (the model's own `Kernel`), `stats.rs` (`Op`).

use mem_core::KResult;

use crate::{ModelKernel, Op};

/// What a wrapper does around each call: run `f` on the model (or not) and return what the
/// call returns.
pub trait Around {
    fn around<T>(&mut self, op: Op, f: impl FnOnce(&mut ModelKernel) -> KResult<T>) -> KResult<T>;
}

/// `impl mem_core::Kernel for $ty` (which implements [`Around`]) by forwarding every call.
#[macro_export]
macro_rules! kernel_via_around {
    ($ty:ty) => {
        impl $crate::__core::Kernel for $ty {
            fn untyped_retype(&mut self, u: $crate::__core::Slot, t: $crate::__core::ObjectType, d: $crate::__core::Slot, n: u32) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::UntypedRetype, |k| $crate::__core::Kernel::untyped_retype(k, u, t, d, n))
            }
            fn asid_assign(&mut self, v: $crate::__core::Slot) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::AsidAssign, |k| $crate::__core::Kernel::asid_assign(k, v))
            }
            fn page_table_map(&mut self, t: $crate::__core::Slot, v: $crate::__core::Slot, a: u64) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::PageTableMap, |k| $crate::__core::Kernel::page_table_map(k, t, v, a))
            }
            fn page_table_unmap(&mut self, t: $crate::__core::Slot) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::PageTableUnmap, |k| $crate::__core::Kernel::page_table_unmap(k, t))
            }
            fn page_map(&mut self, f: $crate::__core::Slot, v: $crate::__core::Slot, a: u64, p: $crate::__core::Prot, c: $crate::__core::Caching) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::PageMap, |k| $crate::__core::Kernel::page_map(k, f, v, a, p, c))
            }
            fn page_unmap(&mut self, f: $crate::__core::Slot) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::PageUnmap, |k| $crate::__core::Kernel::page_unmap(k, f))
            }
            fn page_paddr(&mut self, f: $crate::__core::Slot) -> $crate::__core::KResult<u64> {
                $crate::Around::around(self, $crate::Op::PagePaddr, |k| $crate::__core::Kernel::page_paddr(k, f))
            }
            fn cap_copy(&mut self, s: $crate::__core::Slot, d: $crate::__core::Slot) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::CapCopy, |k| $crate::__core::Kernel::cap_copy(k, s, d))
            }
            fn cap_delete(&mut self, s: $crate::__core::Slot) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::CapDelete, |k| $crate::__core::Kernel::cap_delete(k, s))
            }
            fn cap_revoke(&mut self, s: $crate::__core::Slot) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::CapRevoke, |k| $crate::__core::Kernel::cap_revoke(k, s))
            }
            fn server_map(&mut self, f: $crate::__core::Slot, a: u64) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::ServerMap, |k| $crate::__core::Kernel::server_map(k, f, a))
            }
            fn server_table_map(&mut self, t: $crate::__core::Slot, a: u64) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::ServerTableMap, |k| $crate::__core::Kernel::server_table_map(k, t, a))
            }
            fn direct_map(&mut self, f: $crate::__core::Slot, c: $crate::__core::Slot, a: u64) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::DirectMap, |k| $crate::__core::Kernel::direct_map(k, f, c, a))
            }
            fn direct_unmap(&mut self, f: $crate::__core::Slot, c: $crate::__core::Slot) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::DirectUnmap, |k| $crate::__core::Kernel::direct_unmap(k, f, c))
            }
            fn save_caller(&mut self, s: $crate::__core::Slot) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::SaveCaller, |k| $crate::__core::Kernel::save_caller(k, s))
            }
            fn reply_saved(&mut self, s: $crate::__core::Slot, r: Option<&$crate::__protocol::Reply>) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::ReplySaved, |k| $crate::__core::Kernel::reply_saved(k, s, r))
            }
            fn frame_zero(&mut self, f: $crate::__core::Slot) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::FrameZero, |k| $crate::__core::Kernel::frame_zero(k, f))
            }
            fn frame_copy(&mut self, s: $crate::__core::Slot, so: u64, d: $crate::__core::Slot, doff: u64, l: u64) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::FrameCopy, |k| $crate::__core::Kernel::frame_copy(k, s, so, d, doff, l))
            }
            fn frame_write(&mut self, f: $crate::__core::Slot, o: u64, data: &[u8]) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::FrameWrite, |k| $crate::__core::Kernel::frame_write(k, f, o, data))
            }
            fn frame_read(&mut self, f: $crate::__core::Slot, o: u64, buf: &mut [u8]) -> $crate::__core::KResult {
                $crate::Around::around(self, $crate::Op::FrameRead, |k| $crate::__core::Kernel::frame_read(k, f, o, buf))
            }
        }
    };
}
