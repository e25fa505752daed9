//! Test harness: a `MemCore` on the seL4 host model plus a "CPU" that performs client
//! loads and stores through the model's page tables, sending each fault to the core and
//! retrying, exactly as a client thread on seL4 would experience it.
#![allow(dead_code)]

use mem_core::{Access, Config, Cred, MemCore, Unresolved, UntypedDesc};
use mem_model::{ModelConfig, ModelKernel};

pub type Core = MemCore<ModelKernel>;

pub const ADMIN: u32 = 0;

pub struct H {
    pub core: Core,
    pub cfg: ModelConfig,
}

/// Untyped descriptors for the core, from the model configuration.
pub fn untypeds(cfg: &ModelConfig) -> Vec<UntypedDesc> {
    cfg.untypeds
        .iter()
        .map(|u| UntypedDesc { slot: u.slot, paddr: u.paddr, size_bits: u.size_bits, device: u.device })
        .collect()
}

impl H {
    /// riscv64 geometry with `ram` bytes of RAM, default config.
    pub fn new(ram: u64) -> H {
        Self::with(ModelConfig::riscv64(ram), |_| {})
    }

    pub fn with(mcfg: ModelConfig, tweak: impl FnOnce(&mut Config)) -> H {
        let mut cfg = Config::new(mcfg.geometry);
        cfg.user_hi = cfg.user_hi.min(mcfg.user_top);
        cfg.admins = vec![ADMIN];
        tweak(&mut cfg);
        let first = mcfg.first_free_slot();
        let slots = mcfg.cnode_slots;
        let uts = untypeds(&mcfg);
        let core = MemCore::new(ModelKernel::new(mcfg.clone()), cfg, &uts, first, slots);
        H { core, cfg: mcfg }
    }

    pub fn client(&mut self, id: u32, uid: u32, gid: u32, quota: u64) {
        self.core.create_space(id, Cred { uid, gid }, quota).expect("create space");
    }

    fn vs(&self, c: u32) -> u32 {
        self.core.vspace_of(c).expect("client has a space")
    }

    /// Store `data` at `vaddr` as client `c`.
    pub fn write(&mut self, c: u32, vaddr: u64, data: &[u8]) -> Result<(), Unresolved> {
        for _ in 0..(data.len() / 4096 + 4) * 4 {
            let vs = self.vs(c);
            match self.core.kernel_mut().user_write(vs, vaddr, data) {
                Ok(()) => return Ok(()),
                Err(f) => {
                    self.core.handle_fault(c, f.vaddr, f.access)?;
                }
            }
        }
        panic!("write at {vaddr:#x} keeps faulting");
    }

    /// Load `len` bytes at `vaddr` as client `c`.
    pub fn read(&mut self, c: u32, vaddr: u64, len: usize) -> Result<Vec<u8>, Unresolved> {
        let mut buf = vec![0; len];
        for _ in 0..(len / 4096 + 4) * 4 {
            let vs = self.vs(c);
            match self.core.kernel().user_read(vs, vaddr, &mut buf) {
                Ok(()) => return Ok(buf),
                Err(f) => {
                    self.core.handle_fault(c, f.vaddr, f.access)?;
                }
            }
        }
        panic!("read at {vaddr:#x} keeps faulting");
    }

    pub fn read_u64(&mut self, c: u32, vaddr: u64) -> Result<u64, Unresolved> {
        Ok(u64::from_le_bytes(self.read(c, vaddr, 8)?.try_into().unwrap()))
    }

    pub fn write_u64(&mut self, c: u32, vaddr: u64, v: u64) -> Result<(), Unresolved> {
        self.write(c, vaddr, &v.to_le_bytes())
    }

    /// Can client `c` access `vaddr` without any fault (already mapped with the rights)?
    pub fn accessible(&self, c: u32, vaddr: u64, access: Access) -> bool {
        self.core.kernel().user_access(self.vs(c), vaddr, access).is_ok()
    }

    /// The core's own invariants, and its records agree with the kernel model's mappings.
    pub fn check(&self) {
        self.core.check_invariants().unwrap_or_else(|e| panic!("invariant: {e}"));
        for c in self.clients() {
            let vs = self.vs(c);
            for m in self.core.mappings(c) {
                let t = self.core.kernel().translate(vs, m.vaddr);
                if m.rights.is_empty() {
                    assert!(t.is_none(), "client {c}: {:#x} should not be mapped in hardware", m.vaddr);
                    continue;
                }
                let t = t.unwrap_or_else(|| panic!("client {c}: {:#x} recorded but not mapped", m.vaddr));
                assert_eq!(t.size, m.size, "client {c}: page size at {:#x}", m.vaddr);
                let want = if m.rights.writable() { m.rights.union(mem_core::Prot::READ) } else { m.rights };
                let got = if t.prot.writable() { t.prot.union(mem_core::Prot::READ) } else { t.prot };
                assert_eq!(
                    got.without(mem_core::Prot::EXEC),
                    want.without(mem_core::Prot::EXEC),
                    "client {c}: rights at {:#x}",
                    m.vaddr
                );
            }
            let recorded: usize = self.core.mappings(c).iter().filter(|m| !m.rights.is_empty()).count();
            let in_model = self.core.kernel().mappings(vs).len();
            assert_eq!(recorded, in_model, "client {c}: recorded vs hardware mappings");
        }
    }

    pub fn clients(&self) -> Vec<u32> {
        (0..4096).filter(|&c| self.core.has_space(c)).collect()
    }

    pub fn frames_in_use(&self) -> u64 {
        self.core.stats(None).unwrap().frames_in_use
    }
}

/// Stronger agreement check than [`H::check`]: every recorded hardware mapping maps the
/// recorded frame (its cap names the same object as the frame's original cap), and the
/// model's translation of its address leads to that object.
pub fn check_frames(h: &H) {
    let k = h.core.kernel();
    for c in h.clients() {
        let vs = h.core.vspace_of(c).expect("client has a space");
        for m in h.core.mappings(c) {
            let obj = k.cap_object(m.frame);
            assert!(obj.is_some(), "client {c}: frame slot {} of {:#x} holds no frame", m.frame, m.vaddr);
            assert_eq!(k.cap_object(m.map_slot), obj, "client {c}: map cap of {:#x} names another object", m.vaddr);
            if !m.rights.is_empty() {
                let t = k.translate(vs, m.vaddr).expect("recorded mapping is mapped");
                assert_eq!(Some(t.frame_object), obj, "client {c}: {:#x} maps another frame", m.vaddr);
            }
        }
    }
}

/// splitmix64: deterministic random numbers for the generated tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// Uniform in `[0, n)`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

// ---- pagers (`tests/pager.rs`, `tests/mutants.rs`) ------------------------------------

/// A private area of `pages` pages served by `pager`, mapped by client `c`.
pub fn pager_area(h: &mut H, c: u32, pager: u32, pages: u64) -> u64 {
    let mut m = mem_core::mmap::MmapArgs::anon(pages * 4096, mem_core::Prot::RW);
    m.backing = mem_protocol::Backing::Pager { id: pager };
    h.core.mmap(c, &m).unwrap()
}

/// A read fault of thread `t` of client `c` at `addr` (what the server loop does).
pub fn pager_fault(h: &mut H, c: u32, addr: u64, t: u64) -> Result<u32, Unresolved> {
    h.core.kernel_mut().set_caller(Some(t));
    let r = h.core.handle_fault(c, addr, Access::Read);
    h.core.kernel_mut().set_caller(None);
    r
}

/// `PagerWait` by thread `t` of `owner` on `pager`.
pub fn pager_wait_as(h: &mut H, owner: u32, pager: u32, t: u64) -> Result<Option<mem_protocol::PagerFault>, mem_core::Errno> {
    h.core.kernel_mut().set_caller(Some(t));
    let r = h.core.pager_wait(owner, pager);
    h.core.kernel_mut().set_caller(None);
    r
}

/// The replies the model delivered to saved callers since the last call.
pub fn delivered(h: &mut H) -> Vec<(u64, Option<mem_protocol::Reply>)> {
    h.core.kernel_mut().take_delivered()
}

/// No saved reply cap, no pending pager fault, invariants hold.
pub fn pager_settled(h: &mut H) {
    assert_eq!(h.core.kernel().saved_replies(), 0, "saved reply caps left");
    assert_eq!(h.core.stats(None).unwrap().pager_pending, 0);
    h.check();
}
