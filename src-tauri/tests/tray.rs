//! The tray as a panel sees it. The test plays the StatusNotifier host: it
//! owns the watcher's name and takes the app's registration, then reads the
//! item's properties and its menu over D-Bus (`com.canonical.dbusmenu`, as
//! panels do), clicks the menu's items and counts the icon's changes.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentgate_core::config::CredentialBackend;
use futures::StreamExt;
use serde_json::json;

mod common;
use common::*;

/// The watcher a tray host runs, reduced to what an item needs: it records
/// each registration with the bus name it came from.
struct Watcher {
    items: Arc<Mutex<Vec<(String, String)>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) {
        if let Some(sender) = header.sender() {
            self.items
                .lock()
                .unwrap()
                .push((sender.to_string(), service));
        }
    }

    async fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    async fn registered_status_notifier_items(&self) -> Vec<String> {
        let items = self.items.lock().unwrap();
        items
            .iter()
            .map(|(bus, path)| format!("{bus}{path}"))
            .collect()
    }

    #[zbus(property)]
    async fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    async fn protocol_version(&self) -> i32 {
        0
    }
}

/// Where the app's tray item lives on the bus.
struct Item {
    bus: String,
    path: String,
}

/// One menu entry as a panel draws it.
#[derive(Debug)]
struct Entry {
    id: i32,
    label: String,
    checked: bool,
}

fn gdbus(args: &[&str]) -> String {
    run_ok(Command::new("gdbus").args(["call", "--session"]).args(args))
}

/// The text between the first pair of single quotes: a string or object
/// path property as gdbus prints it (`(<'agentgate'>,)`).
fn quoted(s: &str) -> String {
    s.split('\'').nth(1).unwrap_or_default().to_string()
}

impl Item {
    fn property(&self, name: &str) -> String {
        quoted(&gdbus(&[
            "--dest",
            &self.bus,
            "--object-path",
            &self.path,
            "--method",
            "org.freedesktop.DBus.Properties.Get",
            "org.kde.StatusNotifierItem",
            name,
        ]))
    }

    /// Every entry of the menu and its submenus, in order.
    fn menu(&self) -> Vec<Entry> {
        let layout = gdbus(&[
            "--dest",
            &self.bus,
            "--object-path",
            &self.property("Menu"),
            "--method",
            "com.canonical.dbusmenu.GetLayout",
            "--",
            "0",
            "-1",
            "[]",
        ]);
        // Each child is printed `<(ID, {PROPERTIES}, [CHILDREN])>`, and no
        // property value holds a brace.
        layout
            .split("<(")
            .skip(1)
            .filter_map(|node| {
                let (id, rest) = node.split_once(", {")?;
                let props = rest.split('}').next()?;
                let label = props.split("'label': <").nth(1).map(|v| {
                    let quote = v.chars().next().unwrap_or('\'');
                    v[1..].split(quote).next().unwrap_or_default().to_string()
                })?;
                Some(Entry {
                    id: id.trim().parse().ok()?,
                    label,
                    checked: props.contains("'toggle-state': <1>"),
                })
            })
            .collect()
    }

    fn entry(&self, starts: &str) -> Option<Entry> {
        self.menu()
            .into_iter()
            .find(|e| e.label.starts_with(starts))
    }

    fn click(&self, starts: &str) {
        let entry = self
            .entry(starts)
            .unwrap_or_else(|| panic!("no {starts:?} in the menu: {:?}", self.menu()));
        gdbus(&[
            "--dest",
            &self.bus,
            "--object-path",
            &self.property("Menu"),
            "--method",
            "com.canonical.dbusmenu.Event",
            "--",
            &entry.id.to_string(),
            "clicked",
            "<''>",
            "0",
        ]);
    }

    async fn wait_entry(&self, starts: &str) -> Entry {
        let start = Instant::now();
        loop {
            if let Some(e) = self.entry(starts) {
                return e;
            }
            assert!(
                start.elapsed() < WAIT,
                "no {starts:?} in the menu: {:?}",
                self.menu()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits until the admin API says agents are paused (or not).
async fn wait_paused(app: &App, token: &str, want: bool) {
    let start = Instant::now();
    while app
        .admin_call(token, reqwest::Method::GET, "/admin/pause", json!({}))
        .await["paused"]
        != want
    {
        assert!(
            start.elapsed() < WAIT,
            "the tray did not set paused to {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_menu_counts_revokes_grants_pauses_opens_and_quits() {
    if !enabled() {
        return;
    }
    let _turn = ONE_APP.lock().await;
    let items = Arc::new(Mutex::new(Vec::new()));
    let host = zbus::connection::Builder::session()
        .name("org.kde.StatusNotifierWatcher")
        .serve_at(
            "/StatusNotifierWatcher",
            Watcher {
                items: items.clone(),
            },
        )
        .build()
        .await
        .expect("the test plays the tray host");
    let mock = github_mock().await;
    let install = Install::new(CredentialBackend::EncryptedFile);
    let key = install.prepare(Some(&mock.uri()));
    let mut app = install.launch_with(|mut cmd| {
        cmd.arg("--hidden");
        cmd
    });
    wait_for("the app registered no tray item", || {
        !items.lock().unwrap().is_empty()
    })
    .await;
    let item = {
        let (sender, service) = items.lock().unwrap()[0].clone();
        // An object path on the sender's connection, or a bus name.
        if service.starts_with('/') {
            Item {
                bus: sender,
                path: service,
            }
        } else {
            Item {
                bus: service,
                path: "/StatusNotifierItem".into(),
            }
        }
    };
    assert_eq!(item.property("Title"), "agentgate");

    // Every change of the icon, as a panel hears of it.
    let icons = Arc::new(AtomicUsize::new(0));
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(item.bus.as_str())
        .member("NewIcon")
        .build()
        .unwrap();
    let mut stream = zbus::MessageStream::for_match_rule(rule, &host, None)
        .await
        .unwrap();
    let counted = icons.clone();
    tokio::spawn(async move {
        while stream.next().await.is_some() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });

    let labels: Vec<String> = item.menu().into_iter().map(|e| e.label).collect();
    for want in [
        "Nothing waiting",
        "Open agentgate",
        "No grants running",
        "Pause all agents",
        "Start at login",
        "Quit agentgate",
    ] {
        assert!(
            labels.iter().any(|l| l.replace('_', "") == want),
            "{want:?} not in {labels:?}"
        );
    }

    // A write waits: the count says so and the icon changes once, and only
    // once: the tray's every-5-s look sets nothing unchanged.
    app.submit(&key, "POST", "Seen in the tray").await;
    item.wait_entry("1 write waiting").await;
    wait_for("the icon did not change", || {
        icons.load(Ordering::SeqCst) > 0
    })
    .await;
    let changed = icons.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        icons.load(Ordering::SeqCst),
        changed,
        "the icon was set again unchanged"
    );

    // A grant is listed, and one click revokes it.
    let token = app.admin_token().await;
    app.admin_call(
        &token,
        reqwest::Method::POST,
        "/admin/grants",
        json!({"agent": "claude", "service": "github", "account": "personal",
               "minutes": 60, "method": "POST", "path": "/repos/o/r/issues"}),
    )
    .await;
    item.wait_entry("1 grant running").await;
    item.click("Revoke:");
    let start = Instant::now();
    loop {
        let grants = app
            .admin_call(&token, reqwest::Method::GET, "/admin/grants", json!({}))
            .await;
        if grants["grants"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the grant was not revoked: {grants}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    item.wait_entry("No grants running").await;

    // Pause from the tray stops the agents; unpausing lets them in again.
    item.click("Pause all agents");
    wait_paused(&app, &token, true).await;
    let read = reqwest::Client::new()
        .get(format!("{}/api/github/personal/user", app.agent))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 503);
    let start = Instant::now();
    while !item.wait_entry("Pause all agents").await.checked {
        assert!(start.elapsed() < WAIT, "the pause item is not ticked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    item.click("Pause all agents");
    wait_paused(&app, &token, false).await;

    // Open starts the window's process; Quit ends the app and it.
    let data = install.data.path().to_path_buf();
    item.click("Open agentgate");
    wait_for("Open did not open the window", || web_processes(&data) > 0).await;
    item.click("Quit agentgate");
    let status = app.wait_exit("Quit").await;
    assert!(status.success(), "{status:?}");
    wait_for("the window outlived Quit", || window_processes(&data) == 0).await;
}
