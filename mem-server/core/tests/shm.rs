//! SysV shared memory semantics.
mod common;
use common::*;
use mem_core::{Errno, Unresolved};
use mem_protocol::ShmKey;

const MB: u64 = 1 << 20;

fn h() -> H {
    let mut h = H::new(128 * MB);
    h.client(1, 1000, 100, 1 << 20);
    h.client(2, 1000, 100, 1 << 20);
    h.client(3, 2000, 200, 1 << 20);
    h
}

#[test]
fn two_clients_share_bytes_and_detach() {
    let mut h = h();
    let id = h.core.shmget(1, ShmKey::Key(42), 3 * 4096, true, false, 0o600).unwrap();
    assert_eq!(h.core.shmget(2, ShmKey::Key(42), 4096, false, false, 0o600), Ok(id), "same key, same segment");
    let a1 = h.core.shmat(1, id, None, false).unwrap();
    let a2 = h.core.shmat(2, id, Some(0x5000_0000), false).unwrap();
    assert_eq!(a2, 0x5000_0000);
    h.write(1, a1 + 4096 + 10, b"hello shm").unwrap();
    assert_eq!(h.read(2, a2 + 4096 + 10, 9).unwrap(), b"hello shm");
    h.write(2, a2, b"back").unwrap();
    assert_eq!(h.read(1, a1, 4).unwrap(), b"back");
    assert_eq!(h.core.query(1, a1).unwrap().paddr, h.core.query(2, a2).unwrap().paddr);
    assert_eq!(h.core.shm_stat(1, id).unwrap().nattch, 2);
    h.check();
    h.core.shmdt(2, a2).unwrap();
    assert_eq!(h.read(2, a2, 1), Err(Unresolved::NoArea));
    assert_eq!(h.core.shmdt(2, a2), Err(Errno::Inval), "already detached");
    assert_eq!(h.core.shmdt(1, a1 + 4096), Err(Errno::Inval), "not an attach address");
    assert_eq!(h.core.shm_stat(1, id).unwrap().nattch, 1);
    // Data persists while the segment exists, even with no attachment.
    h.core.shmdt(1, a1).unwrap();
    let a3 = h.core.shmat(2, id, None, true).unwrap();
    assert_eq!(h.read(2, a3, 4).unwrap(), b"back");
    assert_eq!(h.write(2, a3, b"x"), Err(Unresolved::Denied), "read-only attach");
    h.check();
}

#[test]
fn create_exclusive_and_lookup_errors() {
    let mut h = h();
    assert_eq!(h.core.shmget(1, ShmKey::Key(7), 4096, false, false, 0o600), Err(Errno::NoEnt));
    let id = h.core.shmget(1, ShmKey::Key(7), 4096, true, true, 0o600).unwrap();
    assert_eq!(h.core.shmget(1, ShmKey::Key(7), 4096, true, true, 0o600), Err(Errno::Exist));
    assert_eq!(h.core.shmget(1, ShmKey::Key(7), 4096, true, false, 0o600), Ok(id));
    assert_eq!(h.core.shmget(1, ShmKey::Key(7), 8192, false, false, 0o600), Err(Errno::Inval), "larger than the segment");
    assert_eq!(h.core.shmget(1, ShmKey::Key(8), 0, true, false, 0o600), Err(Errno::Inval), "below SHMMIN");
    assert_eq!(h.core.shmget(1, ShmKey::Key(8), 1 << 40, true, false, 0o600), Err(Errno::Inval), "above SHMMAX");
    assert_eq!(h.core.shmat(1, 999, None, false), Err(Errno::Inval));
    let p1 = h.core.shmget(1, ShmKey::Private, 4096, false, false, 0o600).unwrap();
    let p2 = h.core.shmget(1, ShmKey::Private, 4096, false, false, 0o600).unwrap();
    assert_ne!(p1, p2, "IPC_PRIVATE always creates");
    assert_eq!(h.core.shmat(2, p1, None, false), Err(Errno::Inval), "private segments are per client");
    assert!(h.core.shmat(1, p1, Some(0x6000_0001), false).is_err(), "unaligned attach");
}

#[test]
fn permissions_follow_mode_uid_gid() {
    let mut h = h();
    let id = h.core.shmget(1, ShmKey::Key(9), 4096, true, false, 0o640).unwrap();
    // Same uid (client 2): rw. Other uid, other group (client 3): nothing.
    assert!(h.core.shmat(2, id, None, false).is_ok());
    assert_eq!(h.core.shmat(3, id, None, true), Err(Errno::Acces));
    assert_eq!(h.core.shmget(3, ShmKey::Key(9), 4096, false, false, 0o400), Err(Errno::Acces));
    assert_eq!(h.core.shm_stat(3, id), Err(Errno::Acces));
    assert_eq!(h.core.shm_remove(3, id), Err(Errno::Perm));
    // Group member with another uid gets the group bits (read only).
    h.client(4, 3000, 100, 1 << 20);
    assert_eq!(h.core.shmat(4, id, None, false), Err(Errno::Acces));
    assert!(h.core.shmat(4, id, None, true).is_ok());
    // The owner opens it to others; root bypasses.
    h.core.shm_set(1, id, 1000, 100, 0o666).unwrap();
    assert!(h.core.shmat(3, id, None, false).is_ok());
    h.client(5, 0, 0, 1 << 20);
    h.core.shm_set(1, id, 1000, 100, 0o600).unwrap();
    assert!(h.core.shmat(5, id, None, false).is_ok());
    assert_eq!(h.core.shm_set(3, id, 2000, 200, 0o777), Err(Errno::Perm));
}

#[test]
fn remove_while_attached_destroys_after_last_detach() {
    let mut h = h();
    let id = h.core.shmget(1, ShmKey::Key(5), 2 * 4096, true, false, 0o600).unwrap();
    let a1 = h.core.shmat(1, id, None, false).unwrap();
    let a2 = h.core.shmat(2, id, None, false).unwrap();
    h.write(1, a1, b"keep").unwrap();
    h.write(1, a1 + 4096, b"page2").unwrap();
    h.read(2, a2 + 4096, 1).unwrap();
    let with_segment = h.frames_in_use();
    h.core.shm_remove(1, id).unwrap();
    let st = h.core.shm_stat(2, id).unwrap();
    assert!(st.removed && st.key.is_none() && st.nattch == 2);
    // Linux: a segment marked for removal stays attachable by id while it exists.
    let extra = h.core.shmat(2, id, None, false).unwrap();
    assert_eq!(h.core.shm_stat(2, id).unwrap().nattch, 3);
    h.core.shmdt(2, extra).unwrap();
    assert_eq!(h.core.shmget(1, ShmKey::Key(5), 4096, false, false, 0o600), Err(Errno::NoEnt), "key released at once");
    assert_eq!(h.read(2, a2, 4).unwrap(), b"keep", "still usable while attached");
    h.core.shmdt(1, a1).unwrap();
    assert_eq!(h.read(2, a2 + 4096, 5).unwrap(), b"page2");
    assert!(h.core.shm_stat(2, id).is_ok());
    // A detach split by munmap still detaches every piece.
    h.core.munmap(2, a2, 4096).unwrap();
    assert_eq!(h.core.shm_stat(2, id).unwrap().nattch, 1);
    assert_eq!(h.core.shmdt(2, a2 + 4096), Err(Errno::Inval), "not the attach address");
    // Linux: shmdt at the attach address detaches what is left even if the first page
    // is gone.
    h.core.shmdt(2, a2).unwrap();
    assert_eq!(h.core.shm_stat(2, id), Err(Errno::Inval), "destroyed with the last attachment");
    assert_eq!(h.core.stats(None).unwrap().shm_segments, 0);
    assert_eq!(h.frames_in_use(), with_segment - 2, "segment frames freed");
    h.check();
}

#[test]
fn private_segments_go_with_their_clients() {
    let mut h = h();
    let base = h.core.stats(None).unwrap();
    let id = h.core.shmget(3, ShmKey::Private, 4096, false, false, 0o600).unwrap();
    let a = h.core.shmat(3, id, None, false).unwrap();
    h.write(3, a, b"p").unwrap();
    h.core.clone_space(3, 6, 1 << 20).unwrap();
    assert!(h.core.shmat(6, id, None, false).is_ok(), "clones inherit private segments");
    h.core.destroy_space(3).unwrap();
    h.core.destroy_space(6).unwrap();
    let s = h.core.stats(None).unwrap();
    assert_eq!(s.shm_segments, 0);
    assert_eq!(s.frames_in_use, base.frames_in_use - 2, "only client 3's vspace less");
    h.check();
}
