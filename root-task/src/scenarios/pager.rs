//! Scenario pager: a pager client (23) serves another client's area (24) from its own
//! store (clients/scenarios/src/s23_pager.rs).
//!
//! 1. The pager creates its pager and says its id (STEP 1); the consumer is started with it
//!    and the pager let go: the consumer reads 256 pages in a random order and checks every
//!    word while the pager answers each fault (pager STEP 2, consumer STEP 1, in any order).
//!    Meanwhile an intruder of another user (25) tries to map the pager's areas, wait for its
//!    faults, answer any of them and create pagers without end; it must be refused each
//!    time (PASS).
//! 2. The consumer is let go (the root task lets the clients run until they block): it reads
//!    one more page, whose fault stays pending at the pager (which no longer waits). A
//!    bystander (a lazy-mmap client) PASSes; the pager's Stats show exactly one pending
//!    fault.
//! 3. The pager is destroyed: the server reports the consumer's pending fault
//!    (UNRESOLVED_PAGER, at the page it touched) and keeps serving: a second bystander
//!    PASSes; then the consumer is destroyed.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use mem_protocol::system::UNRESOLVED_PAGER;

use super::{OTHER_USER, USER};
use mem_launcher::Proc;
use crate::ctx::{Ctx, Event};
use crate::PAGE;
use crate::DEFAULT_QUOTA;

/// Pages the pager serves (`s23_pager::SERVE`).
const SERVE: u64 = 256;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let pager = ctx.spawn(23, 0, 0, USER, DEFAULT_QUOTA)?;
    let pb = pager.badge;
    let mut procs = vec![pager];
    let r = steps(ctx, pb, &mut procs);
    ctx.finish(procs, r)
}

fn steps(ctx: &mut Ctx, pb: u32, procs: &mut alloc::vec::Vec<Proc>) -> Result<(), String> {
    let (values, reply) = ctx.expect_step(pb, 1)?;
    let id = values.first().copied().ok_or("pager: no id")?;
    let consumer = ctx.spawn(24, id, 0, USER, DEFAULT_QUOTA)?;
    let cb = consumer.badge;
    procs.push(consumer);
    // An intruder of another user tries the pager while it serves.
    let intruder = ctx.spawn(25, id, 0, OTHER_USER, DEFAULT_QUOTA)?;
    let ib = intruder.badge;
    procs.push(intruder);
    ctx.answer(reply);
    let (mut pager_wait, mut consumer_step, mut intruder_done) = (None, None, false);
    while pager_wait.is_none() || consumer_step.is_none() || !intruder_done {
        match ctx.next_event() {
            Event::Pass { badge, .. } if badge == ib => intruder_done = true,
            Event::Step { badge, step: 2, reply, .. } if badge == pb => pager_wait = Some(reply),
            Event::Step { badge, step: 1, values, reply } if badge == cb => {
                consumer_step = Some((values.first().copied().unwrap_or(0), reply))
            }
            Event::Fail { badge, detail, values } => {
                return Err(format!("client {badge} reported FAIL (detail {detail}, values {values:x?})"))
            }
            e => return Err(format!("pager phase: unexpected {e:x?}")),
        }
    }
    let (base, reply) = consumer_step.unwrap_or_default();
    // The consumer touches one more page (and blocks there); a bystander runs after.
    ctx.answer(reply);
    ctx.let_clients_run();
    bystander(ctx)?;
    let pending = ctx.client_stats(pb)?.pager_pending;
    if pending != 1 {
        let all = ctx.admin.stats(mem_protocol::Target::Own)?;
        let c = ctx.client_stats(cb)?;
        return Err(format!("the pager has {pending} pending faults, want 1 (all {all:?}, consumer {c:?})"));
    }
    // The pager goes (it waits at STEP 2) while that fault is pending.
    if let Some(r) = pager_wait {
        ctx.drop_reply(r);
    }
    let pager = procs.remove(0);
    ctx.finish(vec![pager], Ok(()))?;
    let (addr, reason) = ctx.expect_unresolved(cb)?;
    if reason != UNRESOLVED_PAGER || addr != base + SERVE * PAGE {
        return Err(format!("note for the consumer: addr {addr:#x} reason {reason}, want {:#x} PAGER", base + SERVE * PAGE));
    }
    bystander(ctx)
}

/// A lazy-mmap client must PASS.
fn bystander(ctx: &mut Ctx) -> Result<(), String> {
    let p = ctx.spawn(1, 0, 0, USER, DEFAULT_QUOTA)?;
    let b = p.badge;
    let r = ctx.expect_pass(b);
    ctx.finish(vec![p], r)
}
