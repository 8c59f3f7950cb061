//! Upstream paths given by agents.
//!
//! An agent names an upstream path relative to the account's API base. Before the
//! gateway appends it to that base (and attaches the account's credentials), the
//! path is taken apart into segments, each decoded, checked and re-encoded in one
//! canonical form. A path that could climb out of the base (`..`, encoded slashes),
//! change the host (`//host`, `\`), or smuggle control characters is refused, so the
//! resulting URL can only ever address the account's own host. The decoded,
//! lower-cased form is what privacy blocks are matched against, so that letter case,
//! percent encoding and leading slashes cannot dodge a block.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use url::Url;

/// Characters re-encoded in a path segment: everything but RFC 3986's unreserved
/// characters, sub-delimiters, `:` and `@`.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Characters encoded in a query string; `%` is left alone because the query was
/// checked to hold only well-formed escapes.
const QUERY: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'<').add(b'>');

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path: {0}")]
pub struct PathError(String);

fn err(msg: impl Into<String>) -> PathError {
    PathError(msg.into())
}

/// A checked upstream path (canonically encoded segments) and its query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPath {
    segments: Vec<String>,
    /// The decoded, lower-cased path that blocks and rules match, made once.
    normalized: String,
    /// The same without what some servers ignore when they route: `;`
    /// parameters of a segment and a `.json` or `.xml` format suffix; `None`
    /// when there is nothing to drop.
    loose: Option<String>,
    query: Option<String>,
}

impl AgentPath {
    /// Parses a path and an optional raw query string, as they arrive in a URI.
    pub fn parse(path: &str, query: Option<&str>) -> Result<AgentPath, PathError> {
        let rest = path.strip_prefix('/').unwrap_or(path);
        let mut segments = Vec::new();
        let mut normalized = String::with_capacity(rest.len() + 1);
        let parts: Vec<&str> = rest.split('/').collect();
        let last = parts.len() - 1;
        for (i, raw) in parts.into_iter().enumerate() {
            normalized.push('/');
            if raw.is_empty() {
                // Only "/" itself or a trailing slash may leave a segment empty; an
                // empty segment elsewhere ("//host") could be read as an authority.
                if i == last {
                    segments.push(String::new());
                    continue;
                }
                return Err(err("empty path segment (\"//\")"));
            }
            let text = decode_strict(raw)?;
            if text == "." || text == ".." {
                return Err(err("\".\" and \"..\" segments are not allowed"));
            }
            if text.contains('/') || text.contains('\\') {
                return Err(err("encoded slashes and backslashes are not allowed"));
            }
            if text.chars().any(char::is_control) {
                return Err(err("control characters are not allowed"));
            }
            segments.push(utf8_percent_encode(&text, SEGMENT).to_string());
            normalized.push_str(&fold(&text));
        }
        let query = match query {
            None | Some("") => None,
            Some(q) => Some(check_query(q)?),
        };
        let loose = loosen(&normalized);
        Ok(AgentPath {
            segments,
            normalized,
            loose,
            query,
        })
    }

    /// Both forms a block or a destructive-write rule must be matched
    /// against: the path as decoded, and as a server that drops `;`
    /// parameters and format suffixes would route it.
    pub fn match_forms(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.normalized.as_str()).chain(self.loose.as_deref())
    }

    /// Parses `path?query` as agents write it in a queued request.
    pub fn parse_with_query(s: &str) -> Result<AgentPath, PathError> {
        if s.contains('#') {
            return Err(err("fragments (\"#\") are not allowed"));
        }
        match s.split_once('?') {
            Some((p, q)) => AgentPath::parse(p, Some(q)),
            None => AgentPath::parse(s, None),
        }
    }

    /// The decoded path exactly as the service receives it (case and every
    /// character kept), with one leading slash: what a grant made from an
    /// approved request names, so that it covers that path and no look-alike.
    pub fn decoded(&self) -> String {
        let mut out = String::with_capacity(self.normalized.len());
        for s in &self.segments {
            out.push('/');
            out.push_str(&percent_decode_str(s).decode_utf8_lossy());
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// The decoded path in lower case, with one leading slash: the form that
    /// privacy blocks are matched against.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Appends this path to `base` and sets the query. Fails if the result would
    /// address any other scheme, host or port than `base` does.
    pub fn resolve(&self, base: &Url) -> Result<Url, PathError> {
        let mut url = base.clone();
        let base_path = base.path().trim_end_matches('/');
        url.set_path(&format!("{base_path}/{}", self.segments.join("/")));
        url.set_query(self.query.as_deref());
        url.set_fragment(None);
        if url.scheme() != base.scheme()
            || url.host() != base.host()
            || url.port_or_known_default() != base.port_or_known_default()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(err("the path would leave the account's host"));
        }
        Ok(url)
    }
}

impl fmt::Display for AgentPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.segments.join("/"))?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

/// Percent-decodes a segment, refusing malformed escapes and non-UTF-8 bytes.
fn decode_strict(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit())
        {
            return Err(err("malformed percent encoding"));
        }
        if *b == b'?' || *b == b'#' {
            return Err(err("\"?\" and \"#\" must not appear inside the path"));
        }
    }
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| err("the path is not valid UTF-8 once decoded"))
}

fn check_query(q: &str) -> Result<String, PathError> {
    for (i, c) in q.char_indices() {
        if c.is_control() || c == ' ' || c == '#' {
            return Err(err("the query holds a character that must be encoded"));
        }
        if c == '%' {
            let b = q.as_bytes();
            if !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return Err(err("malformed percent encoding in the query"));
            }
        }
    }
    // Non-ASCII characters are encoded so the query is plain ASCII upstream.
    Ok(utf8_percent_encode(q, QUERY).to_string())
}

/// A decoded segment as blocks and rules see it: lower case, and for text
/// beyond ASCII in its compatibility form (NFKC), so that a look-alike a
/// server may fold (fullwidth `ｍｅｓｓａｇｅ`, ligatures, other widths) matches
/// what it folds to. Matching only: the segment is sent as the agent wrote it.
fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    use unicode_normalization::UnicodeNormalization;
    text.nfkc()
        .collect::<String>()
        .to_lowercase()
        .nfkc()
        .collect()
}

/// The path as servers that ignore `;` parameters (Tomcat, Jersey: Jira)
/// and format suffixes (Rails: Mastodon; Reddit) route it.
fn loosen(normalized: &str) -> Option<String> {
    // Most paths have nothing to drop: no allocation for them on every read.
    if !normalized.contains(';') && !normalized.ends_with(".json") && !normalized.ends_with(".xml")
    {
        return None;
    }
    let mut out: String = normalized
        .split('/')
        .map(|segment| segment.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/");
    for suffix in [".json", ".xml"] {
        if let Some(stripped) = out.strip_suffix(suffix) {
            out = stripped.to_string();
            break;
        }
    }
    (out != normalized).then_some(out)
}

/// A path pattern blocked on a service: `prefix*` blocks everything starting with
/// the prefix; `prefix/#` a number (a segment that starts with one, after
/// blanks and a sign) as the next segment and everything below it;
/// a pattern without `*` or `#` blocks that path and everything below it.
/// Patterns are written in lower case.
#[derive(Debug, Clone, Copy)]
pub struct BlockRule(pub &'static str);

impl BlockRule {
    pub fn matches(&self, normalized: &str) -> bool {
        if let Some(prefix) = self.0.strip_suffix('#') {
            // As a server that casts the segment to a number reads it:
            // `1abc`, `+1` and ` 1` are 1 too.
            return normalized.strip_prefix(prefix).is_some_and(|rest| {
                let segment = rest.split('/').next().unwrap_or_default();
                let unsigned = segment.trim_start().trim_start_matches(['+', '-']);
                unsigned.starts_with(|c: char| c.is_ascii_digit())
            });
        }
        match self.0.strip_suffix('*') {
            Some(prefix) => normalized.starts_with(prefix),
            None => {
                normalized == self.0
                    || normalized
                        .strip_prefix(self.0)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://api.github.com").unwrap()
    }

    #[test]
    fn ordinary_paths_resolve_under_the_base() {
        let p = AgentPath::parse("/repos/o/r/issues", Some("state=open&per_page=5")).unwrap();
        assert_eq!(
            p.resolve(&base()).unwrap().as_str(),
            "https://api.github.com/repos/o/r/issues?state=open&per_page=5"
        );
        let b = Url::parse("https://bsky.social/xrpc/").unwrap();
        let p = AgentPath::parse("app.bsky.feed.getTimeline", None).unwrap();
        assert_eq!(
            p.resolve(&b).unwrap().as_str(),
            "https://bsky.social/xrpc/app.bsky.feed.getTimeline"
        );
        let p = AgentPath::parse("/repos/o/r/contents/my%20file.md", None).unwrap();
        assert!(
            p.resolve(&base())
                .unwrap()
                .as_str()
                .ends_with("/contents/my%20file.md")
        );
        // "@" in a path is only a path character once appended.
        let p = AgentPath::parse("/@evil.com/x", None).unwrap();
        assert_eq!(
            p.resolve(&base()).unwrap().host_str(),
            Some("api.github.com")
        );
    }

    #[test]
    fn escapes_from_the_base_are_refused() {
        for bad in [
            "//evil.com/x",
            "/..",
            "/a/../b",
            "/..%2f..",
            "/%2e%2e/admin",
            "/%2E%2e",
            "/a%2fb",
            "/a%5cb",
            "/a\\b",
            "/x%0d%0aHost:%20evil",
            "/%zz",
            "/a%",
            "http://evil.com/x",
            "/a/./b",
            "/a%00b",
        ] {
            assert!(
                AgentPath::parse_with_query(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn normalised_form_defeats_case_and_encoding() {
        let p = AgentPath::parse("/Chat.BSKY.convo.listConvos", None).unwrap();
        assert!(BlockRule("/chat.bsky.*").matches(p.normalized()));
        let p = AgentPath::parse("/%63hat.bsky.convo", None).unwrap();
        assert!(BlockRule("/chat.bsky.*").matches(p.normalized()));
        let p = AgentPath::parse("message/inbox", None).unwrap();
        assert!(BlockRule("/message").matches(p.normalized()));
        assert!(!BlockRule("/message").matches("/messages"));
    }

    #[test]
    fn queries_are_checked() {
        assert!(AgentPath::parse("/x", Some("a=b#frag")).is_err());
        assert!(AgentPath::parse("/x", Some("a=%zz")).is_err());
        let p = AgentPath::parse_with_query("/search?q=caf%C3%A9").unwrap();
        assert_eq!(p.to_string(), "/search?q=caf%C3%A9");
    }
}
