//! The command line: `--check`, exit codes and error messages.

use std::process::Command;

fn rvsd_with(config: &str, extra: &[&str]) -> std::process::Output {
    let path = std::env::temp_dir().join(format!(
        "rvsd-cli-{}-{}.toml",
        std::process::id(),
        config.len()
    ));
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .arg("--config")
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    out
}

#[test]
fn check_accepts_a_good_file() {
    let out = rvsd_with(
        "[[port]]\nname = \"eth0\"\nbackend = \"af_packet\"\n",
        &["--check"],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 ports, 0 services)"));
}

#[test]
fn bad_file_exits_2_naming_the_key() {
    let out = rvsd_with(
        "[[port]]\nname = \"eth0\"\nbackend = \"af_packet\"\nmtu = 10\n",
        &["--check"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("port[0].mtu: 10: expected 1280 to 9000"),
        "{err}"
    );
    // Without --check too: nothing starts.
    let out = rvsd_with("[[port]]\nname = \"eth0\"\nbackend = \"xdp\"\n", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("port[0].backend: unknown variant `xdp`")
    );
}

#[test]
fn missing_interface_exits_2() {
    let out = rvsd_with(
        "[[port]]\nname = \"rvsnope0\"\nbackend = \"af_packet\"\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("port[0].name: no interface `rvsnope0` in this network namespace"),
        "{err}"
    );
}
