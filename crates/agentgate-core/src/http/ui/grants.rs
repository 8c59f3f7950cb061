//! Running grants with their remaining time, revoked at once with one press,
//! and a form to give one by hand. Most grants are made beside an approval
//! on the queue page ("approve and allow this for 1 h").

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;

use super::{Chrome, Notice, done, error_status, render};
use crate::gateway::{AccountInfo, Gateway, GrantInfo, GrantSpec};
use crate::http::extract::Params;
use crate::http::session::{AdminSession, SignedForm};

#[derive(Template)]
#[template(path = "grants.html")]
struct GrantsPage {
    chrome: Chrome,
    /// Each grant, with its path as shown: an agent's, so every hidden
    /// character is a visible escape.
    grants: Vec<(GrantInfo, Option<String>)>,
    agents: Vec<String>,
    accounts: Vec<AccountInfo>,
}

pub(super) fn grants_page(
    gw: &Gateway,
    session: &AdminSession,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let built = (|| -> crate::error::Result<GrantsPage> {
        Ok(GrantsPage {
            chrome: Chrome::new(gw, session, "grants", notice),
            grants: gw
                .grants()?
                .into_iter()
                .map(|g| {
                    let shown = g.path.as_deref().map(crate::display::web_text);
                    (g, shown)
                })
                .collect(),
            agents: gw.agents()?.into_iter().map(|a| a.name).collect(),
            accounts: gw.accounts()?,
        })
    })();
    match built {
        Ok(p) => render(p, status),
        Err(e) => super::unavailable("The grants", &e),
    }
}

#[derive(Deserialize)]
pub(super) struct GrantForm {
    agent: String,
    /// `service/name`.
    account: String,
    /// A number of minutes, or "today".
    minutes: String,
    #[serde(default)]
    tz_offset: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
}

/// "15", "60" or "today" (until midnight where the browser is; UTC when the
/// page's script did not say).
pub(super) fn minutes_of(gw: &Gateway, choice: &str, tz_offset: Option<&str>) -> Option<i64> {
    match choice.trim() {
        "today" => {
            let offset = tz_offset.and_then(|t| t.trim().parse().ok()).unwrap_or(0);
            Some(crate::gateway::minutes_left_today(gw.clock_now(), offset))
        }
        n => n.parse().ok(),
    }
}

pub(super) async fn add_submit(
    State(gw): State<Gateway>,
    SignedForm { session, form }: SignedForm<GrantForm>,
) -> Response {
    let outcome = (|| {
        let (service, account) = form
            .account
            .split_once('/')
            .ok_or_else(|| crate::error::Error::invalid("choose an account"))?;
        let minutes = minutes_of(&gw, &form.minutes, form.tz_offset.as_deref())
            .ok_or_else(|| crate::error::Error::invalid("choose how long the grant lasts"))?;
        gw.grant(&GrantSpec {
            agent: form.agent.clone(),
            service: service.to_string(),
            account: account.to_string(),
            minutes,
            method: form.method.clone().filter(|m| !m.is_empty()),
            path: form.path.clone().filter(|p| !p.trim().is_empty()),
        })
    })();
    match outcome {
        Ok(_) => done("/ui/grants", "grant-added"),
        Err(e) => grants_page(
            &gw,
            &session,
            Notice::error(format!("No grant was made: {e}")),
            error_status(&e),
        ),
    }
}

pub(super) async fn revoke_submit(
    State(gw): State<Gateway>,
    Params(id): Params<i64>,
    SignedForm { session, .. }: SignedForm<serde::de::IgnoredAny>,
) -> Response {
    match gw.revoke_grant(id) {
        Ok(()) => done("/ui/grants", "grant-revoked"),
        // Ended already (expired or revoked elsewhere): what was asked holds.
        Err(crate::error::Error::NotFound(_)) => done("/ui/grants", "grant-revoked"),
        Err(e) => grants_page(
            &gw,
            &session,
            Notice::error(format!("Not revoked: {e}")),
            error_status(&e),
        ),
    }
}
