//! Scenario 8, query: what the server reports about mapped pages.
//!
//! 2 RW pages, written; Query: paddr 0 (a client does not learn physical addresses), prot
//! RW, a small page, not shared; STEP(1, addr) so the root task can check that the
//! administrator does see the physical address. Then 4 MiB anywhere, touched at its
//! start; Query: a large (2 MiB) page whose start is 2 MiB aligned. Both unmapped at the
//! end; PASS.
//!
//! Failure codes: 801 mmap, 802 Query (detail errno), 803 paddr shown, 804 prot not RW (detail
//! bits), 805 not a small page, 806 shared, 807 vaddr not the page start (detail vaddr);
//! 811 mmap 4 MiB, 812 Query, 813 not a large page (detail vaddr, addr), 814 vaddr not 2 MiB
//! aligned (detail vaddr), 815 vaddr does not contain the address; 821/822 munmap.

use mem_client::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_RW};
use mem_client::Client;
use mem_protocol::{PageSize, Prot, LARGE_PAGE_SIZE, PAGE_SIZE};

use crate::mem::poke;
use crate::report::{ensure, ensure_eq, Check, Fail, Outcome};

const BIG: u64 = 4 * 1024 * 1024;

pub fn run(c: &mut Client) -> Outcome {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS;
    let small = c.mmap(0, 2 * PAGE_SIZE, PROT_RW, flags).or_fail(801)?;
    // SAFETY: inside the RW mapping the server just returned.
    unsafe {
        poke(small, 0x8001);
        poke(small + PAGE_SIZE, 0x8002);
    }
    let q = c.query(small).or_fail(802)?;
    ensure(q.paddr == 0, 803)?;
    ensure_eq(u64::from(q.prot.bits()), u64::from(Prot::RW.bits()), 804, small)?;
    ensure(q.page_size == PageSize::Small, 805)?;
    ensure(!q.shared, 806)?;
    ensure_eq(q.vaddr, small, 807, small)?;
    crate::report::step(1, &[small]);

    let big = c.mmap(0, BIG, PROT_RW, flags).or_fail(811)?;
    // SAFETY: inside the RW mapping the server just returned.
    unsafe { poke(big, 0x8003) };
    let q = c.query(big).or_fail(812)?;
    if q.page_size != PageSize::Large {
        return Err(Fail::new(813).detail(q.vaddr).at(big));
    }
    ensure_eq(q.vaddr % LARGE_PAGE_SIZE, 0, 814, q.vaddr)?;
    ensure(q.vaddr <= big && big < q.vaddr + LARGE_PAGE_SIZE, 815)?;

    c.munmap(small, 2 * PAGE_SIZE).or_fail(821)?;
    c.munmap(big, BIG).or_fail(822)?;
    Ok(())
}
