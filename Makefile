# Build and test entry points. See README.md.
#
#   make test      host test suite + bare-metal cross-build of the no_std crates
#   make simulate  the seL4 system (kernel, root task, memory server, scenario clients) on
#                  QEMU riscv64 and aarch64 (ARCH=riscv64|aarch64 for one): PASS/FAIL table
#   make docker-simulate
#                  `make simulate` inside a Debian bookworm container (docker/Dockerfile)
#   make bench     host benchmarks (crate mem-bench)
#   make fuzz      cargo fuzz on protocol/fuzz (needs cargo-fuzz and a nightly toolchain)
#   make clean     remove build outputs (target/, build/)
#
# seL4 bring-up (issue 3; see the section "seL4 system" at the end of this file):
#   make deps [SEL4_GIT=<url-or-path>] [RUST_SEL4_GIT=<url-or-path>]
#                  clone seL4 and rust-sel4 at the pinned commits into deps/
#   make boot ARCH=riscv64|aarch64
#                  build kernel, loader and the hello root task; boot it on QEMU
#   make boot-all  `make boot` for every arch in SEL4_ARCHES
#   make simulate [ARCH=...]
#                  deps (if missing), build and boot every arch, PASS/FAIL table per arch

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

# --- Host toolchain -------------------------------------------------------------------
# The default (rustup) cargo from PATH; without rustup, Debian's cargo also works on the host.
HOST_CARGO ?= $(or $(shell command -v cargo 2>/dev/null),$(wildcard $(HOME)/.cargo/bin/cargo),/usr/bin/cargo)

# In CI (CI=true) the committed Cargo.lock must be up to date; locally cargo may update it.
LOCKED ?= $(if $(filter true 1,$(CI)),--locked,)

# --- Cross toolchain (Debian rustc-web) -----------------------------------------------
# The rustup toolchains here cannot download bare-metal targets or rust-src, so the
# cross-build uses Debian's rustc/cargo with -Zbuild-std on their library sources.
DEB_PACKAGES  := rustc-web cargo-web rust-web-src
DEB_MIN_VER   := 1.96
DEB_CARGO     := /usr/bin/cargo
DEB_RUSTC     := /usr/bin/rustc
DEB_RUSTDOC   := /usr/bin/rustdoc
CROSS_TARGETS ?= riscv64imac-unknown-none-elf aarch64-unknown-none
CROSS_CRATES  := mem-protocol mem-core mem-heap
CROSS_PROFILE ?= release
CROSS_DIR     := target/cross

# Run Debian's cargo with nothing from rustup in the way: explicit RUSTC/RUSTDOC,
# /usr/bin first on PATH, no toolchain override or wrappers.
DEB_ENV := env -u RUSTUP_TOOLCHAIN -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER \
	PATH=/usr/bin:$$PATH RUSTC=$(DEB_RUSTC) RUSTDOC=$(DEB_RUSTDOC) RUSTC_BOOTSTRAP=1

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

FUZZ_DIR       := protocol
FUZZ_SECONDS   ?= 60
FUZZ_TOOLCHAIN ?= +nightly

.PHONY: test test-host setup-cross cross simulate bench fuzz clean

# Both steps always run; the target fails if either failed.
test:
	@status=0; \
	$(MAKE) --no-print-directory test-host || status=1; \
	$(MAKE) --no-print-directory cross || status=1; \
	if [ $$status -ne 0 ]; then echo "make test: FAILED (see above)" >&2; fi; \
	exit $$status

test-host:
	@echo "==> host tests: $(HOST_CARGO) test --workspace --no-fail-fast $(LOCKED)"
	@$(HOST_CARGO) --version
	$(HOST_CARGO) test --workspace --no-fail-fast $(LOCKED)

# Install Debian's Rust only when a package is missing or older than $(DEB_MIN_VER)
# (bookworm main has 1.85; 1.96 comes from bookworm-security).
setup-cross:
	@need=""; \
	for p in $(DEB_PACKAGES); do \
	  v=$$(dpkg-query -W -f='$${Status} $${Version}' "$$p" 2>/dev/null || true); \
	  case "$$v" in \
	    "install ok installed "*) \
	      dpkg --compare-versions "$${v##* }" ge $(DEB_MIN_VER) || need="$$need $$p" ;; \
	    *) need="$$need $$p" ;; \
	  esac; \
	done; \
	if [ -n "$$need" ]; then \
	  echo "==> installing Debian packages:$$need"; \
	  $(SUDO) apt-get update; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$need; \
	fi; \
	v=$$($(DEB_RUSTC) --version 2>/dev/null || true); \
	case "$$v" in \
	  "rustc 1."*) ;; \
	  *) echo "error: $(DEB_RUSTC) missing after installing $(DEB_PACKAGES)" >&2; exit 1 ;; \
	esac; \
	dpkg --compare-versions "$$(echo "$$v" | cut -d' ' -f2)" ge $(DEB_MIN_VER) || { \
	  echo "error: $(DEB_RUSTC) is '$$v', need >= $(DEB_MIN_VER) (enable the bookworm-security apt suite)" >&2; \
	  exit 1; }

# Library-only build of the no_std crates: --lib keeps dev-dependencies (proptest,
# mem-model) off bare metal.
cross: setup-cross
	@echo "==> cross-build: $(CROSS_CRATES) for $(CROSS_TARGETS) ($(CROSS_PROFILE), Debian $$($(DEB_RUSTC) --version))"
	$(DEB_ENV) $(DEB_CARGO) build $(LOCKED) --lib --profile $(CROSS_PROFILE) \
	  $(addprefix -p ,$(CROSS_CRATES)) $(addprefix --target ,$(CROSS_TARGETS)) \
	  -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem \
	  --target-dir $(CROSS_DIR)
	@echo "==> cross-build OK: $(CROSS_CRATES) for $(CROSS_TARGETS)"

bench:
	@if [ ! -f mem-server/bench/Cargo.toml ]; then \
	  echo "make bench: crate mem-bench (mem-server/bench) does not exist yet" >&2; exit 2; fi
	$(HOST_CARGO) bench -p mem-bench $(LOCKED)

# Not part of `make test`. Runs every fuzz target for FUZZ_SECONDS each.
fuzz:
	@if ! $(HOST_CARGO) $(FUZZ_TOOLCHAIN) fuzz --version >/dev/null 2>&1; then \
	  echo "make fuzz: cargo-fuzz is not installed (cargo install cargo-fuzz; needs a nightly toolchain)" >&2; \
	  exit 2; fi
	@if [ ! -f $(FUZZ_DIR)/fuzz/Cargo.toml ]; then \
	  echo "make fuzz: no fuzz crate at $(FUZZ_DIR)/fuzz" >&2; exit 2; fi
	cd $(FUZZ_DIR) && for t in $$($(HOST_CARGO) $(FUZZ_TOOLCHAIN) fuzz list); do \
	  echo "==> fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  $(HOST_CARGO) $(FUZZ_TOOLCHAIN) fuzz run "$$t" -- -max_total_time=$(FUZZ_SECONDS); \
	done

# Also removes build/ (seL4 builds); keeps the sources in deps/.
clean:
	rm -rf target build $(FUZZ_DIR)/fuzz/target

# ======================================================================================
# seL4 system (issue 3): kernel, kernel loader, root task, QEMU boot.
#
# Nothing here is needed by `make test`. Sources of seL4 and rust-sel4 are cloned into
# the git-ignored deps/ by `make deps`; everything built goes to the git-ignored build/:
#
#   build/bin/rust-lld                 symlink to lld-22 (rust-sel4's target specs use it)
#   build/target-specs/*.json          rustc target specs, derived from rustc's builtin ones
#   build/<arch>/kernel/               seL4 kernel CMake/Ninja build directory
#   build/<arch>/sel4/                 its install prefix (what rust-sel4 calls SEL4_PREFIX)
#   build/<arch>/cargo/                cargo target dir of the root-task/ workspace
#   build/<arch>/cargo-loader/         cargo target dir of sel4-kernel-loader
#   build/<arch>/image.elf             loader + kernel + root task: what QEMU boots
#   build/<arch>/qemu.log              serial output of the last `make boot`
#   build/loader-src/                  rust-sel4's crates/, extracted to build the loader
#   build/host/                        host tools (sel4-kernel-loader-add-payload)
# ======================================================================================

SEL4_GIT          ?= https://github.com/seL4/seL4
RUST_SEL4_GIT     ?= https://github.com/seL4/rust-sel4
SEL4_COMMIT       := 6e7c3b733d296cfd88d5fbf635c96e447a882374
RUST_SEL4_COMMIT  := d441a880938209f661201704dfbee7b91c5aa905

SEL4_ARCHES ?= riscv64 aarch64
ARCH        ?= riscv64
# Build variant: empty (the simulation), `bench` (the benchmark kernel and programs) or
# `bench-entries` (the same with a kernel that logs every kernel entry). Each variant has
# its own build folder, build/<arch>[-<variant>], and kernel settings,
# sel4-config/<arch>[-<variant>].cmake.
VARIANT     ?=

DEPS_DIR      := $(CURDIR)/deps
SEL4_SRC      := $(DEPS_DIR)/seL4
RUST_SEL4_SRC := $(DEPS_DIR)/rust-sel4
VENV          := $(DEPS_DIR)/venv
BUILD_DIR     := $(CURDIR)/build
TOOLS_BIN     := $(BUILD_DIR)/bin
SPECS_DIR     := $(BUILD_DIR)/target-specs
HOST_TOOLS    := $(BUILD_DIR)/host
ARCH_DIR      := $(BUILD_DIR)/$(ARCH)$(if $(VARIANT),-$(VARIANT))
KERNEL_SETTINGS := $(CURDIR)/sel4-config/$(ARCH)$(if $(VARIANT),-$(VARIANT)).cmake
# Cargo features of the benchmark variants: the root task runs the benchmark, the server
# measures its zeroing.
SEL4_FEATURES := $(if $(filter bench%,$(VARIANT)),--features bench,)
SERVER_FEATURES := $(if $(filter bench%,$(VARIANT)),--features mem-server-sel4/bench,)
KERNEL_BUILD  := $(ARCH_DIR)/kernel
SEL4_PREFIX   := $(ARCH_DIR)/sel4
CARGO_SEL4_DIR := $(ARCH_DIR)/cargo
IMAGE         := $(ARCH_DIR)/image.elf

# Per-arch settings: cross compiler, rustc targets (the seL4 ones are our derived specs).
ifeq ($(ARCH),riscv64)
  CROSS_COMPILE   := riscv64-linux-gnu-
  LOADER_TARGET   := riscv64imac-unknown-none-elf
  SEL4_TARGET     := riscv64imac-sel4
else ifeq ($(ARCH),aarch64)
  CROSS_COMPILE   := aarch64-linux-gnu-
  LOADER_TARGET   := aarch64-unknown-none
  SEL4_TARGET     := aarch64-sel4
endif
ROOTTASK_TARGET := $(SEL4_TARGET)-roottask
SEL4_PROFILE    ?= release
# cargo puts the "dev" profile into a folder named "debug"
SEL4_PROFILE_DIR := $(if $(filter dev,$(SEL4_PROFILE)),debug,$(SEL4_PROFILE))

# Debian packages for the seL4 build. QEMU 10 comes from bookworm-backports; ipxe-qemu
# (a recommended package of it) has the NIC option ROM that QEMU aarch64 virt needs.
# picolibc (with gcc-riscv64-unknown-elf, which its riscv64 package is built for) is the
# C library of the libc-client program (SQLite and Lua on seL4).
SEL4_DEB_PACKAGES := cmake ninja-build device-tree-compiler libxml2-utils \
	gcc-riscv64-linux-gnu gcc-aarch64-linux-gnu binutils-riscv64-linux-gnu \
	binutils-aarch64-linux-gnu lld-22 libclang1-14 libclang-common-14-dev ipxe-qemu \
	picolibc-aarch64-linux-gnu picolibc-riscv64-unknown-elf gcc-riscv64-unknown-elf
QEMU_DEB_PACKAGES := qemu-system-misc qemu-system-arm
QEMU_MIN_VER      := 10
BACKPORTS_SUITE   := bookworm-backports
BACKPORTS_SOURCES := /etc/apt/sources.list.d/$(BACKPORTS_SUITE).sources
LLD               := /usr/lib/llvm-22/bin/lld
LIBCLANG_PATH     ?= /usr/lib/llvm-14/lib

# Debian's cargo/rustc (see "Cross toolchain" above) with what rust-sel4's build scripts
# read: SEL4_PREFIX (libsel4 headers, kernel config, kernel.elf, platform_gen.yaml),
# RUST_TARGET_PATH (our target specs), LIBCLANG_PATH (bindgen in sel4-sys).
SEL4_ENV := env -u RUSTUP_TOOLCHAIN -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER \
	-u CARGO_TARGET_DIR -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
	PATH=$(TOOLS_BIN):$(VENV)/bin:/usr/bin:$$PATH \
	RUSTC=$(DEB_RUSTC) RUSTDOC=$(DEB_RUSTDOC) RUSTC_BOOTSTRAP=1 \
	SEL4_PREFIX=$(SEL4_PREFIX) RUST_TARGET_PATH=$(SPECS_DIR) LIBCLANG_PATH=$(LIBCLANG_PATH)
BUILD_STD := -Zbuild-std=core,alloc,compiler_builtins -Zbuild-std-features=compiler-builtins-mem
# rustc 1.96 accepts custom target JSON (our specs) only with -Zunstable-options.
# The cfg carries a hash of our target specs: cargo does not notice when a custom target's
# JSON changes (same name), so without it a changed spec would leave stale builds.
SPECS_HASH = $(shell cat $(SPECS_DIR)/*.json 2>/dev/null | sha256sum | cut -c1-16)
SEL4_RUSTFLAGS = --config 'build.rustflags=["-Zunstable-options", "--cfg", "sel4_specs=\"$(SPECS_HASH)\""]'

.PHONY: deps check-deps setup-sel4 check-arch target-specs kernel loader-src loader add-payload components capi \
	root-task image boot boot-all simulate simulate-arch docker-simulate clean-sel4

check-arch:
	@case "$(ARCH)" in riscv64|aarch64) ;; \
	  *) echo "error: ARCH must be riscv64 or aarch64 (got '$(ARCH)')" >&2; exit 2 ;; esac

# --- Sources ----------------------------------------------------------------------------
# clone-at <dir> <url> <commit>: idempotent; skips a checkout already at <commit>. Tries a
# shallow fetch of just that commit first, then falls back to fetching everything.
define clone-at
	@if [ "$$(git -C $(1) rev-parse -q --verify HEAD 2>/dev/null)" = "$(3)" ]; then \
	  echo "==> $(1): already at $(3)"; \
	else \
	  echo "==> $(1): fetching $(3) from $(2)"; \
	  mkdir -p $(1); \
	  git -C $(1) init -q; \
	  git -C $(1) remote remove origin 2>/dev/null || true; \
	  git -C $(1) remote add origin "$(2)"; \
	  git -C $(1) fetch -q --depth 1 origin $(3) 2>/dev/null || git -C $(1) fetch -q origin; \
	  git -C $(1) -c advice.detachedHead=false checkout -q --force --detach $(3); \
	  test "$$(git -C $(1) rev-parse HEAD)" = "$(3)"; \
	  echo "==> $(1): at $(3)"; \
	fi
endef

# A source that is a folder here (a local git directory, bare or not) is passed to git as
# its absolute path, so a relative SEL4_GIT=../x.git means the same as from the project
# root (git would otherwise resolve it inside deps/<name>); URLs are passed as they are.
git-source = $(if $(wildcard $(1)/.),$(abspath $(1)),$(1))

deps:
	$(call clone-at,$(SEL4_SRC),$(call git-source,$(SEL4_GIT)),$(SEL4_COMMIT))
	$(call clone-at,$(RUST_SEL4_SRC),$(call git-source,$(RUST_SEL4_GIT)),$(RUST_SEL4_COMMIT))

check-deps:
	@for d in $(SEL4_SRC) $(RUST_SEL4_SRC); do \
	  if [ ! -d $$d/.git ]; then \
	    echo "error: $$d is missing: run 'make deps' first (SEL4_GIT=... RUST_SEL4_GIT=... to clone from elsewhere)" >&2; \
	    exit 2; fi; done
	@test "$$(git -C $(SEL4_SRC) rev-parse HEAD)" = "$(SEL4_COMMIT)" || { \
	  echo "error: $(SEL4_SRC) is not at $(SEL4_COMMIT): run 'make deps'" >&2; exit 2; }
	@test "$$(git -C $(RUST_SEL4_SRC) rev-parse HEAD)" = "$(RUST_SEL4_COMMIT)" || { \
	  echo "error: $(RUST_SEL4_SRC) is not at $(RUST_SEL4_COMMIT): run 'make deps'" >&2; exit 2; }

# --- Host packages ----------------------------------------------------------------------
# Installs only what is missing: Debian packages (QEMU >= $(QEMU_MIN_VER) from
# bookworm-backports, whose apt source is added when absent), the Python packages of the
# kernel build (pip install sel4-deps, in a venv under deps/), and the rust-lld symlink.
setup-sel4: setup-cross
	@need=""; \
	for p in $(SEL4_DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q '^install ok installed$$' || need="$$need $$p"; \
	done; \
	qemu_ok=1; \
	for q in qemu-system-riscv64 qemu-system-aarch64; do \
	  v=$$($$q --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p' || true); \
	  [ -n "$$v" ] && [ "$$v" -ge $(QEMU_MIN_VER) ] || qemu_ok=0; \
	done; \
	if [ -n "$$need" ] || [ $$qemu_ok = 0 ]; then \
	  if [ $$qemu_ok = 0 ] && ! grep -rqs '$(BACKPORTS_SUITE)' /etc/apt/sources.list /etc/apt/sources.list.d/; then \
	    mirror=$$(scripts/apt-mirror.sh $(BACKPORTS_SUITE:-backports=)) || { \
	      echo "setup-sel4: no apt source for $(BACKPORTS_SUITE:-backports=) to take the mirror from; add $(BACKPORTS_SUITE) yourself" >&2; exit 1; }; \
	    echo "==> adding the apt suite $(BACKPORTS_SUITE) from $$mirror ($(BACKPORTS_SOURCES))"; \
	    printf '%s\n' 'Types: deb' "URIs: $$mirror" 'Suites: $(BACKPORTS_SUITE)' \
	      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
	      | $(SUDO) tee $(BACKPORTS_SOURCES) >/dev/null; \
	  fi; \
	  $(SUDO) apt-get update; \
	  if [ -n "$$need" ]; then \
	    echo "==> installing Debian packages:$$need"; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$need; \
	  fi; \
	  if [ $$qemu_ok = 0 ]; then \
	    echo "==> installing $(QEMU_DEB_PACKAGES) from $(BACKPORTS_SUITE)"; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	      -t $(BACKPORTS_SUITE) $(QEMU_DEB_PACKAGES); \
	  fi; \
	fi
	@if [ ! -f $(VENV)/.sel4-deps-installed ]; then \
	  echo "==> python venv $(VENV) with sel4-deps"; \
	  python3 -m venv $(VENV); \
	  $(VENV)/bin/pip install -q --disable-pip-version-check sel4-deps; \
	  touch $(VENV)/.sel4-deps-installed; \
	fi
	@mkdir -p $(TOOLS_BIN)
	@test -x $(LLD) || { echo "error: $(LLD) missing (package lld-22)" >&2; exit 1; }
	@ln -sfn $(LLD) $(TOOLS_BIN)/rust-lld

# --- Kernel -----------------------------------------------------------------------------
# Configured from sel4-config/<arch>.cmake (plus KERNEL_CMAKE_ARGS, e.g. -DKernelDebugBuild=OFF
# for benchmark builds); reconfigured from scratch whenever the settings or the arguments
# change. The configure step runs QEMU once to dump the machine's device tree.
KERNEL_CMAKE_ARGS ?=
KERNEL_CONFIGURE := cmake -G Ninja -Wno-dev \
	-DCROSS_COMPILER_PREFIX=$(CROSS_COMPILE) \
	-DCMAKE_TOOLCHAIN_FILE=$(SEL4_SRC)/gcc.cmake \
	-DCMAKE_INSTALL_PREFIX=$(SEL4_PREFIX) \
	-C $(KERNEL_SETTINGS) $(KERNEL_CMAKE_ARGS) \
	-S $(SEL4_SRC) -B $(KERNEL_BUILD)

kernel: check-arch check-deps setup-sel4
	@stamp="$$(printf '%s\n' '$(KERNEL_CONFIGURE)' | cat - sel4-config/*.cmake | sha256sum)"; \
	if [ ! -f $(KERNEL_BUILD)/build.ninja ] || [ "$$(cat $(KERNEL_BUILD)/.configured 2>/dev/null)" != "$$stamp" ]; then \
	  echo "==> configuring seL4 for $(ARCH)"; \
	  rm -rf $(KERNEL_BUILD) $(SEL4_PREFIX); \
	  PATH=$(VENV)/bin:$$PATH $(KERNEL_CONFIGURE); \
	  echo "$$stamp" > $(KERNEL_BUILD)/.configured; \
	fi
	PATH=$(VENV)/bin:$$PATH ninja -C $(KERNEL_BUILD) all install | sed '/^-- Up-to-date: /d'
	@test -f $(SEL4_PREFIX)/bin/kernel.elf
	@echo "==> seL4 kernel for $(ARCH): $(SEL4_PREFIX)"

# --- Rust target specs ------------------------------------------------------------------
# <arch>-sel4 and <arch>-sel4-roottask, derived from Debian rustc's builtin targets.
target-specs: setup-cross
	@python3 scripts/gen-target-specs.py --rustc $(DEB_RUSTC) --out-dir $(SPECS_DIR) $(SEL4_ARCHES)

# --- Server, clients, root task (workspace root-task/, outside the host workspace) ------
# Build order: the memory server (package mem-server-sel4, binary mem-server) for the
# <arch>-sel4-nofpu target (no floating-point or vector registers: the root task gives its
# TCB seL4's fpuDisabled flag, so IPC with it never switches FPU state), the scenario client
# (binary scenario-client) and the libc client (binary libc-client: SQLite and Lua on
# picolibc) for the plain <arch>-sel4 target, then the root task for <arch>-sel4-roottask,
# which embeds the three ELFs (include_bytes! of the paths in MEM_SERVER_ELF,
# SCENARIO_CLIENT_ELF and LIBC_CLIENT_ELF).
SEL4_CARGO_FLAGS = $(BUILD_STD) -Zunstable-options $(SEL4_RUSTFLAGS) --profile $(SEL4_PROFILE) $(LOCKED)
ROOT_TASK_ELF    := $(CARGO_SEL4_DIR)/$(ROOTTASK_TARGET)/$(SEL4_PROFILE_DIR)/root-task.elf
SERVER_TARGET    := $(SEL4_TARGET)-nofpu
SERVER_ELF       := $(CARGO_SEL4_DIR)/$(SERVER_TARGET)/$(SEL4_PROFILE_DIR)/mem-server.elf
CLIENT_ELF       := $(CARGO_SEL4_DIR)/$(SEL4_TARGET)/$(SEL4_PROFILE_DIR)/scenario-client.elf
LIBC_CLIENT_ELF  := $(CARGO_SEL4_DIR)/$(SEL4_TARGET)/$(SEL4_PROFILE_DIR)/libc-client.elf

components: check-arch check-deps setup-sel4 target-specs kernel
	@echo "==> memory server for $(ARCH) ($(SERVER_TARGET), $(SEL4_PROFILE))"
	$(SEL4_ENV) $(DEB_CARGO) build $(SEL4_CARGO_FLAGS) \
	  --manifest-path root-task/Cargo.toml -p mem-server-sel4 $(SERVER_FEATURES) \
	  --target $(SERVER_TARGET) --target-dir $(CARGO_SEL4_DIR)
	@echo "==> scenario client for $(ARCH) ($(SEL4_TARGET), $(SEL4_PROFILE))"
	$(SEL4_ENV) $(DEB_CARGO) build $(SEL4_CARGO_FLAGS) \
	  --manifest-path root-task/Cargo.toml -p scenario-client \
	  --target $(SEL4_TARGET) --target-dir $(CARGO_SEL4_DIR)
	@echo "==> libc client (SQLite, Lua on picolibc) for $(ARCH) ($(SEL4_TARGET), $(SEL4_PROFILE))"
	$(SEL4_ENV) $(DEB_CARGO) build $(SEL4_CARGO_FLAGS) \
	  --manifest-path root-task/Cargo.toml -p libc-client \
	  --target $(SEL4_TARGET) --target-dir $(CARGO_SEL4_DIR)
	@test -f $(SERVER_ELF) && test -f $(CLIENT_ELF) && test -f $(LIBC_CLIENT_ELF)

root-task: check-arch check-deps setup-sel4 target-specs kernel components
	@echo "==> root task for $(ARCH) ($(ROOTTASK_TARGET), $(SEL4_PROFILE))"
	$(SEL4_ENV) MEM_SERVER_ELF=$(SERVER_ELF) SCENARIO_CLIENT_ELF=$(CLIENT_ELF) LIBC_CLIENT_ELF=$(LIBC_CLIENT_ELF) $(DEB_CARGO) build $(SEL4_CARGO_FLAGS) \
	  --manifest-path root-task/Cargo.toml -p root-task $(SEL4_FEATURES) \
	  --target $(ROOTTASK_TARGET) --target-dir $(CARGO_SEL4_DIR)
	@test -f $(ROOT_TASK_ELF)

# --- C API for other systems' components -------------------------------------------------
# `make capi ARCH=...`: the C interface (clients/capi) as a static library for the plain
# <arch>-sel4 target and its header (generated by cbindgen): build/<arch>/capi/
# libmem_capi.a and mem_server.h. Link the library into a freestanding C component that
# has the memory server's badged endpoint cap (README: "Use it in your system").
CAPI_DIR := $(ARCH_DIR)/capi

capi: check-arch check-deps setup-sel4 target-specs kernel
	@echo "==> C API for $(ARCH) ($(SEL4_TARGET), $(SEL4_PROFILE))"
	$(SEL4_ENV) $(DEB_CARGO) rustc $(SEL4_CARGO_FLAGS) \
	  --manifest-path root-task/Cargo.toml -p mem-capi --lib --features standalone --crate-type staticlib \
	  --target $(SEL4_TARGET) --target-dir $(CARGO_SEL4_DIR)
	@mkdir -p $(CAPI_DIR)
	cp $(CARGO_SEL4_DIR)/$(SEL4_TARGET)/$(SEL4_PROFILE_DIR)/libmem_capi.a $(CAPI_DIR)/
	cp "$$(ls -t $(CARGO_SEL4_DIR)/$(SEL4_TARGET)/$(SEL4_PROFILE_DIR)/build/mem-capi-*/out/include/mem_server.h | head -1)" $(CAPI_DIR)/
	@echo "==> $(CAPI_DIR): $$(ls $(CAPI_DIR) | tr '\n' ' ')"

# --- Kernel loader ----------------------------------------------------------------------
# sel4-kernel-loader (bare metal, one per arch: it is linked right above the kernel) and the
# host tool sel4-kernel-loader-add-payload, which appends kernel + root task to it.
# They cannot be built inside deps/rust-sel4: cargo would resolve rust-sel4's whole
# workspace, which has git dependencies (offline, cargo cannot fetch them). So the
# crates/ folder of the checkout is extracted to build/loader-src/ under a generated
# two-member workspace, seeded with rust-sel4's Cargo.lock for the same crate versions.
LOADER_SRC       := $(BUILD_DIR)/loader-src
LOADER_CARGO_DIR := $(ARCH_DIR)/cargo-loader
LOADER_ELF       := $(LOADER_CARGO_DIR)/$(LOADER_TARGET)/release/sel4-kernel-loader
ADD_PAYLOAD      := $(HOST_TOOLS)/cargo/release/sel4-kernel-loader-add-payload
CC_ENV_NAME      = CC_$(subst -,_,$(LOADER_TARGET))

loader-src: check-deps
	@if [ "$$(cat $(LOADER_SRC)/.commit 2>/dev/null)" != "$(RUST_SEL4_COMMIT)" ]; then \
	  echo "==> extracting rust-sel4 crates into $(LOADER_SRC)"; \
	  rm -rf $(LOADER_SRC); mkdir -p $(LOADER_SRC); \
	  git -C $(RUST_SEL4_SRC) archive --format=tar $(RUST_SEL4_COMMIT) crates | tar -x -C $(LOADER_SRC); \
	  cp $(RUST_SEL4_SRC)/Cargo.lock $(LOADER_SRC)/Cargo.lock; \
	  printf '%s\n' '# Generated by the Makefile: builds the kernel loader outside rust-sel4'"'"'s workspace.' \
	    '[workspace]' 'resolver = "3"' \
	    'members = ["crates/sel4-kernel-loader", "crates/sel4-kernel-loader/add-payload"]' \
	    > $(LOADER_SRC)/Cargo.toml; \
	  echo "$(RUST_SEL4_COMMIT)" > $(LOADER_SRC)/.commit; \
	fi

add-payload: setup-sel4 loader-src
	@echo "==> sel4-kernel-loader-add-payload (host)"
	$(SEL4_ENV) $(DEB_CARGO) build --release \
	  --manifest-path $(LOADER_SRC)/Cargo.toml -p sel4-kernel-loader-add-payload \
	  --target-dir $(HOST_TOOLS)/cargo

loader: check-arch setup-sel4 loader-src kernel
	@echo "==> sel4-kernel-loader for $(ARCH) ($(LOADER_TARGET))"
	$(SEL4_ENV) $(CC_ENV_NAME)=$(CROSS_COMPILE)gcc $(DEB_CARGO) build --release $(BUILD_STD) \
	  --manifest-path $(LOADER_SRC)/Cargo.toml -p sel4-kernel-loader \
	  --target $(LOADER_TARGET) --target-dir $(LOADER_CARGO_DIR)
	@test -f $(LOADER_ELF)

# --- Image and boot ---------------------------------------------------------------------
# QEMU's -smp and -m must be those the kernel was configured for (KernelMaxNumNodes and
# QEMU_MEMORY: the kernel is built for the device tree of that machine), so by default they
# are read from the kernel build; QEMU_SMP=... / QEMU_MEM=... override them.
QEMU_SMP      ?=
QEMU_MEM      ?=
BOOT_TIMEOUT  ?= 60
BOOT_MARKER   ?= SIMULATE-DONE

image: check-arch root-task loader add-payload
	$(ADD_PAYLOAD) --loader $(LOADER_ELF) --sel4-prefix $(SEL4_PREFIX) \
	  --app $(ROOT_TASK_ELF) -o $(IMAGE)
	@echo "==> $(IMAGE)"

# Builds everything for ARCH and boots it; succeeds when the root task prints BOOT_MARKER.
boot: image
	@smp='$(QEMU_SMP)'; mem='$(QEMU_MEM)'; \
	[ -n "$$smp" ] || smp=$$(sed -n 's/^ *"MAX_NUM_NODES": "\([0-9]*\)".*/\1/p' \
	  $(SEL4_PREFIX)/libsel4/include/kernel/gen_config.json); \
	[ -n "$$mem" ] || mem=$$(sed -n 's/^QEMU_MEMORY:[A-Z]*=\([0-9]*\)$$/\1/p' $(KERNEL_BUILD)/CMakeCache.txt); \
	[ -n "$$smp" ] && [ -n "$$mem" ] || { echo "error: cannot read -smp/-m from the kernel build" >&2; exit 1; }; \
	echo "scripts/qemu-run.sh --arch $(ARCH) --image $(IMAGE) --smp $$smp --mem $$mem ..."; \
	scripts/qemu-run.sh --arch $(ARCH) --image $(IMAGE) --marker '$(BOOT_MARKER)' \
	  --timeout $(BOOT_TIMEOUT) --smp "$$smp" --mem "$$mem" --log $(ARCH_DIR)/qemu.log

boot-all:
	@for a in $(SEL4_ARCHES); do $(MAKE) --no-print-directory boot ARCH=$$a || exit 1; done

# --- Simulation -------------------------------------------------------------------------
# `make simulate` builds and boots every arch of SIM_ARCHES (all of SEL4_ARCHES, or the one
# given with ARCH=... on the command line), prints each arch's PASS/FAIL table and a
# summary, and succeeds only if every scenario passed on every arch. A hang is a failure:
# QEMU is stopped when the serial console shows no new line for SIMULATE_TIMEOUT seconds
# (time without progress, so a slow but healthy run on a busy machine is not cut short),
# or after SIMULATE_MAX_SECONDS in all. Sources come first (`make deps`: clones
# what is missing or not at the pinned commit, from SEL4_GIT / RUST_SEL4_GIT, by default
# GitHub; a no-op otherwise); missing packages are installed by setup-sel4. Serial output:
# build/<arch>/simulate.log.
SIMULATE_TIMEOUT ?= 120
SIMULATE_MAX_SECONDS ?= 1800
SIM_ARCHES ?= $(if $(filter command line environment,$(origin ARCH)),$(ARCH),$(SEL4_ARCHES))

simulate:
	@$(MAKE) --no-print-directory deps
	@status=0; \
	for a in $(SIM_ARCHES); do \
	  $(MAKE) --no-print-directory simulate-arch ARCH=$$a || status=1; \
	done; \
	echo; echo "==> make simulate: summary"; \
	for a in $(SIM_ARCHES); do \
	  printf '  %-8s %s\n' "$$a" "$$(cat $(BUILD_DIR)/$$a/simulate.result 2>/dev/null || echo 'no result')"; \
	done; \
	if [ $$status -eq 0 ]; then echo "==> make simulate: every scenario passed on: $(SIM_ARCHES)"; \
	else echo "==> make simulate: FAILED" >&2; fi; \
	exit $$status

# One arch: build (timed), boot (timed), table. Writes build/<arch>/simulate.result.
simulate-arch: check-arch
	@rm -f $(ARCH_DIR)/simulate.result $(ARCH_DIR)/simulate.log; mkdir -p $(ARCH_DIR)
	@t0=$$(date +%s); \
	if ! $(MAKE) --no-print-directory image ARCH=$(ARCH); then \
	  echo "build-failed" > $(ARCH_DIR)/simulate.result; \
	  echo "==> simulate $(ARCH): BUILD FAILED" >&2; exit 1; fi; \
	t1=$$(date +%s); \
	smp=$$(sed -n 's/^ *"MAX_NUM_NODES": "\([0-9]*\)".*/\1/p' $(SEL4_PREFIX)/libsel4/include/kernel/gen_config.json); \
	mem=$$(sed -n 's/^QEMU_MEMORY:[A-Z]*=\([0-9]*\)$$/\1/p' $(KERNEL_BUILD)/CMakeCache.txt); \
	run=0; scripts/qemu-run.sh --arch $(ARCH) --image $(IMAGE) --marker '$(BOOT_MARKER)' \
	  --timeout $(SIMULATE_TIMEOUT) --max-seconds $(SIMULATE_MAX_SECONDS) --smp "$$smp" --mem "$$mem" --log $(ARCH_DIR)/simulate.log || run=$$?; \
	t2=$$(date +%s); \
	scripts/sim-report.sh --arch $(ARCH) --log $(ARCH_DIR)/simulate.log --qemu-status $$run \
	  --build-seconds $$((t1 - t0)) --run-seconds $$((t2 - t1)) --result $(ARCH_DIR)/simulate.result

# `make simulate` in a Debian bookworm container (docker/Dockerfile). The build context
# leaves out .git, deps/, build/ and target/ (.dockerignore, read by the classic builder and
# BuildKit alike). deps/ is cloned inside the container from SEL4_GIT / RUST_SEL4_GIT:
# URLs are passed as they are, a local git directory is mounted read-only into the
# container and passed as its path there. ARCH, SIMULATE_TIMEOUT, SIMULATE_MAX_SECONDS,
# BOOT_TIMEOUT and SEL4_PROFILE are passed on when given. Every arch's simulate.log and simulate.result are
# copied to DOCKER_OUT (build/docker/) before the container goes; the logs of earlier runs
# are removed from it first, so it holds the last run's only.
# Ctrl-C: on a terminal the container gets one of its own (-it), and the ^C reaches make in
# the container as it would natively; otherwise docker's signal proxy hands SIGINT to the
# image's init (tini -g), which passes it to make's process group. Either way one Ctrl-C
# stops the run, the logs so far are copied, and the container (--rm) goes. Should the
# docker client itself die first, the recipe removes the container on its way out.
DOCKER       ?= docker
DOCKER_IMAGE ?= sel4-mem-server-sim
DOCKER_OUT   ?= $(BUILD_DIR)/docker
DOCKER_PASS  := ARCH SIMULATE_TIMEOUT SIMULATE_MAX_SECONDS BOOT_TIMEOUT SEL4_PROFILE
# mount-or-url <var> <mount point>: docker -v and make arguments for a git source.
define docker-git-arg
$(if $(wildcard $($(1))/.),-v $(abspath $($(1))):$(2):ro $(1)=$(2),$(if $($(1)),$(1)=$($(1))))
endef
DOCKER_GIT_ARGS = $(call docker-git-arg,SEL4_GIT,/mnt/sel4-git) $(call docker-git-arg,RUST_SEL4_GIT,/mnt/rust-sel4-git)
docker-simulate:
	@mkdir -p $(DOCKER_OUT); rm -f $(DOCKER_OUT)/*-simulate.log $(DOCKER_OUT)/*-simulate.result
	$(DOCKER) build -t $(DOCKER_IMAGE) -f docker/Dockerfile .
	name=$(DOCKER_IMAGE)-$$$$; trap '$(DOCKER) rm -f '"$$name"' >/dev/null 2>&1 || true' EXIT; \
	tty=; if [ -t 0 ] && [ -t 1 ]; then tty=-it; fi; \
	$(DOCKER) run --rm --name "$$name" $$tty \
	  -v $(abspath $(DOCKER_OUT)):/out $(subst -v%,-v ,$(filter -v%,$(subst -v ,-v%,$(DOCKER_GIT_ARGS)))) \
	  $(DOCKER_IMAGE) docker/run-simulate.sh $(filter-out -v%,$(subst -v ,-v%,$(DOCKER_GIT_ARGS))) \
	  $(foreach v,$(DOCKER_PASS),$(if $(filter command line environment,$(origin $(v))),$(v)=$($(v))))

# Only the seL4 builds (build/), not the host's target/.
clean-sel4:
	rm -rf $(BUILD_DIR)

# --- Benchmark (`make bench-sel4`) ----------------------------------------------------------
# For each arch of BENCH_ARCHES (all of SEL4_ARCHES, or ARCH=... from the command line):
# build the `bench` variant (release kernel with fastpaths, one core, counters for user
# level) and the `bench-entries` variant (the same kernel logging every entry), boot each
# with -smp 1 -icount shift=0,sleep=off (one guest instruction per tick: deterministic
# counts), and print `BENCH <op> <instructions per op> <kernel entries per op>` lines and
# the table against Linux (scripts/bench-report.py). Serial logs:
# build/<arch>-bench/bench.log, build/<arch>-bench-entries/bench.log. Not part of `make test`.
BENCH_ARCHES ?= $(if $(filter command line environment,$(origin ARCH)),$(ARCH),$(SEL4_ARCHES))
BENCH_TIMEOUT ?= 300
.PHONY: bench-sel4 bench-run
bench-sel4:
	@$(MAKE) --no-print-directory deps
	@for a in $(BENCH_ARCHES); do \
	  for v in bench bench-entries; do \
	    $(MAKE) --no-print-directory bench-run ARCH=$$a VARIANT=$$v || exit 1; \
	  done; \
	  python3 scripts/bench-report.py --arch $$a --instr $(BUILD_DIR)/$$a-bench/bench.log \
	    --entries $(BUILD_DIR)/$$a-bench-entries/bench.log || exit 1; \
	done

# One variant of one arch: build and boot it, keep the serial log.
bench-run: check-arch image
	@mem=$$(sed -n 's/^QEMU_MEMORY:[A-Z]*=\([0-9]*\)$$/\1/p' $(KERNEL_BUILD)/CMakeCache.txt); \
	scripts/qemu-run.sh --arch $(ARCH) --image $(IMAGE) --marker BENCH-DONE \
	  --timeout $(BENCH_TIMEOUT) --smp 1 --mem "$$mem" --log $(ARCH_DIR)/bench.log \
	  -- -icount shift=0,sleep=off
