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
    assert!(err.contains("secrets use-file"), "{err}");
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
    assert!(
        secret_tool_listing().contains(token),
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

/// The first five minutes on a server without a keychain: `secrets use-file`
/// makes the choice once, in the data folder's config.toml, and every later
/// command in any terminal (no environment variables) finds it.
#[test]
fn without_a_keychain_the_encrypted_file_choice_is_remembered_for_every_command() {
    let install = Install::new();
    let home = tempfile::tempdir().unwrap();
    let bare = |args: &[&str], stdin: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_agentgate"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("AGENTGATE_DATA_DIR", install.data.path())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            std::io::Write::write_all(&mut input, s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    };
    // No D-Bus session: no keychain. The error says what to run.
    let out = bare(&["keys", "create", "first"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the OS keychain is not available"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("agentgate secrets use-file"),
        "{}",
        stderr(&out)
    );

    let out = bare(&["secrets", "use-file"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = home.path().join(".config/agentgate/secrets.key");
    assert!(key.exists(), "{}", stderr(&out));
    let config = std::fs::read_to_string(install.data.path().join("config.toml")).unwrap();
    assert!(
        config.contains("credential_backend = \"encrypted-file\""),
        "{config}"
    );

    // Later commands, with nothing in the environment, use it.
    let out = bare(&["keys", "create", "first"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = bare(
        &[
            "accounts",
            "add",
            "github",
            "personal",
            "--base-url",
            "http://127.0.0.1:9",
        ],
        Some("ghp_x\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = bare(&["accounts", "list"], None);
    assert!(stdout(&out).contains("personal"), "{}", stdout(&out));
    // Running it again keeps the key (and so the credentials).
    let before = std::fs::read(&key).unwrap();
    assert!(bare(&["secrets", "use-file"], None).status.success());
    assert_eq!(std::fs::read(&key).unwrap(), before);
    // A key inside the data folder is refused, and nothing is remembered.
    let inside = install.data.path().join("inside.key");
    let out = bare(
        &[
            "secrets",
            "use-file",
            "--key-file",
            inside.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let config = std::fs::read_to_string(install.data.path().join("config.toml")).unwrap();
    assert!(!config.contains("inside.key"), "{config}");
    assert!(!inside.exists(), "the refused key was left behind");
}
