#!/usr/bin/env bash
# Build the memory-server component (crate mem-server-sel4, binary mem-server) for one
# seL4 architecture, outside the Makefile, with the same environment and flags the
# Makefile uses for the root task (see the seL4 section of the Makefile).
#
# usage: scripts/build-mem-server.sh riscv64|aarch64 [extra cargo arguments]
#   env: PROFILE (default release), TARGET_DIR (default build/<arch>/cargo),
#        LIBCLANG_PATH (default /usr/lib/llvm-14/lib)
# Needs: make deps, make kernel ARCH=<arch>, make target-specs (build/<arch>/sel4 and
# build/target-specs must exist). Output: <target-dir>/<target>/<profile>/mem-server.elf

set -euo pipefail

arch=${1:?usage: $0 riscv64|aarch64 [cargo args]}
shift
case "$arch" in
  riscv64) target=riscv64imac-sel4 ;;
  aarch64) target=aarch64-sel4 ;;
  *) echo "error: arch must be riscv64 or aarch64 (got '$arch')" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
profile=${PROFILE:-release}
target_dir=${TARGET_DIR:-$root/build/$arch/cargo}
for need in "$root/build/$arch/sel4" "$root/build/target-specs/$target.json"; do
  [ -e "$need" ] || { echo "error: $need missing (make kernel ARCH=$arch; make target-specs)" >&2; exit 2; }
done

exec env -u RUSTUP_TOOLCHAIN -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER \
  -u CARGO_TARGET_DIR -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
  PATH="$root/build/bin:$root/deps/venv/bin:/usr/bin:$PATH" \
  RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
  SEL4_PREFIX="$root/build/$arch/sel4" RUST_TARGET_PATH="$root/build/target-specs" \
  LIBCLANG_PATH="${LIBCLANG_PATH:-/usr/lib/llvm-14/lib}" \
  /usr/bin/cargo build \
  -Zbuild-std=core,alloc,compiler_builtins -Zbuild-std-features=compiler-builtins-mem \
  -Zunstable-options --config 'build.rustflags=["-Zunstable-options"]' \
  --profile "$profile" \
  --manifest-path "$root/root-task/Cargo.toml" -p mem-server-sel4 \
  --target "$target" --target-dir "$target_dir" "$@"
