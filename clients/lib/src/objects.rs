//! System V shared memory, backend objects and statistics: the requests that act on
//! server-wide objects rather than on address ranges. Neighbours: `lib.rs`, `transport.rs`
//! (bulk data of backend reads and writes goes through the shared buffer).

use crate::*;

impl Client {
    // --- System V shared memory --------------------------------------------------------

    /// `shmget(key, size, shmflg)`: `None` is `IPC_PRIVATE`; `flags` holds `IPC_CREAT`,
    /// `IPC_EXCL` and the permission bits (`0o777`). Returns the shmid.
    pub fn shmget(&mut self, key: Option<u32>, size: u64, flags: i32) -> Result<u32, Errno> {
        self.id(&shmget_request(key, size, flags))
    }

    /// `shmat(shmid, addr, readonly ? SHM_RDONLY : 0)`; `None` lets the server choose.
    /// Returns the attach address.
    pub fn shmat(&mut self, shmid: u32, addr: Option<u64>, readonly: bool) -> Result<u64, Errno> {
        self.addr(&Request::ShmAt {
            shmid,
            addr,
            readonly,
        })
    }

    /// `shmdt(addr)`.
    pub fn shmdt(&mut self, addr: u64) -> Result<(), Errno> {
        self.unit(&Request::ShmDt { addr })
    }

    /// `shmctl(shmid, IPC_STAT)`.
    pub fn shmctl_stat(&mut self, shmid: u32) -> Result<ShmStat, Errno> {
        match self.value(&Request::ShmCtl {
            shmid,
            cmd: ShmCmd::Stat,
        })? {
            Value::ShmStat(s) => Ok(s),
            _ => Err(self.bad_reply()),
        }
    }

    /// `shmctl(shmid, IPC_RMID)`.
    pub fn shmctl_rmid(&mut self, shmid: u32) -> Result<(), Errno> {
        self.unit(&Request::ShmCtl {
            shmid,
            cmd: ShmCmd::Remove,
        })
    }

    /// `shmctl(shmid, IPC_SET)` with a new owner and permission bits.
    pub fn shmctl_set(&mut self, shmid: u32, uid: u32, gid: u32, mode: u16) -> Result<(), Errno> {
        self.unit(&Request::ShmCtl {
            shmid,
            cmd: ShmCmd::Set { uid, gid, mode },
        })
    }
    // --- Backend objects ---------------------------------------------------------------

    /// A request that does nothing (one round trip to the server).
    pub fn nop(&mut self) -> Result<(), Errno> {
        self.unit(&Request::Nop)
    }

    /// Create a zero-filled backend object of `size` bytes, owned by this client's uid/gid
    /// with permission bits `mode` (like a file's: read for reading and mapping, write for
    /// writing, shared writable mappings and msync); returns its id.
    pub fn backend_create(&mut self, size: u64, mode: u16) -> Result<u32, Errno> {
        self.id(&Request::BackendCreate { size, mode })
    }

    /// Write `data` into backend object `id` at `offset` (through the shared buffer, in
    /// pieces of at most [`DATA_BYTES`]).
    pub fn backend_write(&mut self, id: u32, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let mut done = 0usize;
        loop {
            let chunk = &data[done..data.len().min(done + DATA_BYTES)];
            let buf = self.put_data(0, chunk)?;
            let at = offset.checked_add(done as u64).ok_or(Errno::Overflow)?;
            self.unit(&Request::BackendWrite { id, offset: at, buf })?;
            done += chunk.len();
            if done >= data.len() {
                return Ok(());
            }
        }
    }

    /// Read `out.len()` bytes of backend object `id` at `offset` into `out` (through the
    /// shared buffer, in pieces of at most [`DATA_BYTES`]).
    pub fn backend_read(&mut self, id: u32, offset: u64, out: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0usize;
        loop {
            let n = (out.len() - done).min(DATA_BYTES);
            let buf = BufRef::new(DATA_OFFSET as u32, n as u32);
            let at = offset.checked_add(done as u64).ok_or(Errno::Overflow)?;
            let returned = self.call_with_buf(&Request::BackendRead { id, offset: at, buf }, Some(buf));
            let (value, back) = self.keep_error(returned)?;
            if value != Value::Unit {
                return Err(self.bad_reply());
            }
            // The server names the bytes it filled with the descriptor it hands back; take
            // them from there when it lies inside the requested range, else from `buf`.
            let src = match back {
                Some(d) if within(d, buf) && d.len() as usize == n => d.encoded_addr(),
                _ => DATA_OFFSET,
            };
            self.get_data(src, &mut out[done..done + n]);
            done += n;
            if done >= out.len() {
                return Ok(());
            }
        }
    }

    /// Destroy backend object `id`.
    pub fn backend_destroy(&mut self, id: u32) -> Result<(), Errno> {
        self.unit(&Request::BackendDestroy { id })
    }

    // --- Pagers ----------------------------------------------------------------------------

    /// Create a pager served by this client: faults on pages of areas mapped with
    /// [`Client::mmap_pager`] naming it come to [`Client::pager_wait`]. `mode`: who may map
    /// such areas (write bits, like a file's). Returns its id.
    pub fn pager_create(&mut self, mode: u16) -> Result<u32, Errno> {
        self.id(&Request::PagerCreate { mode })
    }

    /// Block until a fault for pager `id` needs an answer (at once if one is queued).
    pub fn pager_wait(&mut self, id: u32) -> Result<PagerFault, Errno> {
        match self.value(&Request::PagerWait { id })? {
            Value::PagerFault(f) => Ok(f),
            _ => Err(self.bad_reply()),
        }
    }

    /// Answer fault `token` with the page's contents (`page`: 4 KiB, through the shared
    /// buffer); the faulting thread resumes.
    pub fn pager_supply(&mut self, token: u32, page: &[u8]) -> Result<(), Errno> {
        let buf = self.put_data(0, page)?;
        self.unit(&Request::PagerReply { token, answer: PagerAnswer::Copy(buf) })
    }

    /// Answer fault `token` with a page of zeroes.
    pub fn pager_zero(&mut self, token: u32) -> Result<(), Errno> {
        self.unit(&Request::PagerReply { token, answer: PagerAnswer::Zero })
    }

    /// Refuse fault `token`: the faulting thread is reported and stays stopped.
    pub fn pager_fail(&mut self, token: u32) -> Result<(), Errno> {
        self.unit(&Request::PagerReply { token, answer: PagerAnswer::Fail })
    }
    // --- Statistics ----------------------------------------------------------------------

    /// Server statistics; the per-space counters are those of `target`.
    pub fn stats(&mut self, target: Target) -> Result<Stats, Errno> {
        match self.value(&Request::Stats { target })? {
            Value::Stats(s) => Ok(s),
            _ => Err(self.bad_reply()),
        }
    }
}
