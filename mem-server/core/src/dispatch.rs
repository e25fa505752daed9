//! Request dispatch: one decoded protocol [`Request`] from a client → one core call → one
//! [`Reply`]. This is the whole server loop body minus the IPC, so host tests exercise
//! exactly what the seL4 component runs.
//!
//! Privilege: acting on another client's space (`Target::Client`), creating, destroying and
//! cloning spaces need an administrator (`Config::admins`, the root task); others get EPERM.
//! Bulk data lives in the caller's shared buffer, named by `BufRef`; a reference outside the
//! buffer is EFAULT. Neighbours: `mem-protocol` (types, codec), every operation file.

use mem_protocol::{
    BufRef, Errno, Reply, Request, Share, ShmCmd, Target, Value,
};

use crate::kernel::Kernel;
use crate::mmap::MmapArgs;
use crate::space::Cred;
use crate::MemCore;

fn buf_range(b: BufRef, len: usize) -> Result<core::ops::Range<usize>, Errno> {
    if !b.fits_in(len as u64) {
        return Err(Errno::Fault);
    }
    Ok(b.offset as usize..b.offset as usize + b.len as usize)
}

impl<K: Kernel> MemCore<K> {
    /// The client a request acts on.
    pub fn resolve_target(&self, caller: u32, t: Target) -> Result<u32, Errno> {
        match t {
            Target::Own => Ok(caller),
            Target::Client(c) if c == caller => Ok(c),
            Target::Client(c) if self.is_admin(caller) => Ok(c),
            Target::Client(_) => Err(Errno::Perm),
        }
    }

    fn admin(&self, caller: u32) -> Result<(), Errno> {
        if self.is_admin(caller) {
            Ok(())
        } else {
            Err(Errno::Perm)
        }
    }

    /// Handle one request from `caller` (the badge of the endpoint it came through).
    /// `buf` is the caller's shared buffer.
    pub fn dispatch(&mut self, caller: u32, req: &Request, buf: &mut [u8]) -> Reply {
        self.dispatch_inner(caller, req, buf).into()
    }

    fn dispatch_inner(&mut self, caller: u32, req: &Request, buf: &mut [u8]) -> Result<Value, Errno> {
        let unit = |r: Result<(), Errno>| r.map(|_| Value::Unit);
        match *req {
            Request::CreateSpace { client, uid, gid, quota_pages } => {
                self.admin(caller)?;
                self.create_space(client, Cred { uid, gid }, quota_pages).map(|_| Value::Unit)
            }
            Request::DestroySpace { client } => {
                self.admin(caller)?;
                unit(self.destroy_space(client))
            }
            Request::Region { target, addr, len, prot, data } => {
                let c = self.resolve_target(caller, target)?;
                let bytes: &[u8] = match data {
                    Some(b) => &buf[buf_range(b, buf.len())?],
                    None => &[],
                };
                self.region(c, addr, len, prot, bytes).map(Value::Addr)
            }
            Request::Mmap { target, addr, len, prot, max_prot, placement, share, backing, populate } => {
                let c = self.resolve_target(caller, target)?;
                let a = MmapArgs { addr, len, prot, max_prot, placement, shared: share == Share::Shared, backing, populate };
                self.mmap(c, &a).map(Value::Addr)
            }
            Request::Munmap { target, addr, len } => {
                let c = self.resolve_target(caller, target)?;
                unit(self.munmap(c, addr, len))
            }
            Request::Mprotect { target, addr, len, prot } => {
                let c = self.resolve_target(caller, target)?;
                unit(self.mprotect(c, addr, len, prot))
            }
            Request::Msync { target, addr, len, flags } => {
                let c = self.resolve_target(caller, target)?;
                unit(self.msync(c, addr, len, flags))
            }
            Request::Query { target, addr } => {
                let c = self.resolve_target(caller, target)?;
                self.query(c, addr).map(Value::Query)
            }
            Request::MapPhys { target, addr, placement, paddr, len, prot } => {
                let c = self.resolve_target(caller, target)?;
                self.map_phys(c, addr, placement, paddr, len, prot).map(Value::Addr)
            }
            Request::Populate { target, addr, len } => {
                let c = self.resolve_target(caller, target)?;
                unit(self.populate(c, addr, len))
            }
            Request::Reset { target } => {
                let c = self.resolve_target(caller, target)?;
                unit(self.reset(c))
            }
            Request::Clone { source, child, quota_pages } => {
                self.admin(caller)?;
                let p = self.resolve_target(caller, source)?;
                self.clone_space(p, child, quota_pages).map(|_| Value::Unit)
            }
            Request::ShmGet { key, size, create, exclusive, mode } => {
                self.shmget(caller, key, size, create, exclusive, mode).map(Value::Id)
            }
            Request::ShmAt { shmid, addr, readonly } => self.shmat(caller, shmid, addr, readonly).map(Value::Addr),
            Request::ShmDt { addr } => unit(self.shmdt(caller, addr)),
            Request::ShmCtl { shmid, cmd } => match cmd {
                ShmCmd::Stat => self.shm_stat(caller, shmid).map(Value::ShmStat),
                ShmCmd::Remove => unit(self.shm_remove(caller, shmid)),
                ShmCmd::Set { uid, gid, mode } => unit(self.shm_set(caller, shmid, uid, gid, mode)),
            },
            Request::BackendCreate { size } => self.backend_create(caller, size).map(Value::Id),
            Request::BackendWrite { id, offset, buf: b } => {
                let r = buf_range(b, buf.len())?;
                unit(self.backend_write(caller, id, offset, &buf[r]))
            }
            Request::BackendRead { id, offset, buf: b } => {
                let r = buf_range(b, buf.len())?;
                unit(self.backend_read(caller, id, offset, &mut buf[r]))
            }
            Request::BackendDestroy { id } => unit(self.backend_destroy(caller, id)),
            Request::ExportFrame { target, addr } => {
                // The seL4 component attaches the cap; here only the checks.
                self.admin(caller)?;
                let c = self.resolve_target(caller, target)?;
                self.frame_of(c, addr).map(|_| Value::Unit)
            }
            Request::Stats { target } => {
                let c = self.resolve_target(caller, target)?;
                let who = if self.has_space(c) { Some(c) } else { None };
                self.stats(who).map(Value::Stats)
            }
        }
    }
}
