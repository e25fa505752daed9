//! Compile the C part of scenario c-client (`clients/c-client/c_client.c`) with the Debian
//! cross gcc of the target's arch (freestanding, no libc) against the header mem-capi
//! generates (`DEP_MEM_CAPI_INCLUDE`), into a static library linked into this program.
//! `C_CLIENT_CC` / `C_CLIENT_AR` override the tools.
use std::path::PathBuf;
use std::process::Command;

fn run(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?} failed: {st}");
}

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let include = std::env::var("DEP_MEM_CAPI_INCLUDE").expect("mem-capi's header folder");
    let src = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../c-client/c_client.c");
    let (prefix, arch_flags): (&str, &[&str]) = match arch.as_str() {
        "aarch64" => ("aarch64-linux-gnu-", &[]),
        "riscv64" => ("riscv64-linux-gnu-", &["-march=rv64imac", "-mabi=lp64", "-mcmodel=medany", "-mno-relax"]),
        a => panic!("no C compiler known for {a}"),
    };
    let cc = std::env::var("C_CLIENT_CC").unwrap_or_else(|_| format!("{prefix}gcc"));
    let ar = std::env::var("C_CLIENT_AR").unwrap_or_else(|_| format!("{prefix}ar"));
    let obj = out.join("c_client.o");
    run(Command::new(&cc)
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-ffreestanding", "-fno-builtin", "-nostdlib"])
        .args(["-fno-pic", "-fno-pie", "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fno-common"])
        .args(arch_flags)
        .arg("-I")
        .arg(&include)
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj));
    let lib = out.join("libc_client.a");
    let _ = std::fs::remove_file(&lib);
    run(Command::new(&ar).arg("crs").arg(&lib).arg(&obj));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=c_client");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=C_CLIENT_CC");
    println!("cargo:rerun-if-env-changed=C_CLIENT_AR");
}
