//! The systemd units in contrib/systemd are valid: `systemd-analyze
//! verify` accepts them (directives, sections, dependencies), with the
//! binaries they name pointed at this build.

use std::path::Path;
use std::process::Command;

#[test]
fn units_pass_systemd_analyze_verify() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd");
    let tmp = std::env::temp_dir().join(format!("rvs-units-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let bin = env!("CARGO_BIN_EXE_rvs-keepalived");
    let mut units = Vec::new();
    for name in ["rvsd.service", "rvs-keepalived.service"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(
            text.contains("ExecReload=/bin/kill -HUP $MAINPID"),
            "{name}"
        );
        // verify checks that the programs exist and are executable.
        let text = text
            .replace("/usr/sbin/rvs-keepalived", bin)
            .replace("/usr/sbin/rvsd", bin);
        let path = tmp.join(name);
        std::fs::write(&path, text).unwrap();
        units.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("systemd-analyze (package systemd) runs");
    let _ = std::fs::remove_dir_all(&tmp);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Only complaints about the units themselves count (the host's own
    // units may be referenced through After=/Wants=).
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("rvsd.service") || l.contains("rvs-keepalived.service"))
        .collect();
    assert!(ours.is_empty(), "systemd-analyze verify:\n{stderr}");
    assert!(out.status.success(), "systemd-analyze verify:\n{stderr}");
}
