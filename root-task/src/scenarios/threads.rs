//! Scenario threads: one client with several threads on several cores (clients/SCENARIOS.md
//! #28). At the client's STEP(1, [entry, stacks, stack size, workers]) the root task starts
//! `workers` worker threads and one victim thread, alternating cores; then it collects, in
//! any order, each worker's STEP(10 + id, [verdict]) (verdict 0; never answered), the
//! server's note that the victim's fault on its unmapped area is unresolved (NO_AREA, at the
//! address of the main thread's STEP(2, [addr]) plus one page), and the main thread's
//! STEP(2); answers that and expects PASS. Destroying the client reclaims every thread.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use mem_protocol::system::UNRESOLVED_NO_AREA;

use super::USER;
use mem_launcher::{ThreadStart, CORES};
use crate::ctx::{Ctx, Event};
use crate::DEFAULT_QUOTA;

pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let mut p = ctx.spawn(28, 0, 0, USER, DEFAULT_QUOTA)?;
    let b = p.badge;
    let r = (|| {
        let (v, reply) = ctx.expect_step(b, 1)?;
        let (entry, stacks, stack, workers) = match v[..] {
            [e, s, z, w, ..] if w >= 1 && w + 1 <= mem_protocol::system::CLIENT_MAX_THREADS => (e, s, z, w),
            _ => return Err(format!("bad STEP(1) values {v:x?}")),
        };
        for id in 1..=workers + 1 {
            let t = ThreadStart { id, pc: entry, sp: stacks + id * stack, args: [id, mem_launcher::client::thread_ipc_vaddr(id)], core: id };
            ctx.add_thread(&mut p, t)?;
        }
        ctx.answer(reply);
        let mut verdicts: Vec<(u64, u64)> = Vec::new();
        let mut note: Option<u64> = None;
        let mut main: Option<(u64, usize)> = None;
        while verdicts.len() < workers as usize || note.is_none() || main.is_none() {
            match ctx.next_event() {
                Event::Step { badge, step, values, reply } if badge == b && (11..=10 + workers).contains(&step) => {
                    ctx.drop_reply(reply);
                    verdicts.push((step - 10, values.first().copied().unwrap_or(u64::MAX)));
                }
                Event::Step { badge, step: 2, values, reply } if badge == b => {
                    main = Some((values.first().copied().unwrap_or(0), reply));
                }
                Event::Unresolved { client, addr, reason } if client == b && reason == UNRESOLVED_NO_AREA => note = Some(addr),
                e => {
                    if let Some((_, r)) = main {
                        ctx.drop_reply(r);
                    }
                    return Err(format!("unexpected event {e:x?}"));
                }
            }
        }
        let (victim, reply) = main.expect("loop ends with it");
        if let Some(&(id, v)) = verdicts.iter().find(|&&(_, v)| v != 0) {
            ctx.drop_reply(reply);
            return Err(format!("worker {id} failed with code {v}"));
        }
        if note != Some(victim + 4096) {
            ctx.drop_reply(reply);
            return Err(format!("victim's note at {note:x?}, its area at {victim:#x}"));
        }
        ctx.answer(reply);
        ctx.expect_pass(b)?;
        sel4::debug_println!("root-task: threads: {} workers + main + victim on {CORES} cores", workers);
        Ok(())
    })();
    ctx.finish(alloc::vec![p], r)
}
