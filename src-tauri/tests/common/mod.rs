//! What the desktop tests share: a data folder prepared through the core
//! library, the app launched on it (its addresses read from its log), the
//! window's processes, and a GitHub stand-in.
#![allow(dead_code)] // each test binary uses its own share of these

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentgate_core::NewAccount;
use agentgate_core::clock::SystemClock;
use agentgate_core::config::{Config, CredentialBackend};
use agentgate_core::secret::Secret;
use agentgate_core::{Gateway, credentials};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const APP: &str = env!("CARGO_BIN_EXE_agentgate-desktop");
pub const TOKEN: &str = "ghp_desktop_token_0123456789";
pub const PASSWORD: &str = "desktop admin password";
pub const WAIT: Duration = Duration::from_secs(20);

/// The app is single-instance per session: its tests take turns.
pub static ONE_APP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn enabled() -> bool {
    let on = std::env::var("AGENTGATE_TEST_DESKTOP").as_deref() == Ok("1");
    if !on {
        eprintln!(
            "skipping: set AGENTGATE_TEST_DESKTOP=1 inside Xvfb + D-Bus + dunst (scripts/test.sh does)"
        );
    }
    on
}

/// A data folder prepared through the core library: an agent, a GitHub
/// account at the mock, the admin password.
pub struct Install {
    pub data: tempfile::TempDir,
    pub keys: tempfile::TempDir,
    pub backend: CredentialBackend,
}

impl Install {
    pub fn new(backend: CredentialBackend) -> Install {
        Install {
            data: tempfile::tempdir().unwrap(),
            keys: tempfile::tempdir().unwrap(),
            backend,
        }
    }

    pub fn key_file(&self) -> PathBuf {
        self.keys.path().join("secrets.key")
    }

    pub fn config(&self) -> Config {
        let mut c = Config::with_data_dir(self.data.path());
        c.credential_backend = self.backend;
        if self.backend == CredentialBackend::EncryptedFile {
            if !self.key_file().exists() {
                credentials::generate_key_file(&self.key_file()).unwrap();
            }
            c.secrets_key_file = Some(self.key_file());
        }
        c
    }

    /// Sets up an agent (returning its key) and, when `github` is given, a
    /// GitHub account `personal` there.
    pub fn prepare(&self, github: Option<&str>) -> String {
        let config = self.config();
        let creds = credentials::open(&config).unwrap();
        let gw = Gateway::open(config, creds, Arc::new(SystemClock)).unwrap();
        gw.set_admin_password(&Secret::new(PASSWORD)).unwrap();
        let key = gw.create_agent("claude").unwrap().1.expose().to_string();
        if let Some(base) = github {
            gw.add_account(NewAccount {
                service: "github".into(),
                name: "personal".into(),
                base_url: Some(base.into()),
                credentials: BTreeMap::from([("token".to_string(), Secret::new(TOKEN))]),
            })
            .unwrap();
        }
        key
    }

    /// Launches the app a second time: it hands over to the running one
    /// (which opens its window) and ends.
    pub async fn launch_again(&self) {
        let mut second = Command::new(APP)
            .env("AGENTGATE_DATA_DIR", self.data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while second.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < WAIT, "a second instance kept running");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn launch(&self) -> App {
        self.launch_with(|cmd| cmd)
    }

    /// Launches the app through `wrap`, which may run it inside another command.
    pub fn launch_with(&self, wrap: impl FnOnce(Command) -> Command) -> App {
        let mut cmd = Command::new(APP);
        cmd.env("AGENTGATE_DATA_DIR", self.data.path())
            .env("AGENTGATE_LISTEN", "127.0.0.1:0")
            .env("AGENTGATE_ADMIN_LISTEN", "127.0.0.1:0")
            .env("AGENTGATE_LOG", "info")
            .env(
                "AGENTGATE_CREDENTIAL_BACKEND",
                match self.backend {
                    CredentialBackend::EncryptedFile => "encrypted-file",
                    _ => "keychain",
                },
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if self.backend == CredentialBackend::EncryptedFile {
            cmd.env("AGENTGATE_SECRETS_KEY_FILE", self.key_file());
        }
        let mut cmd = wrap(cmd);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the desktop app starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("agentgate: agents on http://") {
                    let _ = tx.send(line.clone());
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "the desktop app did not report its addresses:\n{}",
                    log.lock().unwrap()
                )
            });
        let addr = |prefix: &str| {
            let rest = &line[line.find(prefix).unwrap() + prefix.len()..];
            format!("http://{}", rest.split([',', ' ']).next().unwrap())
        };
        App {
            child,
            agent: addr("agents on http://"),
            admin: addr("admin on http://"),
            log,
        }
    }
}

pub struct App {
    pub child: Child,
    pub agent: String,
    pub admin: String,
    pub log: Arc<Mutex<String>>,
}

impl App {
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub async fn submit(&self, key: &str, method: &str, title: &str) -> String {
        let r = reqwest::Client::new()
            .post(format!(
                "{}/api/queue/github/personal/submit",
                self.agent
            ))
            .bearer_auth(key)
            .json(&json!({
                "requests": [{"method": method, "path": "/repos/o/r/issues", "body": {"title": title}}],
                "comment": format!("please: {title}"),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn status(&self, key: &str, id: &str) -> Value {
        reqwest::Client::new()
            .get(format!(
                "{}/api/queue/github/personal/status/{id}",
                self.agent
            ))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn wait_status(&self, key: &str, id: &str, want: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.status(key, id).await;
            if v["status"] == want {
                return v;
            }
            assert!(
                start.elapsed() < WAIT,
                "{id} is {}, not {want}",
                v["status"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn admin_token(&self) -> String {
        let v: Value = reqwest::Client::new()
            .post(format!("{}/admin/login", self.admin))
            .json(&json!({"password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["token"].as_str().unwrap().to_string()
    }
}

impl App {
    /// One admin API call that must succeed; its JSON answer.
    pub async fn admin_call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Value {
        let r = reqwest::Client::new()
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Waits for the app to end (`why` names what should have ended it).
    pub async fn wait_exit(&mut self, why: &str) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(start.elapsed() < WAIT, "{why} did not end the app");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn github_mock() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/issues"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"number": 7})))
        .mount(&mock)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/repos/o/r/issues"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&mock)
        .await;
    mock
}

pub fn screenshot(name: &str) {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.png"));
    let ok = Command::new("import")
        .args(["-window", "root", file.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "import (ImageMagick) took no screenshot");
}

/// The processes of the app's window: the window process itself and
/// WebKit's web and network processes, known by their environment naming
/// this test's data folder (passed on to them all).
pub fn window_processes(data: &Path) -> usize {
    processes(data, |comm, cmdline| {
        comm.starts_with("WebKit") || cmdline.split(|b| *b == 0).any(|a| a == b"--window")
    })
}

/// The app's WebKit web processes alone.
pub fn web_processes(data: &Path) -> usize {
    processes(data, |comm, _| comm.starts_with("WebKitWebProces"))
}

pub fn processes(data: &Path, mut pick: impl FnMut(&str, &[u8]) -> bool) -> usize {
    let marker = format!("AGENTGATE_DATA_DIR={}", data.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            pick(&comm, &cmdline)
        })
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
        })
        .count()
}

/// Asks the window named `title` to close, as a window manager's close
/// button does (WM_DELETE_WINDOW), through Debian's python3-xlib.
pub fn close_window(title: &str) -> usize {
    run_ok(
        Command::new("/usr/bin/python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/close_window.py"))
            .arg(title),
    )
    .trim()
    .parse()
    .unwrap_or(0)
}

/// Runs a helper program that must succeed; what it printed.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} could not run (is its package installed?): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[path = "../../../tests/support/secret_tool.rs"]
pub mod secret_tool;
