//! The scenario driver: the root task's side of every scenario of `clients/SCENARIOS.md`,
//! one module each, run in order, each printing `PASS <name>` or `FAIL <name>: <why>`.
//!
//! A scenario creates its clients ([`Ctx::spawn`]), follows their reports and checks the
//! server's counters, and always destroys its clients again ([`Ctx::finish`]), so that the
//! last scenario, `reclaim`, can check that the server is back to its initial state. Once
//! the server has faulted nothing can be asked of it: the remaining scenarios fail at once.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use mem_protocol::system::ClientBoot;
use mem_protocol::{Stats, Target};

use mem_launcher::Proc;
use crate::ctx::Ctx;

mod adversary;
mod budget;
mod c_client;
mod clone;
mod device;
mod fixed_mmap;
mod heap;
mod hostile;
mod lazy_mmap;
mod libc;
mod mmap_hint;
mod mprotect;
mod msync;
mod munmap_hole;
mod pager;
mod query;
mod quota;
mod reclaim;
mod reset;
mod shm;
mod shm_clone;
mod threads;

/// Credentials of an ordinary client (uid, gid).
pub const USER: (u32, u32) = (1000, 1000);
/// Credentials of a client of another user.
pub const OTHER_USER: (u32, u32) = (2000, 2000);

type Run = fn(&mut Ctx) -> Result<(), String>;

/// Scenarios 1..=10, the adversaries (one per attack class of the isolation issue), the
/// pager, the heap, the C client, threads, then device frames, mmap hints, a private
/// segment shared with a clone, reset, and the budget rules (the fork-and-exit chain, the
/// per-user shm share), in order; `reclaim` runs last, around all of them.
const SCENARIOS: [(&str, Run); 29] = [
    ("lazy-mmap", lazy_mmap::run),
    ("munmap-hole", munmap_hole::run),
    ("mprotect", mprotect::run),
    ("fixed-mmap", fixed_mmap::run),
    ("shm", shm::run),
    ("clone", clone::run),
    ("msync", msync::run),
    ("query", query::run),
    ("quota", quota::run),
    ("hostile", hostile::run),
    ("adv-ipcbuf", adversary::ipcbuf),
    ("adv-heap", adversary::heap),
    ("adv-dos", adversary::dos),
    ("adv-quota", adversary::quota),
    ("adv-backend", adversary::backend),
    ("adv-fault", adversary::fault),
    ("adv-info", adversary::info),
    ("pager", pager::run),
    ("heap", heap::run),
    ("c-client", c_client::run),
    ("threads", threads::run),
    ("device", device::run),
    ("mmap-hint", mmap_hint::run),
    ("shm-clone", shm_clone::run),
    ("reset", reset::run),
    ("budget-chain", budget::chain),
    ("shm-share", budget::shm_share),
    ("sqlite", libc::sqlite),
    ("lua", libc::lua),
];

/// Number of scenarios (reclaim included).
pub const COUNT: usize = SCENARIOS.len() + 1;

/// Run every scenario; returns (passed, total).
#[cfg_attr(feature = "bench", allow(dead_code))]
pub fn run_all(ctx: &mut Ctx) -> (usize, usize) {
    let before: Result<Stats, String> = ctx.sys_stats();
    let mut passed = 0;
    let mut report = |name: &str, r: Result<(), String>| match r {
        Ok(()) => {
            passed += 1;
            sel4::debug_println!("PASS {name}");
        }
        Err(why) => sel4::debug_println!("FAIL {name}: {why}"),
    };
    for (name, run) in SCENARIOS {
        let r = match &ctx.server_dead {
            Some(why) => Err(why.clone()),
            None => run(ctx).map_err(|e| {
                ctx.check_dead();
                ctx.server_dead.clone().unwrap_or(e)
            }),
        };
        report(name, r);
    }
    let r = match &ctx.server_dead {
        Some(why) => Err(why.clone()),
        None => reclaim::run(ctx, before),
    };
    report("reclaim", r);
    (passed, COUNT)
}

impl Ctx {
    /// Create and start a client running `scenario` with `arg` / `peer`.
    pub fn spawn(&mut self, scenario: u32, arg: u64, peer: u32, cred: (u32, u32), quota: u64) -> Result<Proc, String> {
        let badge = self.new_badge()?;
        let boot = ClientBoot { badge, scenario, arg, peer };
        self.create_client(badge, cred.0, cred.1, quota, boot)
            .map_err(|e| format!("creating client {badge} (scenario {scenario}, arg {arg}): {e}"))
    }

    /// [`Ctx::spawn`] of the `libc-client` program (C programs on picolibc).
    pub fn spawn_libc(&mut self, scenario: u32, arg: u64, cred: (u32, u32), quota: u64) -> Result<Proc, String> {
        let badge = self.new_badge()?;
        let boot = ClientBoot { badge, scenario, arg, peer: 0 };
        let elf = self.libc_elf;
        self.create_client_from(elf, badge, cred.0, cred.1, quota, boot)
            .map_err(|e| format!("creating libc client {badge} (scenario {scenario}, arg {arg}): {e}"))
    }

    /// Destroy `procs` (unless the server is dead: then nothing can be asked of it) and
    /// combine the scenario's result with theirs.
    pub fn finish(&mut self, procs: Vec<Proc>, r: Result<(), String>) -> Result<(), String> {
        self.check_dead();
        if self.server_dead.is_some() {
            return r;
        }
        let mut r = r;
        for p in procs {
            let badge = p.badge;
            if let Err(e) = self.destroy_client(p) {
                if r.is_ok() {
                    r = Err(format!("destroying client {badge}: {e}"));
                }
            }
        }
        r
    }

    /// Clone `parent`'s space into a new client (`DEFAULT_QUOTA`), run `check` on it, give
    /// it its own boot record (`scenario`, `arg`, `peer`) and start the program in it; if
    /// anything fails the child's space goes again.
    pub fn start_clone(
        &mut self,
        parent: u32,
        scenario: u32,
        arg: u64,
        peer: u32,
        check: impl FnOnce(&mut Ctx, u32) -> Result<(), String>,
    ) -> Result<Proc, String> {
        let child = self.new_badge()?;
        let vspace = self.clone_space(parent, child, crate::DEFAULT_QUOTA)?;
        let started = (|| {
            check(self, child)?;
            let unmap = mem_protocol::Request::Munmap { target: Target::Client(child), addr: mem_protocol::system::CLIENT_BOOT_VADDR, len: crate::PAGE };
            self.admin.unit(&unmap)?;
            self.put_boot(child, &crate::ctx::encode_boot(&ClientBoot { badge: child, scenario, arg, peer })?)?;
            let entry = mem_launcher::Launcher::elf_entry(self.client_elf)?;
            let report = Some(self.report_ep);
            self.start_client(child, vspace, entry, report)
        })();
        if started.is_err() {
            self.abandon_space(child, vspace);
        }
        started
    }

    /// `Stats` of one client.
    pub fn client_stats(&mut self, badge: u32) -> Result<Stats, String> {
        self.admin.stats(Target::Client(badge))
    }
}

/// Run `body` with `p`, then destroy `p`.
pub fn with_client(ctx: &mut Ctx, p: Proc, body: impl FnOnce(&mut Ctx, u32) -> Result<(), String>) -> Result<(), String> {
    let badge = p.badge;
    let r = body(ctx, badge);
    ctx.finish(alloc::vec![p], r)
}
