//! One queued write request in its canonical form. An agent's request is
//! parsed once, at submission, the way the service will parse it: the method,
//! the path, the query decoded into pairs (duplicates kept), the headers it
//! may set, and the body as a JSON value or decoded form fields. What cannot
//! be shown faithfully is refused. The stored form is then re-encoded from the
//! parsed one, so that the human's views, the checks, the digest and the bytes
//! sent all come from the same value and nothing else runs.

use std::collections::BTreeMap;

use bytes::Bytes;
use percent_encoding::percent_decode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::headers;
use crate::paths::AgentPath;

/// The methods a queued request may have.
pub const WRITE_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

const FORM: &str = "application/x-www-form-urlencoded";

/// One upstream request of a batch, frozen once submitted (or edited by a human).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WriteRequest {
    /// POST, PUT, PATCH or DELETE.
    pub method: String,
    /// Relative to the service's API base; the query, if any, re-encoded from
    /// its decoded pairs.
    pub path: String,
    /// A JSON value; for a form body (content-type
    /// `application/x-www-form-urlencoded`) its canonical encoding as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
    /// The headers sent with it besides the gateway's own: only those agents
    /// may set, names in lower case, and `content-type` whenever there is a body.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// How a request's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
}

impl WriteRequest {
    /// Parses a request as an agent (or a human editing one) wrote it into its
    /// canonical form, or says why it cannot be sent as shown.
    pub fn parse(r: Value) -> Result<WriteRequest, String> {
        let Value::Object(mut obj) = r else {
            return Err("each request must be an object with \"method\" and \"path\"".into());
        };
        if let Some(key) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "method" | "path" | "body" | "headers"))
        {
            return Err(format!(
                "unknown field {key:?}; a request has method, path, body and headers"
            ));
        }
        let method = match obj.remove("method") {
            Some(Value::String(m)) => m.to_ascii_uppercase(),
            Some(_) => return Err("\"method\" must be a string".into()),
            None => return Err("\"method\" is required".into()),
        };
        if !WRITE_METHODS.contains(&method.as_str()) {
            return Err(format!(
                "\"method\" must be one of POST, PUT, PATCH, DELETE (reads are not queued; call GET directly), not {method:?}"
            ));
        }
        let path = match obj.remove("path") {
            Some(Value::String(p)) => canonical_path(&p)?,
            Some(_) => return Err("\"path\" must be a string".into()),
            None => return Err("\"path\" is required".into()),
        };
        let mut headers = match obj.remove("headers") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(h)) => write_headers(h)?,
            Some(_) => return Err("\"headers\" must be an object of strings".into()),
        };
        let body = match obj.remove("body") {
            None | Some(Value::Null) => None,
            Some(b) => Some(b),
        };
        let body = canonical_body(body, &mut headers)?;
        let request = WriteRequest {
            method,
            path,
            body,
            headers,
        };
        // A method override would run another method than the one a human
        // approves (a POST that the service treats as a DELETE).
        if let Some((k, _)) = request
            .fields()
            .into_iter()
            .find(|(k, _)| field_named(k, "_method"))
        {
            return Err(format!(
                "the parameter {k:?} overrides the method; send the request with the method it means"
            ));
        }
        Ok(request)
    }

    /// Whether this is the canonical form of itself: true of everything
    /// stored since submission parsed requests, checked again before a
    /// request runs so that nothing stored otherwise is ever sent.
    pub fn is_canonical(&self) -> bool {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| WriteRequest::parse(v).ok())
            .is_some_and(|c| &c == self)
    }

    /// The path without its query.
    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(p, _)| p)
    }

    /// The query's parameters, decoded, in order, duplicates kept.
    pub fn query(&self) -> Vec<(String, String)> {
        self.path
            .split_once('?')
            .map(|(_, q)| decode_pairs(q).unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn body_kind(&self) -> Option<BodyKind> {
        let body = self.body.as_ref()?;
        let form = matches!(body, Value::String(_))
            && self
                .headers
                .get("content-type")
                .is_some_and(|t| media_type(t) == FORM);
        Some(if form { BodyKind::Form } else { BodyKind::Json })
    }

    /// A form body's fields, decoded, in order, duplicates kept.
    pub fn form_fields(&self) -> Option<Vec<(String, String)>> {
        match (&self.body, self.body_kind()) {
            (Some(Value::String(text)), Some(BodyKind::Form)) => {
                Some(decode_pairs(text).unwrap_or_default())
            }
            _ => None,
        }
    }

    /// Every parameter the service may read from this request, decoded the
    /// way it decodes them, duplicates kept: the query's, the fields of a
    /// form body, and the top-level fields of a JSON body. Checks that look
    /// for a field look here, so that no spelling or place of it goes unseen.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut out = self.query();
        if let Some(form) = self.form_fields() {
            out.extend(form);
        } else if let Some(Value::Object(o)) = &self.body {
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            for (k, v) in o {
                match v {
                    // A list is read by form-minded services as the field
                    // given once per item: each item is a value of it.
                    Value::Array(items) => {
                        out.extend(items.iter().map(|item| (k.clone(), text(item))))
                    }
                    other => out.push((k.clone(), text(other))),
                }
            }
        }
        out
    }

    /// The body's bytes as they are sent.
    pub fn wire_body(&self) -> Option<Bytes> {
        match &self.body {
            None => None,
            Some(Value::String(s)) => Some(Bytes::from(s.clone())),
            Some(v) => Some(Bytes::from(serde_json::to_vec(v).unwrap_or_default())),
        }
    }
}

/// The digest of a batch: SHA-256 over its canonical requests, in hex. An
/// approval names the digest of what the human was shown; if the entry no
/// longer has it, nothing is approved.
pub fn digest(requests: &[WriteRequest]) -> String {
    let bytes = serde_json::to_vec(requests).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// Whether a parameter's name is `name`, also as part of a bracketed name
/// (`status[visibility]`, `visibility[]`) as Rails-style services read them.
pub fn field_named(key: &str, name: &str) -> bool {
    key.split(['[', ']'])
        .any(|part| part.trim().eq_ignore_ascii_case(name))
}

/// The checked path with its query decoded and encoded again, so that one
/// spelling of it is stored, shown and sent.
fn canonical_path(raw: &str) -> Result<String, String> {
    let parsed = AgentPath::parse_with_query(raw).map_err(|e| e.to_string())?;
    let checked = parsed.to_string();
    let Some((path, query)) = checked.split_once('?') else {
        return Ok(checked);
    };
    let pairs = decode_pairs(query).map_err(|e| format!("the query {e}"))?;
    if pairs.is_empty() {
        return Ok(path.to_string());
    }
    Ok(format!("{path}?{}", encode_pairs(&pairs)))
}

/// The headers an agent set, by the write rules: credentials and routing
/// dropped, anything else outside the allow-list refused, no name twice.
fn write_headers(h: serde_json::Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (name, value) in h {
        let Value::String(value) = value else {
            return Err(format!("header {name:?} must have a string value"));
        };
        if let Some((name, value)) = headers::agent_header(&name, &value)? {
            if out.contains_key(&name) {
                return Err(format!(
                    "the header {name:?} is given twice (names are not case-sensitive)"
                ));
            }
            out.insert(name, value);
        }
    }
    Ok(out)
}

/// The body as the service will read it, with the content-type that says so.
fn canonical_body(
    body: Option<Value>,
    headers: &mut BTreeMap<String, String>,
) -> Result<Option<Value>, String> {
    let declared = match headers.get("content-type") {
        Some(t) => Some(checked_media_type(t)?),
        None => None,
    };
    let Some(body) = body else {
        // Nothing to describe: a content-type alone is not sent.
        headers.remove("content-type");
        return Ok(None);
    };
    match declared.as_deref() {
        None => {
            if let Value::String(text) = &body {
                return Err(string_body_error(text));
            }
            headers.insert("content-type".into(), "application/json".into());
            Ok(Some(body))
        }
        Some(t) if is_json(t) => match &body {
            Value::String(text) => Err(string_body_error(text)),
            _ => {
                // The type alone: the body is sent as UTF-8 JSON whatever
                // parameters were given.
                headers.insert("content-type".into(), t.to_string());
                Ok(Some(body))
            }
        },
        Some(FORM) => {
            let pairs = match body {
                Value::String(text) => decode_pairs(&text).map_err(|e| format!("the body {e}"))?,
                Value::Object(fields) => form_from_object(fields)?,
                _ => {
                    return Err(
                        "a form body is a string (a=1&b=2) or an object of plain values".into(),
                    );
                }
            };
            headers.insert("content-type".into(), FORM.into());
            if pairs.is_empty() {
                headers.remove("content-type");
                return Ok(None);
            }
            Ok(Some(Value::String(encode_pairs(&pairs))))
        }
        Some(other) => Err(format!(
            "agentgate sends JSON and form bodies only, which it can show a human as they are; \
             it cannot show a {other:?} body faithfully"
        )),
    }
}

fn string_body_error(text: &str) -> String {
    if serde_json::from_str::<Value>(text).is_ok() {
        "the body is a string holding JSON; send the JSON itself as \"body\"".into()
    } else {
        "a string body is sent only as a form (content-type application/x-www-form-urlencoded); \
         send JSON as a JSON value"
            .into()
    }
}

/// A JSON object given as form fields: plain values become one field each,
/// an array of plain values a repeated field.
fn form_from_object(
    fields: serde_json::Map<String, Value>,
) -> Result<Vec<(String, String)>, String> {
    let plain = |name: &str, v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!(
            "the form field {name:?} must be a string, number, boolean or an array of them"
        )),
    };
    let mut out = Vec::new();
    for (name, v) in fields {
        match &v {
            Value::Array(items) => {
                for item in items {
                    out.push((name.clone(), plain(&name, item)?));
                }
            }
            other => out.push((name.clone(), plain(&name, other)?)),
        }
    }
    Ok(out)
}

/// The media type of a content-type header, lower case; its only parameter
/// may be `charset=utf-8`, the encoding the gateway sends. Any other (a
/// charset the service would decode differently, a boundary) is refused.
fn checked_media_type(content_type: &str) -> Result<String, String> {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    for param in parts {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        let value = value.trim().trim_matches('"');
        if !(name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")) {
            return Err(format!(
                "the content-type parameter {:?} is not one agentgate can honour; bodies are sent as UTF-8",
                param.trim()
            ));
        }
    }
    Ok(media)
}

/// The media type of a content-type header, lower case, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Decodes `a=1&b=%20` strictly: malformed escapes and bytes that are not
/// UTF-8 are refused instead of being replaced by something the service
/// would not read.
fn decode_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let decode = |part: &str| -> Result<String, String> {
        let b = part.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            if c == b'%'
                && !(i + 2 < b.len()
                    && b[i + 1].is_ascii_hexdigit()
                    && b[i + 2].is_ascii_hexdigit())
            {
                return Err("has a malformed percent escape".into());
            }
        }
        let spaced = part.replace('+', " ");
        percent_decode(spaced.as_bytes())
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| "holds bytes that are not UTF-8 text".into())
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

fn encode_pairs(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<WriteRequest, String> {
        WriteRequest::parse(v)
    }

    #[test]
    fn queries_are_decoded_and_encoded_once() {
        let r =
            parse(json!({"method": "post", "path": "/a?x=1&x=%32&y=a+b&z=%E2%9C%93&w"})).unwrap();
        assert_eq!(r.path, "/a?x=1&x=2&y=a+b&z=%E2%9C%93&w=");
        assert_eq!(
            r.query(),
            [("x", "1"), ("x", "2"), ("y", "a b"), ("z", "✓"), ("w", "")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        for bad in ["/a?x=%zz", "/a?x=%C3%28", "/a?x=%"] {
            assert!(
                parse(json!({"method": "POST", "path": bad})).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bodies_are_json_values_or_form_fields() {
        let j = parse(json!({"method": "POST", "path": "/x", "body": {"a": 1}})).unwrap();
        assert_eq!(j.headers["content-type"], "application/json");
        assert_eq!(j.body_kind(), Some(BodyKind::Json));
        assert_eq!(j.wire_body().unwrap(), &b"{\"a\":1}"[..]);

        let f = parse(json!({"method": "POST", "path": "/x",
            "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            "body": "text=hi+there&thing_id=t3_a&text=%21"}))
        .unwrap();
        assert_eq!(f.headers["content-type"], FORM);
        assert_eq!(f.body, Some(json!("text=hi+there&thing_id=t3_a&text=%21")));
        assert_eq!(
            f.form_fields().unwrap()[0],
            ("text".into(), "hi there".into())
        );
        assert_eq!(f.form_fields().unwrap()[2], ("text".into(), "!".into()));

        let o = parse(json!({"method": "POST", "path": "/x",
            "headers": {"content-type": FORM}, "body": {"a": [1, "b"], "c": true}}))
        .unwrap();
        assert_eq!(o.body, Some(json!("a=1&a=b&c=true")));

        for (body, ct) in [
            (json!("{\"a\":1}"), None),
            (json!("plain"), None),
            (json!("plain"), Some("text/plain")),
            (json!({"a": 1}), Some("multipart/form-data; boundary=x")),
            (json!("a=%ff"), Some(FORM)),
            (json!({"a": {"b": 1}}), Some(FORM)),
            (json!("x"), Some("application/json")),
        ] {
            let mut req = json!({"method": "POST", "path": "/x", "body": body});
            if let Some(ct) = ct {
                req["headers"] = json!({"content-type": ct});
            }
            assert!(parse(req.clone()).is_err(), "{req}");
        }
    }

    #[test]
    fn what_is_sent_is_what_is_shown_to_the_byte() {
        // A charset the body is not sent in, a boundary: refused.
        for ct in [
            "application/json; charset=utf-16",
            "application/json; boundary=x",
        ] {
            let req = json!({"method": "POST", "path": "/x", "body": {"a": 1}, "headers": {"content-type": ct}});
            assert!(parse(req).is_err(), "{ct}");
        }
        let ok = parse(json!({"method": "POST", "path": "/x", "body": {"a": 1},
            "headers": {"content-type": "Application/JSON; Charset=\"UTF-8\""}}))
        .unwrap();
        assert_eq!(ok.headers["content-type"], "application/json");
        // Header values: printable ASCII, trimmed as HTTP would trim them.
        assert!(
            parse(json!({"method": "POST", "path": "/x", "headers": {"if-match": "é"}})).is_err()
        );
        assert!(
            parse(json!({"method": "POST", "path": "/x", "headers": {"if-match": "a\u{7f}"}}))
                .is_err()
        );
        let trimmed =
            parse(json!({"method": "POST", "path": "/x", "headers": {"accept": "\ta "}})).unwrap();
        assert_eq!(trimmed.headers["accept"], "a");
        // A list's items are values of its field, for every check.
        let listed =
            parse(json!({"method": "POST", "path": "/x", "body": {"visibility": ["direct"]}}))
                .unwrap();
        assert!(
            listed
                .fields()
                .contains(&("visibility".into(), "direct".into()))
        );
    }

    #[test]
    fn headers_are_an_allow_list_given_once() {
        let r = parse(json!({"method": "POST", "path": "/x", "headers": {
            "Authorization": "Bearer stolen", "Accept": "application/json", "Content-Type": "application/json"}}))
        .unwrap();
        assert_eq!(
            r.headers.len(),
            1,
            "no body, no content-type; credentials dropped"
        );
        assert!(
            parse(json!({"method": "POST", "path": "/x", "headers": {"X-Custom": "1"}})).is_err()
        );
        assert!(
            parse(
                json!({"method": "POST", "path": "/x", "headers": {"Accept": "a", "accept": "b"}})
            )
            .is_err()
        );
    }

    #[test]
    fn method_overrides_are_refused_wherever_they_are() {
        for req in [
            json!({"method": "POST", "path": "/x?_method=DELETE"}),
            json!({"method": "POST", "path": "/x?%5Fmethod=DELETE"}),
            json!({"method": "POST", "path": "/x", "body": {"_METHOD": "delete"}}),
            json!({"method": "POST", "path": "/x", "headers": {"content-type": FORM}, "body": "a=1&_method=delete"}),
            json!({"method": "POST", "path": "/x", "headers": {"content-type": FORM}, "body": "a=1&%5fmethod=delete"}),
            json!({"method": "POST", "path": "/x", "headers": {"x-http-method-override": "DELETE"}}),
        ] {
            assert!(parse(req.clone()).is_err(), "{req}");
        }
    }

    #[test]
    fn canonical_requests_are_their_own_canonical_form_and_digests_differ() {
        let a =
            parse(json!({"method": "patch", "path": "/r?b=2&a=1", "body": {"z": 1, "a": [1, 2]}}))
                .unwrap();
        assert!(a.is_canonical());
        let mut b = a.clone();
        b.body = Some(json!({"z": 1, "a": [1, 3]}));
        assert_ne!(digest(std::slice::from_ref(&a)), digest(&[b]));
        let again = WriteRequest::parse(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(digest(std::slice::from_ref(&a)), digest(&[again]));
        let mut raw = a.clone();
        raw.body = Some(json!("not canonical"));
        assert!(!raw.is_canonical());
    }
}
