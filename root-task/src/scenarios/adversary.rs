//! The adversary scenarios (isolation issue), one per attack class: an attacker, a victim
//! and a bystander run at the same time (clients/scenarios/src/s12_adversary.rs).
//!
//! 1. The victim writes its pattern and waits (STEP 1).
//! 2. The attacker (another user) and a bystander (a third user) start together; both must
//!    PASS: the attacker got the answers isolation requires, the bystander could mmap,
//!    shmget and BackendCreate while the attacker was alive. Unresolved-fault notes of the
//!    attacker are counted (the fault class expects them), any other event fails.
//! 3. The attacker is destroyed; a second bystander must PASS.
//! 4. The victim goes on: its memory (and secret backend) must be untouched; PASS.
//! 5. Everything destroyed (plus a cleaner for what the attacker left on purpose): the
//!    server's counters (frames, slots, spaces, shm segments) are back to their values
//!    before the scenario, and the server never died.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use mem_protocol::Stats;

use super::USER;
use mem_launcher::Proc;
use crate::ctx::{Ctx, Event};
use crate::DEFAULT_QUOTA;

/// The attacker and the bystander run as users of their own.
const ATTACKER: (u32, u32) = (2000, 2000);
const BYSTANDER: (u32, u32) = (3000, 3000);
/// The key the quota attacker leaves behind (`s12_adversary::LEFT_KEY`).
const LEFT_KEY: u64 = 0xad_0004;

pub fn ipcbuf(ctx: &mut Ctx) -> Result<(), String> {
    attack(ctx, 1, |_, _| Ok(()))
}

pub fn heap(ctx: &mut Ctx) -> Result<(), String> {
    attack(ctx, 2, |_, _| Ok(()))
}

pub fn dos(ctx: &mut Ctx) -> Result<(), String> {
    attack(ctx, 3, |_, _| Ok(()))
}

pub fn quota(ctx: &mut Ctx) -> Result<(), String> {
    attack(ctx, 4, |ctx, before| {
        // The segment outlives its creator, charged to the creator's user and bounded: its
        // 1,024 touched pages are all that is left.
        let s = ctx.sys_stats()?;
        if s.shm_segments != before.shm_segments + 1 {
            return Err(format!("expected the attacker's segment to live on: {} segments", s.shm_segments));
        }
        let extra = s.frames_in_use.saturating_sub(before.frames_in_use);
        if !(1024..=1024 + 8).contains(&extra) {
            return Err(format!("{extra} frames left behind, expected the segment's 1,024 (+ its tables)"));
        }
        // A client of that user removes it.
        let p = ctx.spawn(15, LEFT_KEY, 0, ATTACKER, DEFAULT_QUOTA)?;
        let badge = p.badge;
        let r = ctx.expect_pass(badge);
        ctx.finish(alloc::vec![p], r)
    })
}

pub fn backend(ctx: &mut Ctx) -> Result<(), String> {
    attack(ctx, 5, |_, _| Ok(()))
}

pub fn fault(ctx: &mut Ctx) -> Result<(), String> {
    attack(ctx, 6, |_, _| Ok(()))
}

pub fn info(ctx: &mut Ctx) -> Result<(), String> {
    attack(ctx, 7, |_, _| Ok(()))
}

/// The counters that must come back.
fn figures(s: &Stats) -> (u64, u64, u64, u64) {
    (s.frames_in_use, s.slots_in_use, s.spaces, s.shm_segments)
}

/// Run attack class `class`; `after` runs once the attacker is gone (with the counters
/// from before the attacker started, the victim alive) and must leave the system clean.
fn attack(ctx: &mut Ctx, class: u64, after: impl FnOnce(&mut Ctx, &Stats) -> Result<(), String>) -> Result<(), String> {
    let before = ctx.sys_stats()?;
    let victim = ctx.spawn(13, class, 0, USER, DEFAULT_QUOTA)?;
    let vb = victim.badge;
    let (values, vreply) = match ctx.expect_step(vb, 1) {
        Ok(x) => x,
        Err(e) => return ctx.finish(alloc::vec![victim], Err(format!("victim: {e}"))),
    };
    let peer = if class == 5 { values.get(1).copied().unwrap_or(0) as u32 } else { vb };
    // With the victim in place: what the attacker leaves must be measured against this.
    let with_victim = ctx.sys_stats()?;
    let mut procs = alloc::vec![victim];
    let r = run_attacker(ctx, class, peer, &mut procs);
    // The attacker and the first bystander go (the victim stays: it is waiting).
    let victim = procs.remove(0);
    let r = ctx.finish(procs, r);
    let r = r.and_then(|()| after(ctx, &with_victim));
    let r = r.and_then(|()| {
        let p = ctx.spawn(14, 0, 0, BYSTANDER, DEFAULT_QUOTA)?;
        let badge = p.badge;
        let r = ctx.expect_pass(badge).map_err(|e| format!("bystander after the attacker: {e}"));
        ctx.finish(alloc::vec![p], r)
    });
    ctx.answer(vreply);
    let r = r.and_then(|()| ctx.expect_pass(vb).map_err(|e| format!("victim: {e}")));
    let r = ctx.finish(alloc::vec![victim], r);
    r?;
    let now = ctx.sys_stats()?;
    if figures(&now) != figures(&before) {
        return Err(format!(
            "counters not back: (frames, slots, spaces, segments) {:?} after, {:?} before",
            figures(&now),
            figures(&before)
        ));
    }
    Ok(())
}

/// Start the attacker and a bystander together and wait for both to PASS.
fn run_attacker(ctx: &mut Ctx, class: u64, peer: u32, procs: &mut Vec<Proc>) -> Result<(), String> {
    let attacker = ctx.spawn(12, class, peer, ATTACKER, DEFAULT_QUOTA)?;
    let ab = attacker.badge;
    procs.push(attacker);
    let bystander = ctx.spawn(14, 0, 0, BYSTANDER, DEFAULT_QUOTA)?;
    let bb = bystander.badge;
    procs.push(bystander);
    let (mut a_done, mut b_done) = (false, false);
    let mut notes = 0u64;
    while !(a_done && b_done) {
        match ctx.next_event() {
            Event::Pass { badge, .. } if badge == ab => a_done = true,
            Event::Pass { badge, .. } if badge == bb => b_done = true,
            Event::Unresolved { client, .. } if client == ab && class == 6 => notes += 1,
            Event::Fail { badge, detail, values } => {
                let who = if badge == ab { "attacker" } else if badge == bb { "bystander" } else { "a client" };
                return Err(format!("{who} reported FAIL (detail {detail}, values {values:x?})"));
            }
            e => {
                if let Event::Step { reply, .. } = e {
                    ctx.drop_reply(reply);
                }
                if ctx.server_dead.is_some() {
                    return Err(ctx.server_dead.clone().unwrap_or_default());
                }
                return Err(format!("unexpected event while the attacker ran: {e:x?}"));
            }
        }
    }
    if class == 6 {
        // The forged faults were noted (one note, counted), never resolved for anyone else.
        let s = ctx.client_stats(ab)?;
        if notes == 0 || s.faults_unresolved < 100 {
            return Err(format!("forged faults: {notes} notes, {} unresolved counted", s.faults_unresolved));
        }
    }
    Ok(())
}
