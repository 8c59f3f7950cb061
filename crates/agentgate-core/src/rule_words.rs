//! Endpoint rules in plain words, for the person who sets them: "claude may
//! comment on issues in acme/* without asking". Each service names its common
//! endpoints; any other path is said as the pattern it is.

use crate::policy::Effect;

/// One endpoint a service names in words. `{name}` in the path matches one
/// segment of a rule's pattern (a name or `*`) and is put into the words as
/// written; a trailing `{**}` matches the rest.
struct Phrase {
    /// `None`: the words name a thing, and the method says what is done to it.
    method: Option<&'static str>,
    path: &'static str,
    words: &'static str,
}

const fn p(method: Option<&'static str>, path: &'static str, words: &'static str) -> Phrase {
    Phrase {
        method,
        path,
        words,
    }
}

const POST: Option<&str> = Some("POST");
const PUT: Option<&str> = Some("PUT");
const THING: Option<&str> = None;

const GITHUB: &[Phrase] = &[
    p(
        POST,
        "/repos/{repo}/{name}/issues/{n}/comments",
        "comment on issues in {repo}/{name}",
    ),
    p(
        THING,
        "/repos/{repo}/{name}/issues/{n}/comments",
        "issue comments in {repo}/{name}",
    ),
    p(
        THING,
        "/repos/{repo}/{name}/issues/comments/{n}",
        "issue comments in {repo}/{name}",
    ),
    p(
        POST,
        "/repos/{repo}/{name}/issues",
        "open issues in {repo}/{name}",
    ),
    p(
        THING,
        "/repos/{repo}/{name}/issues",
        "issues in {repo}/{name}",
    ),
    p(
        THING,
        "/repos/{repo}/{name}/issues/{n}",
        "issues in {repo}/{name}",
    ),
    p(
        POST,
        "/repos/{repo}/{name}/pulls",
        "open pull requests in {repo}/{name}",
    ),
    p(
        THING,
        "/repos/{repo}/{name}/pulls",
        "pull requests in {repo}/{name}",
    ),
    p(
        THING,
        "/repos/{repo}/{name}/pulls/{n}",
        "pull requests in {repo}/{name}",
    ),
    p(
        POST,
        "/repos/{repo}/{name}/pulls/{n}/reviews",
        "review pull requests in {repo}/{name}",
    ),
    p(
        PUT,
        "/repos/{repo}/{name}/pulls/{n}/merge",
        "merge pull requests in {repo}/{name}",
    ),
    p(
        THING,
        "/repos/{repo}/{name}/contents/{**}",
        "files in {repo}/{name}",
    ),
    p(
        THING,
        "/repos/{repo}/{name}/{**}",
        "anything in {repo}/{name}",
    ),
    p(
        THING,
        "/repos/{repo}/{name}",
        "the repository {repo}/{name}",
    ),
    p(POST, "/user/repos", "create repositories"),
    p(THING, "/gists", "gists"),
    p(THING, "/gists/{**}", "gists"),
    p(THING, "/notifications", "notifications"),
    p(THING, "/notifications/{**}", "notifications"),
];

const MASTODON: &[Phrase] = &[
    p(POST, "/api/v1/statuses", "post statuses and replies"),
    p(THING, "/api/v1/statuses/{id}", "statuses"),
    p(POST, "/api/v1/statuses/{id}/favourite", "favourite posts"),
    p(POST, "/api/v1/statuses/{id}/reblog", "boost posts"),
    p(POST, "/api/v1/accounts/{id}/follow", "follow accounts"),
    p(POST, "/api/v1/accounts/{id}/unfollow", "unfollow accounts"),
    p(THING, "/api/v1/timelines/{**}", "timelines"),
    p(THING, "/api/v1/notifications", "notifications"),
    p(THING, "/api/v1/notifications/{**}", "notifications"),
    p(THING, "/api/v1/statuses/{**}", "statuses"),
];

const BLUESKY: &[Phrase] = &[
    p(
        POST,
        "/com.atproto.repo.createrecord",
        "create records (posts, replies, likes, follows)",
    ),
    p(
        POST,
        "/com.atproto.repo.deleterecord",
        "delete records (posts, likes, follows)",
    ),
    p(
        POST,
        "/com.atproto.repo.putrecord",
        "overwrite records (profile, posts)",
    ),
    p(THING, "/app.bsky.feed.{**}", "feeds and posts"),
    p(THING, "/app.bsky.notification.{**}", "notifications"),
];

const REDDIT: &[Phrase] = &[
    p(POST, "/api/submit", "submit posts"),
    p(POST, "/api/comment", "comment and reply"),
    p(POST, "/api/del", "delete posts and comments"),
    p(POST, "/api/editusertext", "edit posts and comments"),
    p(POST, "/api/vote", "vote"),
    p(THING, "/r/{sub}/{**}", "r/{sub}"),
];

const CALENDAR: &[Phrase] = &[
    p(
        POST,
        "/calendars/{cal}/events",
        "create events in calendar {cal}",
    ),
    p(THING, "/calendars/{cal}/events", "events in calendar {cal}"),
    p(
        THING,
        "/calendars/{cal}/events/{id}",
        "events in calendar {cal}",
    ),
    p(THING, "/calendars/{cal}/{**}", "calendar {cal}"),
    p(THING, "/users/me/calendarlist", "the list of calendars"),
];

const YOUTUBE: &[Phrase] = &[
    p(POST, "/committhreads", "comment on videos"),
    p(THING, "/committhreads", "comment threads"),
    p(POST, "/comments", "reply to comments"),
    p(THING, "/comments", "comments"),
    p(THING, "/videos", "videos"),
    p(THING, "/playlists", "playlists"),
    p(THING, "/playlistitems", "playlist items"),
];

const LINKEDIN: &[Phrase] = &[
    p(POST, "/ugcposts", "share posts"),
    p(POST, "/posts", "share posts"),
    p(THING, "/ugcposts/{**}", "posts"),
    p(THING, "/posts/{**}", "posts"),
    p(POST, "/socialactions/{urn}/comments", "comment on posts"),
    p(POST, "/socialactions/{urn}/likes", "like posts"),
];

const JIRA: &[Phrase] = &[
    p(POST, "/issue", "create issues"),
    p(THING, "/issue/{key}", "issues"),
    p(POST, "/issue/{key}/comment", "comment on issues"),
    p(THING, "/issue/{key}/comment", "issue comments"),
    p(THING, "/issue/{key}/comment/{id}", "issue comments"),
    p(
        POST,
        "/issue/{key}/transitions",
        "move issues to another status",
    ),
    p(THING, "/issue/{**}", "issues"),
];

const FITBIT: &[Phrase] = &[
    p(THING, "/1/user/-/activities/{**}", "activity data"),
    p(THING, "/1/user/-/foods/{**}", "food logs"),
    p(THING, "/1/user/-/body/{**}", "body measurements"),
    p(THING, "/1.2/user/-/sleep/{**}", "sleep data"),
];

fn phrases(service: &str) -> &'static [Phrase] {
    match service {
        "github" => GITHUB,
        "mastodon" => MASTODON,
        "bluesky" => BLUESKY,
        "reddit" => REDDIT,
        "calendar" => CALENDAR,
        "youtube" => YOUTUBE,
        "linkedin" => LINKEDIN,
        "jira" => JIRA,
        "fitbit" => FITBIT,
        _ => &[],
    }
}

/// What doing something to a thing is called, by method.
fn verb(method: Option<&str>) -> &'static str {
    match method {
        Some("GET") | Some("HEAD") => "read",
        Some("POST") => "create",
        Some("PUT") => "replace",
        Some("PATCH") => "change",
        Some("DELETE") => "delete",
        _ => "use",
    }
}

/// Binds a rule's pattern to a phrase's path: the words with the names put
/// in, or `None` when the phrase is not about this pattern. The words never
/// claim more than the pattern allows: a name the words leave out (an issue
/// number) and the `{**}` rest only match a wildcard, so "comment on issues
/// in o/r" is never said of a rule about issue 1 alone.
fn bind(phrase: &str, pattern: &str, words: &str) -> Option<String> {
    let want: Vec<&str> = phrase.trim_start_matches('/').split('/').collect();
    let have: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let wild = |h: &str| h.contains('*');
    let mut out = words.to_string();
    for (i, w) in want.iter().enumerate() {
        if *w == "{**}" {
            return (have.len() > i && have[i..].iter().all(|h| wild(h))).then_some(out);
        }
        let h = have.get(i)?;
        match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) => {
                let slot = format!("{{{name}}}");
                if h.is_empty() || h.contains("**") || (!words.contains(&slot) && *h != "*") {
                    return None;
                }
                out = out.replace(&slot, h);
            }
            None => match w.strip_suffix("{**}") {
                // `app.bsky.feed.{**}`: a segment by its prefix.
                Some(prefix) if h.starts_with(prefix) && wild(h) && i + 1 == have.len() => {
                    return Some(out);
                }
                _ if w != h => return None,
                _ => {}
            },
        }
    }
    (want.len() == have.len()).then_some(out)
}

/// A deletion of one concrete path, in words: "Delete 99 from issue comments
/// in o/r". The service's name for the thing, with the names in the path put
/// in, and the last segment as what goes; "Delete /path" when the service has
/// no name for it. Path segments are agent text: the caller quotes the line
/// as a whole wherever markup or a terminal could read it.
pub fn deletion(service: &str, path: &str) -> String {
    let lower = path.to_lowercase();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let literal = |phrase: &str, words: &str| -> Option<String> {
        let want: Vec<&str> = phrase.trim_start_matches('/').split('/').collect();
        let have: Vec<&str> = lower.trim_start_matches('/').split('/').collect();
        if want.len() != have.len() || want.iter().any(|w| w.contains("{**}")) {
            return None;
        }
        let mut out = words.to_string();
        for (i, w) in want.iter().enumerate() {
            match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) => out = out.replace(&format!("{{{name}}}"), segments[i]),
                None if *w != have[i] => return None,
                None => {}
            }
        }
        Some(out)
    };
    let named = phrases(service)
        .iter()
        .filter(|ph| ph.method.is_none())
        .find_map(|ph| Some((ph, literal(ph.path, ph.words)?)));
    match named {
        // A last segment the words leave out is the item that goes.
        Some((ph, thing))
            if ph
                .path
                .rsplit('/')
                .next()
                .is_some_and(|last| last.starts_with('{') && !ph.words.contains(last)) =>
        {
            format!("Delete {} from {thing}", segments.last().unwrap_or(&""))
        }
        Some((_, thing)) => format!("Delete {thing}"),
        None => format!("Delete {path}"),
    }
}

/// What a rule lets its agents do, in words: "create issues in acme/*".
pub fn action(service: &str, method: Option<&str>, pattern: &str) -> String {
    let written = pattern;
    let pattern = pattern.to_lowercase();
    let method = method.map(str::to_ascii_uppercase);
    let method = method.as_deref();
    if pattern == "/**" || pattern == "/*" {
        return format!("{} anything on the account", verb(method));
    }
    let table = phrases(service);
    // Words for this very method first, then the thing with the method's verb.
    if let Some(m) = method
        && let Some(words) = table
            .iter()
            .filter(|ph| ph.method == Some(m))
            .find_map(|ph| bind(ph.path, &pattern, ph.words))
    {
        return words;
    }
    if let Some(words) = table
        .iter()
        .filter(|ph| ph.method.is_none())
        .find_map(|ph| bind(ph.path, &pattern, ph.words))
    {
        return format!("{} {words}", verb(method));
    }
    format!("{} {written}", verb(method))
}

/// "claude", "claude and codex", "every agent".
pub fn who(agents: &[String]) -> String {
    match agents {
        [] => "every agent".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// One rule, in a sentence.
pub fn describe(
    service: &str,
    method: Option<&str>,
    pattern: &str,
    agents: &[String],
    effect: Effect,
) -> String {
    let who = who(agents);
    let action = action(service, method, pattern);
    let read = matches!(
        method.map(str::to_ascii_uppercase).as_deref(),
        Some("GET" | "HEAD")
    );
    match effect {
        Effect::Deny => format!("{who} may not {action}"),
        _ if read => format!("{who} may {action}"),
        Effect::AutoApprove if method.is_none() => {
            format!("{who} may {action}, writes without asking")
        }
        Effect::AutoApprove => format!("{who} may {action} without asking"),
        Effect::RequireApproval if method.is_none() => {
            format!(
                "{who} may {action}; writes always wait for your approval, even when trusted or granted"
            )
        }
        Effect::RequireApproval => {
            format!("{who} may {action} only with your approval, even when trusted or granted")
        }
        Effect::Allow => format!(
            "{who} may {action}; writes wait for your approval unless the agent is trusted or has a grant"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_sentences() {
        let claude = ["claude".to_string()];
        let table = [
            (
                "github",
                Some("POST"),
                "/repos/acme/*/issues/*/comments",
                &claude[..],
                Effect::AutoApprove,
                "claude may comment on issues in acme/* without asking",
            ),
            (
                "github",
                Some("DELETE"),
                "/**",
                &[][..],
                Effect::Deny,
                "every agent may not delete anything on the account",
            ),
            (
                "github",
                Some("PATCH"),
                "/repos/o/r/issues/*",
                &[][..],
                Effect::RequireApproval,
                "every agent may change issues in o/r only with your approval, even when trusted or granted",
            ),
            (
                "github",
                Some("GET"),
                "/repos/o/r/contents/**",
                &claude[..],
                Effect::Allow,
                "claude may read files in o/r",
            ),
            (
                "mastodon",
                Some("POST"),
                "/api/v1/statuses",
                &claude[..],
                Effect::RequireApproval,
                "claude may post statuses and replies only with your approval, even when trusted or granted",
            ),
            (
                "bluesky",
                None,
                "/app.bsky.feed.*",
                &[][..],
                Effect::Deny,
                "every agent may not use feeds and posts",
            ),
            (
                "jira",
                Some("POST"),
                "/unknown/thing",
                &["a".to_string(), "b".to_string(), "c".to_string()][..],
                Effect::AutoApprove,
                "a, b and c may create /unknown/thing without asking",
            ),
        ];
        for (service, method, path, agents, effect, want) in table {
            assert_eq!(describe(service, method, path, agents, effect), want);
        }
    }

    #[test]
    fn deletions_read_as_sentences() {
        let table = [
            (
                "github",
                "/repos/o/r/issues/comments/99",
                "Delete 99 from issue comments in o/r",
            ),
            ("github", "/repos/o/r", "Delete the repository o/r"),
            ("github", "/gists/abc", "Delete /gists/abc"),
            ("jira", "/issue/KEY-1", "Delete KEY-1 from issues"),
            (
                "jira",
                "/issue/KEY-1/comment/5",
                "Delete 5 from issue comments",
            ),
            (
                "calendar",
                "/calendars/Work/events/e1",
                "Delete e1 from events in calendar Work",
            ),
            ("youtube", "/videos", "Delete videos"),
            ("mastodon", "/api/v1/statuses/7", "Delete 7 from statuses"),
            ("unknown", "/x/y", "Delete /x/y"),
        ];
        for (service, path, want) in table {
            assert_eq!(deletion(service, path), want, "{service} {path}");
        }
    }

    #[test]
    fn a_phrase_binds_whole_segments_only() {
        assert_eq!(bind("/repos/{a}/{b}", "/repos/o/r/x", "w"), None);
        assert_eq!(bind("/repos/{a}/{b}", "/repos/**", "w"), None);
        assert_eq!(
            bind("/repos/{a}/{b}/{**}", "/repos/o/r/*/**", "in {a}/{b}"),
            Some("in o/r".into())
        );
        assert_eq!(bind("/repos/{a}/{b}/{**}", "/repos/o/r", "w"), None);
        // A literal rest, or a literal where the words say nothing of it,
        // would be described as more than it is.
        assert_eq!(bind("/repos/{a}/{b}/{**}", "/repos/o/r/labels", "w"), None);
        assert_eq!(bind("/r/{a}/issues/{n}", "/r/o/issues/1", "in {a}"), None);
        assert_eq!(
            bind("/r/{a}/issues/{n}", "/r/o/issues/*", "in {a}"),
            Some("in o".into())
        );
        assert_eq!(
            action("github", Some("POST"), "/repos/o/r/issues/1/comments"),
            "create /repos/o/r/issues/1/comments"
        );
        assert_eq!(
            action("bluesky", Some("GET"), "/app.bsky.feed.gettimeline"),
            "read /app.bsky.feed.gettimeline"
        );
    }
}
