//! `/ui/events`: a server-sent event stream that says "the queue moved" so the
//! open page can fetch its lists again, and "agents were paused" (or resumed)
//! so that every open page shows it. It carries ids and states only, never an
//! agent's words.
//!
//! Transitions in this process arrive at once through the gateway's broadcast;
//! changes another process made (the CLI) are caught by comparing the queue's
//! stamp every few seconds. The stream ends when the session does, and when the
//! gateway stops, so that a graceful shutdown is not held up by open pages.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::StatusCode;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::gateway::Gateway;
use crate::http::session::AdminSession;

/// How often the stream looks for changes made by other processes and checks
/// that the session is still valid.
const RECHECK: Duration = Duration::from_secs(3);

pub(super) async fn stream(
    State(gw): State<Gateway>,
    session: Result<AdminSession, Response>,
) -> Response {
    let Ok(session) = session else {
        return (StatusCode::UNAUTHORIZED, "sign in again").into_response();
    };
    Sse::new(events(gw, session.token().to_string()))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn events(gw: Gateway, token: String) -> impl Stream<Item = Result<Event, Infallible>> {
    let rx = gw.subscribe();
    let stamp = gw.queue_stamp().ok();
    let paused = gw.is_paused().unwrap_or(false);
    let closing = gw.closing();
    let mut tick = tokio::time::interval(RECHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold(
        (gw, token, rx, stamp, paused, tick, closing),
        |(gw, token, mut rx, mut stamp, mut paused, mut tick, closing)| async move {
            loop {
                let event = tokio::select! {
                    _ = closing.cancelled() => return None,
                    got = rx.recv() => match got {
                        Ok(ev) => Some(json!({"id": ev.entry.id, "status": ev.to.as_str()})),
                        // Missed some: the page re-reads everything anyway.
                        Err(RecvError::Lagged(_)) => Some(json!({"id": null, "status": null})),
                        Err(RecvError::Closed) => return None,
                    },
                    _ = tick.tick() => {
                        if !gw.admin_session_valid(&token).unwrap_or(false) {
                            return None;
                        }
                        // The pause switch, flipped here or in another process.
                        let now_paused = gw.is_paused().unwrap_or(paused);
                        if now_paused != paused {
                            paused = now_paused;
                            let ev = Event::default()
                                .event("pause")
                                .data(json!({"paused": paused}).to_string());
                            return Some((Ok(ev), (gw, token, rx, stamp, paused, tick, closing)));
                        }
                        let now = gw.queue_stamp().ok();
                        if now != stamp {
                            stamp = now;
                            Some(json!({"id": null, "status": null}))
                        } else {
                            None
                        }
                    }
                };
                if let Some(data) = event {
                    // Changes seen through the broadcast also move the stamp;
                    // take it now so the next tick does not report them twice.
                    stamp = gw.queue_stamp().ok().or(stamp);
                    let ev = Event::default().event("queue").data(data.to_string());
                    return Some((Ok(ev), (gw, token, rx, stamp, paused, tick, closing)));
                }
            }
        },
    )
}
