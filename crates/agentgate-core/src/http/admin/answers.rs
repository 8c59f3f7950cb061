//! The admin API's JSON answers, one typed struct each. The handlers return
//! them and the OpenAPI document (`GET /admin/openapi.json`) describes them,
//! so the shape a script is promised is the shape it is sent. Errors are
//! [`crate::answers::ErrorBody`], as on the agent API.

use serde::Serialize;
use utoipa::ToSchema;

use crate::agent::Agent;
use crate::audit::AuditRecord;
use crate::gateway::{AccountInfo, GrantInfo, OAuthClientInfo, PolicyView, Settings};
use crate::policy::Decision;
use crate::queue::{Entry, NotificationState};
use crate::services::{Auth, CredentialField, ServiceDef};

/// Whether first-run setup is done.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PasswordStatus {
    pub password_set: bool,
}

/// An action done; some say what to do next.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Done {
    /// Always true: a failure is an error answer.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
}

impl Done {
    pub const OK: Done = Done {
        ok: true,
        message: None,
    };

    pub fn saying(message: &'static str) -> Done {
        Done {
            ok: true,
            message: Some(message),
        }
    }
}

/// A new admin session. The same token is set as the `agentgate_session`
/// cookie; scripts send it as `Authorization: Bearer agt_…`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewSession {
    pub token: String,
    /// Seconds until the session ends.
    pub expires_in: i64,
}

/// Queue entries, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryList {
    pub count: usize,
    /// Summaries: each request's method and path, results without the
    /// service's bodies; `GET /admin/queue/{id}` gives one entry whole.
    pub entries: Vec<Entry>,
    /// Pass as `before` for the next page; `null` on the last.
    pub next: Option<String>,
}

/// An agent as the admin sees it: never its key or webhook token, only
/// whether a token is set.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentView {
    #[serde(flatten)]
    pub agent: Agent,
    pub has_webhook_token: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// A new agent and its key, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewAgent {
    pub agent: Agent,
    /// `rms_…`: the agent's bearer key on the agent API.
    pub key: String,
    pub message: &'static str,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentUpdated {
    pub agent: AgentView,
    /// Set when the change widens what the agent may do without asking.
    pub warning: Option<&'static str>,
}

/// Missed notifications sent again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Redelivered {
    pub ok: bool,
    /// How many were delivered this time.
    pub delivered: usize,
}

/// Webhook notifications, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationList {
    pub count: usize,
    pub notifications: Vec<NotificationState>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationAnswer {
    pub notification: NotificationState,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountList {
    pub accounts: Vec<AccountInfo>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountAnswer {
    pub account: AccountInfo,
}

/// An OAuth sign-in started: the owner opens `authorize_url` in a browser.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectStarted {
    pub authorize_url: String,
    /// Seconds the sign-in may take.
    pub expires_in: i64,
    pub message: &'static str,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OAuthClientList {
    pub providers: Vec<OAuthClientInfo>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyAnswer {
    pub policy: PolicyView,
}

/// What would happen to the request, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionAnswer {
    pub decision: Decision,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrantAnswer {
    pub grant: GrantInfo,
}

/// Live time-boxed grants.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrantList {
    pub grants: Vec<GrantInfo>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceList {
    pub services: Vec<ServiceInfo>,
}

/// A service agentgate knows, and what an account of it needs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceInfo {
    pub key: &'static str,
    pub aliases: &'static [&'static str],
    pub display_name: &'static str,
    pub description: &'static str,
    /// token, basic, app_password or oauth2.
    pub auth_method: &'static str,
    /// The provider whose OAuth client an oauth2 service signs in with.
    pub oauth_provider: Option<&'static str>,
    /// How a bare host name becomes the API base (`{host}` is replaced).
    pub base_url_template: Option<&'static str>,
    /// `null` when every account must name its own base URL.
    pub default_base_url: Option<&'static str>,
    pub credential_fields: &'static [CredentialField],
    /// Paths agents may never reach on this service, for privacy.
    pub blocked_paths: Vec<&'static str>,
}

impl From<&ServiceDef> for ServiceInfo {
    fn from(s: &ServiceDef) -> Self {
        ServiceInfo {
            key: s.key,
            aliases: s.aliases,
            display_name: s.display_name,
            description: s.description,
            auth_method: s.auth.method(),
            oauth_provider: match s.auth {
                Auth::OAuth2(spec) => Some(spec.provider),
                _ => None,
            },
            base_url_template: s.base_url_template,
            default_base_url: s.default_base_url,
            credential_fields: s.credential_fields,
            blocked_paths: s.blocked.iter().map(|b| b.0).collect(),
        }
    }
}

/// The settings, and the facts fixed when the gateway started.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettingsView {
    pub settings: Settings,
    pub read_only: ReadOnlySettings,
}

/// What the configuration file or the command line set; changed by a restart.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadOnlySettings {
    pub agent_listen: String,
    pub admin_listen: String,
    /// The public base URL agents are told to use.
    pub base_url: String,
    pub data_dir: String,
    pub credential_backend: String,
    pub max_request_body_bytes: usize,
    pub max_upstream_response_bytes: usize,
}

/// The settings after a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettingsAnswer {
    pub settings: Settings,
}

/// Whether every agent's reads and submissions are refused.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PauseState {
    pub paused: bool,
}

/// Audit records, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditList {
    pub count: usize,
    pub records: Vec<AuditRecord>,
}
