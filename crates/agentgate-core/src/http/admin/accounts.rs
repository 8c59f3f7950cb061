//! Service accounts: adding, changing, testing and removing them, and the
//! OAuth sign-in that adds the accounts of OAuth services.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;

use super::answers::{AccountAnswer, AccountList, ConnectStarted, Done, OAuthClientList};
use super::double_option;
use crate::answers::ErrorBody;
use crate::gateway::{AccountTest, CONNECT_LIFETIME, Gateway, NewAccount, OAuthClientConfig};
use crate::http::error::ApiError;
use crate::http::extract::{JsonBody, Params};
use crate::secret::Secret;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccountBody {
    /// A service key or alias, as `GET /admin/services` lists them.
    service: String,
    name: String,
    /// Needed by services without a default base URL; a bare host name is
    /// completed by the service's template.
    base_url: Option<String>,
    /// The service's credential fields by name.
    credentials: BTreeMap<String, String>,
}

fn secrets(map: BTreeMap<String, String>) -> BTreeMap<String, Secret> {
    map.into_iter().map(|(k, v)| (k, Secret::new(v))).collect()
}

/// Adds an account of a service that takes pasted credentials (OAuth services
/// start with `POST /admin/oauth/connect`).
#[utoipa::path(post, path = "/admin/accounts", request_body = NewAccountBody, responses(
    (status = 201, description = "Added", body = AccountAnswer),
    (status = 400, description = "Unknown service, invalid name, base URL or credentials", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody),
    (status = 409, description = "The service has an account of that name", body = ErrorBody)))]
pub(super) async fn accounts_add(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<NewAccountBody>,
) -> Result<(StatusCode, Json<AccountAnswer>), ApiError> {
    let account = gw.add_account(NewAccount {
        service: body.service,
        name: body.name,
        base_url: body.base_url,
        credentials: secrets(body.credentials),
    })?;
    Ok((StatusCode::CREATED, Json(AccountAnswer { account })))
}

#[utoipa::path(get, path = "/admin/accounts", responses(
    (status = 200, description = "Every account, by service and name; never a secret", body = AccountList),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn accounts_list(
    State(gw): State<Gateway>,
) -> Result<Json<AccountList>, ApiError> {
    Ok(Json(AccountList {
        accounts: gw.accounts()?,
    }))
}

#[utoipa::path(get, path = "/admin/accounts/{service}/{name}",
    params(("service" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, description = "The account", body = AccountAnswer),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such service or account", body = ErrorBody)))]
pub(super) async fn accounts_get(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
) -> Result<Json<AccountAnswer>, ApiError> {
    Ok(Json(AccountAnswer {
        account: gw.account_info(&service, &name)?,
    }))
}

/// Both fields are optional; only those sent change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountUpdateBody {
    /// `null` returns to the service's default base URL.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    base_url: Option<Option<String>>,
    /// Replaces the stored credentials; they take effect on the next request.
    credentials: Option<BTreeMap<String, String>>,
}

#[utoipa::path(patch, path = "/admin/accounts/{service}/{name}",
    params(("service" = String, Path), ("name" = String, Path)),
    request_body = AccountUpdateBody,
    responses(
        (status = 200, description = "The account as it is now", body = AccountAnswer),
        (status = 400, description = "Invalid base URL or credentials", body = ErrorBody),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such service or account", body = ErrorBody)))]
pub(super) async fn accounts_update(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
    JsonBody(body): JsonBody<AccountUpdateBody>,
) -> Result<Json<AccountAnswer>, ApiError> {
    let account = gw.update_account(
        &service,
        &name,
        body.base_url,
        body.credentials.map(secrets),
    )?;
    Ok(Json(AccountAnswer { account }))
}

/// Removes the account and its stored credentials.
#[utoipa::path(delete, path = "/admin/accounts/{service}/{name}",
    params(("service" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, description = "Removed", body = Done),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such service or account", body = ErrorBody)))]
pub(super) async fn accounts_remove(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
) -> Result<Json<Done>, ApiError> {
    gw.remove_account(&service, &name)?;
    Ok(Json(Done::OK))
}

/// Reads the account's identity at the service with its credentials.
#[utoipa::path(post, path = "/admin/accounts/{service}/{name}/test",
    params(("service" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, description = "The outcome, failed or not", body = AccountTest),
        (status = 401, description = "No admin session", body = ErrorBody),
        (status = 404, description = "No such service or account", body = ErrorBody)))]
pub(super) async fn accounts_test(
    State(gw): State<Gateway>,
    Params((service, name)): Params<(String, String)>,
) -> Result<Json<AccountTest>, ApiError> {
    Ok(Json(gw.test_account(&service, &name).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectBody {
    /// An OAuth service's key or alias.
    service: String,
    /// The new account's name.
    name: String,
    base_url: Option<String>,
    /// Where the provider sends the browser back; default: the public base URL.
    redirect_base: Option<String>,
}

/// Starts an OAuth sign-in that adds (or reconnects) an account.
#[utoipa::path(post, path = "/admin/oauth/connect", request_body = ConnectBody, responses(
    (status = 200, description = "Open authorize_url in a browser", body = ConnectStarted),
    (status = 400, description = "Not an OAuth service, invalid name, or no OAuth client set", body = ErrorBody),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn oauth_connect(
    State(gw): State<Gateway>,
    JsonBody(body): JsonBody<ConnectBody>,
) -> Result<Json<ConnectStarted>, ApiError> {
    let url = gw
        .start_connect(&body.service, &body.name, body.base_url, body.redirect_base)
        .await?;
    Ok(Json(ConnectStarted {
        authorize_url: url.as_str().to_string(),
        expires_in: CONNECT_LIFETIME.whole_seconds(),
        message: "Open authorize_url in a browser and sign in; the provider then returns to agentgate's callback.",
    }))
}

#[utoipa::path(get, path = "/admin/oauth/clients", responses(
    (status = 200, description = "Every OAuth provider and whether its client is set; never a secret", body = OAuthClientList),
    (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn oauth_clients(
    State(gw): State<Gateway>,
) -> Result<Json<OAuthClientList>, ApiError> {
    Ok(Json(OAuthClientList {
        providers: gw.oauth_clients()?,
    }))
}

/// Stores the app registered with the provider, for every service that signs
/// in through it.
#[utoipa::path(put, path = "/admin/oauth/clients/{provider}",
    params(("provider" = String, Path, description = "google, reddit, linkedin or fitbit")),
    request_body = OAuthClientConfig,
    responses(
        (status = 200, description = "Stored", body = Done),
        (status = 400, description = "Unknown provider or empty client id", body = ErrorBody),
        (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn oauth_client_set(
    State(gw): State<Gateway>,
    Params(provider): Params<String>,
    JsonBody(body): JsonBody<OAuthClientConfig>,
) -> Result<Json<Done>, ApiError> {
    gw.set_oauth_client(&provider, body)?;
    Ok(Json(Done::OK))
}

#[utoipa::path(delete, path = "/admin/oauth/clients/{provider}",
    params(("provider" = String, Path, description = "google, reddit, linkedin or fitbit")),
    responses(
        (status = 200, description = "Removed", body = Done),
        (status = 400, description = "Unknown provider", body = ErrorBody),
        (status = 401, description = "No admin session", body = ErrorBody)))]
pub(super) async fn oauth_client_remove(
    State(gw): State<Gateway>,
    Params(provider): Params<String>,
) -> Result<Json<Done>, ApiError> {
    gw.remove_oauth_client(&provider)?;
    Ok(Json(Done::OK))
}
