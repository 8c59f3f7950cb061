use crate::harness::*;

#[test]
fn help_usage_errors_and_exit_codes() {
    let install = Install::new();
    let out = install.run(&["--help"], None);
    assert!(out.status.success());
    for cmd in ["serve", "keys", "accounts", "queue", "admin"] {
        assert!(stdout(&out).contains(cmd), "--help lacks {cmd}");
    }
    for sub in [
        &["keys", "--help"][..],
        &["accounts", "add", "--help"],
        &["queue", "reject", "--help"],
    ] {
        assert!(install.run(sub, None).status.success(), "{sub:?}");
    }
    assert_eq!(
        install.run(&["frobnicate"], None).status.code(),
        Some(2),
        "usage errors exit 2"
    );
    assert_eq!(
        install
            .run(&["queue", "list", "--status", "nope"], None)
            .status
            .code(),
        Some(2)
    );

    let out = install.run(&["queue", "approve", "doesnotexist"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no queue entry"), "{}", stderr(&out));
    let out = install.run(&["accounts", "add", "nosuch", "x"], Some("t"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown service"));
    let out = install.run(&["accounts", "add", "github", "empty"], Some(""));
    assert_eq!(out.status.code(), Some(1), "an empty secret is refused");
    assert!(
        install
            .run(&["keys", "create", "dup"], None)
            .status
            .success()
    );
    let out = install.run(&["keys", "create", "dup"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"));
    let out = install.run(&["keys", "list"], None);
    assert!(stdout(&out).contains("dup"));
    assert!(
        !stdout(&out).contains("rms_") || stdout(&out).contains('…'),
        "keys are only hinted"
    );
    assert!(
        install
            .run(&["keys", "revoke", "dup"], None)
            .status
            .success()
    );
    assert_eq!(
        install.run(&["keys", "revoke", "dup"], None).status.code(),
        Some(1)
    );
}

#[test]
fn admin_password_comes_from_stdin_and_is_checked() {
    let install = Install::new();
    let out = install.run(&["admin", "set-password"], Some("short\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("at least 8"));
    let out = install.run(&["admin", "set-password"], Some("a proper password\n"));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_missing_keychain_fails_at_start_with_what_to_do() {
    let install = Install::new();
    let out = install
        .command()
        .args(["keys", "list"])
        .env("AGENTGATE_CREDENTIAL_BACKEND", "keychain")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/agentgate-test-bus",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("keychain is not available"), "{err}");
    assert!(err.contains("encrypted-file"), "{err}");
}

#[test]
fn the_encrypted_file_backend_refuses_a_key_inside_the_data_folder() {
    let install = Install::new();
    let inside = install.data.path().join("inner.key");
    assert!(
        install
            .run(&["secrets", "generate-key", inside.to_str().unwrap()], None)
            .status
            .success()
    );
    let out = install
        .command()
        .args(["keys", "list"])
        .env("AGENTGATE_SECRETS_KEY_FILE", &inside)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("inside the data folder"),
        "{}",
        stderr(&out)
    );
}

/// Through the real OS keychain when the test script provides one.
#[test]
fn accounts_added_from_the_cli_land_in_the_os_keychain() {
    if std::env::var("AGENTGATE_TEST_KEYCHAIN").as_deref() != Ok("1") {
        eprintln!("skipped: AGENTGATE_TEST_KEYCHAIN is not 1");
        return;
    }
    let install = Install::new();
    let token = "ghp_cli_keychain_marker_42";
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut c = install.command();
        c.env("AGENTGATE_CREDENTIAL_BACKEND", "keychain");
        for var in [
            "DBUS_SESSION_BUS_ADDRESS",
            "XDG_RUNTIME_DIR",
            "XDG_DATA_HOME",
        ] {
            if let Ok(v) = std::env::var(var) {
                c.env(var, v);
            }
        }
        let mut child = c
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&["accounts", "add", "github", "kc-cli"], Some(token));
    assert!(out.status.success(), "{}", stderr(&out));
    let found = std::process::Command::new("secret-tool")
        .args(["search", "--all", "service", "agentgate"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&found.stdout).contains(token),
        "secret-tool does not see the token"
    );
    let db = std::fs::read(install.data.path().join("agentgate.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(token));
    assert!(
        run(&["accounts", "remove", "github", "kc-cli"], None)
            .status
            .success()
    );
}
