//! Settings: where the gateway listens and how it is reached (read-only: they
//! need a restart), where credentials live, the pause switch, and the limits
//! the admin may change while it runs.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;

use super::{Chrome, Notice, done, error_status, render};
use crate::gateway::{Gateway, Settings, SettingsUpdate};
use crate::http::session::{AdminSession, SignedForm};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    agent_addr: String,
    admin_addr: String,
    public_url: String,
    data_dir: String,
    credential_backend: String,
    settings: Settings,
}

pub(super) fn settings_page(
    gw: &Gateway,
    session: &AdminSession,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let config = gw.config();
    render(
        SettingsPage {
            chrome: Chrome::new(gw, session, "settings", notice),
            agent_addr: config.agent_addr.to_string(),
            admin_addr: config.admin_addr.to_string(),
            public_url: gw.base_url(),
            data_dir: config.data_dir.display().to_string(),
            credential_backend: gw.credential_backend(),
            settings: gw.settings(),
        },
        status,
    )
}

/// The numbers as typed; each is checked here for a clear message, then by the
/// gateway for its range.
#[derive(Deserialize)]
pub(super) struct SettingsForm {
    upstream_timeout_secs: String,
    pending_expiry_hours: String,
    reads_per_minute: String,
    submissions_per_hour: String,
    audit_retention_days: String,
}

fn number<T: std::str::FromStr>(label: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{label} must be a whole number, not {:?}.", value.trim()))
}

fn parse(form: &SettingsForm) -> Result<SettingsUpdate, String> {
    Ok(SettingsUpdate {
        upstream_timeout_secs: Some(number("Upstream timeout", &form.upstream_timeout_secs)?),
        pending_expiry_hours: Some(number("Pending expiry", &form.pending_expiry_hours)?),
        reads_per_minute: Some(number("Reads per minute", &form.reads_per_minute)?),
        submissions_per_hour: Some(number("Submissions per hour", &form.submissions_per_hour)?),
        audit_retention_days: Some(number("Audit retention", &form.audit_retention_days)?),
    })
}

pub(super) async fn save_submit(
    State(gw): State<Gateway>,
    SignedForm { session, form }: SignedForm<SettingsForm>,
) -> Response {
    let update = match parse(&form) {
        Ok(u) => u,
        Err(message) => {
            return settings_page(
                &gw,
                &session,
                Notice::error(message),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    match gw.update_settings(update) {
        Ok(_) => done("/ui/settings", "settings"),
        Err(e) => settings_page(
            &gw,
            &session,
            Notice::error(format!("Not saved: {e}")),
            error_status(&e),
        ),
    }
}

#[derive(Deserialize)]
pub(super) struct PasswordChangeForm {
    password: String,
    password2: String,
}

/// A new admin password, for browsers other than this one (the desktop app's
/// window signs in without one); every other session ends.
pub(super) async fn password_submit(
    State(gw): State<Gateway>,
    SignedForm { session, form }: SignedForm<PasswordChangeForm>,
) -> Response {
    if form.password != form.password2 {
        return settings_page(
            &gw,
            &session,
            Notice::error("Not changed: the two passwords differ."),
            http::StatusCode::BAD_REQUEST,
        );
    }
    let password = crate::secret::Secret::new(form.password);
    match gw.change_admin_password(&password, session.token()) {
        Ok(()) => done("/ui/settings", "password"),
        Err(e) => settings_page(
            &gw,
            &session,
            Notice::error(format!("Not changed: {e}")),
            error_status(&e),
        ),
    }
}

#[derive(Deserialize)]
pub(super) struct PauseForm {
    paused: String,
    /// The page to return to.
    back: Option<String>,
}

pub(super) async fn pause_submit(
    State(gw): State<Gateway>,
    SignedForm { session, form }: SignedForm<PauseForm>,
) -> Response {
    let paused = form.paused == "true";
    // Only the UI's own pages are places to return to.
    let back = form
        .back
        .filter(|b| b.starts_with("/ui/") && !b.starts_with("//"))
        .unwrap_or_else(|| "/ui/settings".into());
    match gw.set_paused(paused) {
        Ok(()) => done(&back, if paused { "paused" } else { "resumed" }),
        Err(e) => settings_page(
            &gw,
            &session,
            Notice::error(e.to_string()),
            error_status(&e),
        ),
    }
}
