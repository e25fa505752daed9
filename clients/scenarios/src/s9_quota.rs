//! Scenario 9, quota: a client with a 96-page quota maps 512 pages (lazy: nothing charged
//! yet); populating them all fails with ENOMEM; Stats(Own) shows at most the quota
//! charged; munmap; PASS.
//!
//! Failure codes: 901 mmap (detail errno), 902 Populate was not ENOMEM (detail errno, 0 if
//! it succeeded), 903 Stats, 904 charged pages above the quota (detail charged, addr =
//! quota), 905 munmap.

use mem_client::linux::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_RW};
use mem_client::Client;
use mem_protocol::{Errno, Target, PAGE_SIZE};

use crate::report::{expect_errno, Check, Fail, Outcome};

const PAGES: u64 = 512;

pub fn run(c: &mut Client) -> Outcome {
    let len = PAGES * PAGE_SIZE;
    let addr = c.mmap(0, len, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS).or_fail(901)?;
    expect_errno(c.populate(addr, len), Errno::NoMem, 902)?;
    let st = c.stats(Target::Own).or_fail(903)?;
    if st.charged_pages > st.quota_pages {
        return Err(Fail::new(904).detail(st.charged_pages).at(st.quota_pages));
    }
    c.munmap(addr, len).or_fail(905)?;
    Ok(())
}
