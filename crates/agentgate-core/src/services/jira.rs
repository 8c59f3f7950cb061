//! Jira Cloud: site host, account email and API token over HTTP Basic.

use serde_json::Value;

use super::{Auth, Category, CredentialField, Danger, ServiceDef};

pub static JIRA: ServiceDef = ServiceDef {
    key: "jira",
    category: Category::Code,
    aliases: &[],
    display_name: "Jira",
    description: "Issues, comments and transitions in Jira Cloud.",
    auth: Auth::Basic {
        user: "email",
        password: "api_token",
    },
    default_base_url: None,
    base_url_template: Some("https://{host}/rest/api/3"),
    credential_fields: &[
        CredentialField {
            name: "email",
            label: "Account email",
            secret: false,
        },
        CredentialField {
            name: "api_token",
            label: "API token",
            secret: true,
        },
    ],
    blocked: &[],
    control: &[],
    by_number: &[],
    privacy: "Nothing is blocked beyond the token's scope; deletions and transitions need a human's second confirmation.",
    example_reads: &[
        "/myself",
        "/search/jql?jql=assignee=currentUser()%20AND%20statusCategory!=Done&maxResults=20",
        "/issue/{key}",
        "/issue/{key}/comment",
    ],
    write_guidelines: &[
        "Comment: POST /issue/{key}/comment with {\"body\": <Atlassian Document Format>}.",
        "Create an issue: POST /issue with {\"fields\": {\"project\": {\"key\"}, \"summary\", \"issuetype\": {\"name\"}}}.",
        "Move an issue: GET /issue/{key}/transitions, then POST /issue/{key}/transitions with {\"transition\": {\"id\"}}.",
    ],
    identity_path: "/myself",
    identity_name: |v: &Value| {
        v.get("emailAddress")
            .or_else(|| v.get("displayName"))
            .and_then(Value::as_str)
            .map(str::to_string)
    },
    default_headers: &[("accept", "application/json")],
    write_check: None,
    compact: None,
    instance_oauth: None,
    private_items: None,
    reroute: None,
    private_in_answer: None,
    dangers: &[Danger::new(
        "POST",
        "/issue/*/transitions",
        "moves an issue to another status",
    )],
    summarize: None,
};
