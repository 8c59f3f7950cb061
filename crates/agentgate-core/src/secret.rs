//! A string that must never be printed. Its `Debug` and `Display` say
//! `[redacted]` and it deliberately has no `Serialize`, so a secret cannot leak
//! into a log line or a JSON answer by accident; reading it takes an explicit
//! call to [`Secret::expose`].

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Read straight into a `Secret` from a request or a stored document, so the
/// value never sits in a plain `String` on the way.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// For the one place a secret is written out on purpose (a document kept in
/// the credential store): `#[serde(serialize_with = "...")]`.
pub fn serialize_exposed<S: serde::Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose())
}

/// [`serialize_exposed`] for an optional secret.
pub fn serialize_exposed_opt<S: serde::Serializer>(
    s: &Option<Secret>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_some(s.expose()),
        None => ser.serialize_none(),
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Wipe the bytes so a freed secret does not linger in the heap.
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("ghp_supersecret");
        assert!(!format!("{s:?}").contains("supersecret"));
        assert!(!format!("{s}").contains("supersecret"));
        assert_eq!(s.expose(), "ghp_supersecret");
    }

    #[test]
    fn an_oauth_client_keeps_its_secret_out_of_debug_but_stores_it() {
        let config: crate::gateway::OAuthClientConfig =
            serde_json::from_str(r#"{"client_id": "id", "client_secret": "cs_supersecret"}"#)
                .unwrap();
        assert!(!format!("{config:?}").contains("supersecret"));
        let stored = serde_json::to_string(&config).unwrap();
        assert!(
            stored.contains("cs_supersecret"),
            "kept in the credential store"
        );
    }
}
