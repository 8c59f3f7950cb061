//! Running the gateway: both listeners, start-up recovery of the queue, and a
//! graceful stop that lets in-flight requests and executing batches finish.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::gateway::Gateway;
use crate::http::{admin_router, agent_router};

/// A gateway that is serving. Drop it or call [`RunningServer::shutdown`] to stop.
pub struct RunningServer {
    pub agent_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    gateway: Gateway,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

/// Binds the agent and admin listeners from the gateway's configuration (port 0
/// picks a free port), recovers the queue and starts serving.
pub async fn start(gateway: Gateway) -> anyhow::Result<RunningServer> {
    let config = gateway.config().clone();
    let agent_listener = TcpListener::bind(config.agent_addr)
        .await
        .with_context(|| format!("cannot listen for agents on {}", config.agent_addr))?;
    let admin_listener = TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("cannot listen for the admin on {}", config.admin_addr))?;
    let agent_addr = agent_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    gateway.set_agent_port(agent_addr.port());
    gateway
        .recover()
        .context("failed to recover the write queue")?;

    let stop = CancellationToken::new();
    let serve = |listener: TcpListener, router: axum::Router, stop: CancellationToken| {
        tokio::spawn(crate::http::listen::serve(listener, router, stop))
    };
    let tasks = vec![
        serve(agent_listener, agent_router(gateway.clone()), stop.clone()),
        serve(admin_listener, admin_router(gateway.clone()), stop.clone()),
        tokio::spawn(sweep(gateway.clone(), stop.clone())),
        tokio::spawn(deliver_webhooks(gateway.clone(), stop.clone())),
    ];
    tracing::info!(%agent_addr, %admin_addr, base_url = %gateway.base_url(), credentials = %gateway.credential_backend(), "agentgate is serving");
    // No password yet: first-run setup needs this code, which only someone
    // who can read this process's log has. One use; a restart makes another.
    if let Some(code) = gateway.issue_setup_code()? {
        tracing::warn!(
            "no admin password is set: open http://{admin_addr}/ui/setup and enter the setup code {} \
             (or run `agentgate admin set-password`)",
            code.expose()
        );
    }
    Ok(RunningServer {
        agent_addr,
        admin_addr,
        gateway,
        stop,
        tasks,
    })
}

impl RunningServer {
    /// Stops accepting connections, lets open requests finish, then waits for
    /// batches that are executing (at most the upstream timeout plus a margin), so
    /// that a normal stop never leaves an entry `executing`.
    pub async fn shutdown(self) {
        self.gateway.closing().cancel();
        self.stop.cancel();
        for t in self.tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "listener failed"),
                Err(e) => tracing::error!(error = %e, "listener task failed"),
            }
        }
        let limit = Duration::from_secs(self.gateway.settings().upstream_timeout_secs + 5);
        if !self.gateway.wait_for_executions(limit).await {
            tracing::warn!(
                "some batches were still executing at shutdown; they will show as interrupted"
            );
        }
        tracing::info!("agentgate stopped");
    }

    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }
}

/// How often the housekeeping sweep runs.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Housekeeping until stopped: expires pending entries nobody decided on and
/// prunes the audit log to its retention.
async fn sweep(gateway: Gateway, stop: CancellationToken) -> std::io::Result<()> {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {
                if let Err(e) = gateway.expire_pending() {
                    tracing::error!(error = %e, "expiring pending entries failed");
                }
                if let Err(e) = gateway.prune_audit() {
                    tracing::error!(error = %e, "pruning the audit log failed");
                }
                if let Err(e) = gateway.prune_decided() {
                    tracing::error!(error = %e, "pruning decided queue entries failed");
                }
            }
        }
    }
}

/// How often due webhook notifications are looked for.
const WEBHOOK_INTERVAL: Duration = Duration::from_secs(1);

/// Sends due webhook notifications until stopped.
async fn deliver_webhooks(gateway: Gateway, stop: CancellationToken) -> std::io::Result<()> {
    let mut tick = tokio::time::interval(WEBHOOK_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {
                if let Err(e) = gateway.start_due_deliveries() {
                    tracing::error!(error = %e, "delivering webhooks failed");
                }
            }
        }
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
