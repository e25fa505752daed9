//! Scenario device: the administrator maps a device page of the QEMU `virt` board that the
//! kernel does not use — the real-time clock — into a driver client (`MapPhys` with
//! `Target::Client`), which reads and writes its registers (`clients/scenarios`
//! `s29_device.rs`). Around it: the driver's own `MapPhys` is EPERM (it checks that
//! itself); RAM the server owns, a frame the kernel keeps for itself (the interrupt
//! controller) and an address outside every device untyped are refused even to the
//! administrator, an executable device mapping is EINVAL; the mapping costs the driver no
//! page of quota (page tables only) and one cap slot, gone after munmap (Query fails, the
//! slot is back, the driver's next read of it is an unresolved fault) and after the client
//! is destroyed (frames and slots as before the scenario).

use alloc::format;
use alloc::string::String;

use mem_client::CallError;
use mem_protocol::system::{CLIENT_IPC_BUFFER_VADDR, UNRESOLVED_NO_AREA};
use mem_protocol::{Errno, Placement, Prot, QueryInfo, Request, Target, Value};

use super::{with_client, USER};
use crate::ctx::Ctx;
use crate::PAGE;
use crate::DEFAULT_QUOTA;

/// The RTC (PL031) and the GIC distributor, which the kernel keeps.
#[cfg(target_arch = "aarch64")]
const RTC: u64 = 0x0901_0000;
#[cfg(target_arch = "aarch64")]
const KERNEL_DEVICE: u64 = 0x0800_0000;
/// The RTC (Goldfish) and the PLIC, which the kernel keeps.
#[cfg(target_arch = "riscv64")]
const RTC: u64 = 0x0010_1000;
#[cfg(target_arch = "riscv64")]
const KERNEL_DEVICE: u64 = 0x0c00_0000;

/// Where the administrator maps the device page in the driver.
const AT: u64 = 0x3800_0000;

fn map_phys(ctx: &mut Ctx, client: u32, paddr: u64, prot: Prot) -> Result<Value, CallError> {
    ctx.admin.try_request(&Request::MapPhys { target: Target::Client(client), addr: AT, placement: Placement::FixedNoReplace, paddr, len: PAGE, prot })
}

fn query(ctx: &mut Ctx, client: u32, addr: u64) -> Result<QueryInfo, CallError> {
    match ctx.admin.try_request(&Request::Query { target: Target::Client(client), addr })? {
        Value::Query(q) => Ok(q),
        _ => Err(CallError::BadReply),
    }
}

fn refused(what: &str, r: Result<Value, CallError>, want: Errno) -> Result<(), String> {
    match r {
        Err(CallError::Op(e)) if e == want => Ok(()),
        r => Err(format!("MapPhys of {what}: {r:?}, want {want:?}")),
    }
}

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let before = ctx.sys_stats()?;
    // The boot record's `peer` is the device's address (it fits 32 bits on both boards).
    let p = ctx.spawn(29, AT, RTC as u32, USER, DEFAULT_QUOTA)?;
    let r = with_client(ctx, p, |ctx, b| {
        let (_, reply) = ctx.expect_step(b, 1)?;
        let s0 = match mapped(ctx, b) {
            Ok(s0) => {
                ctx.answer(reply);
                s0
            }
            Err(e) => {
                ctx.drop_reply(reply);
                return Err(e);
            }
        };
        let (_, reply) = ctx.expect_step(b, 2)?;
        let r = unmapped(ctx, b, s0);
        ctx.answer(reply);
        r?;
        let (addr, reason) = ctx.expect_unresolved(b)?;
        if reason != UNRESOLVED_NO_AREA || addr != AT {
            return Err(format!("after munmap the driver's read: note at {addr:#x} reason {reason}, want NO_AREA at {AT:#x}"));
        }
        // Mapped once more: destroying the client takes it away too.
        map_phys(ctx, b, RTC, Prot::RW).map_err(|e| format!("MapPhys again: {e:?}"))?;
        let s = ctx.client_stats(b)?;
        if s.slots_charged != s0 + 1 {
            return Err(format!("slots charged {} with the device mapped again, want {}", s.slots_charged, s0 + 1));
        }
        Ok(())
    });
    r?;
    let after = ctx.sys_stats()?;
    if (after.frames_free, after.slots_free, after.frames_in_use) != (before.frames_free, before.slots_free, before.frames_in_use) {
        return Err(format!("after the driver is destroyed: frames free {} -> {}, slots free {} -> {}, frames in use {} -> {}", before.frames_free, after.frames_free, before.slots_free, after.slots_free, before.frames_in_use, after.frames_in_use));
    }
    Ok(())
}

/// At the driver's STEP 1: the refusals, then the device page mapped at `AT`. Returns the
/// driver's slots charged before the mapping.
fn mapped(ctx: &mut Ctx, b: u32) -> Result<u64, String> {
    let ram = query(ctx, b, CLIENT_IPC_BUFFER_VADDR).map_err(|e| format!("Query of the IPC buffer: {e:?}"))?.paddr;
    refused("RAM the server owns", map_phys(ctx, b, ram, Prot::READ), Errno::Perm)?;
    refused("the kernel's interrupt controller", map_phys(ctx, b, KERNEL_DEVICE, Prot::READ), Errno::Perm)?;
    refused("an address outside every untyped", map_phys(ctx, b, u64::MAX & !(PAGE - 1), Prot::READ), Errno::Perm)?;
    refused("the RTC, executable", map_phys(ctx, b, RTC, Prot::READ.union(Prot::EXEC)), Errno::Inval)?;
    let s0 = ctx.client_stats(b)?;
    match map_phys(ctx, b, RTC, Prot::RW) {
        Ok(Value::Addr(a)) if a == AT => {}
        r => return Err(format!("MapPhys of the RTC at {AT:#x}: {r:?}")),
    }
    let s1 = ctx.client_stats(b)?;
    // Page tables on a new path (at most three levels below the root), never the page.
    if s1.charged_pages > s0.charged_pages + 3 || s1.slots_charged != s0.slots_charged + 1 {
        return Err(format!("the device mapping charged {} pages and {} slots: want page tables only and one slot", s1.charged_pages - s0.charged_pages, s1.slots_charged - s0.slots_charged));
    }
    let q = query(ctx, b, AT).map_err(|e| format!("Query of the device page: {e:?}"))?;
    if q.paddr != RTC || !q.shared {
        return Err(format!("Query of the device page: {q:x?}, want paddr {RTC:#x}, shared"));
    }
    Ok(s0.slots_charged)
}

/// At the driver's STEP 2 (it unmapped the page): gone, its slot back (`s0`: the slots
/// charged before the mapping).
fn unmapped(ctx: &mut Ctx, b: u32, s0: u64) -> Result<(), String> {
    if let Ok(q) = query(ctx, b, AT) {
        return Err(format!("after munmap the device page is still there: {q:x?}"));
    }
    let now = ctx.client_stats(b)?.slots_charged;
    if now != s0 {
        return Err(format!("after munmap {now} slots charged, want {s0} as before the mapping"));
    }
    Ok(())
}
