//! The web admin in a real headless Chromium, driven over WebDriver
//! (chromedriver) against the real `agentgate serve` binary, with wiremock
//! standing in for GitHub. Screenshots of every page land in
//! `target/screenshots/` for a reviewer to look at.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `scripts/test.sh` installs
//! them and sets `AGENTGATE_TEST_BROWSER=1`, which makes a missing browser a
//! failure instead of a skip.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "ghp_browser_token_0123456789";
pub(crate) const PASSWORD: &str = "correct horse battery";
/// The longest any one thing may take to show in the page.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// Whether to run: a machine without the browser skips, unless the test
/// script asked for the browser tests explicitly.
pub(crate) fn browser_available() -> bool {
    let present = std::path::Path::new(CHROMEDRIVER).exists();
    if !present && std::env::var("AGENTGATE_TEST_BROWSER").as_deref() == Ok("1") {
        panic!("AGENTGATE_TEST_BROWSER=1 but {CHROMEDRIVER} is missing: install chromium-driver");
    }
    if !present {
        eprintln!("skipping the browser test: {CHROMEDRIVER} is not installed");
    }
    present
}

/// chromedriver on a free loopback port, killed on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub(crate) async fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while http().get(format!("{url}/status")).send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver { child, url }
    }

    pub(crate) async fn browser(&self, profile: &std::path::Path) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                // The flags keep Chromium off the network (this machine has none
                // outside loopback) and out of the way of a headless run.
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One browser on one running gateway.
pub(crate) struct Session {
    pub b: Client,
    /// The admin listener's and the agent listener's base URLs.
    pub admin: String,
    pub agent: String,
    /// The `agentgate serve` process, when the gateway is the binary.
    pub server: Option<Server>,
    pub prefix: &'static str,
}

impl Session {
    /// A browser on a running `agentgate serve`.
    fn of(b: Client, server: Server, prefix: &'static str) -> Session {
        Session {
            b,
            admin: server.admin_url(""),
            agent: server.url(""),
            server: Some(server),
            prefix,
        }
    }

    pub(crate) async fn goto(&self, path: &str) {
        self.b.goto(&format!("{}{path}", self.admin)).await.unwrap();
    }

    pub(crate) async fn shot(&self, name: &str) {
        let png = self.b.screenshot().await.unwrap();
        let file = screenshot_dir().join(format!("{}-{name}.png", self.prefix));
        std::fs::write(&file, png).unwrap();
    }

    pub(crate) async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .b
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                // What the page showed instead is the first thing to look at.
                self.shot("failure").await;
                panic!(
                    "{css} did not appear at {}: {e}\n{}",
                    self.path().await,
                    self.b.source().await.unwrap_or_default()
                )
            }
        }
    }

    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub(crate) async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    pub(crate) async fn text(&self) -> String {
        self.find("main").await.text().await.unwrap()
    }

    pub(crate) async fn path(&self) -> String {
        let url = self.b.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    pub(crate) async fn wait_path(&self, prefix: &str) {
        let start = Instant::now();
        while !self.path().await.starts_with(prefix) {
            assert!(
                start.elapsed() < WAIT,
                "the browser is at {}, not {prefix}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A JavaScript expression's value in the page.
    pub(crate) async fn js(&self, expr: &str) -> Value {
        self.b
            .execute(&format!("return {expr};"), vec![])
            .await
            .unwrap()
    }

    /// The page fits the window: nothing scrolls sideways.
    pub(crate) async fn fits_width(&self) {
        let overflow = self
            .js("document.documentElement.scrollWidth - window.innerWidth")
            .await;
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{} is {overflow}px too wide",
            self.path().await
        );
    }

    /// An agent submits a one-request batch over HTTP; returns its id.
    pub(crate) async fn submit(&self, key: &str, body: Value, comment: &str) -> String {
        let (status, v) = post_json(
            &format!("{}/api/queue/github/personal/submit", self.agent),
            key,
            &json!({
                "requests": [{"method": "POST", "path": "/repos/o/r/issues", "body": body}],
                "comment": comment,
            }),
        )
        .await;
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    pub(crate) async fn agent_status(&self, key: &str, id: &str) -> Value {
        get_json(
            &format!("{}/api/queue/github/personal/status/{id}", self.agent),
            Some(key),
        )
        .await
        .1
    }

    /// Opens the queue and waits until its live stream is connected.
    pub(crate) async fn open_queue_live(&self) {
        self.goto("/ui/queue").await;
        let start = Instant::now();
        while self.js("document.getElementById('live').textContent").await != "Live" {
            assert!(start.elapsed() < WAIT, "the live stream did not connect");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Marks this page load: a reload would lose the mark.
        self.js("(window.__sameLoad = true)").await;
    }

    /// Waits for an entry to arrive in the open queue page without a reload.
    pub(crate) async fn arrives_live(&self, id: &str) {
        self.find(&format!("#entry-{id}")).await;
        assert_eq!(
            self.js("window.__sameLoad === true").await,
            true,
            "the entry appeared without a reload"
        );
    }
}

async fn mock_github() -> MockServer {
    let mock = MockServer::start().await;
    let auth = format!("Bearer {TOKEN}");
    Mock::given(method("GET"))
        .and(path("/user"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "octocat"})))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/issues"))
        .and(header("authorization", auth.as_str()))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"number": 7, "html_url": "https://github.example/o/r/7"})),
        )
        .mount(&mock)
        .await;
    mock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_admin_in_chromium_from_first_run_to_decisions() {
    if !browser_available() {
        return;
    }
    let mock = mock_github().await;
    let install = Install::new();
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let s = Session::of(
        driver.browser(profile.path()).await,
        install.serve(),
        "desktop",
    );

    // First run: the setup code from the server's log, then the password.
    s.goto("/ui").await;
    s.wait_path("/ui/setup").await;
    s.shot("setup").await;
    let log = s.server.as_ref().unwrap().log();
    let code = log
        .split("enter the setup code ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no setup code in the log:\n{log}"))
        .to_string();
    s.fill("#setup_code", &code).await;
    s.fill("#password", PASSWORD).await;
    s.fill("#password2", PASSWORD).await;
    s.click("main button[type=submit]").await;
    s.wait_path("/ui/queue").await;
    assert!(s.text().await.contains("Nothing is waiting"));
    s.shot("queue-empty").await;

    // An agent key, shown once with a copy button.
    s.goto("/ui/agents").await;
    s.fill("#new-agent", "claude").await;
    s.click("form.create button[type=submit]").await;
    let key = s
        .find("#new-key")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(key.starts_with("rms_"), "{key}");
    s.find("button[data-copy=new-key]").await;
    s.shot("agents-new-key").await;
    s.goto("/ui/agents").await;
    assert!(
        !s.b.source().await.unwrap().contains(&key),
        "the key is shown only once"
    );

    // A GitHub account pointing at the mock; the test tells who it is.
    s.goto("/ui/accounts").await;
    s.shot("accounts-empty").await;
    s.click("a[href='/ui/accounts/add/github']").await;
    s.wait_path("/ui/accounts/add/github").await;
    s.fill("#name", "personal").await;
    s.fill("#base_url", &mock.uri()).await;
    s.fill("#field-token", TOKEN).await;
    s.shot("accounts-add-github").await;
    s.click("main form.card button[type=submit]").await;
    s.wait_path("/ui/accounts?done=account-added").await;
    let page = s.text().await;
    assert!(page.contains("Signed in as octocat"), "{page}");
    assert!(!s.b.source().await.unwrap().contains(TOKEN));
    s.shot("accounts").await;

    // A write arrives while the queue is open, with hostile text in it.
    s.open_queue_live().await;
    let hostile =
        "Filing it <script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">";
    let first = s
        .submit(
            &key,
            json!({"title": "Login bug", "body": "Steps"}),
            hostile,
        )
        .await;
    s.arrives_live(&first).await;
    let card = s
        .find(&format!("#entry-{first}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(card.contains("Login bug"), "{card}");
    assert!(
        card.contains("<script>"),
        "agent markup shows as text: {card}"
    );
    assert_eq!(s.js("typeof window.__pwned").await, "undefined");
    assert_eq!(
        s.js("document.getElementById('pending-count').textContent")
            .await,
        "1"
    );
    s.shot("queue-pending").await;

    // Approve: it runs against the mock and shows completed with its result.
    s.click(&format!("#entry-{first} form[action$='/approve'] button"))
        .await;
    s.find(&format!("#recent-{first} .status-completed")).await;
    let status = s.agent_status(&key, &first).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["results"][0]["body"]["number"], 7);
    s.shot("queue-approved").await;

    // Reject another, with a reason the agent reads.
    s.open_queue_live().await;
    let second = s
        .submit(&key, json!({"title": "Dup"}), "A duplicate, maybe")
        .await;
    s.arrives_live(&second).await;
    s.fill(&format!("#reason-{second}"), "Already filed as #7")
        .await;
    s.click(&format!("#entry-{second} form[action$='/reject'] button"))
        .await;
    s.find(&format!("#recent-{second} .status-rejected")).await;
    let status = s.agent_status(&key, &second).await;
    assert_eq!(status["status"], "rejected");
    assert_eq!(status["rejection_reason"], "Already filed as #7");

    // History shows both with results; the other pages render.
    s.goto("/ui/history").await;
    let entry = s
        .find(&format!("#entry-{first}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(entry.contains("HTTP 201"), "{entry}");
    assert!(entry.contains("by web-admin"), "{entry}");
    assert!(s.text().await.contains("Already filed as #7"));
    s.shot("history").await;
    for page in ["notifications", "settings"] {
        s.goto(&format!("/ui/{page}")).await;
        s.find("h1").await;
        s.shot(page).await;
    }

    // Signing out ends the session.
    s.goto("/ui/queue").await;
    s.click("nav form button").await;
    s.wait_path("/ui/login").await;
    s.shot("login").await;
    s.b.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_admin_on_a_phone_sized_screen() {
    if !browser_available() {
        return;
    }
    let mock = mock_github().await;
    let install = Install::new();
    // Set up by the CLI this time; the phone signs in with the password.
    let out = install.run(&["admin", "set-password"], Some(&format!("{PASSWORD}\n")));
    assert!(out.status.success(), "{}", stderr(&out));
    let key = install.github_agent("phone-bot", &mock.uri(), TOKEN);

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let s = Session::of(
        driver.browser(profile.path()).await,
        install.serve(),
        "phone",
    );
    s.b.set_window_size(390, 844).await.unwrap();
    s.goto("/ui/queue").await;
    s.wait_path("/ui/login").await;
    s.fill("#password", PASSWORD).await;
    s.click("main button[type=submit]").await;
    s.wait_path("/ui/queue").await;
    s.fits_width().await;

    s.open_queue_live().await;
    let id = s
        .submit(
            &key,
            json!({"title": "From the phone", "body": "a long body ".repeat(40)}),
            "Please file this",
        )
        .await;
    s.arrives_live(&id).await;
    s.fits_width().await;
    s.shot("queue-pending").await;
    s.click(&format!("#entry-{id} form[action$='/approve'] button"))
        .await;
    s.find(&format!("#recent-{id} .status-completed")).await;
    assert_eq!(s.agent_status(&key, &id).await["status"], "completed");
    s.shot("queue-approved").await;

    for page in ["history", "accounts", "agents", "notifications", "settings"] {
        s.goto(&format!("/ui/{page}")).await;
        s.find("h1").await;
        s.fits_width().await;
        s.shot(page).await;
    }
    s.b.clone().close().await.unwrap();
}
