//! GitHub, and GitHub Enterprise through a per-account base URL.

use serde_json::Value;

use super::{Auth, Category, CredentialField, ServiceDef};

pub static GITHUB: ServiceDef = ServiceDef {
    key: "github",
    category: Category::Code,
    aliases: &[],
    display_name: "GitHub",
    description: "Repositories, issues, pull requests, gists and notifications on GitHub or GitHub Enterprise.",
    auth: Auth::Bearer { field: "token" },
    default_base_url: Some("https://api.github.com"),
    base_url_template: Some("https://{host}/api/v3"),
    credential_fields: &[CredentialField {
        name: "token",
        label: "Personal access token",
        secret: true,
    }],
    blocked: &[],
    example_reads: &[
        "/user",
        "/user/repos?sort=updated&per_page=10",
        "/repos/{owner}/{repo}/issues?state=open",
        "/repos/{owner}/{repo}/pulls/{number}",
        "/notifications",
        "/search/issues?q=is:open+author:@me",
    ],
    write_guidelines: &[
        "Create an issue: POST /repos/{owner}/{repo}/issues with {\"title\": \"...\", \"body\": \"...\"}.",
        "Comment on an issue or pull request: POST /repos/{owner}/{repo}/issues/{number}/comments with {\"body\": \"...\"}.",
        "Close an issue: PATCH /repos/{owner}/{repo}/issues/{number} with {\"state\": \"closed\"}.",
        "Bodies are GitHub-flavoured Markdown.",
    ],
    identity_path: "/user",
    identity_name: |v: &Value| v.get("login").and_then(Value::as_str).map(str::to_string),
    default_headers: &[
        ("accept", "application/vnd.github+json"),
        ("x-github-api-version", "2022-11-28"),
    ],
    write_check: None,
    compact: None,
    instance_oauth: None,
    summarize: Some(super::summary::github),
};
