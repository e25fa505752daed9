//! Call counters and failure injection.
//!
//! Every call of a [`mem_core::Kernel`] method is one [`Op`]; [`KernelStats`] counts them
//! (in total and per kind), and the [`Injector`] can make a chosen call fail with a chosen
//! error before it has any effect. `kernel_impl.rs` drives both through
//! `ModelKernel::enter`/`exit`; `model.rs` exposes the public knobs.

use core::ops::Sub;

use mem_core::KernelError;

/// The kind of a kernel call: one per [`mem_core::Kernel`] method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    UntypedRetype,
    AsidAssign,
    PageTableMap,
    PageTableUnmap,
    PageMap,
    PageUnmap,
    PagePaddr,
    CapCopy,
    CapDelete,
    FrameZero,
    FrameCopy,
    FrameWrite,
    FrameRead,
    CapRevoke,
    ServerMap,
    ServerTableMap,
    DirectMap,
    DirectUnmap,
    SaveCaller,
    ReplySaved,
}

impl Op {
    /// Every kind, in trait order.
    pub const ALL: [Op; 20] = [
        Op::UntypedRetype,
        Op::AsidAssign,
        Op::PageTableMap,
        Op::PageTableUnmap,
        Op::PageMap,
        Op::PageUnmap,
        Op::PagePaddr,
        Op::CapCopy,
        Op::CapDelete,
        Op::FrameZero,
        Op::FrameCopy,
        Op::FrameWrite,
        Op::FrameRead,
        Op::CapRevoke,
        Op::ServerMap,
        Op::ServerTableMap,
        Op::DirectMap,
        Op::DirectUnmap,
        Op::SaveCaller,
        Op::ReplySaved,
    ];

    /// Is this a seL4 invocation (as opposed to a frame data access, which the seL4 server
    /// performs through a mapping window)?
    pub const fn is_invocation(self) -> bool {
        !matches!(self, Op::FrameZero | Op::FrameCopy | Op::FrameWrite | Op::FrameRead)
    }
}

/// Call counters. Every trait call counts once in `total` and once in its kind's field,
/// whether it succeeds, fails or is failed by injection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KernelStats {
    pub total: u64,
    pub untyped_retype: u64,
    pub asid_assign: u64,
    pub page_table_map: u64,
    pub page_table_unmap: u64,
    pub page_map: u64,
    pub page_unmap: u64,
    pub page_paddr: u64,
    pub cap_copy: u64,
    pub cap_delete: u64,
    pub frame_zero: u64,
    pub frame_copy: u64,
    pub frame_write: u64,
    pub frame_read: u64,
    pub cap_revoke: u64,
    pub server_map: u64,
    pub server_table_map: u64,
    pub direct_map: u64,
    pub direct_unmap: u64,
    pub save_caller: u64,
    pub reply_saved: u64,
    /// Calls that returned an error (injected ones included).
    pub errors: u64,
    /// Calls failed by injection.
    pub injected: u64,
}

impl KernelStats {
    /// The counter of `op`.
    pub const fn count(&self, op: Op) -> u64 {
        match op {
            Op::UntypedRetype => self.untyped_retype,
            Op::AsidAssign => self.asid_assign,
            Op::PageTableMap => self.page_table_map,
            Op::PageTableUnmap => self.page_table_unmap,
            Op::PageMap => self.page_map,
            Op::PageUnmap => self.page_unmap,
            Op::PagePaddr => self.page_paddr,
            Op::CapCopy => self.cap_copy,
            Op::CapDelete => self.cap_delete,
            Op::FrameZero => self.frame_zero,
            Op::FrameCopy => self.frame_copy,
            Op::FrameWrite => self.frame_write,
            Op::FrameRead => self.frame_read,
            Op::CapRevoke => self.cap_revoke,
            Op::ServerMap => self.server_map,
            Op::ServerTableMap => self.server_table_map,
            Op::DirectMap => self.direct_map,
            Op::DirectUnmap => self.direct_unmap,
            Op::SaveCaller => self.save_caller,
            Op::ReplySaved => self.reply_saved,
        }
    }

    fn count_mut(&mut self, op: Op) -> &mut u64 {
        match op {
            Op::UntypedRetype => &mut self.untyped_retype,
            Op::AsidAssign => &mut self.asid_assign,
            Op::PageTableMap => &mut self.page_table_map,
            Op::PageTableUnmap => &mut self.page_table_unmap,
            Op::PageMap => &mut self.page_map,
            Op::PageUnmap => &mut self.page_unmap,
            Op::PagePaddr => &mut self.page_paddr,
            Op::CapCopy => &mut self.cap_copy,
            Op::CapDelete => &mut self.cap_delete,
            Op::FrameZero => &mut self.frame_zero,
            Op::FrameCopy => &mut self.frame_copy,
            Op::FrameWrite => &mut self.frame_write,
            Op::FrameRead => &mut self.frame_read,
            Op::CapRevoke => &mut self.cap_revoke,
            Op::ServerMap => &mut self.server_map,
            Op::ServerTableMap => &mut self.server_table_map,
            Op::DirectMap => &mut self.direct_map,
            Op::DirectUnmap => &mut self.direct_unmap,
            Op::SaveCaller => &mut self.save_caller,
            Op::ReplySaved => &mut self.reply_saved,
        }
    }

    /// Count one call of `op`.
    pub(crate) fn bump(&mut self, op: Op) {
        self.total += 1;
        *self.count_mut(op) += 1;
    }

    /// seL4 invocations only: `total` minus the frame data accesses.
    pub const fn invocations(&self) -> u64 {
        self.total - self.frame_zero - self.frame_copy - self.frame_write - self.frame_read
    }
}

/// `after - before`: the calls made in between (fields saturate at 0).
impl Sub for KernelStats {
    type Output = KernelStats;
    fn sub(self, o: KernelStats) -> KernelStats {
        let mut d = KernelStats {
            total: self.total.saturating_sub(o.total),
            errors: self.errors.saturating_sub(o.errors),
            injected: self.injected.saturating_sub(o.injected),
            ..KernelStats::default()
        };
        for op in Op::ALL {
            *d.count_mut(op) = self.count(op).saturating_sub(o.count(op));
        }
        d
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// The call whose 0-based index in `total` is this.
    Call(u64),
    /// The call of `op` whose 0-based index among calls of `op` is this.
    OpCall(Op, u64),
    /// Every call of `op` until cleared.
    Always(Op),
}

/// Pending failure injections.
#[derive(Clone, Debug, Default)]
pub(crate) struct Injector {
    pending: Vec<(Trigger, KernelError)>,
}

impl Injector {
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }
    pub(crate) fn at_call(&mut self, index: u64, e: KernelError) {
        self.pending.push((Trigger::Call(index), e));
    }
    pub(crate) fn at_op_call(&mut self, op: Op, index: u64, e: KernelError) {
        self.pending.push((Trigger::OpCall(op, index), e));
    }
    pub(crate) fn always(&mut self, op: Op, e: KernelError) {
        self.pending.push((Trigger::Always(op), e));
    }

    /// Should the call about to be counted (with the counters as they are before it) fail?
    /// One-shot triggers are consumed; triggers whose call has passed are dropped.
    pub(crate) fn check(&mut self, stats: &KernelStats, op: Op) -> Option<KernelError> {
        let (total, nth) = (stats.total, stats.count(op));
        let mut hit = None;
        self.pending.retain(|&(t, e)| {
            let (fires, keep) = match t {
                Trigger::Call(i) => (i == total, i > total),
                Trigger::OpCall(o, i) => (o == op && i == nth, o != op || i > nth),
                Trigger::Always(o) => (o == op, true),
            };
            if fires && hit.is_none() {
                hit = Some(e);
            }
            keep
        });
        hit
    }
}
