//! The MCP server end to end with rmcp's own client over loopback: the same
//! keys, the same access rules and the same queue as REST.

use reqwest::Method;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

pub(crate) async fn connect(
    app: &TestApp,
    key: &str,
) -> Result<RunningService<RoleClient, ()>, String> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", app.agent_url))
            .auth_header(key),
    );
    ().serve(transport).await.map_err(|e| e.to_string())
}

pub(crate) async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &'static str,
    args: Value,
) -> (bool, Value) {
    let r: CallToolResult = client
        .call_tool(
            CallToolRequestParams::new(tool).with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let text = &r.content[0].as_text().unwrap().text;
    (
        r.is_error.unwrap_or(false),
        serde_json::from_str(text).unwrap(),
    )
}

#[tokio::test]
async fn an_mcp_client_reads_submits_checks_and_withdraws() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "octocat"})))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("mcp-agent");
    let client = connect(&app, &key).await.unwrap();

    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for t in ["whoami", "read", "submit", "status", "withdraw", "list"] {
        assert!(tools.contains(&t.to_string()), "{t} missing from {tools:?}");
    }
    let (err, me) = call(&client, "whoami", json!({})).await;
    assert!(!err);
    assert_eq!(me["you"]["agent"], "mcp-agent");
    assert_eq!(me["services"][0]["account"], "personal");

    let (err, read) = call(
        &client,
        "read",
        json!({"service": "github", "account": "personal", "path": "/user"}),
    )
    .await;
    assert!(!err, "{read}");
    assert_eq!(read, json!({"status": 200, "body": {"login": "octocat"}}));

    let (err, sub) = call(
        &client,
        "submit",
        json!({"service": "github", "account": "personal", "comment": "via MCP",
               "requests": [{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "t"}}]}),
    )
    .await;
    assert!(!err, "{sub}");
    assert_eq!(sub["status"], "pending");
    let id = sub["id"].as_str().unwrap().to_string();
    // The same queue as REST: the entry is there, waiting for a human.
    assert_eq!(app.gw.entry(&id).unwrap().comment, "via MCP");
    let (_, st) = call(
        &client,
        "status",
        json!({"service": "github", "account": "personal", "id": id}),
    )
    .await;
    assert_eq!(st["status"], "pending");
    let (_, list) = call(&client, "list", json!({})).await;
    assert_eq!(list["count"], 1);
    let (_, w) = call(
        &client,
        "withdraw",
        json!({"service": "github", "account": "personal", "id": id, "reason": "changed my mind"}),
    )
    .await;
    assert_eq!(w["status"], "withdrawn");
    assert!(
        app.upstream.received_requests().await.unwrap().len() == 1,
        "only the read reached GitHub"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_keeps_the_rest_apis_rules() {
    let app = spawn_app().await;
    let key = app.new_agent("limited");
    let other = app.new_agent("other");
    let other_entry = app.agent(&other).submit_one("POST", "/x", json!({})).await;
    app.admin(
        Method::PUT,
        "/admin/accounts/github/personal/access",
        Some(json!({"mode": "denylist", "agents": ["limited"]})),
    )
    .await;
    let client = connect(&app, &key).await.unwrap();
    let (err, v) = call(
        &client,
        "read",
        json!({"service": "github", "account": "personal", "path": "/user"}),
    )
    .await;
    assert!(err);
    assert_eq!(
        v,
        json!({"error": "Access denied to github/personal", "status": 403})
    );
    let (err, v) = call(
        &client,
        "submit",
        json!({"service": "github", "account": "personal", "comment": "c", "requests": [{"method": "POST", "path": "/x"}]}),
    )
    .await;
    assert!(err);
    assert_eq!(v["status"], 403);
    let (_, me) = call(&client, "whoami", json!({})).await;
    assert_eq!(me["services"], json!([]), "the account is hidden");
    // Another agent's entry does not exist for this one.
    app.admin(
        Method::PUT,
        "/admin/accounts/github/personal/access",
        Some(json!({"mode": "all"})),
    )
    .await;
    let (err, v) = call(
        &client,
        "status",
        json!({"service": "github", "account": "personal", "id": other_entry}),
    )
    .await;
    assert!(err);
    assert_eq!(v["status"], 404);
    // Pausing stops MCP reads too.
    app.gw.set_paused(true).unwrap();
    let (err, v) = call(
        &client,
        "read",
        json!({"service": "github", "account": "personal", "path": "/user"}),
    )
    .await;
    assert!(err);
    assert_eq!(v["status"], 503);
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_needs_a_valid_agent_key() {
    let app = spawn_app().await;
    assert!(
        connect(&app, "rms_not_a_real_key_but_long_enough_000000")
            .await
            .is_err()
    );
    assert!(
        connect(&app, &app.admin_token).await.is_err(),
        "admin tokens are not agent keys"
    );
    let r = app
        .http
        .post(format!("{}/mcp", app.agent_url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
