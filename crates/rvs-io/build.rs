//! Compiles the XDP redirect program (`bpf/redirect.c`) with clang into
//! `$OUT_DIR/redirect.bpf.o`, which `src/af_xdp/program.rs` embeds.
//!
//! No binary object is committed: a machine without clang or the libbpf
//! headers fails here with a message that says how to get them.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "bpf/redirect.c";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("redirect.bpf.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let mut cmd = Command::new(&clang);
    cmd.args([
        "-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-c", SOURCE, "-o",
    ])
    .arg(&out);
    // Debian puts <asm/types.h> under the multiarch directory, which clang
    // does not search when targeting bpf.
    let multiarch = format!(
        "/usr/include/{}-linux-gnu",
        env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".to_owned())
    );
    if std::path::Path::new(&multiarch).is_dir() {
        cmd.arg(format!("-I{multiarch}"));
    }
    let hint = "the AF_XDP backend compiles its XDP program with clang and the libbpf \
                headers: run `./x setup` (or `apt-get install clang libbpf-dev`), or point \
                CLANG at a clang that targets bpf";
    match cmd.output() {
        Err(e) => {
            eprintln!("error: cannot run `{clang}`: {e}\n{hint}");
            std::process::exit(1);
        }
        Ok(o) if !o.status.success() => {
            eprintln!(
                "error: `{clang}` failed to compile {SOURCE}:\n{}\n{hint}",
                String::from_utf8_lossy(&o.stderr)
            );
            std::process::exit(1);
        }
        Ok(_) => {}
    }
}
