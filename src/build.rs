//! Build script: packed relative relocations for release builds of the `kpidb` binary.
//!
//! A position-independent executable is relocated when it starts, one relocation per
//! pointer in its read-only data (vtables, panic locations, string tables): 290,000 of
//! them for kpidb, 7 MB of the release binary stored 24 bytes each. Linked with
//! `-z pack-relative-relocs` (DT_RELR) they take about 1% of that. The dynamic loader
//! must know the format, which glibc does from 2.36, so the flag is given only when
//! building on and for such a system; anywhere else the link is unchanged.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/build.rs");
    if packed_relocations_supported() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

fn packed_relocations_supported() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // Release-like profiles only: test and dev links stay as they were.
    if var("PROFILE") != "release" || var("TARGET") != var("HOST") {
        return false;
    }
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return false;
    }
    // `getconf GNU_LIBC_VERSION` prints e.g. "glibc 2.36".
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    output.status.success() && (major, minor) >= (2, 36)
}
