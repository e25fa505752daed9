//! Operation errors, one per Linux errno the server can return.
//!
//! `Errno` is what a *valid* request can fail with; a message that does not decode is a
//! [`crate::ProtocolError`] instead, so a client can always tell "you sent garbage" from
//! "the operation failed". Every variant maps 1:1 to a Linux errno number via
//! [`Errno::linux`], which the client library uses to give Linux-like return values.
//! The memory-server core (`mem-core`) returns these directly.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// An operation error with Linux errno semantics.
///
/// On the wire (postcard) a variant is sent as its declaration index, not its errno number;
/// use [`Errno::linux`] for the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
#[repr(u8)]
pub enum Errno {
    /// EPERM (1): operation not permitted (e.g. mapping physical memory without authority).
    Perm = 1,
    /// ENOENT (2): no such shm key / segment / backend object / address space.
    NoEnt = 2,
    /// ESRCH (3): no such client (address space) known to the server.
    Srch = 3,
    /// ENOMEM (12): out of memory, over quota, or the range is not (fully) mapped.
    NoMem = 12,
    /// EACCES (13): permission denied (shm mode/uid, rights above max protection).
    Acces = 13,
    /// EFAULT (14): bad address (outside the user range, kernel addresses).
    Fault = 14,
    /// EBUSY (16): resource busy (e.g. address space already exists for that client).
    Busy = 16,
    /// EEXIST (17): already exists (shm key with create+exclusive, fixed-no-replace overlap).
    Exist = 17,
    /// EINVAL (22): invalid argument (alignment, zero length, overflow, bad flags).
    Inval = 22,
    /// ENFILE (23): system-wide table full (shm segments, backend objects, address spaces).
    NFile = 23,
    /// ENOSPC (28): no space (shm identifiers exhausted, shm size limits).
    NoSpc = 28,
    /// EOVERFLOW (75): value too large (offset + length overflows the backend object).
    Overflow = 75,
    /// EIDRM (43): identifier removed (shm segment marked for removal).
    Idrm = 43,
    /// ENODEV (19): the backend does not support the operation.
    NoDev = 19,
    /// ENOSYS (38): operation not implemented by this server build.
    NoSys = 38,
    /// EAGAIN (11): the request was carried out in part — one bounded step of a long
    /// operation (munmap, populate, reset, destroy, shmdt of many pages or areas) — and is
    /// to be sent again, unchanged, to go on; the client library does so itself, so a
    /// program never sees it. Sending something else meanwhile is allowed: what was done
    /// stays done (every step leaves a state the whole operation could have passed through).
    Again = 11,
}

impl Errno {
    /// The Linux errno number for this error (positive, as in `errno.h`).
    pub const fn linux(self) -> i32 {
        self as u8 as i32
    }

    /// The error for a Linux errno number, if the server can return it.
    pub const fn from_linux(n: i32) -> Option<Self> {
        Some(match n {
            1 => Errno::Perm,
            2 => Errno::NoEnt,
            3 => Errno::Srch,
            12 => Errno::NoMem,
            13 => Errno::Acces,
            14 => Errno::Fault,
            16 => Errno::Busy,
            17 => Errno::Exist,
            19 => Errno::NoDev,
            22 => Errno::Inval,
            23 => Errno::NFile,
            28 => Errno::NoSpc,
            38 => Errno::NoSys,
            43 => Errno::Idrm,
            11 => Errno::Again,
            75 => Errno::Overflow,
            _ => return None,
        })
    }

    /// The symbolic name, as in `errno.h`.
    pub const fn name(self) -> &'static str {
        match self {
            Errno::Perm => "EPERM",
            Errno::NoEnt => "ENOENT",
            Errno::Srch => "ESRCH",
            Errno::NoMem => "ENOMEM",
            Errno::Acces => "EACCES",
            Errno::Fault => "EFAULT",
            Errno::Busy => "EBUSY",
            Errno::Exist => "EEXIST",
            Errno::Inval => "EINVAL",
            Errno::NFile => "ENFILE",
            Errno::NoSpc => "ENOSPC",
            Errno::Overflow => "EOVERFLOW",
            Errno::Idrm => "EIDRM",
            Errno::NoDev => "ENODEV",
            Errno::NoSys => "ENOSYS",
            Errno::Again => "EAGAIN",
        }
    }

    /// Every variant, for exhaustive tests.
    pub const ALL: [Errno; 16] = [
        Errno::Perm,
        Errno::NoEnt,
        Errno::Srch,
        Errno::NoMem,
        Errno::Acces,
        Errno::Fault,
        Errno::Busy,
        Errno::Exist,
        Errno::Inval,
        Errno::NFile,
        Errno::NoSpc,
        Errno::Overflow,
        Errno::Idrm,
        Errno::NoDev,
        Errno::NoSys,
        Errno::Again,
    ];
}

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Result of an operation.
pub type OpResult<T> = Result<T, Errno>;
