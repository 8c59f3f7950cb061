//! The desktop binary's command line works without a display: `--help` and
//! `--version` print and exit at once, `--autostart on` writes the XDG
//! autostart entry (with `--hidden`, so login starts it in the tray) into
//! `$XDG_CONFIG_HOME/autostart`, and `--autostart off` removes it.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

const APP: &str = env!("CARGO_BIN_EXE_agentgate-desktop");

/// Runs the app with no display and no D-Bus: anything that needed a GUI
/// would fail or hang (bounded here).
fn run(args: &[&str], config_home: &std::path::Path) -> Output {
    let started = Instant::now();
    let out = Command::new(APP)
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{args:?} took long"
    );
    out
}

#[test]
fn help_and_version_print_and_exit_without_a_gui() {
    let home = tempfile::tempdir().unwrap();
    let out = run(&["--help"], home.path());
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--hidden") && text.contains("--autostart"),
        "{text}"
    );
    let out = run(&["--version"], home.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("agentgate-desktop 0."));
    let out = run(&["--frobnicate"], home.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option"));
}

#[test]
fn start_at_login_writes_an_entry_that_starts_in_the_tray() {
    let home = tempfile::tempdir().unwrap();
    let entry = home.path().join("autostart/agentgate.desktop");
    let out = run(&["--autostart", "status"], home.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("start at login: off"));
    let out = run(&["--autostart", "on"], home.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&entry).unwrap();
    let exec = text.lines().find(|l| l.starts_with("Exec=")).unwrap();
    let app = std::fs::canonicalize(APP).unwrap();
    assert_eq!(
        exec,
        format!("Exec=\"{}\" --hidden", app.display()),
        "{text}"
    );
    assert!(text.contains("[Desktop Entry]") && text.contains("Type=Application"));
    let out = run(&["--autostart", "status"], home.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("start at login: on"));
    let out = run(&["--autostart", "off"], home.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(!entry.exists());
    // Off twice is still off.
    assert_eq!(
        run(&["--autostart", "off"], home.path()).status.code(),
        Some(0)
    );
}
