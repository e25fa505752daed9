//! Scenario 27, heap: a workload of code written by others, whose whole heap is mem-heap
//! over the server (the process's `#[global_allocator]`, from mem-capi):
//! 1. DEFLATE (miniz_oxide, level 6) of 4 MiB of generated text, inflate, compare;
//! 2. a `BTreeMap` of 100,000 entries built, queried (every key, plus misses), emptied;
//! 3. 1,000,000 integers sorted (`sort_unstable`), checked in order and by checksum.
//!
//! 4. 32 KiB blocks allocated until the allocator returns null (the quota: ENOMEM, no
//!    fault), then freed.
//!
//! Between phases everything is freed; at the end the heap is trimmed and `Stats` must
//! show the client's resident (charged) pages back within 64 pages of where they started.
//! The layout request must show the heap's mappings while data is live and `max_va` above
//! them. Prints one `HEAP-NUMBERS` line: faults served, resident pages at start, the peak
//! of phases 1-3 (the highest of the samples taken with each phase's data live), the peak
//! with phase 4, at the end, and the heap's counters.
//!
//! Failure codes: 2701 compression round trip differs (detail: first differing index),
//! 2702 the data did not compress (detail: compressed bytes), 2703 a map lookup is wrong
//! (detail: key), 2704 the map kept entries, 2712 exhaustion did not end in a null with
//! ENOMEM (detail: blocks), 2705 the sort is wrong (detail: index), 2706
//! checksum changed, 2707 Stats, 2708 resident pages did not drop back (detail: end, addr:
//! start), 2709 layout (detail errno), 2710 the layout does not show a live heap block
//! (addr), 2711 large blocks still live after everything was freed.

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use mem_client::{Client, Target};

use crate::report::{ensure, Fail, Outcome};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn resident(c: &mut Client) -> Result<u64, Fail> {
    c.stats(Target::Own).map(|s| s.charged_pages).map_err(|e| Fail::new(2707).detail(e.linux() as u64))
}

/// Text with a compressible structure: words from a small vocabulary.
fn text(len: usize) -> Vec<u8> {
    const WORDS: [&[u8]; 16] = [
        b"memory ", b"server ", b"page ", b"fault ", b"capability ", b"untyped ", b"frame ",
        b"kernel ", b"endpoint ", b"badge ", b"quota ", b"client ", b"map ", b"seL4 ", b"heap ", b"\n",
    ];
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let w = WORDS[(r.next() % 16) as usize];
        let n = w.len().min(len - v.len());
        v.extend_from_slice(&w[..n]);
    }
    v
}

pub fn run(c: &mut Client) -> Outcome {
    let start = resident(c)?;
    let mut peak = start;
    let exhausted;

    // 1. Compression round trip.
    {
        let data = text(4 << 20);
        let packed = miniz_oxide::deflate::compress_to_vec(&data, 6);
        ensure(packed.len() < data.len() / 3, 2702).map_err(|f| f.detail(packed.len() as u64))?;
        let unpacked = miniz_oxide::inflate::decompress_to_vec(&packed).map_err(|_| Fail::new(2701))?;
        if unpacked != data {
            let i = unpacked.iter().zip(&data).position(|(a, b)| a != b).unwrap_or(unpacked.len());
            return Err(Fail::new(2701).detail(i as u64));
        }
        // The layout shows the block holding the data while it is live.
        let at = data.as_ptr() as u64;
        let mut seen = false;
        let info = c
            .layout(Target::Own, 0, |e| seen |= e.start <= at && at < e.end && e.resident_pages > 0)
            .map_err(|e| Fail::new(2709).detail(e.linux() as u64))?;
        ensure(seen && info.max_va > at, 2710).map_err(|f| f.at(at))?;
        peak = peak.max(resident(c)?);
    }

    // 2. An ordered map.
    {
        let mut m = BTreeMap::new();
        let mut r = Rng(7);
        let keys: Vec<u64> = (0..100_000).map(|_| r.next() >> 8).collect();
        for (i, &k) in keys.iter().enumerate() {
            m.insert(k, i as u64);
        }
        peak = peak.max(resident(c)?);
        for &k in &keys {
            let v = m.get(&k).copied().ok_or(Fail::new(2703).detail(k))?;
            ensure(keys[v as usize] == k, 2703).map_err(|f| f.detail(k))?;
        }
        for k in 0..1000u64 {
            // Keys are below 2^56; these are not.
            ensure(!m.contains_key(&(u64::MAX - k)), 2703).map_err(|f| f.detail(k))?;
        }
        for k in &keys {
            m.remove(k);
        }
        ensure(m.is_empty(), 2704)?;
    }

    // 3. Sorting.
    {
        let mut r = Rng(99);
        let mut v: Vec<u32> = (0..1_000_000).map(|_| r.next() as u32).collect();
        let sum: u64 = v.iter().map(|&x| u64::from(x)).sum();
        peak = peak.max(resident(c)?);
        v.sort_unstable();
        if let Some(i) = v.windows(2).position(|w| w[0] > w[1]) {
            return Err(Fail::new(2705).detail(i as u64));
        }
        ensure(v.iter().map(|&x| u64::from(x)).sum::<u64>() == sum, 2706)?;
    }

    // 4. Out of memory is a failed allocation, not a stopped thread: 32 KiB blocks until
    // the quota says no (null from the allocator, ENOMEM kept), then everything back.
    let heap = &mem_capi::HEAP;
    let workload_peak = peak;
    {
        let layout = core::alloc::Layout::from_size_align(32 * 1024, 16).map_err(|_| Fail::new(2712))?;
        let mut blocks: Vec<*mut u8> = Vec::with_capacity(4096);
        loop {
            // SAFETY: the layout has a non-zero size.
            let p = unsafe { alloc::alloc::alloc(layout) };
            if p.is_null() {
                break;
            }
            // SAFETY: a live block of 32 KiB.
            unsafe { p.write_bytes(0x5a, layout.size()) };
            blocks.push(p);
            if blocks.len() == blocks.capacity() {
                return Err(Fail::new(2712).detail(blocks.len() as u64));
            }
        }
        ensure(heap.last_error() == 12 && blocks.len() > 100, 2712).map_err(|f| f.detail(blocks.len() as u64))?;
        peak = peak.max(resident(c)?);
        exhausted = blocks.len();
        for p in blocks {
            // SAFETY: allocated above with this layout.
            unsafe { alloc::alloc::dealloc(p, layout) };
        }
    }
    heap.trim();
    let hs = heap.stats();
    ensure(hs.large_blocks == 0, 2711).map_err(|f| f.detail(hs.large_blocks as u64))?;
    let end = resident(c)?;
    let faults = c.stats(Target::Own).map(|s| s.faults_served).unwrap_or(0);
    sel4::debug_println!(
        "HEAP-NUMBERS faults {faults} resident-pages start {start} peak-workload {workload_peak} peak-at-quota {peak} end {end} heap-mapped-now {} heap-peak-mapped {} maps {} unmaps {} blocks-of-32KiB-at-quota {exhausted}",
        hs.mapped,
        hs.peak_mapped,
        hs.maps,
        hs.unmaps
    );
    ensure(end <= start + 64, 2708).map_err(|f| f.detail(end).at(start))
}
