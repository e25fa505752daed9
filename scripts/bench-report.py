#!/usr/bin/env python3
"""The table of `make bench-sel4` for one arch, from the serial logs of its two runs.

The benchmark client prints `BENCH-INSTR <op> <tenths>` (guest instructions per operation,
on the benchmark kernel) and `BENCH-ENTRIES <op> <tenths>` (kernel entries per operation,
on the kernel that logs them); the server prints `BENCH-INSTR zero <tenths>` (what zeroing
one frame costs it). This prints `BENCH <op> <instructions> <entries>` per operation, then
op | ours | Linux | ours/Linux, with the Linux reference values measured in the same QEMU
machine (Linux 6.1 arm64 / 6.12 riscv64, -smp 1 -icount shift=0), and the aarch64 targets.
`heap-small` / `heap-large` are a malloc + free pair of 64 B (one word written) / 300 KB
(untouched); the Linux figures are glibc 2.36's (static, same QEMU machine), whose
`heap-large` is served from its brk heap once the first free has raised its dynamic mmap
threshold (forced through mmap every time it costs 22,435 / 21,812).

Like for like: `mprotect` changes one page between two PROT_NONE guard pages (Linux's
geometry; `mprotect-merge` is the page next to an area of the same protection);
`cow-fault` includes the munmap of the copy (Linux's fork + write + exit frees it);
`mmap-touch-munmap-256[-random]` is per page of a 256-page map, touch, unmap (Linux: first
touch + munmap per page + 1/256 of mmap + munmap). `grow-<op>-a<areas>-c<others>` rows
make the growth table (10 / 1,000 / 50,000 areas, 0 / 32 other clients).

Each `<op>` that touches or populates one page per operation (`fault`, `fault-around`,
`populate`, `mmap-touch-munmap`, `shm-cycle-touch`, `mmap-touch-munmap-256[-random]`) is
`<op>-clean` (measured on clean
frames) plus `zero`: Linux zeroes the page inside its fault; the server zeroes freed frames
in its zeroing thread when the system is idle (or on demand in a fault), so that cost is
added per page. `zero` is the average over every frame the server zeroed in the run (the
server prints its meters, and resets them, at each `Nop`).

usage: bench-report.py --arch ARCH --instr LOG --entries LOG
Exit status 1 if a log holds no BENCH lines or BENCH-FAIL.
"""

import argparse
import re
import sys

LINUX = {
    "aarch64": {
        "fault": 3300, "populate": 3161, "munmap-populated": 1395, "mmap-munmap": 14648,
        "mmap-touch-munmap": 21396, "mprotect": 2774, "mprotect-split": 13266,
        "mmap-touch-munmap-256": 4752, "mmap-touch-munmap-256-random": 4752,
        "shm-cycle": 32699, "shm-cycle-touch": 41298, "cow-fault": 5015, "null-request": 510,
        "heap-small": 171, "heap-large": 354,
    },
    "riscv64": {
        "fault": 8489, "populate": 8042, "munmap-populated": 2705, "mmap-munmap": 13026,
        "mmap-touch-munmap": 20967, "mprotect": 3302, "mprotect-split": 9957,
        "mmap-touch-munmap-256": 11245, "mmap-touch-munmap-256-random": 11245,
        "shm-cycle": 32502, "shm-cycle-touch": 43435, "cow-fault": 6153, "null-request": 443,
        "heap-small": 173, "heap-large": 355,
    },
}

# aarch64 targets of the speed issues (riscv64: at most 0.85x Linux, but for these).
TARGETS = {
    "fault": 2800, "fault-around": 1000, "populate": 1500, "cow-fault": 4000, "mprotect": 2500,
    "null-request": 1000, "mmap-munmap": 7000, "shm-cycle": 16000,
}
RISCV_TARGETS = {"null-request": 1600}

ORDER = [
    "fault", "fault-clean", "zero", "fault-cold", "fault-around", "fault-around-clean", "touch",
    "populate", "populate-clean", "munmap-populated", "mmap-munmap", "mmap-touch-munmap",
    "mmap-touch-munmap-clean", "mmap-touch-munmap-256", "mmap-touch-munmap-256-clean",
    "mmap-touch-munmap-256-random", "mmap-touch-munmap-256-random-clean", "mprotect",
    "mprotect-merge", "mprotect-split", "shm-cycle", "shm-cycle-touch", "shm-cycle-touch-clean",
    "cow-fault", "cow-fault-store", "null-request", "heap-small", "heap-large",
]

# The growth rows: `grow-<op>-a<areas>-c<clients>`.
GROW_OPS = ["fault", "mprotect", "mmap-munmap", "null-request"]
GROW_CONFIGS = [(a, c) for c in (0, 32) for a in (10, 1000, 50000)]


def read(path, tag):
    values = {}
    failed = []
    try:
        text = open(path, "rb").read().decode("utf-8", "replace").replace("\r", "")
    except OSError as e:
        sys.exit(f"bench-report: {e}")
    # `zero` comes in windows (one per `Nop`: tenths per frame, then the frame count):
    # averaged over all of them, weighted by frames.
    zero_sum, zero_n, last_zero = 0.0, 0, None
    for line in text.splitlines():
        m = re.match(rf"^BENCH-{tag} (\S+) (\d+)$", line)
        if m:
            values[m.group(1)] = int(m.group(2)) / 10
            if m.group(1) == "zero":
                last_zero = int(m.group(2)) / 10
        m = re.match(r"^BENCH-EVENTS zero (\d+)$", line)
        if m and last_zero is not None:
            zero_sum += last_zero * int(m.group(1))
            zero_n += int(m.group(1))
        if line.startswith("BENCH-FAIL"):
            failed.append(line)
    if zero_n:
        values["zero"] = zero_sum / zero_n
    return values, failed


def fmt(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--instr", required=True)
    ap.add_argument("--entries", required=True)
    a = ap.parse_args()
    instr, f1 = read(a.instr, "INSTR")
    entries, f2 = read(a.entries, "ENTRIES")
    if f1 or f2 or not instr:
        for line in f1 + f2:
            print(line)
        print(f"bench-report: no complete benchmark output for {a.arch}", file=sys.stderr)
        return 1
    for op in ("fault", "fault-around", "populate", "mmap-touch-munmap", "shm-cycle-touch",
               "mmap-touch-munmap-256", "mmap-touch-munmap-256-random"):
        if f"{op}-clean" in instr and "zero" in instr:
            instr[op] = instr[f"{op}-clean"] + instr["zero"]
        if f"{op}-clean" in entries:
            entries[op] = entries[f"{op}-clean"]
    print(f"==> bench-sel4 {a.arch}")
    grow = {f"grow-{op}-a{a}-c{c}" for op in GROW_OPS for (a, c) in GROW_CONFIGS}
    for op in ORDER + sorted(set(instr) - set(ORDER) - grow) + sorted(grow & set(instr)):
        if op in instr:
            print(f"BENCH {op} {instr[op]:.0f} {fmt(entries.get(op))}")
    linux = LINUX.get(a.arch, {})
    print()
    print(f"| op ({a.arch}) | ours (instructions) | kernel entries | Linux | ours/Linux | target |")
    print("|---|---:|---:|---:|---:|---:|")
    for op in ORDER:
        if op not in instr:
            continue
        ours = instr[op]
        lx = linux.get(op)
        ratio = f"{ours / lx:.2f}" if lx else "-"
        if a.arch == "aarch64":
            target = fmt(TARGETS.get(op)) if op in TARGETS else "-"
        elif op in RISCV_TARGETS:
            target = fmt(RISCV_TARGETS[op])
        else:
            target = fmt(0.85 * lx) if lx else "-"
        print(f"| {op} | {fmt(ours)} | {fmt(entries.get(op))} | {fmt(lx)} | {ratio} | {target} |")
    if any(k in instr for k in grow):
        print()
        print(f"Growth ({a.arch}): instructions per operation (kernel entries) with <areas> areas in")
        print("the client and <clients> other clients alive (faults: clean frames, `zero` not added).")
        print()
        print("| op | " + " | ".join(f"{ar:,} areas, {c} others" for (ar, c) in GROW_CONFIGS) + " |")
        print("|---|" + "---:|" * len(GROW_CONFIGS))
        for op in GROW_OPS:
            cells = []
            for (ar, c) in GROW_CONFIGS:
                k = f"grow-{op}-a{ar}-c{c}"
                cells.append(f"{fmt(instr.get(k))} ({fmt(entries.get(k))})" if k in instr else "-")
            print(f"| {op} | " + " | ".join(cells) + " |")
    steps = latency_steps(a.instr)
    names = [n for n in steps if f"latency-{n}" in instr]
    if names:
        print()
        print(f"Latency ({a.arch}): a victim faults page after page while another client (or the")
        print("administrator: destroy, clone) has the server do the operation, on the same core.")
        print()
        print("| operation | victim's worst fault | victim's mean fault | the operation | server's longest step | of |")
        print("|---|---:|---:|---:|---:|---|")
        for n in names:
            step, kind = steps[n]
            print(f"| {n} | {fmt(instr[f'latency-{n}'])} | {fmt(instr.get(f'latency-{n}-mean'))} "
                  f"| {fmt(instr.get(f'latency-{n}-total'))} | {fmt(step)} | {kind or '-'} |")
    return 0


# Request tags (`Request::tag`) and the server's other step kinds (`meter.rs`).
KINDS = {1: "DestroySpace", 3: "Mmap", 4: "Munmap", 9: "Populate", 10: "Reset", 11: "Clone",
         14: "ShmDt", 15: "ShmCtl", 20: "Stats", 27: "Layout", 100: "fault", 101: "other",
         102: "zeroed batch"}


def latency_steps(path):
    """The server's longest step during each latency operation, and what it was: the first
    `BENCH-STEP-MAX` (and `-KIND`) after each `BENCH-LATENCY <name>` line."""
    text = open(path, "rb").read().decode("utf-8", "replace").replace("\r", "")
    steps, current, last = {}, None, None
    for line in text.splitlines():
        m = re.match(r"^BENCH-LATENCY (\S+)$", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"^BENCH-STEP-MAX (\d+)$", line)
        if m and current:
            steps[current] = [int(m.group(1)), None]
            last, current = steps[current], None
            continue
        m = re.match(r"^BENCH-STEP-MAX-KIND (\d+)$", line)
        if m and last is not None:
            last[1] = KINDS.get(int(m.group(1)), f"tag {m.group(1)}")
            last = None
    return steps


if __name__ == "__main__":
    sys.exit(main())
