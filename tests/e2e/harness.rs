use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_agentgate");

/// One installation: a data folder and, outside it, the key of the encrypted file.
pub struct Install {
    pub data: tempfile::TempDir,
    pub keys: tempfile::TempDir,
}

impl Install {
    pub fn new() -> Install {
        let i = Install {
            data: tempfile::tempdir().unwrap(),
            keys: tempfile::tempdir().unwrap(),
        };
        let out = i.run(
            &["secrets", "generate-key", i.key_file().to_str().unwrap()],
            None,
        );
        assert!(out.status.success(), "{}", stderr(&out));
        i
    }

    pub fn key_file(&self) -> PathBuf {
        self.keys.path().join("secrets.key")
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.data.path())
            .env("AGENTGATE_DATA_DIR", self.data.path())
            .env("AGENTGATE_CREDENTIAL_BACKEND", "encrypted-file")
            .env("AGENTGATE_SECRETS_KEY_FILE", self.key_file());
        c
    }

    /// Runs a CLI command to completion, feeding `stdin`.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Through the CLI: creates an agent (returning its key) and a GitHub
    /// account `personal` at `base_url` with `token`.
    pub fn github_agent(&self, agent: &str, base_url: &str, token: &str) -> String {
        let out = self.run(&["keys", "create", agent], None);
        assert!(out.status.success(), "{}", stderr(&out));
        let key = stdout(&out);
        let lines: Vec<&str> = key.lines().collect();
        assert_eq!(lines.len(), 1, "the key is alone on its own line: {key:?}");
        let key = lines[0].to_string();
        assert!(key.starts_with("rms_"));
        let out = self.run(
            &[
                "accounts",
                "add",
                "github",
                "personal",
                "--base-url",
                base_url,
            ],
            Some(&format!("{token}\n")),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        key
    }

    /// Starts `agentgate serve` on free loopback ports and waits until it answers.
    pub fn serve(&self) -> Server {
        let mut child = self
            .command()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .env("AGENTGATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && line.starts_with("agentgate: agents on http://") {
                    let _ = tx.send(line.clone());
                    sent = true;
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "agentgate serve did not report its addresses:\n{}",
                    log.lock().unwrap()
                )
            });
        let parse = |prefix: &str| -> SocketAddr {
            let rest = &line[line.find(prefix).unwrap() + prefix.len()..];
            rest.split([',', ' ']).next().unwrap().parse().unwrap()
        };
        Server {
            child,
            agent: parse("agents on http://"),
            admin: parse("admin on http://"),
            log,
        }
    }
}

pub struct Server {
    pub child: Child,
    pub agent: SocketAddr,
    pub admin: SocketAddr,
    /// Everything the server wrote to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.agent)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// GETs a URL (with the agent key, if given) and returns the status and JSON body.
pub async fn get_json(url: &str, key: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = http().get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// POSTs JSON with the agent key and returns the status and JSON body.
pub async fn post_json(url: &str, key: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let resp = http()
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[path = "../support/secret_tool.rs"]
mod secret_tool;
pub use secret_tool::secret_tool_listing;
