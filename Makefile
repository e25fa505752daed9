# Build and test entry points. See README.md.
#
#   make test      host test suite + bare-metal cross-build of the no_std crates
#   make simulate  the seL4 system on QEMU (not built yet: issue 3)
#   make bench     host benchmarks (crate mem-bench)
#   make fuzz      cargo fuzz on protocol/fuzz (needs cargo-fuzz and a nightly toolchain)
#   make clean     remove build outputs

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
CROSS_CRATES  := mem-protocol mem-core
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

simulate:
	@echo "make simulate: the seL4 system (kernel, root task, memory server and clients on" >&2
	@echo "QEMU riscv64 and aarch64) is not built yet; it arrives with issue 3." >&2
	@exit 2

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

clean:
	rm -rf target $(FUZZ_DIR)/fuzz/target
