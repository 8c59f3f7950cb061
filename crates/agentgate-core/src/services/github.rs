//! GitHub, and GitHub Enterprise through a per-account base URL.

use serde_json::Value;

use super::{Auth, Category, CredentialField, Danger, ServiceDef};
use crate::paths::BlockRule;

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
    control: &[
        BlockRule("/user/keys"),
        BlockRule("/user/gpg_keys"),
        BlockRule("/user/ssh_signing_keys"),
        BlockRule("/user/emails"),
        BlockRule("/user/public_emails"),
        BlockRule("/user/email"),
        BlockRule("/user/migrations"),
        BlockRule("/user/codespaces/secrets"),
        BlockRule("/authorizations"),
        BlockRule("/applications"),
        BlockRule("/admin"),
    ],
    // The same resources by number: a rule on `/repos/acme/private/**` or a
    // flag on `/orgs/**` would not see them.
    by_number: &[
        (BlockRule("/repositories/#"), "/repos/{owner}/{repo}/..."),
        (BlockRule("/organizations/#"), "/orgs/{org}/..."),
        (BlockRule("/teams/#"), "/orgs/{org}/teams/{team_slug}/..."),
    ],
    privacy: "Your keys, emails, authorizations and migrations are never an agent's (403); repository keys, hooks, secrets, collaborators and visibility changes need a human's second confirmation.",
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
    private_items: None,
    reroute: Some(github_routes),
    private_in_answer: None,
    dangers: &[
        Danger::new(
            "PUT",
            "/repos/*/*/contents/**",
            "writes a file, replacing it if it exists",
        ),
        Danger::new("DELETE", "/repos/*/*", "deletes a whole repository"),
        Danger::new(
            "PATCH",
            "/user",
            "changes your public profile (name, email, bio)",
        ),
        Danger::field("PATCH", "/gists/*", "public", "changes who can see a gist"),
        Danger::new(
            "DELETE",
            "/repos/*/*/git/refs/**",
            "deletes a branch or tag",
        ),
        Danger::new("DELETE", "/repos/*/*/releases/*", "deletes a release"),
        Danger::field(
            "PATCH",
            "/repos/*/*",
            "private",
            "changes who can see the repository",
        ),
        Danger::field(
            "PATCH",
            "/repos/*/*",
            "visibility",
            "changes who can see the repository",
        ),
        Danger::field("PATCH", "/repos/*/*", "archived", "archives the repository"),
        Danger::field(
            "PATCH",
            "/repos/*/*/git/refs/**",
            "force",
            "force-moves a branch, which can drop commits",
        ),
        Danger::new(
            "POST",
            "/repos/*/*/transfer",
            "gives the repository to another owner",
        ),
        Danger::new(
            "PUT",
            "/repos/*/*/collaborators/*",
            "gives someone access to the repository",
        ),
        Danger::new(
            "POST",
            "/repos/*/*/keys",
            "adds a deploy key: access to the repository",
        ),
        Danger::new(
            "POST",
            "/repos/*/*/hooks",
            "adds a webhook: the repository's events go elsewhere",
        ),
        Danger::new(
            "PATCH",
            "/repos/*/*/hooks/*",
            "changes where a webhook sends the repository's events",
        ),
        Danger::new(
            "PUT",
            "/repos/*/*/actions/secrets/*",
            "sets a secret that workflows can read",
        ),
        Danger::new(
            "PUT",
            "/repos/*/*/branches/*/protection",
            "changes a branch's protection",
        ),
        Danger::new("PUT", "/repos/*/*/pulls/*/merge", "merges a pull request"),
        Danger::new("POST", "/repos/*/*/merges", "merges a branch"),
        Danger::new(
            "PATCH",
            "/repos/*/*/hooks/*/config",
            "changes where a webhook sends the repository's events",
        ),
        Danger::new(
            "PUT",
            "/repos/*/*/environments/*/secrets/*",
            "sets a secret that deployments can read",
        ),
        Danger::new(
            "PUT",
            "/repos/*/*/dependabot/secrets/*",
            "sets a secret that Dependabot can read",
        ),
        Danger::new(
            "PUT",
            "/repos/*/*/codespaces/secrets/*",
            "sets a secret that codespaces can read",
        ),
        Danger::new(
            "PATCH",
            "/repos/*/*/invitations/*",
            "changes what an invited collaborator may do",
        ),
        Danger::new(
            "POST",
            "/repos/*/*/actions/workflows/*/dispatches",
            "starts a workflow, which can deploy or publish",
        ),
        Danger::new(
            "POST",
            "/repos/*/*/dispatches",
            "starts workflows, which can deploy or publish",
        ),
        Danger::new(
            "PUT",
            "/repos/*/*/actions/permissions/**",
            "changes what workflows may do",
        ),
        Danger::new(
            "POST",
            "/graphql",
            "runs a GraphQL query or mutation, which can change anything the token may",
        ),
        Danger::new(
            "POST",
            "/api/graphql",
            "runs a GraphQL query or mutation, which can change anything the token may",
        ),
        Danger::new(
            "POST",
            "/user/codespaces/**",
            "creates, publishes or exports a codespace: a machine with access to a repository",
        ),
        Danger::new(
            "POST",
            "/repos/*/*/codespaces",
            "creates a codespace: a machine with access to the repository",
        ),
        Danger::new(
            "POST",
            "/repos/*/*/pulls/*/codespaces",
            "creates a codespace: a machine with access to the repository",
        ),
        Danger::new(
            "POST",
            "/organizations/**",
            "changes the organization (members, teams, hooks, secrets or settings)",
        ),
        Danger::new(
            "PUT",
            "/organizations/**",
            "changes the organization (members, teams, hooks, secrets or settings)",
        ),
        Danger::new(
            "PATCH",
            "/organizations/**",
            "changes the organization (members, teams, hooks, secrets or settings)",
        ),
        Danger::new(
            "POST",
            "/orgs/**",
            "changes the organization (members, teams, hooks, secrets or settings)",
        ),
        Danger::new(
            "PUT",
            "/orgs/**",
            "changes the organization (members, teams, hooks, secrets or settings)",
        ),
        Danger::new(
            "PATCH",
            "/orgs/**",
            "changes the organization (members, teams, hooks, secrets or settings)",
        ),
    ],
    summarize: Some(super::summary::github),
};

/// GitHub Enterprise serves the REST API under `/api/v3`: an account whose
/// base URL lacks it must not open the blocks with it.
fn github_routes(path: &str) -> Vec<String> {
    match path.strip_prefix("/api/v3") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            vec![if rest.is_empty() {
                "/".into()
            } else {
                rest.to_string()
            }]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::AgentPath;

    #[test]
    fn an_enterprise_prefix_does_not_dodge_account_control() {
        for p in [
            "/api/v3/user/keys",
            "/API/V3/user/gpg_keys",
            "/user/public_emails",
            "/user/email/visibility",
        ] {
            let path = AgentPath::parse_with_query(p).unwrap();
            assert!(GITHUB.refusal_of(&path).is_some(), "{p}");
        }
        let fine = AgentPath::parse_with_query("/api/v3/repos/o/r/issues").unwrap();
        assert!(GITHUB.refusal_of(&fine).is_none());
    }
}
