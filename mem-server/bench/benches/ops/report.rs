//! Sampling (batches of operations timed together), kernel-call accounting, and the
//! markdown tables.

use std::time::Instant;

use mem_model::{KernelStats, Op};

use crate::count::Heap;
use crate::Core;

/// Target from the issue: every operation under 1 µs at 100,000 areas.
pub const TARGET_NS: f64 = 1000.0;
/// Target from the issue: at most 16 bytes of metadata per mapped page.
pub const TARGET_BYTES: f64 = 16.0;

/// Per-sample times and totals of one measured operation.
pub struct Sampler {
    warm: bool,
    /// (ns per op, ops) of each batch.
    batches: Vec<(f64, u64)>,
    ops: u64,
    ns: f64,
    kcalls: [u64; Op::ALL.len()],
    allocs: u64,
}

impl Sampler {
    pub fn new() -> Self {
        Sampler { warm: false, batches: Vec::with_capacity(1024), ops: 0, ns: 0.0, kcalls: [0; Op::ALL.len()], allocs: 0 }
    }

    /// Time one batch of `ops` operations performed by `f`. The first batch is a warm-up
    /// and is discarded.
    pub fn run(&mut self, core: &mut Core, ops: u64, f: impl FnOnce(&mut Core)) {
        let k0 = core.kernel().0.stats();
        let h0 = Heap::now().core_allocs;
        let t = Instant::now();
        f(core);
        let dt = t.elapsed().as_nanos() as f64;
        let h1 = Heap::now().core_allocs;
        let k1 = core.kernel().0.stats();
        if !self.warm {
            self.warm = true;
            return;
        }
        self.batches.push((dt / ops as f64, ops));
        self.ops += ops;
        self.ns += dt;
        self.allocs += h1 - h0;
        add_calls(&mut self.kcalls, k1 - k0);
    }

    pub fn row(&self, op: &str, areas: usize) -> Row {
        let mut v: Vec<f64> = self.batches.iter().map(|b| b.0).collect();
        v.sort_by(f64::total_cmp);
        let median = if v.is_empty() { f64::NAN } else { v[v.len() / 2] };
        // Batches slower than 3× the median were almost surely preempted (other processes
        // on the machine): the robust mean leaves them out and counts them.
        let kept = self.batches.iter().filter(|b| b.0 <= 3.0 * median);
        let (kns, kops) = kept.fold((0.0, 0u64), |(t, n), b| (t + b.0 * b.1 as f64, n + b.1));
        Row {
            op: op.to_string(),
            areas,
            ops: self.ops,
            median,
            mean: self.ns / self.ops.max(1) as f64,
            robust_mean: kns / kops.max(1) as f64,
            dropped: self.batches.iter().filter(|b| b.0 > 3.0 * median).count(),
            batches: self.batches.len(),
            p90: v.get(v.len() * 9 / 10).or(v.last()).copied().unwrap_or(f64::NAN),
            calls: calls_per_op(&self.kcalls, self.ops),
            allocs: self.allocs as f64 / self.ops.max(1) as f64,
            target: true,
        }
    }
}

pub fn add_calls(acc: &mut [u64; Op::ALL.len()], d: KernelStats) {
    for (i, op) in Op::ALL.iter().enumerate() {
        acc[i] += d.count(*op);
    }
}

fn short(op: Op) -> &'static str {
    match op {
        Op::UntypedRetype => "retype",
        Op::AsidAssign => "asid_assign",
        Op::PageTableMap => "pt_map",
        Op::PageTableUnmap => "pt_unmap",
        Op::PageMap => "page_map",
        Op::PageUnmap => "page_unmap",
        Op::PagePaddr => "page_paddr",
        Op::CapCopy => "cap_copy",
        Op::CapDelete => "cap_delete",
        Op::FrameZero => "frame_zero*",
        Op::FrameCopy => "frame_copy*",
        Op::FrameWrite => "frame_write*",
        Op::FrameRead => "frame_read*",
        Op::CapRevoke => "cap_revoke",
        Op::ServerMap => "server_map",
        Op::ServerTableMap => "server_table_map",
        Op::DirectMap => "direct_map",
        Op::DirectUnmap => "direct_unmap",
        Op::SaveCaller => "save_caller",
        Op::ReplySaved => "reply_saved",
    }
}

/// "1 page_map + 0.016 retype" (frame data accesses, which are not seL4 invocations, have a `*`).
pub fn calls_per_op(acc: &[u64; Op::ALL.len()], ops: u64) -> String {
    let mut parts = Vec::new();
    for (i, op) in Op::ALL.iter().enumerate() {
        if acc[i] == 0 {
            continue;
        }
        let per = acc[i] as f64 / ops.max(1) as f64;
        let n = if (per - per.round()).abs() < 1e-9 {
            format!("{}", per.round() as u64)
        } else if per >= 0.1 {
            format!("{per:.2}")
        } else {
            format!("{per:.4}")
        };
        parts.push(format!("{n} {}", short(*op)));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(" + ")
    }
}

pub struct Row {
    pub op: String,
    pub areas: usize,
    pub ops: u64,
    pub median: f64,
    pub mean: f64,
    /// Mean over batches no slower than 3× the median, and how many of how many were left out.
    pub robust_mean: f64,
    pub dropped: usize,
    pub batches: usize,
    /// 90th percentile of the per-batch ns/op.
    pub p90: f64,
    pub calls: String,
    pub allocs: f64,
    /// Is the 1 µs target meant for this row (not for multi-page or whole-space operations)?
    pub target: bool,
}

impl Row {
    /// The same measurement expressed per `k` units (e.g. per page for fault-around).
    pub fn per(&self, op: &str, k: f64, calls: String) -> Row {
        Row {
            op: op.to_string(),
            areas: self.areas,
            ops: (self.ops as f64 * k) as u64,
            median: self.median / k,
            mean: self.mean / k,
            robust_mean: self.robust_mean / k,
            dropped: self.dropped,
            batches: self.batches,
            p90: self.p90 / k,
            calls,
            allocs: self.allocs / k,
            target: true,
        }
    }
}

pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "yes" when the median and the robust mean are under 1 µs (the raw mean also counts
/// batches preempted by other processes, so it is shown but not judged).
fn verdict(r: &Row) -> &'static str {
    if !r.target {
        "n/a"
    } else if r.median < TARGET_NS && r.robust_mean < TARGET_NS {
        "yes"
    } else {
        "**NO**"
    }
}

pub fn print_time_table(rows: &[Row]) {
    println!("| operation | areas | ops timed (batches) | median ns/op | mean ns/op | robust mean ns/op (batches left out) | p90 batch ns/op | < 1 µs | kernel calls per op | core heap allocs/op |");
    println!("|---|---:|---:|---:|---:|---:|---:|:---:|---|---:|");
    for r in rows {
        let ok = verdict(r);
        println!(
            "| {} | {} | {} ({}) | {:.0} | {:.0} | {:.0} ({}) | {:.0} | {} | {} | {:.2} |",
            r.op,
            group(r.areas as u64),
            group(r.ops),
            r.batches,
            r.median,
            r.mean,
            r.robust_mean,
            r.dropped,
            r.p90,
            ok,
            r.calls,
            r.allocs
        );
    }
}

/// Median ns/op per operation (rows) and area count (columns).
pub fn print_summary(rows: &[Row], sizes: &[usize]) {
    let mut ops: Vec<&str> = Vec::new();
    for r in rows {
        if !ops.contains(&r.op.as_str()) {
            ops.push(&r.op);
        }
    }
    print!("| operation (median / mean / robust mean ns per op) |");
    for n in sizes {
        print!(" {} areas |", group(*n as u64));
    }
    println!(" target < 1 µs at {} areas |", group(*sizes.last().unwrap_or(&0) as u64));
    print!("|---|");
    for _ in sizes {
        print!("---:|");
    }
    println!(":---:|");
    for op in ops {
        print!("| {op} |");
        let mut last = None;
        for n in sizes {
            match rows.iter().find(|r| r.op == op && r.areas == *n) {
                Some(r) => {
                    print!(" {:.0} / {:.0} / {:.0} |", r.median, r.mean, r.robust_mean);
                    last = Some(r);
                }
                None => {
                    print!(" – |");
                    last = None;
                }
            }
        }
        let ok = last.map_or("–", verdict);
        println!(" {ok} |");
    }
}

pub struct MemRow {
    pub scenario: String,
    pub pages: u64,
    pub areas: u64,
    /// `metadata_bytes()` with everything mapped.
    pub metadata: usize,
    /// Counted heap of the core: total since before `MemCore::new`, and growth while mapping.
    pub heap_total: i64,
    pub heap_delta: i64,
    pub model_delta: i64,
}

pub fn print_mem_table(rows: &[MemRow]) {
    println!("| scenario | mapped pages | areas | metadata_bytes() / page | counted core heap / page (total) | counted core heap / page (growth while mapping) | ≤ 16 B | model heap / page (info) |");
    println!("|---|---:|---:|---:|---:|---:|:---:|---:|");
    for r in rows {
        let p = r.pages.max(1) as f64;
        let total = r.heap_total as f64 / p;
        let ok = if total <= TARGET_BYTES && r.metadata as f64 / p <= TARGET_BYTES { "yes" } else { "**NO**" };
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {:.1} |",
            r.scenario,
            group(r.pages),
            group(r.areas),
            r.metadata as f64 / p,
            total,
            r.heap_delta as f64 / p,
            ok,
            r.model_delta as f64 / p
        );
    }
}
