//! The real desktop app binary under Xvfb, with a D-Bus session, dunst as the
//! notification service and (for the keychain test) an unlocked gnome-keyring.
//! `scripts/test.sh` provides all of that and sets `AGENTGATE_TEST_DESKTOP=1`;
//! without it these tests skip.
//!
//! Notifications are watched with `dbus-monitor` (the app's `Notify` and
//! `CloseNotification` calls and the ids dunst answers with), and a button
//! press is the `ActionInvoked` signal emitted with `gdbus`, as dunst emits it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentgate_core::clock::SystemClock;
use agentgate_core::config::CredentialBackend;
use agentgate_core::{Gateway, credentials};
use serde_json::{Value, json};

mod common;
use common::*;

/// One D-Bus method call or return that `dbus-monitor` printed.
#[derive(Debug, Clone)]
struct Message {
    kind: String,
    sender: String,
    destination: String,
    serial: String,
    reply_serial: String,
    member: String,
    args: Vec<String>,
}

/// `dbus-monitor` on the session bus, parsed as it prints.
struct Monitor {
    child: Child,
    messages: Arc<Mutex<Vec<Message>>>,
}

impl Monitor {
    fn start() -> Monitor {
        // Line-buffered: piped, dbus-monitor would hold its output back.
        let mut child = Command::new("stdbuf")
            .args([
                "-oL",
                "dbus-monitor",
                "--session",
                "type='method_call',interface='org.freedesktop.Notifications'",
                "type='method_return'",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-monitor (package dbus) is installed");
        let messages = Arc::new(Mutex::new(Vec::<Message>::new()));
        let out = child.stdout.take().unwrap();
        let m2 = messages.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(&format!("{name}=")))
                        .unwrap_or("")
                        .trim_end_matches(';')
                        .to_string()
                };
                let mut all = m2.lock().unwrap();
                if line.starts_with("method call") || line.starts_with("method return") {
                    all.push(Message {
                        kind: line
                            .split_whitespace()
                            .take(2)
                            .collect::<Vec<_>>()
                            .join(" "),
                        sender: field("sender"),
                        destination: field("destination"),
                        serial: field("serial"),
                        reply_serial: field("reply_serial"),
                        member: field("member"),
                        args: Vec::new(),
                    });
                } else if let Some(last) = all.last_mut() {
                    if line.starts_with("   ") {
                        last.args.push(line.trim().to_string());
                    } else if let Some(arg) = last.args.last_mut() {
                        // A string argument of several lines goes on unindented.
                        arg.push('\n');
                        arg.push_str(&line);
                    }
                }
            }
        });
        // Let it subscribe before anything is sent.
        std::thread::sleep(Duration::from_millis(300));
        Monitor { child, messages }
    }

    /// Notify calls so far whose summary contains `text`, with the ids dunst
    /// gave them.
    fn notified(&self, text: &str) -> Vec<(u32, Message)> {
        let all = self.messages.lock().unwrap().clone();
        all.iter()
            .filter(|m| {
                m.kind == "method call"
                    && m.member == "Notify"
                    && m.args.get(3).is_some_and(|s| s.contains(text))
            })
            .filter_map(|call| {
                let ret = all.iter().find(|r| {
                    r.kind == "method return"
                        && r.reply_serial == call.serial
                        && r.destination == call.sender
                })?;
                let id = ret.args.first()?.strip_prefix("uint32 ")?.parse().ok()?;
                Some((id, call.clone()))
            })
            .collect()
    }

    async fn wait_notified(&self, text: &str) -> (u32, Message) {
        let start = Instant::now();
        loop {
            if let Some(n) = self.notified(text).pop() {
                return n;
            }
            assert!(
                start.elapsed() < WAIT,
                "no notification says {text:?}; all: {:#?}; calls: {:?}",
                self.notified("")
                    .into_iter()
                    .map(|(id, m)| (id, m.args.get(3).cloned()))
                    .collect::<Vec<_>>(),
                self.messages
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|m| m.kind == "method call")
                    .map(|m| format!("{} {:?}", m.member, m.args.get(3)))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn closed(&self, id: u32) -> bool {
        self.messages.lock().unwrap().iter().any(|m| {
            m.member == "CloseNotification" && m.args.first() == Some(&format!("uint32 {id}"))
        })
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Presses a notification's button the way the notification service reports it.
fn press(id: u32, action: &str) {
    run_ok(Command::new("gdbus").args([
        "emit",
        "--session",
        "--object-path",
        "/org/freedesktop/Notifications",
        "--signal",
        "org.freedesktop.Notifications.ActionInvoked",
        &format!("uint32 {id}"),
        &format!("'{action}'"),
    ]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_approve_reject_confirm_close_and_coalesce() {
    if !enabled() {
        return;
    }
    let _turn = ONE_APP.lock().await;
    let mock = github_mock().await;
    let install = Install::new(CredentialBackend::EncryptedFile);
    let key = install.prepare(Some(&mock.uri()));
    let monitor = Monitor::start();
    let mut app = install.launch();
    let t0 = Instant::now();

    // Approve from the notification: it runs against the mock.
    let first = app.submit(&key, "POST", "First").await;
    let (id, call) = monitor.wait_notified("Create issue \"First\" in o/r").await;
    let summary = &call.args[3];
    assert!(
        summary.contains("claude") && summary.contains("github/personal"),
        "{summary}"
    );
    assert!(
        call.args[4].contains("please: First"),
        "the comment: {:?}",
        call.args
    );
    // The request it approves is written out whole.
    assert!(
        call.args[4].contains("POST /repos/o/r/issues")
            && call.args[4].contains("\ncontent-type: \"application/json\""),
        "the request: {:?}",
        call.args
    );
    let actions = call.args.join("\n");
    for label in [
        "\"approve\"",
        "\"Approve\"",
        "\"reject\"",
        "\"Reject\"",
        "\"default\"",
        "\"Review\"",
    ] {
        assert!(actions.contains(label), "{label} in {actions}");
    }
    // Review once (the notification's own action), the app's icon, its
    // desktop entry and a category, and normal urgency for a plain write.
    assert_eq!(actions.matches("\"Review\"").count(), 1, "{actions}");
    assert!(
        call.args[2].contains("agentgate-desktop"),
        "icon: {:?}",
        call.args
    );
    for hint in [
        "\"desktop-entry\"",
        "\"category\"",
        "x-agentgate.write",
        "\"urgency\"",
    ] {
        assert!(actions.contains(hint), "{hint} in {actions}");
    }
    assert!(actions.contains("byte 1"), "normal urgency: {actions}");
    press(id, "approve");
    let done = app.wait_status(&key, &first, "completed").await;
    assert_eq!(done["results"][0]["body"]["number"], 7);

    // Reject from the notification.
    let second = app.submit(&key, "POST", "Second").await;
    let (id, _) = monitor.wait_notified("Create issue \"Second\"").await;
    press(id, "reject");
    app.wait_status(&key, &second, "rejected").await;
    // The same button again decides nothing twice.
    press(id, "approve");

    // A deletion asks once more before it is approved.
    let third = app.submit(&key, "DELETE", "Third").await;
    let (id, _) = monitor
        .wait_notified("Delete issues in o/r on GitHub")
        .await;
    press(id, "approve");
    let (confirm, _) = monitor.wait_notified("Really approve a deletion?").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.status(&key, &third).await["status"], "pending");
    press(confirm, "confirm");
    app.wait_status(&key, &third, "completed").await;
    assert_eq!(app.status(&key, &second).await["status"], "rejected");

    // Let the burst window pass, then decide one elsewhere: its notification closes.
    tokio::time::sleep(Duration::from_secs(11).saturating_sub(t0.elapsed())).await;
    let t_fourth = Instant::now();
    let fourth = app.submit(&key, "POST", "Fourth").await;
    let (id, _) = monitor.wait_notified("Create issue \"Fourth\"").await;
    let token = app.admin_token().await;
    let r = reqwest::Client::new()
        .post(format!("{}/admin/queue/{fourth}/reject", app.admin))
        .bearer_auth(&token)
        .json(&json!({"reason": "decided in the web admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let start = Instant::now();
    while !monitor.closed(id) {
        assert!(
            start.elapsed() < WAIT,
            "the notification of {fourth} was not closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Decided by another process (as the CLI does, on the same database):
    // the notification closes as the queue stamp moves.
    let fifth = app.submit(&key, "POST", "Fifth").await;
    let (id, _) = monitor.wait_notified("Create issue \"Fifth\"").await;
    let cli = Gateway::open(
        install.config(),
        credentials::open(&install.config()).unwrap(),
        Arc::new(SystemClock),
    )
    .unwrap();
    cli.reject(&fifth, "cli", Some("from another process".into()))
        .unwrap();
    let start = Instant::now();
    while !monitor.closed(id) {
        assert!(
            start.elapsed() < WAIT,
            "the notification of {fifth}, decided by another process, was not closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.status(&key, &fifth).await["status"], "rejected");

    // The burst window passes again before the next three.
    tokio::time::sleep(Duration::from_secs(11).saturating_sub(t_fourth.elapsed())).await;

    // A batch of several requests is approved only where every request is
    // shown: its notification offers Review and Reject, not Approve.
    let submit = |body: Value| {
        reqwest::Client::new()
            .post(format!("{}/api/queue/github/personal/submit", app.agent))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let r = submit(json!({"requests": [
            {"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "Batch one"}},
            {"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "Batch two"}}],
        "comment": "two at once"}))
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let (_, call) = monitor.wait_notified("Create issue \"Batch one\"").await;
    let actions = call.args.join("\n");
    assert!(!actions.contains("\"approve\""), "{actions}");
    assert!(
        actions.contains("\"default\"") && actions.contains("\"reject\""),
        "{actions}"
    );
    let (batch_id, _) = monitor.wait_notified("Create issue \"Batch one\"").await;

    // Making a repository public is destructive though no DELETE: the
    // notification is critical and Approve asks once more.
    let r = submit(
        json!({"requests": [{"method": "PATCH", "path": "/repos/o/r", "body": {"private": false}}],
        "comment": "open it up"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let public: Value = r.json().await.unwrap();
    let (id, call) = monitor.wait_notified("PATCH /repos/o/r").await;
    let public_id = id;
    let all = call.args.join("\n");
    assert!(
        all.contains("\"urgency\"") && all.contains("byte 2"),
        "{all}"
    );
    press(id, "approve");
    let (confirm, _) = monitor.wait_notified("Really approve this?").await;
    press(confirm, "cancel");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.status(&key, public["id"].as_str().unwrap()).await["status"],
        "pending"
    );

    // A burst becomes one "N writes waiting" notification.
    let mut burst = Vec::new();
    for i in 0..5 {
        burst.push(app.submit(&key, "POST", &format!("Burst {i}")).await);
    }
    monitor.wait_notified("writes waiting").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let singles = monitor.notified("Create issue \"Burst").len();
    assert!(
        singles < 5,
        "{singles} single notifications for a burst of 5"
    );

    // A second launch hands over to the first and ends.
    install.launch_again().await;
    assert!(app.alive(), "the first instance still serves");

    screenshot("desktop-app-window");
    // No StatusNotifier host runs here: the tray did not bring the app down,
    // and the log says so, with what closing the window does instead.
    assert!(app.alive(), "{}", app.log.lock().unwrap());
    let log = app.log.lock().unwrap().clone();
    assert!(
        log.contains("no system tray (StatusNotifier host) on this desktop")
            && log.contains("minimises it"),
        "{log}"
    );
    // And closing the window leaves it (minimised) instead of ending it.
    assert!(close_window("agentgate") > 0, "no window named agentgate");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        web_processes(install.data.path()) > 0,
        "the window was closed"
    );

    // SIGTERM quits like the tray\"s Quit: the gateway stops cleanly.
    let _ = Command::new("kill")
        .args(["-TERM", &app.child.id().to_string()])
        .status();
    let status = app.wait_exit("SIGTERM").await;
    assert!(status.success(), "{status:?}");
    // Quit withdrew what was still up: nothing stays with dead buttons.
    for (what, id) in [
        ("the batch", batch_id),
        ("the public repository", public_id),
    ] {
        assert!(
            monitor.closed(id),
            "{what}'s notification stayed after Quit"
        );
    }
    // The log reader may still be catching up with the last lines.
    let start = Instant::now();
    while !app.log.lock().unwrap().contains("agentgate stopped") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the gateway did not stop gracefully:\n{}",
            app.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Started again: what still waits is announced, once, as a summary.
    let before = monitor.notified("writes waiting").len();
    let mut again = install.launch();
    let start = Instant::now();
    while monitor.notified("writes waiting").len() == before {
        assert!(
            start.elapsed() < WAIT,
            "the pending writes were not announced at start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, call) = monitor.notified("writes waiting").pop().unwrap();
    assert!(call.args[4].contains("from before"), "{:?}", call.args);
    let _ = Command::new("kill")
        .args(["-TERM", &again.child.id().to_string()])
        .status();
    let start = Instant::now();
    while again.child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < WAIT, "the app did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_added_through_the_app_land_in_the_keychain_only() {
    if !enabled() || std::env::var("AGENTGATE_TEST_KEYCHAIN").as_deref() != Ok("1") {
        eprintln!("skipping: needs AGENTGATE_TEST_DESKTOP=1 and AGENTGATE_TEST_KEYCHAIN=1");
        return;
    }
    let _turn = ONE_APP.lock().await;
    let install = Install::new(CredentialBackend::Keychain);
    install.prepare(None);
    let app = install.launch();
    let token = app.admin_token().await;
    let secret = "ghp_desktop_keychain_9876543210";
    let r = reqwest::Client::new()
        .post(format!("{}/admin/accounts", app.admin))
        .bearer_auth(&token)
        .json(&json!({"service": "github", "name": "desk", "credentials": {"token": secret}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let listing = secret_tool::secret_tool_listing();
    assert!(listing.contains("/github/desk"), "{listing}");
    assert!(listing.contains(secret), "secret-tool reads the token back");
    drop(app);
    for file in std::fs::read_dir(install.data.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the token is in the data folder"
        );
    }
}

/// A D-Bus session bus with nothing on it, stopped on drop.
struct PrivateBus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    fn start() -> PrivateBus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<busconfig><type>session</type><listen>unix:dir={}</listen>
<auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>"#,
                dir.path().display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .args(["--nofork", "--print-address=1"])
            .arg(format!("--config-file={}", config.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (package dbus) is installed");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        PrivateBus {
            child,
            address: address.trim().to_string(),
            _dir: dir,
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tauri-driver` (installed by `scripts/test.sh` into `target/tools`), which
/// launches the app and drives its WebKitGTK window over WebDriver.
fn tauri_driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/bin/tauri-driver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_shows_the_admin_ui_signed_in() {
    if !enabled() {
        return;
    }
    let _turn = ONE_APP.lock().await;
    let driver_bin = tauri_driver();
    assert!(
        driver_bin.exists(),
        "{} is missing: scripts/test.sh installs it",
        driver_bin.display()
    );
    let mock = github_mock().await;
    let install = Install::new(CredentialBackend::EncryptedFile);
    let key = install.prepare(Some(&mock.uri()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let native = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The app inherits the driver's environment: the test's data folder and ports.
    let mut driver = Command::new(&driver_bin)
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("AGENTGATE_DATA_DIR", install.data.path())
        .env("AGENTGATE_CREDENTIAL_BACKEND", "encrypted-file")
        .env("AGENTGATE_SECRETS_KEY_FILE", install.key_file())
        .env("AGENTGATE_LISTEN", "127.0.0.1:0")
        .env("AGENTGATE_ADMIN_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tauri-driver starts");
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < WAIT, "tauri-driver did not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caps = json!({"tauri:options": {"application": APP}});
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let b =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a WebDriver session on the app's window");
    // Signed in by the launch secret: the queue, not the password form.
    let h1 = b
        .wait()
        .at_most(WAIT)
        .for_element(fantoccini::Locator::Css("h1"))
        .await
        .unwrap();
    assert!(h1.text().await.unwrap().contains("Waiting for you"));
    let page = b.current_url().await.unwrap();
    assert_eq!(page.path(), "/ui/queue");

    // The settings page names the agent API's public URL (its port was free).
    let admin = format!("{}://{}", page.scheme(), page.authority());
    b.goto(&format!("{admin}/ui/settings")).await.unwrap();
    let facts = b
        .wait()
        .at_most(WAIT)
        .for_element(fantoccini::Locator::Css("dl.facts"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(facts.contains("encrypted file"), "{facts}");
    let mut agent_url = None;
    for code in b
        .find_all(fantoccini::Locator::Css("dl.facts dd code"))
        .await
        .unwrap()
    {
        let text = code.text().await.unwrap();
        if text.starts_with("http://") {
            agent_url = Some(text.replace("localhost", "127.0.0.1"));
        }
    }
    let agent_url = agent_url.unwrap_or_else(|| panic!("no public URL in {facts}"));

    // An agent's write appears in the window as it is queued.
    b.goto(&format!("{admin}/ui/queue")).await.unwrap();
    let start = Instant::now();
    loop {
        let live = b
            .execute("return document.getElementById('live').textContent", vec![])
            .await
            .unwrap();
        if live == "Live" {
            break;
        }
        assert!(start.elapsed() < WAIT, "the live stream did not connect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = reqwest::Client::new()
        .post(format!("{agent_url}/api/queue/github/personal/submit"))
        .bearer_auth(&key)
        .json(&json!({"requests": [{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "From the window test"}}], "comment": "seen in the app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.wait()
        .at_most(WAIT)
        .for_element(fantoccini::Locator::Css(&format!("#entry-{id}")))
        .await
        .unwrap();
    let png = b.screenshot().await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("desktop-window-webdriver.png"), png).unwrap();
    b.close().await.unwrap();
    let _ = driver.kill();
    let _ = driver.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_notification_service_the_gateway_carries_on() {
    if !enabled() {
        return;
    }
    let _turn = ONE_APP.lock().await;
    let mock = github_mock().await;
    let install = Install::new(CredentialBackend::EncryptedFile);
    let key = install.prepare(Some(&mock.uri()));
    // A session bus of its own with no service directories: no notification
    // service runs there and none can be started on demand.
    let bus = PrivateBus::start();
    let mut app = install.launch_with(|mut cmd| {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
        cmd
    });
    let id = app.submit(&key, "POST", "Nobody to tell").await;
    let start = Instant::now();
    while !app
        .log
        .lock()
        .unwrap()
        .contains("could not show a notification")
    {
        assert!(
            start.elapsed() < WAIT,
            "no sign of the missing service:\n{}",
            app.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(app.alive());
    assert_eq!(app.status(&key, &id).await["status"], "pending");
    // The web admin still decides it.
    let token = app.admin_token().await;
    let path = format!("/admin/queue/{id}");
    let entry = app
        .admin_call(&token, reqwest::Method::GET, &path, json!({}))
        .await;
    app.admin_call(
        &token,
        reqwest::Method::POST,
        &format!("{path}/approve"),
        json!({"digest": entry["digest"]}),
    )
    .await;
    app.wait_status(&key, &id, "completed").await;
}

/// The session cookie a window process keeps in its folder under
/// `XDG_RUNTIME_DIR` (WebKit's text cookie file), as a `Cookie` header.
fn window_cookie(runtime: &Path) -> Option<String> {
    std::fs::read_dir(runtime)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("agentgate-window-")
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("cookies")).ok())
        .flat_map(|text| text.lines().map(str::to_string).collect::<Vec<_>>())
        .find_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() >= 7 && fields[5] == "agentgate_session")
                .then(|| format!("agentgate_session={}", fields[6]))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_tray_closing_the_window_ends_its_process_and_opening_brings_it_back() {
    if !enabled() {
        return;
    }
    let _turn = ONE_APP.lock().await;
    // A tray host, as far as the app can tell: the watcher's name is owned.
    let _host = zbus::connection::Builder::session()
        .name("org.kde.StatusNotifierWatcher")
        .build()
        .await
        .expect("the test owns the StatusNotifierWatcher name");
    let install = Install::new(CredentialBackend::EncryptedFile);
    install.prepare(None);
    let mut app = install.launch();
    let data = install.data.path().to_path_buf();
    wait_for("the window's web process did not start", || {
        web_processes(&data) > 0
    })
    .await;
    assert!(
        !app.log.lock().unwrap().contains("no system tray"),
        "{}",
        app.log.lock().unwrap()
    );

    // The window runs in a process of its own, with WebKit's; its web data
    // (the session cookie) live in a private folder under XDG_RUNTIME_DIR,
    // never in the persistent data folders.
    assert!(
        window_processes(&data) >= 3,
        "no window process with WebKit's"
    );
    let runtime = PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR").expect("XDG_RUNTIME_DIR"));
    let mut cookie = None;
    wait_for("the window's session cookie was not kept", || {
        cookie = window_cookie(&runtime);
        cookie.is_some()
    })
    .await;
    let cookie = cookie.unwrap();
    let queue = |cookie: String| {
        let url = format!("{}/ui/queue", app.admin);
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(queue(cookie.clone()).await, 200, "the window is signed in");
    if let Some(share) = std::env::var_os("XDG_DATA_HOME") {
        let kept = std::fs::read_to_string(Path::new(&share).join("dev.agentgate.desktop/cookies"));
        assert!(!kept.unwrap_or_default().contains("agentgate_session"));
    }
    assert!(close_window("agentgate") > 0, "no window named agentgate");
    wait_for(
        "the window process or WebKit's outlived the closed window",
        || window_processes(&data) == 0,
    )
    .await;
    // Its folder went with it, and its session ended: the cookie is worthless.
    wait_for("the window's folder outlived it", || {
        !std::fs::read_dir(&runtime)
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("agentgate-window-")
            })
    })
    .await;
    assert_eq!(
        queue(cookie).await,
        303,
        "the closed window's session still works"
    );
    // The gateway serves on from the tray.
    assert!(app.alive());
    let health = reqwest::get(format!("{}/health", app.agent)).await.unwrap();
    assert_eq!(health.status(), 200);

    // Opening it again (a second launch hands over to the first) brings it back.
    install.launch_again().await;
    wait_for("the window did not come back", || web_processes(&data) > 0).await;
    assert!(app.alive());

    // Closed and opened again at once (Open pressed as the window goes): the
    // window is there after, whichever process got the ask.
    assert!(close_window("agentgate") > 0, "no window named agentgate");
    install.launch_again().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_for("an Open pressed as the window closed was lost", || {
        web_processes(&data) > 0
    })
    .await;
    // Killed, the tray process takes its window with it.
    drop(app);
    wait_for("the window outlived the tray process", || {
        window_processes(&data) == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_at_once_make_one_summary_and_an_edit_is_shown_again() {
    if !enabled() {
        return;
    }
    let _turn = ONE_APP.lock().await;
    let mock = github_mock().await;
    let install = Install::new(CredentialBackend::EncryptedFile);
    let key = install.prepare(Some(&mock.uri()));
    let monitor = Monitor::start();
    let app = install.launch();
    let other = Gateway::open(
        install.config(),
        credentials::open(&install.config()).unwrap(),
        Arc::new(SystemClock),
    )
    .unwrap();

    // An edit made by another process: the old notification goes, the
    // request as it is now is shown instead.
    let id = app.submit(&key, "POST", "Before the edit").await;
    let (old, _) = monitor
        .wait_notified("Create issue \"Before the edit\"")
        .await;
    let digest = other.entry(&id).unwrap().digest;
    other
        .edit(
            &id,
            &digest,
            json!([{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "After the edit"}}]),
            "cli",
        )
        .unwrap();
    monitor
        .wait_notified("Create issue \"After the edit\"")
        .await;
    wait_for("the notification of the old request stayed", || {
        monitor.closed(old)
    })
    .await;
    other.reject(&id, "cli", None).unwrap();

    // Six at once (after the burst window of the two above): three shown
    // one by one, then one summary, updated in place, never several.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let titles: Vec<String> = (0..6).map(|i| format!("Together {i}")).collect();
    let ids = futures::future::join_all(titles.iter().map(|t| app.submit(&key, "POST", t))).await;
    monitor.wait_notified("writes waiting").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let summaries: std::collections::BTreeSet<u32> = monitor
        .notified("writes waiting")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(summaries.len(), 1, "one summary, not {summaries:?}");
    let summary = *summaries.iter().next().unwrap();
    let (_, call) = monitor.notified("writes waiting").pop().unwrap();
    assert!(
        call.args[3].contains("3 writes waiting"),
        "the three not shown alone: {:?}",
        call.args
    );
    // All decided elsewhere: nothing stays up.
    for id in &ids {
        other.reject(id, "cli", None).unwrap();
    }
    wait_for("the summary stayed after every write was decided", || {
        monitor.closed(summary)
    })
    .await;

    // Killed (no Quit): the next run closes what the dead one left up, and
    // announces the write again.
    let mut app = app;
    tokio::time::sleep(Duration::from_secs(11)).await;
    app.submit(&key, "POST", "Left behind").await;
    let (left, _) = monitor.wait_notified("Create issue \"Left behind\"").await;
    app.child.kill().unwrap();
    app.child.wait().unwrap();
    let before = monitor.notified("Create issue \"Left behind\"").len();
    let _again = install.launch();
    wait_for("the dead run's notification stayed", || {
        monitor.closed(left)
    })
    .await;
    wait_for("the write was not announced again", || {
        monitor.notified("Create issue \"Left behind\"").len() > before
    })
    .await;
}
