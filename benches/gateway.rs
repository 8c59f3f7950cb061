//! Gateway overhead, measured against a baseline in the same process: the same
//! load sent straight to a local mock upstream and through the gateway.
//!
//! Run: `cargo bench --bench gateway` (AGENTGATE_BENCH_SECS sets the length of
//! each closed-loop run; default 3). Prints a Markdown report for BENCHMARKS.md.
//!
//! The mock upstream, the gateway and the load generator each get their own
//! Tokio runtime so one cannot starve another's scheduler. By default they share
//! the machine's cores; `AGENTGATE_BENCH_TOPOLOGY=split` gives the gateway a core
//! of its own, as its own machine would. Figures are for this machine, and the
//! ratios are the point.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentgate_core::clock::SystemClock;
use agentgate_core::config::Config;
use agentgate_core::credentials::MemoryStore;
use agentgate_core::secret::Secret;
use agentgate_core::{Gateway, NewAccount, server};
use axum::Router;
use axum::routing::get;

/// Where the three parts run. `Shared`: wherever the scheduler puts them, all on
/// the same cores. `Split`: the gateway (its runtime and its audit writer) on the
/// last core, the load generator and the mock upstream on the others, as when
/// the gateway has a machine of its own, which is how it is deployed; the direct
/// baseline then has the same cores for the generator and mock as the gateway run.
#[derive(Clone, Copy, PartialEq)]
enum Topology {
    Shared,
    Split,
}

fn pin_current_thread(cores: &[core_affinity::CoreId]) {
    // One core per thread is enough: the rotation spreads a runtime's workers.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if !cores.is_empty() {
        let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % cores.len();
        assert!(
            core_affinity::set_for_current(cores[i]),
            "cannot pin a thread"
        );
    }
}

fn runtime(
    name: &str,
    threads: usize,
    cores: Vec<core_affinity::CoreId>,
) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .on_thread_start(move || pin_current_thread(&cores))
        .enable_all()
        .build()
        .unwrap()
}

/// A stand-in for GitHub: a fixed 600-byte JSON answer to every read.
fn start_upstream(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let body: &'static str = Box::leak(
        format!(
            "{{\"id\":1,\"full_name\":\"octo/repo\",\"description\":\"{}\",\"stargazers_count\":42}}",
            "x".repeat(520)
        )
        .into_boxed_str(),
    );
    rt.block_on(async move {
        let app = Router::new().route(
            "/{*path}",
            get(move || async move { ([("content-type", "application/json")], body) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    })
}

/// The floor to compare the gateway with: the least a proxy built on the same
/// stack (axum in, hyper-util's pooled client out, as `upstream.rs`) does for a
/// read, with no keys, policy, audit or header rules: add the credential,
/// forward, buffer the answer, relay it.
fn start_bare_proxy(rt: &tokio::runtime::Runtime, upstream: SocketAddr) -> SocketAddr {
    use axum::body::Bytes;
    use axum::extract::{Request, State};
    use axum::response::Response;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::{Client, connect::HttpConnector};
    type Bare = Client<HttpConnector, Full<Bytes>>;
    async fn forward(
        State((client, upstream)): State<(Bare, SocketAddr)>,
        req: Request,
    ) -> Response {
        let out = axum::http::Request::get(format!("http://{upstream}{}", req.uri().path()))
            .header("authorization", "Bearer ghp_bench")
            .body(Full::default())
            .unwrap();
        let resp = client.request(out).await.unwrap();
        let status = resp.status();
        let content_type = resp.headers().get("content-type").cloned();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let mut out = Response::new(axum::body::Body::from(body));
        *out.status_mut() = status;
        if let Some(ct) = content_type {
            out.headers_mut().insert("content-type", ct);
        }
        out
    }
    rt.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        let app = Router::new()
            .route("/{*path}", get(forward))
            .with_state((client, upstream));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    })
}

struct Stats {
    count: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn stats(mut lat: Vec<Duration>, elapsed: Duration) -> Stats {
    lat.sort();
    let pick = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    Stats {
        count: lat.len(),
        rps: lat.len() as f64 / elapsed.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

type MakeRequest = Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>;

/// `concurrency` workers each sending requests back to back for `secs`: the
/// latencies and the time it took.
async fn closed_loop_raw(
    client: reqwest::Client,
    make: MakeRequest,
    concurrency: usize,
    secs: f64,
) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let workers = (0..concurrency).map(|_| {
        let client = client.clone();
        let make = make.clone();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let resp = make(&client).send().await.expect("request failed");
                assert!(resp.status().is_success(), "status {}", resp.status());
                resp.bytes().await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        })
    });
    let mut all = Vec::new();
    for w in futures::future::join_all(workers).await {
        all.extend(w.unwrap());
    }
    (all, start.elapsed())
}

async fn closed_loop(
    client: reqwest::Client,
    make: MakeRequest,
    concurrency: usize,
    secs: f64,
) -> Stats {
    let (lat, elapsed) = closed_loop_raw(client, make, concurrency, secs).await;
    stats(lat, elapsed)
}

/// Slices of [`ROUNDS`] taken in turn from each path, so that the machine's
/// drift in speed (large on a shared VM) falls on all paths alike instead of on
/// whichever ran during a slow spell.
const ROUNDS: usize = 6;

async fn interleaved(
    client: &reqwest::Client,
    paths: &[MakeRequest],
    concurrency: usize,
    secs: f64,
) -> Vec<Stats> {
    let mut lat = vec![Vec::new(); paths.len()];
    let mut elapsed = vec![Duration::ZERO; paths.len()];
    for _ in 0..ROUNDS {
        for (i, make) in paths.iter().enumerate() {
            let (l, e) = closed_loop_raw(
                client.clone(),
                make.clone(),
                concurrency,
                secs / ROUNDS as f64,
            )
            .await;
            lat[i].extend(l);
            elapsed[i] += e;
        }
    }
    lat.into_iter()
        .zip(elapsed)
        .map(|(l, e)| stats(l, e))
        .collect()
}

/// Requests started at a fixed rate whatever the answers do (open loop), so
/// queueing shows up in the latencies instead of lowering the offered load.
async fn open_loop(
    client: reqwest::Client,
    make: MakeRequest,
    rate: u64,
    total: u64,
) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for _ in 0..total {
        ticker.tick().await;
        let req = make(&client);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let resp = req.send().await.expect("request failed");
            assert!(resp.status().is_success());
            resp.bytes().await.unwrap();
            t.elapsed()
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    (lat, start.elapsed())
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn main() {
    // Logging as `agentgate serve` sets it up (one line per request at info),
    // written to /dev/null: its cost is part of the gateway's. The bare proxy
    // logs nothing. AGENTGATE_BENCH_LOG=0 leaves it out.
    let logging = std::env::var("AGENTGATE_BENCH_LOG").as_deref() != Ok("0");
    if logging {
        let sink = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        agentgate::logging::init_to(
            tracing_subscriber::EnvFilter::new("info"),
            Arc::new(sink),
            false,
        );
    }
    let secs: f64 = std::env::var("AGENTGATE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let threads = |var: &str, default: usize| -> usize {
        std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let topology = match std::env::var("AGENTGATE_BENCH_TOPOLOGY").as_deref() {
        Ok("split") => Topology::Split,
        Ok("shared") | Err(_) => Topology::Shared,
        Ok(other) => panic!("AGENTGATE_BENCH_TOPOLOGY is shared or split, not {other:?}"),
    };
    let all = core_affinity::get_core_ids().unwrap_or_default();
    let (gateway_cores, other_cores) = match topology {
        Topology::Shared => (Vec::new(), Vec::new()),
        Topology::Split => {
            assert!(all.len() >= 2, "the split topology needs two cores");
            let (rest, last) = all.split_at(all.len() - 1);
            (last.to_vec(), rest.to_vec())
        }
    };
    // Worker threads per runtime. Shared: the gateway gets what a 2-core machine
    // would, the load generator as much. Split: one worker per core given.
    let (gw_default, client_default) = match topology {
        Topology::Shared => (2, 2),
        Topology::Split => (gateway_cores.len(), other_cores.len()),
    };
    let upstream_rt = runtime(
        "bench-upstream",
        threads("AGENTGATE_BENCH_UPSTREAM_THREADS", 1),
        other_cores.clone(),
    );
    let gateway_rt = runtime(
        "bench-gateway",
        threads("AGENTGATE_BENCH_GATEWAY_THREADS", gw_default),
        gateway_cores.clone(),
    );
    let client_rt = runtime(
        "bench-client",
        threads("AGENTGATE_BENCH_CLIENT_THREADS", client_default),
        other_cores.clone(),
    );
    let upstream = start_upstream(&upstream_rt);
    println!(
        "Topology: {}.\n",
        match topology {
            Topology::Shared => format!("shared ({} cores for everything)", all.len().max(1)),
            Topology::Split => format!(
                "split (gateway on {} core, load generator and mock upstream on {})",
                gateway_cores.len(),
                other_cores.len()
            ),
        }
    );

    let data = tempfile::tempdir().unwrap();
    let mut config = Config::with_data_dir(data.path());
    config.agent_addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    // Opened on one of the gateway runtime's own threads, so that the audit
    // writer thread it starts runs where the gateway may.
    let gw = gateway_rt
        .block_on(gateway_rt.spawn_blocking(move || {
            Gateway::open(
                config,
                Box::new(MemoryStore::default()),
                Arc::new(SystemClock),
            )
        }))
        .unwrap()
        .unwrap();
    gw.add_account(NewAccount {
        service: "github".into(),
        name: "bench".into(),
        base_url: Some(format!("http://{upstream}")),
        credentials: [("token".to_string(), Secret::new("ghp_bench"))]
            .into_iter()
            .collect(),
    })
    .unwrap();
    // The per-agent rate limits would stop a load test; this measures the gateway.
    gw.update_settings(agentgate_core::SettingsUpdate {
        reads_per_minute: Some(0),
        submissions_per_hour: Some(0),
        ..Default::default()
    })
    .unwrap();
    let key = gw.create_agent("bench").unwrap().1.expose().to_string();
    let running = gateway_rt.block_on(server::start(gw.clone())).unwrap();
    let gateway = running.agent_addr;
    let bare_proxy = start_bare_proxy(&gateway_rt, upstream);

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let direct: MakeRequest = {
        let url = format!("http://{upstream}/repos/octo/repo");
        Arc::new(move |c| c.get(&url).bearer_auth("ghp_bench"))
    };
    let through: MakeRequest = {
        let url = format!("http://{gateway}/api/github/bench/repos/octo/repo");
        let key = key.clone();
        Arc::new(move |c| c.get(&url).bearer_auth(&key))
    };

    let bare: MakeRequest = {
        let url = format!("http://{bare_proxy}/repos/octo/repo");
        Arc::new(move |c| c.get(&url))
    };

    // A profiling aid: `AGENTGATE_BENCH_PROFILE=gateway:16` (or `direct:16`,
    // `bare:16`) runs only that closed loop, so `perf record` sees one path at
    // one load.
    if let Ok(spec) = std::env::var("AGENTGATE_BENCH_PROFILE") {
        let (path, c) = spec.split_once(':').expect("PATH:CONCURRENCY");
        let make = match path {
            "direct" => direct,
            "bare" => bare,
            _ => through,
        };
        let c: usize = c.parse().expect("a concurrency");
        client_rt.block_on(async {
            closed_loop(client.clone(), make.clone(), 8, 0.5).await;
            let s = closed_loop(client.clone(), make, c, secs).await;
            println!(
                "{path} c={c}: {:.0} req/s, p50 {} ms, p99 {} ms",
                s.rps,
                ms(s.p50),
                ms(s.p99)
            );
        });
        gateway_rt.block_on(running.shutdown());
        return;
    }

    println!("## Reads: direct to the mock upstream vs through the gateway\n");
    println!(
        "{secs} s per path and concurrency in {ROUNDS} slices taken in turn, closed loop (each worker sends its next request when the last is answered).\n"
    );
    println!(
        "The bare proxy is the floor: axum in, hyper-util's client out, on the gateway's threads, with none of the gateway's work.\n"
    );
    println!(
        "| concurrency | direct req/s | gateway req/s | gateway ratio | bare proxy req/s | bare ratio | direct p50 ms | gateway p50 ms | bare p50 ms | direct p99 ms | gateway p99 ms | bare p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    client_rt.block_on(async {
        // Warm all paths (connections, caches) before measuring.
        for make in [&direct, &through, &bare] {
            closed_loop(client.clone(), make.clone(), 8, 0.5).await;
        }
        for c in [1, 16, 64] {
            let mut s = interleaved(
                &client,
                &[direct.clone(), through.clone(), bare.clone()],
                c,
                secs,
            )
            .await
            .into_iter();
            let (d, g, b) = (s.next().unwrap(), s.next().unwrap(), s.next().unwrap());
            println!(
                "| {c} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {} | {} | {} | {} | {} | {} |",
                d.rps,
                g.rps,
                g.rps / d.rps,
                b.rps,
                b.rps / d.rps,
                ms(d.p50),
                ms(g.p50),
                ms(b.p50),
                ms(d.p99),
                ms(g.p99),
                ms(b.p99)
            );
        }
    });

    println!("\n## Added latency at a fixed 1,000 requests/s\n");
    println!("| path | requests | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    client_rt.block_on(async {
        let total = (1000.0 * secs) as u64;
        // Slices taken in turn, as for the closed loop. The pacing loop runs on
        // the load generator's runtime, not on this thread, which may share the
        // gateway's core.
        let mut raw = vec![(Vec::new(), Duration::ZERO); 3];
        for _ in 0..ROUNDS {
            for (i, make) in [&direct, &through, &bare].into_iter().enumerate() {
                let (l, e) = tokio::spawn(open_loop(
                    client.clone(),
                    make.clone(),
                    1000,
                    total / ROUNDS as u64,
                ))
                .await
                .unwrap();
                raw[i].0.extend(l);
                raw[i].1 += e;
            }
        }
        let mut s = raw.into_iter().map(|(l, e)| stats(l, e));
        let (d, g, b) = (s.next().unwrap(), s.next().unwrap(), s.next().unwrap());
        println!("| direct | {} | {} | {} |", d.count, ms(d.p50), ms(d.p99));
        println!("| gateway | {} | {} | {} |", g.count, ms(g.p50), ms(g.p99));
        println!(
            "| bare proxy | {} | {} | {} |",
            b.count,
            ms(b.p50),
            ms(b.p99)
        );
        println!("\nAdded p99: {} ms.", ms(g.p99.saturating_sub(d.p99)));
    });

    println!("\n## Queue submissions\n");
    let submit: MakeRequest = {
        let url = format!("http://{gateway}/api/queue/github/bench/submit");
        let key = key.clone();
        Arc::new(move |c| {
            c.post(&url).bearer_auth(&key).json(&serde_json::json!({
                "requests": [{"method": "POST", "path": "/repos/octo/repo/issues", "body": {"title": "Bench", "body": "x"}}],
                "comment": "benchmark submission"
            }))
        })
    };
    client_rt.block_on(async {
        println!("| concurrency | submissions/s | p50 ms | p99 ms |");
        println!("|---:|---:|---:|---:|");
        for c in [1, 16] {
            let s = closed_loop(client.clone(), submit.clone(), c, secs).await;
            println!("| {c} | {:.0} | {} | {} |", s.rps, ms(s.p50), ms(s.p99));
        }
    });

    println!("\n## Key verification: 1 key vs 1,000 keys\n");
    let auth_cost = |gw: &Gateway, key: &str| {
        let header = format!("Bearer {key}");
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            gw.authenticate(Some(&header)).unwrap();
        }
        t.elapsed() / n
    };
    let one = auth_cost(&gw, &key);
    for i in 0..999 {
        gw.create_agent(&format!("agent-{i}")).unwrap();
    }
    let thousand = auth_cost(&gw, &key);
    println!("| keys | µs per verification |");
    println!("|---:|---:|");
    println!("| 1 | {:.2} |", one.as_secs_f64() * 1e6);
    println!("| 1,000 | {:.2} |", thousand.as_secs_f64() * 1e6);
    println!(
        "\nRatio 1,000 keys / 1 key: {:.2}.",
        thousand.as_secs_f64() / one.as_secs_f64()
    );

    gateway_rt.block_on(running.shutdown());
}

// The allocator `agentgate serve` uses (src/main.rs), so that what is measured is
// what runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
