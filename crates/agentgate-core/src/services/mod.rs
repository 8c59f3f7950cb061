//! The registry of services. Each service is described once, in its own module:
//! its key, how it signs in, its API base, the paths blocked for privacy, example
//! reads, write guidelines and how to ask it who the account is. Agent docs, the
//! admin API and request handling all read from here, so adding a service means
//! adding one module and one line to [`REGISTRY`].

mod github;

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::paths::BlockRule;
use crate::secret::Secret;

pub use github::GITHUB;

/// Every service agentgate knows.
pub static REGISTRY: &[&ServiceDef] = &[&GITHUB];

/// One field of an account's credentials, as the admin enters it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CredentialField {
    pub name: &'static str,
    pub label: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A token the admin pastes in (personal access token, API token).
    Token,
}

pub struct ServiceDef {
    pub key: &'static str,
    pub aliases: &'static [&'static str],
    pub display_name: &'static str,
    pub description: &'static str,
    pub auth_method: AuthMethod,
    /// The API base when the account does not name its own; `None` means every
    /// account must name one (self-hosted services).
    pub default_base_url: Option<&'static str>,
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
    /// The headers that carry the account's credentials.
    pub auth_headers: fn(&Credentials) -> Result<HeaderMap, Error>,
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

/// Builds one header whose value is secret, marked sensitive so that HTTP
/// libraries never print it.
pub(crate) fn secret_header(name: HeaderName, value: &str) -> Result<HeaderMap, Error> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::Credentials("the stored token holds characters a header cannot carry".into())
    })?;
    v.set_sensitive(true);
    let mut h = HeaderMap::new();
    h.insert(name, v);
    Ok(h)
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
