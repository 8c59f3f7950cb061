use std::sync::Arc;
use std::time::Duration;

use agentgate_core::clock::SystemClock;
use agentgate_core::config::Config;
use agentgate_core::credentials::{CredentialStore, MemoryStore};
use agentgate_core::secret::Secret;
use agentgate_core::server::{self, RunningServer};
use agentgate_core::{Gateway, NewAccount};
use serde_json::{Value, json};
use wiremock::MockServer;

pub const TOKEN: &str = "ghp_upstream_secret_token_123";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub server: Option<RunningServer>,
    pub gw: Gateway,
    pub agent_url: String,
    pub admin_url: String,
    pub upstream: MockServer,
    pub http: reqwest::Client,
    pub admin_token: String,
    pub creds: Arc<MemoryStore>,
    pub data: tempfile::TempDir,
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::with_data_dir(dir);
    config.agent_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config.base_url = Some("http://gateway.test".into());
    config
}

/// A gateway serving on two free ports over a fresh data folder, with a GitHub
/// account `github/personal` whose API is a wiremock server, and an admin session.
pub async fn spawn_app() -> TestApp {
    let data = tempfile::tempdir().unwrap();
    let creds = Arc::new(MemoryStore::default());
    spawn_app_in(data, creds).await
}

pub async fn spawn_app_in(data: tempfile::TempDir, creds: Arc<MemoryStore>) -> TestApp {
    spawn_app_with(data, creds, Arc::new(SystemClock)).await
}

pub async fn spawn_app_with_clock(clock: Arc<dyn agentgate_core::clock::Clock>) -> TestApp {
    spawn_app_with(
        tempfile::tempdir().unwrap(),
        Arc::new(MemoryStore::default()),
        clock,
    )
    .await
}

pub async fn spawn_app_with(
    data: tempfile::TempDir,
    creds: Arc<MemoryStore>,
    clock: Arc<dyn agentgate_core::clock::Clock>,
) -> TestApp {
    let upstream = MockServer::start().await;
    let gw = Gateway::open(test_config(data.path()), Box::new(creds.clone()), clock).unwrap();
    if !gw.admin_password_set().unwrap() {
        gw.set_admin_password(&Secret::new(ADMIN_PASSWORD)).unwrap();
    }
    if gw.account_info("github", "personal").is_err() {
        add_github(&gw, "personal", &upstream.uri());
    } else {
        gw.update_account("github", "personal", Some(Some(upstream.uri())), None)
            .unwrap();
    }
    let server = server::start(gw.clone()).await.unwrap();
    let agent_url = format!("http://{}", server.agent_addr);
    let admin_url = format!("http://{}", server.admin_addr);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let admin_token = http
        .post(format!("{admin_url}/admin/login"))
        .json(&json!({"password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    TestApp {
        server: Some(server),
        gw,
        agent_url,
        admin_url,
        upstream,
        http,
        admin_token,
        creds,
        data,
    }
}

pub fn add_github(gw: &Gateway, name: &str, base_url: &str) {
    gw.add_account(NewAccount {
        service: "github".into(),
        name: name.into(),
        base_url: Some(base_url.into()),
        credentials: [("token".to_string(), Secret::new(TOKEN))]
            .into_iter()
            .collect(),
    })
    .unwrap();
}

impl TestApp {
    pub fn new_agent(&self, name: &str) -> String {
        self.gw.create_agent(name).unwrap().1.expose().to_string()
    }

    pub fn agent(&self, key: &str) -> AgentClient<'_> {
        AgentClient {
            app: self,
            key: key.to_string(),
        }
    }

    /// Lifts the per-agent read and submission rate limits, for tests that
    /// make many requests on purpose.
    pub fn no_rate_limits(&self) {
        self.gw
            .update_settings(agentgate_core::SettingsUpdate {
                reads_per_minute: Some(0),
                submissions_per_hour: Some(0),
                ..Default::default()
            })
            .unwrap();
    }

    /// A web admin page's HTML, as the signed-in admin sees it.
    pub async fn ui_page(&self, path: &str) -> String {
        client()
            .get(format!("{}{path}", self.admin_url))
            .header("cookie", format!("agentgate_session={}", self.admin_token))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Posts a web admin form as the signed-in admin (the CSRF token is the
    /// caller's to include).
    pub async fn ui_post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        client()
            .post(format!("{}{path}", self.admin_url))
            .header("cookie", format!("agentgate_session={}", self.admin_token))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Approves through the admin API, naming the entry's digest as it stands.
    pub async fn approve_api(&self, id: &str) -> (u16, Value) {
        let digest = digest_of(&self.gw, id);
        self.admin(
            reqwest::Method::POST,
            &format!("/admin/queue/{id}/approve"),
            Some(json!({ "digest": digest })),
        )
        .await
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.admin_url))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls an entry until it leaves approved/executing.
    pub async fn wait_done(&self, id: &str) -> agentgate_core::queue::Entry {
        for _ in 0..200 {
            let e = self.gw.entry(id).unwrap();
            if !matches!(
                e.status,
                agentgate_core::queue::Status::Approved | agentgate_core::queue::Status::Executing
            ) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("entry {id} did not finish");
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    pub fn credential_store(&self) -> &dyn CredentialStore {
        self.creds.as_ref()
    }
}

pub struct AgentClient<'a> {
    app: &'a TestApp,
    pub key: String,
}

impl AgentClient<'_> {
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .http
            .request(method, format!("{}{path}", self.app.agent_url))
            .bearer_auth(&self.key)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.req(reqwest::Method::GET, path).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn submit(&self, account: &str, body: Value) -> (u16, Value) {
        self.submit_to("github", account, body).await
    }

    pub async fn submit_to(&self, service: &str, account: &str, body: Value) -> (u16, Value) {
        let resp = self
            .req(
                reqwest::Method::POST,
                &format!("/api/queue/{service}/{account}/submit"),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Submits a one-request batch and returns the entry id.
    pub async fn submit_one(&self, method: &str, path: &str, body: Value) -> String {
        let (status, v) = self
            .submit("personal", json!({"requests": [{"method": method, "path": path, "body": body}], "comment": "test write"}))
            .await;
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }
}

/// Sends a GET with the path exactly as given, byte for byte. HTTP client
/// libraries normalise paths (`%2e%2e` becomes `..` and is removed), which would
/// hide exactly the inputs these tests must send. Returns the status code.
pub async fn raw_get(addr: std::net::SocketAddr, path: &str, key: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"))
}

impl TestApp {
    pub fn agent_addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().agent_addr
    }
}

/// A client for the web admin that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The CSRF token of the first form on a web admin page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form")
        + 19;
    html[at..at + 64].to_string()
}

/// A Mastodon account `name` whose instance is the wiremock upstream.
pub fn add_mastodon(app: &TestApp, name: &str) {
    app.gw
        .add_account(NewAccount {
            service: "mastodon".into(),
            name: name.into(),
            base_url: Some(app.upstream.uri()),
            credentials: [("access_token".to_string(), Secret::new("t"))]
                .into_iter()
                .collect(),
        })
        .unwrap();
}

/// A Bluesky account `name` whose PDS is the wiremock upstream.
pub fn add_bluesky(app: &TestApp, name: &str) {
    app.gw
        .add_account(NewAccount {
            service: "bluesky".into(),
            name: name.into(),
            base_url: Some(format!("{}/xrpc", app.upstream.uri())),
            credentials: [("identifier", "me"), ("app_password", "p")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Secret::new(v)))
                .collect(),
        })
        .unwrap();
}

/// A Mastodon post as a form body, as agents may send it.
pub fn status_form(body: &str) -> Value {
    json!({"method": "POST", "path": "/api/v1/statuses", "body": body,
           "headers": {"content-type": "application/x-www-form-urlencoded"}})
}

/// Nothing was queued and nothing reached the service.
pub async fn nothing_queued_or_sent(app: &TestApp) {
    assert!(app.gw.entries(&Default::default()).unwrap().is_empty());
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
}

/// The digest of an entry as it stands: what a human shown it would approve.
pub fn digest_of(gw: &Gateway, id: &str) -> String {
    gw.entry(id).expect("the entry exists").digest
}

/// A gateway on a fresh data folder, with no admin password and no server.
pub fn fresh_gateway(dir: &std::path::Path) -> Gateway {
    Gateway::open(
        test_config(dir),
        Box::new(MemoryStore::default()),
        Arc::new(SystemClock),
    )
    .unwrap()
}

/// A read as one agent, as a future that owns its arguments (for many at once).
pub async fn get_as(app: &TestApp, key: String, path: String) -> (u16, Value) {
    app.agent(&key).get(&path).await
}

/// A signed-in browser, as far as HTTP goes: the session cookie, no redirects
/// followed, and the CSRF token of the session.
pub struct Ui<'a> {
    pub app: &'a TestApp,
    pub c: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
}

impl<'a> Ui<'a> {
    pub async fn new(app: &'a TestApp) -> Ui<'a> {
        let c = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        let cookie = format!("agentgate_session={}", app.admin_token);
        let mut ui = Ui {
            app,
            c,
            cookie,
            csrf: String::new(),
        };
        let (_, html) = ui.get("/ui/settings").await;
        let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
        ui.csrf = html[at..at + 64].to_string();
        ui
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .c
            .get(format!("{}{path}", self.app.admin_url))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Posts a form with the session's CSRF token; returns the status, the
    /// redirect target (if any) and the body.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &self.csrf)];
        form.extend_from_slice(fields);
        let r = self
            .c
            .post(format!("{}{path}", self.app.admin_url))
            .header("cookie", &self.cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, location, r.text().await.unwrap())
    }
}

/// Every request to the account's service answers 200 `{"ok": true}`.
pub async fn ok_upstream(app: &TestApp) {
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&app.upstream)
        .await;
}
