//! Accounts: the services agents may use, each added by its own sign-in method
//! (an OAuth connect, or a form for tokens and app passwords), with who the
//! account is, a test, reconnect and remove. A stored secret is never shown.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Chrome, Notice, done, error_status, render};
use crate::gateway::{AccountInfo, Gateway, OAuthClientConfig, OAuthClientInfo};
use crate::http::extract::{Params, QueryParams};
use crate::http::session::{AdminSession, SignedForm};
use crate::secret::Secret;
use crate::services::{self, Auth, ServiceDef};

/// A service as the accounts pages show it.
struct ServiceView {
    key: &'static str,
    name: &'static str,
    description: &'static str,
    method: &'static str,
}

fn service_view(d: &ServiceDef) -> ServiceView {
    ServiceView {
        key: d.key,
        name: d.display_name,
        description: d.description,
        method: match d.auth {
            Auth::OAuth2(_) => "Sign in with OAuth",
            Auth::AtprotoSession => "Handle and app password",
            Auth::Basic { .. } => "Email and API token",
            Auth::Bearer { .. } if d.instance_oauth.is_some() => {
                "Sign in on your instance, or an access token"
            }
            Auth::Bearer { .. } => "Access token",
        },
    }
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    accounts: Vec<AccountInfo>,
    /// Per account, in the same order: who may use it, in words, and how
    /// many rules it has.
    policies: Vec<(String, usize)>,
    services: Vec<ServiceView>,
}

pub(super) fn accounts_page(
    gw: &Gateway,
    session: &AdminSession,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let accounts = match gw.accounts() {
        Ok(a) => a,
        Err(e) => return super::unavailable("The accounts", &e),
    };
    let policies = accounts
        .iter()
        .map(|a| {
            gw.account_policy(&a.service, &a.name)
                .map_or_else(|_| (String::new(), 0), |p| (p.access_words, p.rules.len()))
        })
        .collect();
    render(
        AccountsPage {
            chrome: Chrome::new(gw, session, "accounts", notice),
            accounts,
            policies,
            services: services::REGISTRY.iter().map(|d| service_view(d)).collect(),
        },
        status,
    )
}

/// One field of the add form.
struct FieldView {
    name: &'static str,
    label: &'static str,
    secret: bool,
}

#[derive(Template)]
#[template(path = "account_add.html")]
struct AddPage {
    chrome: Chrome,
    service: ServiceView,
    /// The name being reconnected, if this is a reconnect.
    replace: Option<String>,
    name: String,
    base_url: String,
    base_url_required: bool,
    base_url_hint: String,
    fields: Vec<FieldView>,
    /// Some for OAuth services: whether the provider's client is set, and the
    /// redirect URL to register with it.
    oauth: Option<OAuthView>,
    /// Mastodon-style sign-in on the account's own instance.
    instance_oauth: bool,
    redirect_uri: String,
}

struct OAuthView {
    client: OAuthClientInfo,
}

#[derive(Deserialize, Default)]
pub(super) struct AddQuery {
    name: Option<String>,
    replace: Option<String>,
}

pub(super) async fn add_page(
    State(gw): State<Gateway>,
    session: AdminSession,
    Params(service): Params<String>,
    QueryParams(q): QueryParams<AddQuery>,
) -> Response {
    let Some(def) = services::find(&service) else {
        return accounts_page(
            &gw,
            &session,
            Notice::error(format!("agentgate does not know a service {service:?}.")),
            StatusCode::NOT_FOUND,
        );
    };
    let replace = q.replace.is_some().then(|| q.name.clone()).flatten();
    let base_url = replace
        .as_ref()
        .and_then(|n| gw.account_info(def.key, n).ok())
        .filter(|a| a.custom_base_url)
        .map(|a| a.base_url)
        .unwrap_or_default();
    add_form(
        &gw,
        &session,
        def,
        AddState {
            name: q.name.unwrap_or_default(),
            base_url,
            replace,
        },
        None,
        StatusCode::OK,
    )
}

/// What the admin typed so far (never the secrets: those are typed again).
struct AddState {
    name: String,
    base_url: String,
    replace: Option<String>,
}

fn add_form(
    gw: &Gateway,
    session: &AdminSession,
    def: &'static ServiceDef,
    state: AddState,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let oauth = match def.auth {
        Auth::OAuth2(spec) => gw
            .oauth_clients()
            .ok()
            .and_then(|all| all.into_iter().find(|c| c.provider == spec.provider))
            .map(|client| OAuthView { client }),
        _ => None,
    };
    let base_url_hint = match (def.default_base_url, def.base_url_template) {
        (None, Some(t)) => format!("Your server's host name, e.g. example.org (becomes {t})."),
        (None, None) => "Your server's address.".to_string(),
        (Some(d), Some(_)) => {
            format!("Leave empty for {d}; give a host name for a self-hosted server.")
        }
        (Some(d), None) => format!("Leave empty for {d}."),
    };
    render(
        AddPage {
            chrome: Chrome::new(gw, session, "accounts", notice),
            service: service_view(def),
            name: state.name,
            base_url: state.base_url,
            replace: state.replace,
            base_url_required: def.default_base_url.is_none(),
            base_url_hint,
            fields: def
                .credential_fields
                .iter()
                .map(|f| FieldView {
                    name: f.name,
                    label: f.label,
                    secret: f.secret,
                })
                .collect(),
            oauth,
            instance_oauth: def.instance_oauth.is_some(),
            redirect_uri: format!(
                "{}/oauth/callback/{}",
                gw.base_url().trim_end_matches('/'),
                def.key
            ),
        },
        status,
    )
}

fn unknown_service(gw: &Gateway, session: &AdminSession, service: &str) -> Response {
    accounts_page(
        gw,
        session,
        Notice::error(format!("agentgate does not know a service {service:?}.")),
        StatusCode::NOT_FOUND,
    )
}

/// Adds an account from the token form, or replaces a reconnected account's
/// credentials. The form's fields are the service's credential fields plus
/// `name`, `base_url`, `replace` and `csrf`.
pub(super) async fn add_submit(
    State(gw): State<Gateway>,
    Params(service): Params<String>,
    SignedForm { session, mut form }: SignedForm<HashMap<String, String>>,
) -> Response {
    form.remove("csrf");
    let Some(def) = services::find(&service) else {
        return unknown_service(&gw, &session, &service);
    };
    let name = form
        .remove("name")
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    let base_url = form
        .remove("base_url")
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    let replace = form.remove("replace").filter(|r| !r.is_empty());
    let credentials: BTreeMap<String, Secret> = def
        .credential_fields
        .iter()
        .filter_map(|f| {
            form.remove(f.name)
                .map(|v| (f.name.to_string(), Secret::new(v)))
        })
        .collect();
    let outcome = match &replace {
        Some(existing) => gw.update_account(
            def.key,
            existing,
            base_url.clone().map(Some),
            Some(credentials),
        ),
        None => gw.add_account(crate::gateway::NewAccount {
            service: def.key.to_string(),
            name: name.clone(),
            base_url: base_url.clone(),
            credentials,
        }),
    };
    match outcome {
        Ok(info) => {
            // Learn who the account is right away, so the list can say it.
            let _ = gw.test_account(&info.service, &info.name).await;
            done("/ui/accounts", "account-added")
        }
        Err(e) => add_form(
            &gw,
            &session,
            def,
            AddState {
                name,
                base_url: base_url.unwrap_or_default(),
                replace,
            },
            Notice::error(format!("Not saved: {e}")),
            error_status(&e),
        ),
    }
}

#[derive(Deserialize)]
pub(super) struct ConnectForm {
    name: String,
    base_url: Option<String>,
}

#[derive(Template)]
#[template(path = "account_continue.html")]
struct ContinuePage {
    service: &'static str,
    url: String,
}

/// Starts an OAuth connect and sends the browser on to the provider.
pub(super) async fn connect_submit(
    State(gw): State<Gateway>,
    Params(service): Params<String>,
    SignedForm { session, form }: SignedForm<ConnectForm>,
) -> Response {
    let Some(def) = services::find(&service) else {
        return unknown_service(&gw, &session, &service);
    };
    let base_url = form
        .base_url
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    match gw
        .start_connect(def.key, form.name.trim(), base_url.clone(), None)
        .await
    {
        // The form's CSP (`form-action 'self'`) would block a redirect to the
        // provider, so a page that moves on by itself (and has a link) does it.
        Ok(url) => render(
            ContinuePage {
                service: def.display_name,
                url: url.to_string(),
            },
            StatusCode::OK,
        ),
        Err(e) => add_form(
            &gw,
            &session,
            def,
            AddState {
                name: form.name,
                base_url: base_url.unwrap_or_default(),
                replace: None,
            },
            Notice::error(format!("Could not start connecting: {e}")),
            error_status(&e),
        ),
    }
}

#[derive(Deserialize)]
pub(super) struct OAuthClientForm {
    service: String,
    client_id: String,
    client_secret: Option<crate::secret::Secret>,
}

/// Saves the OAuth client (app id and secret) a provider issued to this install.
pub(super) async fn oauth_client_submit(
    State(gw): State<Gateway>,
    Params(provider): Params<String>,
    SignedForm { session, form }: SignedForm<OAuthClientForm>,
) -> Response {
    let Some(def) = services::find(&form.service) else {
        return unknown_service(&gw, &session, &form.service);
    };
    let back = format!("/ui/accounts/add/{}", def.key);
    match gw.set_oauth_client(
        &provider,
        OAuthClientConfig {
            client_id: form.client_id,
            client_secret: form.client_secret,
            authorize_url: None,
            token_url: None,
        },
    ) {
        Ok(()) => done(&back, "oauth-client"),
        Err(e) => add_form(
            &gw,
            &session,
            def,
            AddState {
                name: String::new(),
                base_url: String::new(),
                replace: None,
            },
            Notice::error(format!("Not saved: {e}")),
            error_status(&e),
        ),
    }
}

pub(super) async fn test_submit(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    SignedForm { session, .. }: SignedForm<IgnoredAny>,
) -> Response {
    match gw.test_account(&service, &name).await {
        Ok(_) => Redirect::to(&format!(
            "/ui/accounts?done=account-tested#account-{service}-{name}"
        ))
        .into_response(),
        Err(e) => accounts_page(
            &gw,
            &session,
            Notice::error(format!("Could not test: {e}")),
            error_status(&e),
        ),
    }
}

pub(super) async fn remove_submit(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    SignedForm { session, .. }: SignedForm<IgnoredAny>,
) -> Response {
    match gw.remove_account(&service, &name) {
        Ok(()) => done("/ui/accounts", "account-removed"),
        Err(e) => accounts_page(
            &gw,
            &session,
            Notice::error(format!("Not removed: {e}")),
            error_status(&e),
        ),
    }
}
