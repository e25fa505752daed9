//! Linux constants (values as in the Linux UAPI headers) accepted by the [`crate::Client`]
//! API: `PROT_*`, `MAP_*`, `MS_*`, and the System V `IPC_*` / `SHM_*` flags.

/// `PROT_NONE`: no access.
pub const PROT_NONE: u32 = 0;
/// `PROT_READ`.
pub const PROT_READ: u32 = 1;
/// `PROT_WRITE`.
pub const PROT_WRITE: u32 = 2;
/// `PROT_EXEC`.
pub const PROT_EXEC: u32 = 4;
/// `PROT_READ | PROT_WRITE`, for brevity.
pub const PROT_RW: u32 = PROT_READ | PROT_WRITE;
/// `PROT_READ | PROT_WRITE | PROT_EXEC`, the default maximum protection.
pub const PROT_RWX: u32 = PROT_READ | PROT_WRITE | PROT_EXEC;

/// `MAP_SHARED`: writes are visible to every mapping of the same memory.
pub const MAP_SHARED: u32 = 0x01;
/// `MAP_PRIVATE`: writes are private (copy-on-write).
pub const MAP_PRIVATE: u32 = 0x02;
/// `MAP_SHARED_VALIDATE`: like `MAP_SHARED` (every flag here is known, so nothing more to check).
pub const MAP_SHARED_VALIDATE: u32 = 0x03;
/// `MAP_FIXED`: exactly at `addr`, replacing what is mapped there.
pub const MAP_FIXED: u32 = 0x10;
/// `MAP_ANONYMOUS`: zero-filled memory (the only kind `mmap` makes without a backend).
pub const MAP_ANONYMOUS: u32 = 0x20;
/// `MAP_POPULATE`: fault every page in now.
pub const MAP_POPULATE: u32 = 0x8000;
/// `MAP_FIXED_NOREPLACE`: exactly at `addr`; `EEXIST` if anything is mapped there.
pub const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;
/// The mapping-type bits of the flags (`MAP_TYPE`).
pub const MAP_TYPE: u32 = 0x0f;

/// `MS_ASYNC`.
pub const MS_ASYNC: i32 = 1;
/// `MS_INVALIDATE`.
pub const MS_INVALIDATE: i32 = 2;
/// `MS_SYNC`.
pub const MS_SYNC: i32 = 4;

/// `IPC_PRIVATE` as a `key_t` (the API takes `Option<u32>`; `None` is `IPC_PRIVATE`).
pub const IPC_PRIVATE: i32 = 0;
/// `IPC_CREAT`: create the segment if the key does not exist.
pub const IPC_CREAT: i32 = 0o1000;
/// `IPC_EXCL`: with `IPC_CREAT`, fail with `EEXIST` if the key exists.
pub const IPC_EXCL: i32 = 0o2000;
/// `SHM_RDONLY` (for callers that keep Linux `shmflg` values around).
pub const SHM_RDONLY: i32 = 0o10000;
/// The permission bits of a `shmflg`.
pub const IPC_MODE_MASK: i32 = 0o777;
