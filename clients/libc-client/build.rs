//! Compile the C side of `libc-client` for the seL4 target and link it with picolibc:
//! - SQLite (`sqlite3/sqlite3.c` of the `libsqlite3-sys` crate, unmodified, compile-time
//!   options only) and Lua 5.4 (`lua-5.4.9/*.c` of the `lua-src` crate, unmodified, without
//!   the stand-alone `lua.c` / `luac.c` / `onelua.c`), found in cargo's registry (both crates
//!   are build-dependencies so that cargo fetches them; `SQLITE_SRC_DIR` / `LUA_SRC_DIR`
//!   point elsewhere);
//! - our C: the OS shim under picolibc (`clients/libc/shim.c`), SQLite's VFS
//!   (`sqlite_vfs.c`) and the two workloads (`sqlite_client.c`, `lua_client.c`);
//! - picolibc's `libc.a` from Debian's packages (`picolibc-aarch64-linux-gnu`,
//!   `picolibc-riscv64-unknown-elf`; `PICOLIBC_DIR` overrides `/usr/lib/picolibc`), copied
//!   without its allocator's members: mem-capi defines `malloc`/`calloc`/`realloc`/`free`,
//!   and `memalign` & co. are left undefined (a program that needs them fails to link).
//!
//! The compilers: Debian's `aarch64-linux-gnu-gcc` and `riscv64-unknown-elf-gcc` (the one
//! picolibc's riscv64 package is built for), with picolibc's specs file (its headers,
//! thread-local `errno` with the local-exec TLS model); `LIBC_CLIENT_CC` overrides.
use std::path::{Path, PathBuf};
use std::process::Command;

const SQLITE_CRATE: &str = "libsqlite3-sys-0.40.0";
const LUA_CRATE: &str = "lua-src-551.1.0";
const LUA_DIR: &str = "lua-5.4.9";

/// SQLite's compile-time options: no OS layer (our VFS), one thread, temporary data in
/// memory only, no extensions, no local-time conversions (no time zone database).
const SQLITE_OPTIONS: &[&str] = &[
    "-DSQLITE_OS_OTHER=1",
    "-DSQLITE_THREADSAFE=0",
    "-DSQLITE_TEMP_STORE=3",
    "-DSQLITE_OMIT_LOAD_EXTENSION",
    "-DSQLITE_OMIT_LOCALTIME",
    "-DSQLITE_OMIT_WAL",
    "-DSQLITE_MAX_MMAP_SIZE=0",
];

fn run(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?} failed: {st}");
}

/// The unpacked source of `krate` in cargo's registry (`$CARGO_HOME/registry/src/*/`).
fn registry_source(krate: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let src = home.join("registry/src");
    let found = std::fs::read_dir(&src)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(krate))
        .find(|p| p.is_dir());
    found.unwrap_or_else(|| {
        panic!("{krate} not found under {}: cargo fetches it as a build-dependency of libc-client", src.display())
    })
}

fn source_dir(var: &str, krate: &str) -> PathBuf {
    println!("cargo:rerun-if-env-changed={var}");
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| registry_source(krate))
}

struct Toolchain {
    cc: String,
    ar: String,
    flags: Vec<String>,
    /// picolibc's libc.a for this arch and ABI.
    libc: PathBuf,
}

fn toolchain(arch: &str) -> Toolchain {
    println!("cargo:rerun-if-env-changed=PICOLIBC_DIR");
    println!("cargo:rerun-if-env-changed=LIBC_CLIENT_CC");
    let pico = std::env::var("PICOLIBC_DIR").unwrap_or_else(|_| "/usr/lib/picolibc".into());
    let (prefix, triple, arch_flags, libdir): (&str, &str, &[&str], &str) = match arch {
        "aarch64" => ("aarch64-linux-gnu-", "aarch64-linux-gnu", &["-mcmodel=small", "-mno-outline-atomics"], "lib"),
        "riscv64" => (
            "riscv64-unknown-elf-",
            "riscv64-unknown-elf",
            &["-march=rv64imac", "-mabi=lp64", "-mcmodel=medany", "-mno-relax"],
            "lib/rv64imac/lp64",
        ),
        a => panic!("no C toolchain known for {a}"),
    };
    let specs = format!("{pico}/{triple}/picolibc.specs");
    let libc = PathBuf::from(format!("{pico}/{triple}/{libdir}/libc.a"));
    assert!(
        Path::new(&specs).is_file() && libc.is_file(),
        "picolibc for {arch} not found ({specs}, {}): install Debian's picolibc-{triple} (make setup-sel4 does)",
        libc.display()
    );
    let mut flags: Vec<String> = vec![format!("--specs={specs}")];
    flags.extend(
        [
            "-O2", "-fno-pic", "-fno-pie", "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
            "-fno-common", "-ffunction-sections", "-fdata-sections",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    flags.extend(arch_flags.iter().map(|s| s.to_string()));
    Toolchain {
        cc: std::env::var("LIBC_CLIENT_CC").unwrap_or_else(|_| format!("{prefix}gcc")),
        ar: format!("{prefix}ar"),
        flags,
        libc,
    }
}

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let include = std::env::var("DEP_MEM_CAPI_INCLUDE").expect("mem-capi's header folder");
    let ours = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../libc");
    let sqlite = source_dir("SQLITE_SRC_DIR", SQLITE_CRATE).join("sqlite3");
    let lua = source_dir("LUA_SRC_DIR", LUA_CRATE).join(LUA_DIR);
    let tc = toolchain(&arch);

    // (source, extra flags) for every object.
    let mut jobs: Vec<(PathBuf, Vec<String>)> = Vec::new();
    let sqlite_flags: Vec<String> = SQLITE_OPTIONS.iter().map(|s| s.to_string()).collect();
    jobs.push((sqlite.join("sqlite3.c"), sqlite_flags.clone()));
    let mut lua_files: Vec<PathBuf> = std::fs::read_dir(&lua)
        .unwrap_or_else(|e| panic!("{}: {e}", lua.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .filter(|p| !matches!(p.file_name().and_then(|n| n.to_str()), Some("lua.c" | "luac.c" | "onelua.c" | "ltests.c")))
        .collect();
    lua_files.sort();
    assert!(lua_files.len() > 20, "Lua sources missing in {}", lua.display());
    for f in lua_files {
        jobs.push((f, vec![]));
    }
    let our_common = vec![
        "-std=gnu11".to_string(),
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        "-I".into(),
        include.clone(),
    ];
    for (f, extra) in [
        ("shim.c", vec![]),
        ("sqlite_vfs.c", vec!["-I".to_string(), sqlite.display().to_string()]),
        ("sqlite_client.c", vec!["-I".to_string(), sqlite.display().to_string()]),
        ("lua_client.c", vec!["-I".to_string(), lua.display().to_string()]),
    ] {
        let mut flags = our_common.clone();
        flags.extend(extra);
        let p = ours.join(f);
        println!("cargo:rerun-if-changed={}", p.display());
        jobs.push((p, flags));
    }

    // Compile in parallel (sqlite3.c alone is most of the time: start it first).
    let jobs_n: usize = std::env::var("NUM_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(2).max(1);
    let objs: Vec<PathBuf> = jobs
        .iter()
        .enumerate()
        .map(|(i, (src, _))| out.join(format!("{i:02}-{}.o", src.file_stem().unwrap().to_str().unwrap())))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs_n {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some((src, extra)) = jobs.get(i) else { break };
                run(Command::new(&tc.cc).args(&tc.flags).args(extra).arg("-c").arg(src).arg("-o").arg(&objs[i]));
            });
        }
    });

    let lib = out.join("liblibc_programs.a");
    let _ = std::fs::remove_file(&lib);
    run(Command::new(&tc.ar).arg("crs").arg(&lib).args(&objs));
    // picolibc without its allocator (nano-malloc and the sbrk under it): the malloc
    // family is mem-capi's, and an archive member defining `malloc` too would be a
    // duplicate (or, worse, take the calls).
    let pico = out.join("libpicolibc.a");
    std::fs::copy(&tc.libc, &pico).expect("copying picolibc's libc.a");
    let members = Command::new(&tc.ar).arg("t").arg(&pico).output().expect("listing picolibc's libc.a");
    let allocator: Vec<String> = String::from_utf8_lossy(&members.stdout)
        .lines()
        .filter(|m| m.starts_with("nano-malloc-") || m.contains("sbrk"))
        .map(str::to_string)
        .collect();
    assert!(allocator.iter().any(|m| m.contains("malloc.c")), "picolibc's malloc not found in {}", tc.libc.display());
    run(Command::new(&tc.ar).arg("d").arg(&pico).args(&allocator));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=libc_programs");
    println!("cargo:rustc-link-lib=static=picolibc");
    if arch == "riscv64" {
        // Debian's riscv64 picolibc is built with `-msave-restore`: its functions call
        // the `__riscv_save_N` / `__riscv_restore_N` prologue helpers, which live in the
        // compiler's libgcc (for the same -march/-mabi), not in Rust's compiler_builtins.
        let path = Command::new(&tc.cc)
            .args(&tc.flags)
            .arg("-print-libgcc-file-name")
            .output()
            .expect("asking the C compiler for its libgcc");
        let path = PathBuf::from(String::from_utf8_lossy(&path.stdout).trim());
        assert!(path.is_file(), "libgcc for {arch} not found ({})", path.display());
        std::fs::copy(&path, out.join("libccgcc.a")).expect("copying libgcc.a");
        println!("cargo:rustc-link-lib=static=ccgcc");
    }
    println!("cargo:rustc-env=SQLITE_CRATE={SQLITE_CRATE}");
}
