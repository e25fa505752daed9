#!/usr/bin/env python3
"""Write the rustc target specs for seL4 user space into a directory.

rust-sel4's crates are built for custom targets named `<arch>-sel4` (any seL4 process) and
`<arch>-sel4-roottask` (the root task, whose image the kernel maps as one contiguous
region). Rather than keeping JSON files in the repository, derive them from the builtin
bare-metal target of the rustc in use, so that they always match that rustc:

    rustc -Zunstable-options --print target-spec-json --target <builtin>

and change only:
  - "exe-suffix": ".elf"
  - "has-thread-local": true      (the seL4 runtimes set up TLS)
  - "eh-frame-header": true       (the riscv builtin disables it)
  - root-task variants: "-z max-page-size=4096 --no-rosegment" appended to the gnu-lld
    pre-link arguments (smaller p_align, no gap between segments).

`<arch>-sel4-nofpu` is the same for a process that never touches floating-point or vector
registers (the memory server): derived from the builtin target without them (aarch64
`-softfloat`; riscv64imac has none anyway). Its TCB can then carry seL4's fpuDisabled flag,
and switching to and from it never saves or restores FPU state.

aarch64, except the root task: "+strict-align" is dropped from "features". The bare-metal
builtin has it because code there may run with the MMU off (all memory Device, where an
unaligned access faults); seL4 processes run with their memory mapped Normal and alignment
checking off, like Linux processes, whose target has no strict-align either. With it, LLVM
cannot inline a copy it cannot prove aligned and calls a byte-shifting `memcpy` instead
(moving a 136-byte reply enum cost ~250 instructions per copy). The root task keeps it (it
touches device memory).

Usage: gen-target-specs.py --rustc RUSTC --out-dir DIR [ARCH ...]
ARCH is aarch64 or riscv64 (default: both).
"""

import argparse
import json
import os
import subprocess
import sys

# our arch name -> (target name prefix, builtin target, builtin target without FPU)
ARCHES = {
    "aarch64": ("aarch64", "aarch64-unknown-none", "aarch64-unknown-none-softfloat"),
    "riscv64": ("riscv64imac", "riscv64imac-unknown-none-elf", "riscv64imac-unknown-none-elf"),
}

LINKER_FLAVOR = "gnu-lld"
ROOT_TASK_LINK_ARGS = ["-z", "max-page-size=4096", "--no-rosegment"]


def builtin_spec(rustc, target):
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    out = subprocess.run(
        [rustc, "-Zunstable-options", "--print", "target-spec-json", "--target", target],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out)


def sel4_spec(builtin, root_task):
    spec = json.loads(json.dumps(builtin))  # deep copy
    if spec.get("arch") == "aarch64" and not root_task:
        features = [f for f in spec.get("features", "").split(",") if f and f != "+strict-align"]
        spec["features"] = ",".join(features)
    if spec.get("linker-flavor") != LINKER_FLAVOR:
        sys.exit(f"error: expected linker-flavor {LINKER_FLAVOR!r}, got {spec.get('linker-flavor')!r}")
    spec["exe-suffix"] = ".elf"
    spec["has-thread-local"] = True
    spec["eh-frame-header"] = True
    if root_task:
        link_args = spec.setdefault("pre-link-args", {})
        link_args[LINKER_FLAVOR] = link_args.get(LINKER_FLAVOR, []) + ROOT_TASK_LINK_ARGS
    return spec


def write_if_changed(path, spec):
    text = json.dumps(spec, indent=2, sort_keys=True) + "\n"
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rustc", default="rustc")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("arches", nargs="*", default=sorted(ARCHES))
    args = parser.parse_args()

    os.makedirs(args.out_dir, exist_ok=True)
    for arch in args.arches:
        if arch not in ARCHES:
            sys.exit(f"error: unknown arch {arch!r} (known: {', '.join(sorted(ARCHES))})")
        prefix, builtin_target, nofpu_target = ARCHES[arch]
        builtin = builtin_spec(args.rustc, builtin_target)
        nofpu = builtin_spec(args.rustc, nofpu_target)
        for suffix, base, root_task in (("", builtin, False), ("-roottask", builtin, True), ("-nofpu", nofpu, False)):
            name = f"{prefix}-sel4{suffix}"
            path = os.path.join(args.out_dir, name + ".json")
            changed = write_if_changed(path, sel4_spec(base, root_task))
            print(f"{'wrote' if changed else 'up to date'}: {path}")


if __name__ == "__main__":
    main()
