//! The registry of services. Each service is described once, in its own module:
//! its key, how it signs in, its API base, the paths blocked for privacy, example
//! reads, write guidelines and how to ask it who the account is. Agent docs, the
//! admin API and request handling all read from here, so adding a service means
//! adding one module and one line to [`REGISTRY`].

mod bluesky;
pub mod compact;
mod fitbit;
mod github;
mod google;
mod jira;
mod linkedin;
mod mastodon;
mod reddit;
pub mod summary;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::paths::BlockRule;
use crate::queue::WriteRequest;
use crate::secret::Secret;

pub use bluesky::BLUESKY;
pub use fitbit::FITBIT;
pub use github::GITHUB;
pub use google::{CALENDAR, YOUTUBE};
pub use jira::JIRA;
pub use linkedin::LINKEDIN;
pub use mastodon::MASTODON;
pub use reddit::REDDIT;

/// Every service agentgate knows.
pub static REGISTRY: &[&ServiceDef] = &[
    &GITHUB, &BLUESKY, &MASTODON, &REDDIT, &CALENDAR, &YOUTUBE, &LINKEDIN, &JIRA, &FITBIT,
];

/// One field of an account's credentials, as the admin enters it.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct CredentialField {
    pub name: &'static str,
    pub label: &'static str,
    /// Whether the value is a secret (masked in forms, never shown again).
    pub secret: bool,
}

/// Groups of services, each with its own skill document for agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Code and work tracking: GitHub, Jira.
    Code,
    /// Posting and reading people: Bluesky, Mastodon, Reddit, LinkedIn, YouTube.
    Social,
    /// The person's own life: calendar, health.
    Personal,
}

impl Category {
    pub const ALL: [Category; 3] = [Category::Code, Category::Social, Category::Personal];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Code => "code",
            Category::Social => "social",
            Category::Personal => "personal",
        }
    }
}

/// How requests to a service are signed.
#[derive(Debug, Clone, Copy)]
pub enum Auth {
    /// `Authorization: Bearer <field>`, a token the admin pastes in.
    Bearer { field: &'static str },
    /// HTTP Basic from two credential fields.
    Basic {
        user: &'static str,
        password: &'static str,
    },
    /// An AT Protocol session created from an identifier and app password and
    /// refreshed with its refresh token.
    AtprotoSession,
    /// OAuth2 authorization code, refreshed with the refresh token.
    OAuth2(&'static OAuthSpec),
}

impl Auth {
    /// The sign-in method as the admin API names it.
    pub fn method(&self) -> &'static str {
        match self {
            Auth::Bearer { .. } => "token",
            Auth::Basic { .. } => "basic",
            Auth::AtprotoSession => "app_password",
            Auth::OAuth2(_) => "oauth2",
        }
    }
}

/// How a client authenticates at an OAuth2 token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic` with the client id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    RequestBody,
}

/// OAuth2 on a self-hosted service, where each instance is its own provider and
/// agentgate registers itself as an app on the instance the admin names.
#[derive(Debug, Clone, Copy)]
pub struct InstanceOAuth {
    pub register_path: &'static str,
    pub authorize_path: &'static str,
    pub token_path: &'static str,
    pub scopes: &'static [&'static str],
}

/// A provider's OAuth2 endpoints and what agentgate asks it for.
#[derive(Debug, Clone, Copy)]
pub struct OAuthSpec {
    /// Services of one provider share its OAuth client (Google: Calendar and YouTube).
    pub provider: &'static str,
    pub authorize_url: &'static str,
    pub token_url: &'static str,
    pub scopes: &'static [&'static str],
    pub pkce: bool,
    pub client_auth: ClientAuth,
    pub extra_params: &'static [(&'static str, &'static str)],
}

pub struct ServiceDef {
    pub key: &'static str,
    pub category: Category,
    pub aliases: &'static [&'static str],
    pub display_name: &'static str,
    pub description: &'static str,
    pub auth: Auth,
    /// The API base when the account does not name its own; `None` means every
    /// account must name one (self-hosted services).
    pub default_base_url: Option<&'static str>,
    /// How a bare host name given for an account becomes its API base
    /// (`{host}` is replaced), e.g. `https://{host}/rest/api/3` for Jira.
    pub base_url_template: Option<&'static str>,
    pub credential_fields: &'static [CredentialField],
    pub blocked: &'static [BlockRule],
    pub example_reads: &'static [&'static str],
    pub write_guidelines: &'static [&'static str],
    /// A read that answers with the account's own identity.
    pub identity_path: &'static str,
    /// Pulls a human-readable name out of the identity answer.
    pub identity_name: fn(&Value) -> Option<String>,
    /// Headers the service expects on every call; an agent's own header of the
    /// same name wins.
    pub default_headers: &'static [(&'static str, &'static str)],
    /// Refuses writes that a path rule cannot catch (a direct message posted
    /// through the ordinary status endpoint); returns why.
    pub write_check: Option<fn(&WriteRequest, &str) -> Option<String>>,
    /// Shrinks the chattiest JSON answers (given the normalised path); `None`
    /// from the function leaves an answer as the service sent it.
    pub compact: Option<fn(&str, &Value) -> Option<Value>>,
    /// Optional sign-in on the account's own instance (Mastodon).
    pub instance_oauth: Option<&'static InstanceOAuth>,
    /// Says in plain words what a write does, for the human who decides on it.
    pub summarize: Option<fn(&WriteRequest) -> Option<String>>,
}

impl ServiceDef {
    /// A one-line summary of a queued request: the service's own words when it
    /// knows the endpoint, else the method and path.
    pub fn describe(&self, req: &WriteRequest) -> String {
        self.summarize
            .and_then(|f| f(req))
            .unwrap_or_else(|| format!("{} {} on {}", req.method, req.path, self.display_name))
    }
}

impl std::fmt::Debug for ServiceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDef")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ServiceDef {
    /// The privacy block that matches a normalised path, if any.
    pub fn blocked_rule(&self, normalized_path: &str) -> Option<&BlockRule> {
        self.blocked.iter().find(|r| r.matches(normalized_path))
    }
}

/// Finds a service by key or alias, ignoring case.
pub fn find(key: &str) -> Option<&'static ServiceDef> {
    REGISTRY.iter().copied().find(|s| {
        s.key.eq_ignore_ascii_case(key) || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(key))
    })
}

/// An account's credentials, field by field, each kept as a [`Secret`].
#[derive(Debug, Clone, Default)]
pub struct Credentials(pub BTreeMap<String, Secret>);

impl Credentials {
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_string(), Secret::new(value));
    }

    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    pub fn field(&self, name: &str) -> Result<&Secret, Error> {
        self.0
            .get(name)
            .ok_or_else(|| Error::Credentials(format!("the stored credentials have no {name:?}")))
    }

    /// The form kept in the credential store: a JSON object of strings.
    pub fn to_secret(&self) -> Secret {
        let map: BTreeMap<&str, &str> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        Secret::new(serde_json::to_string(&map).unwrap_or_default())
    }

    pub fn from_secret(s: &Secret) -> Result<Credentials, Error> {
        let map: BTreeMap<String, String> = serde_json::from_str(s.expose()).map_err(|_| {
            Error::Credentials("the stored credentials are damaged; add the account again".into())
        })?;
        Ok(Credentials(
            map.into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_found_by_key_and_alias_in_any_case() {
        assert_eq!(find("github").unwrap().key, "github");
        assert_eq!(find("GitHub").unwrap().key, "github");
        assert!(find("nope").is_none());
        for s in REGISTRY {
            assert!(find(s.key).is_some());
            assert_eq!(s.key, s.key.to_lowercase());
            for rule in s.blocked {
                assert_eq!(
                    rule.0,
                    rule.0.to_lowercase(),
                    "block patterns are lower case"
                );
            }
        }
    }

    #[test]
    fn credentials_round_trip_through_their_stored_form() {
        let c = Credentials(
            [("token".to_string(), Secret::new("t0k"))]
                .into_iter()
                .collect(),
        );
        let back = Credentials::from_secret(&c.to_secret()).unwrap();
        assert_eq!(back.field("token").unwrap().expose(), "t0k");
        assert!(back.field("other").is_err());
        assert!(!format!("{back:?}").contains("t0k"));
    }
}
