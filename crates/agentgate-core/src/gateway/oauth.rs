//! OAuth2 for the services that sign in that way: the admin's OAuth client per
//! provider, the connect flow (authorize URL with `state` and PKCE, then the
//! callback's code exchange) and token refresh. The `oauth2` crate builds the
//! requests; they are sent with the gateway's own HTTP client.
//!
//! A connect in progress lives only in this process's memory for ten minutes:
//! its `state` and PKCE verifier are secrets and never touch the disk, and a
//! `state` is accepted once.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::accounts::check_base_url;
use super::agents::check_name;
use super::signin::RefreshError;
use super::{AccountInfo, Gateway};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::services::{
    self, Auth, ClientAuth, Credentials, InstanceOAuth, OAuthSpec, REGISTRY, ServiceDef,
};
use crate::upstream::UpstreamRequest;

/// How long a started connect may take before its `state` is refused.
pub const CONNECT_LIFETIME: time::Duration = time::Duration::minutes(10);

/// A connect started by the admin and not yet finished.
pub(super) struct PendingConnect {
    service: &'static str,
    account: String,
    base_url: Option<String>,
    redirect_uri: String,
    verifier: Option<Secret>,
    started: OffsetDateTime,
}

/// The admin's OAuth client at a provider.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientConfig {
    pub client_id: String,
    /// Kept as a [`Secret`] from the request to the credential store: never
    /// in a log line or an answer.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::secret::serialize_exposed_opt"
    )]
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<Secret>,
    /// Overrides the provider's endpoints (tests, self-hosted providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
}

/// An app agentgate registered on an instance (Mastodon), kept per instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InstanceApp {
    client_id: String,
    #[serde(serialize_with = "crate::secret::serialize_exposed")]
    client_secret: Secret,
    redirect_uri: String,
}

/// What a connect signs in against.
enum Plan {
    Provider(&'static OAuthSpec),
    Instance(&'static InstanceOAuth, url::Url),
}

/// What the admin API shows of a provider's client: never the secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OAuthClientInfo {
    pub provider: &'static str,
    pub services: Vec<&'static str>,
    pub configured: bool,
    pub client_id: Option<String>,
    pub has_client_secret: bool,
    pub authorize_url: String,
    pub token_url: String,
}

type ConfiguredClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

impl Gateway {
    fn oauth_client_name(&self, provider: &str) -> String {
        format!("{}/oauth-client/{provider}", self.inner.instance)
    }

    /// Stores the OAuth client for a provider (`google`, `reddit`, `linkedin`, `fitbit`).
    pub fn set_oauth_client(&self, provider: &str, config: OAuthClientConfig) -> Result<()> {
        let spec = provider_spec(provider)?;
        if config.client_id.trim().is_empty() {
            return Err(Error::invalid("client_id must not be empty"));
        }
        let config = OAuthClientConfig {
            client_id: config.client_id.trim().to_string(),
            client_secret: config
                .client_secret
                .filter(|s| !s.expose().trim().is_empty()),
            authorize_url: config
                .authorize_url
                .map(|u| check_endpoint(&u))
                .transpose()?,
            token_url: config.token_url.map(|u| check_endpoint(&u)).transpose()?,
        };
        let json = serde_json::to_string(&config).map_err(|e| Error::Internal(e.into()))?;
        self.inner
            .creds
            .set(&self.oauth_client_name(spec.provider), &Secret::new(json))?;
        tracing::info!(provider = spec.provider, "OAuth client configured");
        Ok(())
    }

    pub fn remove_oauth_client(&self, provider: &str) -> Result<()> {
        let spec = provider_spec(provider)?;
        self.inner
            .creds
            .delete(&self.oauth_client_name(spec.provider))
    }

    fn oauth_client_config(&self, provider: &str) -> Result<Option<OAuthClientConfig>> {
        match self.inner.creds.get(&self.oauth_client_name(provider))? {
            None => Ok(None),
            Some(s) => serde_json::from_str(s.expose()).map(Some).map_err(|_| {
                Error::Credentials(format!(
                    "the stored OAuth client for {provider} is damaged; set it again"
                ))
            }),
        }
    }

    /// Every OAuth provider with the services it serves and whether its client is set.
    pub fn oauth_clients(&self) -> Result<Vec<OAuthClientInfo>> {
        let mut out: Vec<OAuthClientInfo> = Vec::new();
        for def in REGISTRY {
            let Auth::OAuth2(spec) = def.auth else {
                continue;
            };
            if let Some(existing) = out.iter_mut().find(|i| i.provider == spec.provider) {
                existing.services.push(def.key);
                continue;
            }
            let config = self.oauth_client_config(spec.provider)?;
            out.push(OAuthClientInfo {
                provider: spec.provider,
                services: vec![def.key],
                configured: config.is_some(),
                client_id: config.as_ref().map(|c| c.client_id.clone()),
                has_client_secret: config.as_ref().is_some_and(|c| c.client_secret.is_some()),
                authorize_url: config
                    .as_ref()
                    .and_then(|c| c.authorize_url.clone())
                    .unwrap_or_else(|| spec.authorize_url.to_string()),
                token_url: config
                    .as_ref()
                    .and_then(|c| c.token_url.clone())
                    .unwrap_or_else(|| spec.token_url.to_string()),
            });
        }
        Ok(out)
    }

    fn configured_client(
        &self,
        spec: &OAuthSpec,
        redirect_uri: Option<&str>,
    ) -> Result<ConfiguredClient> {
        let config = self.oauth_client_config(spec.provider)?.ok_or_else(|| {
            Error::invalid(format!(
                "no OAuth client is set for {0}: register an app with {0} and store its client id and secret \
                 (PUT /admin/oauth/clients/{0} or `agentgate oauth set-client {0}`)",
                spec.provider
            ))
        })?;
        let bad = |what: &str| {
            Error::Internal(anyhow::anyhow!(
                "invalid OAuth {what} URL for {}",
                spec.provider
            ))
        };
        let auth_url = AuthUrl::new(
            config
                .authorize_url
                .clone()
                .unwrap_or_else(|| spec.authorize_url.into()),
        )
        .map_err(|_| bad("authorize"))?;
        let token_url = TokenUrl::new(
            config
                .token_url
                .clone()
                .unwrap_or_else(|| spec.token_url.into()),
        )
        .map_err(|_| bad("token"))?;
        let mut client = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url)
            .set_auth_type(match spec.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::RequestBody => AuthType::RequestBody,
            });
        if let Some(secret) = config.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
        }
        if let Some(uri) = redirect_uri {
            client = client.set_redirect_uri(
                RedirectUrl::new(uri.to_string())
                    .map_err(|_| Error::invalid(format!("invalid redirect URL {uri:?}")))?,
            );
        }
        Ok(client)
    }

    /// Starts connecting an account: returns the provider's authorize URL, to open
    /// in the admin's browser. `redirect_base` is where the provider sends the
    /// browser back (default: the public base URL); the callback path is
    /// `/oauth/callback/{service}` on either listener.
    pub async fn start_connect(
        &self,
        service: &str,
        account: &str,
        base_url: Option<String>,
        redirect_base: Option<String>,
    ) -> Result<url::Url> {
        let def = services::find(service)
            .ok_or_else(|| Error::invalid(format!("unknown service {service:?}")))?;
        let account = check_name(account, "account name")?.to_string();
        let base_url = base_url
            .map(|u| self.resolve_base_url(def, &u))
            .transpose()?;
        let plan = plan(def, base_url.as_deref())?;
        let redirect_base = match redirect_base {
            Some(b) => check_endpoint(&b)?,
            None => self.base_url(),
        };
        let redirect_uri = format!(
            "{}/oauth/callback/{}",
            redirect_base.trim_end_matches('/'),
            def.key
        );
        let (client, scopes, extra, pkce): (_, &[&str], &[(&str, &str)], bool) = match &plan {
            Plan::Provider(spec) => (
                self.configured_client(spec, Some(&redirect_uri))?,
                spec.scopes,
                spec.extra_params,
                spec.pkce,
            ),
            Plan::Instance(io, origin) => (
                self.instance_client(def, io, origin, &redirect_uri, true)
                    .await?,
                io.scopes,
                &[],
                false,
            ),
        };
        let mut request = client.authorize_url(CsrfToken::new_random);
        for scope in scopes {
            request = request.add_scope(Scope::new(scope.to_string()));
        }
        for (k, v) in extra {
            request = request.add_extra_param(*k, *v);
        }
        let mut verifier = None;
        if pkce {
            let (challenge, v) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            verifier = Some(Secret::new(v.secret().clone()));
        }
        let (url, state) = request.url();
        let now = self.inner.clock.now();
        let mut pending = self
            .inner
            .pending_connects
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, p| p.started + CONNECT_LIFETIME > now);
        pending.insert(
            state.secret().clone(),
            PendingConnect {
                service: def.key,
                account,
                base_url,
                redirect_uri,
                verifier,
                started: now,
            },
        );
        Ok(url)
    }

    /// Finishes a connect from the provider's callback: checks `state` (known,
    /// unused, under ten minutes old, same service), exchanges the code and stores
    /// the tokens, adding the account or replacing its credentials.
    pub async fn finish_connect(
        &self,
        service: &str,
        state: &str,
        code: &str,
    ) -> Result<AccountInfo> {
        let def = services::find(service)
            .ok_or_else(|| Error::not_found(format!("unknown service {service:?}")))?;
        let pending = self
            .inner
            .pending_connects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state)
            .ok_or_else(|| {
                Error::invalid("unknown or already used OAuth state: start connecting again")
            })?;
        if pending.started + CONNECT_LIFETIME <= self.inner.clock.now() {
            return Err(Error::invalid(
                "this connect took longer than 10 minutes: start connecting again",
            ));
        }
        if pending.service != def.key {
            return Err(Error::invalid("the OAuth state belongs to another service"));
        }
        let client = match plan(def, pending.base_url.as_deref())? {
            Plan::Provider(spec) => self.configured_client(spec, Some(&pending.redirect_uri))?,
            Plan::Instance(io, origin) => {
                self.instance_client(def, io, &origin, &pending.redirect_uri, false)
                    .await?
            }
        };
        let mut exchange = client.exchange_code(AuthorizationCode::new(code.to_string()));
        if let Some(v) = &pending.verifier {
            exchange = exchange.set_pkce_verifier(PkceCodeVerifier::new(v.expose().to_string()));
        }
        let token = exchange
            .request_async(&OAuthHttp(
                self.inner.upstream.client().clone(),
                self.upstream_timeout(),
            ))
            .await
            .map_err(|e| {
                Error::Upstream(format!(
                    "the code exchange with {} failed: {}",
                    def.display_name,
                    describe(&e)
                ))
            })?;
        let mut creds = Credentials::default();
        apply_token(&mut creds, &token, self.inner.clock.now().unix_timestamp());
        let info =
            self.upsert_oauth_account(def, &pending.account, pending.base_url.as_deref(), &creds)?;
        tracing::info!(service = def.key, account = %pending.account, "account connected");
        Ok(info)
    }

    /// The app agentgate registered on an instance, registering it first when
    /// `register` allows and there is none for this redirect URL yet.
    async fn instance_client(
        &self,
        def: &ServiceDef,
        io: &InstanceOAuth,
        origin: &url::Url,
        redirect_uri: &str,
        register: bool,
    ) -> Result<ConfiguredClient> {
        let host = origin.host_str().unwrap_or_default();
        let name = match origin.port() {
            Some(p) => format!(
                "{}/oauth-client/{}@{host}:{p}",
                self.inner.instance, def.key
            ),
            None => format!("{}/oauth-client/{}@{host}", self.inner.instance, def.key),
        };
        let stored: Option<InstanceApp> = self
            .inner
            .creds
            .get(&name)?
            .and_then(|s| serde_json::from_str(s.expose()).ok())
            .filter(|a: &InstanceApp| a.redirect_uri == redirect_uri);
        let app = match stored {
            Some(app) => app,
            None if register => {
                let app = self.register_instance_app(io, origin, redirect_uri).await?;
                let json = serde_json::to_string(&app).map_err(|e| Error::Internal(e.into()))?;
                self.inner.creds.set(&name, &Secret::new(json))?;
                tracing::info!(service = def.key, %host, "registered agentgate as an app on the instance");
                app
            }
            None => {
                return Err(Error::invalid(
                    "agentgate's app on this instance is gone: start connecting again",
                ));
            }
        };
        let endpoint = |path: &str| format!("{}{path}", origin.as_str().trim_end_matches('/'));
        let bad = |_| Error::Internal(anyhow::anyhow!("invalid instance OAuth URL"));
        Ok(BasicClient::new(ClientId::new(app.client_id))
            .set_client_secret(ClientSecret::new(app.client_secret.expose().to_string()))
            .set_auth_uri(AuthUrl::new(endpoint(io.authorize_path)).map_err(bad)?)
            .set_token_uri(TokenUrl::new(endpoint(io.token_path)).map_err(bad)?)
            .set_auth_type(AuthType::RequestBody)
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_string()).map_err(bad)?))
    }

    async fn register_instance_app(
        &self,
        io: &InstanceOAuth,
        origin: &url::Url,
        redirect_uri: &str,
    ) -> Result<InstanceApp> {
        let url = origin
            .join(io.register_path)
            .map_err(|e| Error::Internal(e.into()))?;
        let body = serde_json::json!({
            "client_name": "agentgate",
            "redirect_uris": redirect_uri,
            "scopes": io.scopes.join(" "),
        });
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let resp = self
            .inner
            .upstream
            .send(
                UpstreamRequest {
                    method: http::Method::POST,
                    url,
                    headers,
                    body: Some(body.to_string().into()),
                },
                self.upstream_timeout(),
                64 * 1024,
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        match (
            v.get("client_id").and_then(|x| x.as_str()),
            v.get("client_secret").and_then(|x| x.as_str()),
        ) {
            (Some(id), Some(secret)) if resp.status.is_success() => Ok(InstanceApp {
                client_id: id.to_string(),
                client_secret: Secret::new(secret),
                redirect_uri: redirect_uri.to_string(),
            }),
            _ => Err(Error::Upstream(format!(
                "the instance refused to register agentgate as an app ({})",
                resp.status
            ))),
        }
    }

    /// Renews an OAuth access token with the stored refresh token.
    pub(super) async fn oauth_refresh(
        &self,
        spec: &OAuthSpec,
        current: &Credentials,
    ) -> std::result::Result<Credentials, RefreshError> {
        let Some(refresh) = current.get("refresh_token") else {
            return Err(RefreshError::Refused("no refresh token is stored".into()));
        };
        let client = self
            .configured_client(spec, None)
            .map_err(|e| RefreshError::Refused(e.to_string()))?;
        let token = client
            .exchange_refresh_token(&RefreshToken::new(refresh.expose().to_string()))
            .request_async(&OAuthHttp(
                self.inner.upstream.client().clone(),
                self.upstream_timeout(),
            ))
            .await
            .map_err(|e| match &e {
                // Only the provider's explicit word that this grant is over
                // needs the owner; a rate limit, a server error or an answer
                // that does not parse says nothing about the grant, and must
                // not let an agent cut the account off by provoking refreshes.
                RequestTokenError::ServerResponse(r) if refusal(r.error()) => {
                    RefreshError::Refused(format!(
                        "{} refused the refresh: {}",
                        spec.provider,
                        describe(&e)
                    ))
                }
                _ => RefreshError::Unreachable(Error::Upstream(format!(
                    "{} could not refresh the credentials now ({}); try again later",
                    spec.provider,
                    describe(&e)
                ))),
            })?;
        let mut out = current.clone();
        apply_token(&mut out, &token, self.inner.clock.now().unix_timestamp());
        Ok(out)
    }
}

/// How a service's accounts connect: through its provider's OAuth client, or on
/// the account's own instance.
fn plan(def: &'static ServiceDef, base_url: Option<&str>) -> Result<Plan> {
    match (def.auth, def.instance_oauth) {
        (Auth::OAuth2(spec), _) => Ok(Plan::Provider(spec)),
        (_, Some(io)) => {
            let base = base_url.ok_or_else(|| {
                Error::invalid(format!(
                    "{} accounts connect on their own instance: give its host as base_url",
                    def.display_name
                ))
            })?;
            let url = url::Url::parse(base).map_err(|e| Error::invalid(e.to_string()))?;
            let origin = url::Url::parse(&url.origin().ascii_serialization())
                .map_err(|e| Error::invalid(e.to_string()))?;
            Ok(Plan::Instance(io, origin))
        }
        _ => Err(Error::invalid(format!(
            "{} signs in with {}, not OAuth: add the account with its credentials",
            def.display_name,
            def.auth.method()
        ))),
    }
}

fn provider_spec(provider: &str) -> Result<&'static OAuthSpec> {
    REGISTRY
        .iter()
        .find_map(|d| match d.auth {
            Auth::OAuth2(spec) if spec.provider.eq_ignore_ascii_case(provider) => Some(spec),
            _ => None,
        })
        .ok_or_else(|| {
            Error::invalid(format!(
                "unknown OAuth provider {provider:?}; known: google, reddit, linkedin, fitbit"
            ))
        })
}

/// OAuth endpoints receive the client secret: same rule as account base URLs.
fn check_endpoint(raw: &str) -> Result<String> {
    let checked = check_base_url(raw)?;
    Ok(checked)
}

fn apply_token(out: &mut Credentials, token: &BasicTokenResponse, now: i64) {
    out.set("access_token", token.access_token().secret().as_str());
    // Providers that do not rotate refresh tokens (Google) omit them on refresh:
    // the stored one stays.
    if let Some(rt) = token.refresh_token() {
        out.set("refresh_token", rt.secret().as_str());
    }
    match token.expires_in() {
        Some(d) => out.set("expires_at", (now + d.as_secs() as i64).to_string()),
        None => out.remove("expires_at"),
    }
}

/// The OAuth error codes that say the grant itself is refused.
fn refusal(code: &oauth2::basic::BasicErrorResponseType) -> bool {
    use oauth2::basic::BasicErrorResponseType as E;
    match code {
        E::InvalidGrant
        | E::InvalidClient
        | E::UnauthorizedClient
        | E::InvalidRequest
        | E::InvalidScope
        | E::UnsupportedGrantType => true,
        E::Extension(_) => false,
    }
}

fn describe<RE: std::error::Error + 'static>(
    e: &RequestTokenError<RE, oauth2::StandardErrorResponse<oauth2::basic::BasicErrorResponseType>>,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error_description() {
            Some(d) => format!("{} ({d})", r.error()),
            None => r.error().to_string(),
        },
        RequestTokenError::Request(err) => err.to_string(),
        RequestTokenError::Parse(err, _) => format!("unreadable token response: {err}"),
        RequestTokenError::Other(s) => s.clone(),
    }
}

/// The gateway's HTTP client, adapted to the `oauth2` crate.
struct OAuthHttp(reqwest::Client, Duration);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct OAuthHttpError(String);

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp {
    type Error = OAuthHttpError;
    type Future = Pin<
        Box<
            dyn Future<Output = std::result::Result<oauth2::HttpResponse, OAuthHttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let resp = self
                .0
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .timeout(self.1)
                .send()
                .await
                .map_err(|e| OAuthHttpError(format!("token endpoint unreachable: {e}")))?;
            let mut builder = http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                builder = builder.header(k, v);
            }
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| OAuthHttpError(format!("token endpoint answer cut off: {e}")))?;
            builder
                .body(bytes.to_vec())
                .map_err(|e| OAuthHttpError(e.to_string()))
        })
    }
}
