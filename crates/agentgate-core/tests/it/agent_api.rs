use reqwest::Method;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn health_needs_no_key() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(format!("{}/health", app.agent_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn a_read_injects_the_token_and_relays_the_answer() {
    let app = spawn_app().await;
    let key = app.new_agent("reader");
    Mock::given(method("GET"))
        .and(path("/repos/o/r/issues"))
        .and(query_param("state", "open"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(header("accept", "application/vnd.github+json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"number": 1, "title": "Bug"}]))
                .insert_header("link", "<https://api.github.com/x?page=2>; rel=\"next\"")
                .insert_header("set-cookie", "upstream=session"),
        )
        .expect(1)
        .mount(&app.upstream)
        .await;
    let resp = app
        .agent(&key)
        .req(
            Method::GET,
            "/api/github/personal/repos/o/r/issues?state=open",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().contains_key("link"),
        "pagination headers are relayed"
    );
    assert!(
        !resp.headers().contains_key("set-cookie"),
        "upstream cookies are not relayed"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body[0]["title"], "Bug");
    // The agent's own key never reaches the service.
    let seen = app.upstream.received_requests().await.unwrap();
    assert!(
        seen.iter()
            .all(|r| !format!("{:?}", r.headers).contains(&key))
    );
}

#[tokio::test]
async fn upstream_errors_keep_their_status_and_an_agents_accept_header_wins() {
    let app = spawn_app().await;
    let key = app.new_agent("a");
    Mock::given(method("GET"))
        .and(path("/repos/o/r/readme"))
        .and(header("accept", "application/vnd.github.raw"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&app.upstream)
        .await;
    let resp = app
        .agent(&key)
        .req(Method::GET, "/api/github/personal/repos/o/r/readme")
        .header("accept", "application/vnd.github.raw")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["message"],
        "Not Found"
    );
}

#[tokio::test]
async fn unknown_services_are_404_and_unknown_accounts_look_denied() {
    let app = spawn_app().await;
    let a = app.agent(&app.new_agent("a")).key.clone();
    let c = app.agent(&a);
    let (s, v) = c.get("/api/nosuch/personal/user").await;
    assert_eq!(s, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("unknown service"));
    // An account that does not exist and one the agent may not use answer
    // alike, on every agent route: no probing for the owner's account names.
    add_github(&app.gw, "work", &app.upstream.uri());
    app.admin(
        reqwest::Method::PUT,
        "/admin/accounts/github/work/access",
        Some(serde_json::json!({"mode": "allowlist", "agents": []})),
    )
    .await;
    let answers = |name: &'static str| {
        let c = app.agent(&a);
        async move {
            let mut out = Vec::new();
            for path in [
                format!("/api/github/{name}/user"),
                format!("/api/github/{name}"),
                format!("/api/queue/github/{name}/status/abcdefabcdef"),
                format!("/api/queue/github/{name}/list"),
            ] {
                let (s, v) = c.get(&path).await;
                out.push((s, v["error"].as_str().unwrap_or("").replace(name, "NAME")));
            }
            let (s, v) = c
                .submit(name, serde_json::json!({"requests": [{"method": "POST", "path": "/x"}], "comment": "c"}))
                .await;
            out.push((s, v["error"].as_str().unwrap_or("").replace(name, "NAME")));
            out
        }
    };
    let (missing, denied) = (answers("nobody").await, answers("work").await);
    assert_eq!(missing, denied);
    assert!(missing.iter().all(|(s, _)| *s == 403), "{missing:?}");
}

#[tokio::test]
async fn the_account_root_describes_the_account() {
    let app = spawn_app().await;
    let c = app.agent(&app.new_agent("a")).key.clone();
    let (s, v) = app.agent(&c).get("/api/github/personal").await;
    assert_eq!(s, 200);
    assert_eq!(v["service"], "github");
    assert!(
        v["example_reads"][0]
            .as_str()
            .unwrap()
            .starts_with("/api/github/personal/")
    );
    assert!(!v.to_string().contains(TOKEN));
}

#[tokio::test]
async fn submit_status_list_and_withdraw() {
    let app = spawn_app().await;
    let c = app.agent(&app.new_agent("writer")).key.clone();
    let c = app.agent(&c);
    let (s, v) = c
        .submit(
            "personal",
            json!({"requests": [{"method": "POST", "path": "/repos/o/r/issues", "body": {"title": "Bug"}}],
                   "comment": "file the bug the user described"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "pending");
    let id = v["id"].as_str().unwrap();
    assert!(v["message"].as_str().unwrap().contains(id));

    let (s, st) = c
        .get(&format!("/api/queue/github/personal/status/{id}"))
        .await;
    assert_eq!(s, 200);
    for field in [
        "id",
        "status",
        "service",
        "account_name",
        "comment",
        "submitted_at",
        "reviewed_at",
        "completed_at",
        "rejection_reason",
        "results",
    ] {
        assert!(st.get(field).is_some(), "status lacks {field}: {st}");
    }
    assert_eq!(st["account_name"], "personal");
    assert_eq!(st["comment"], "file the bug the user described");

    let (_, l) = c.get("/api/queue/list").await;
    assert_eq!(l["entries"][0]["id"], id);
    let (_, l) = c.get("/api/queue/github/personal/list").await;
    assert_eq!(l["count"], 1);

    let resp = c
        .req(
            Method::DELETE,
            &format!("/api/queue/github/personal/status/{id}"),
        )
        .json(&json!({"reason": "the user changed their mind"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "withdrawn");
    // Withdrawing again, or approving now, is refused.
    let resp = c
        .req(
            Method::DELETE,
            &format!("/api/queue/github/personal/status/{id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let (s, _) = app.approve_api(id).await;
    assert_eq!(s, 409);
    assert!(
        app.upstream.received_requests().await.unwrap().is_empty(),
        "nothing ran"
    );
}

#[tokio::test]
async fn a_write_on_the_read_route_is_queued_with_202() {
    let app = spawn_app().await;
    let c = app.agent(&app.new_agent("w")).key.clone();
    let c = app.agent(&c);
    let resp = c
        .req(Method::POST, "/api/github/personal/repos/o/r/issues")
        .header("x-agentgate-comment", "open an issue")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"title":"From the read route"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let v: serde_json::Value = resp.json().await.unwrap();
    let id = v["id"].as_str().unwrap();
    let e = app.gw.entry(id).unwrap();
    assert_eq!(e.comment, "open an issue");
    assert_eq!(e.requests[0].method, "POST");
    assert_eq!(e.requests[0].path, "/repos/o/r/issues");
    assert_eq!(
        e.requests[0].body,
        Some(json!({"title": "From the read route"}))
    );
    assert_eq!(
        e.requests[0].headers,
        [("content-type".to_string(), "application/json".to_string())].into(),
        "a JSON body is sent as JSON, and says so"
    );

    // UTF-8 comments in the header are kept as written.
    let resp = c
        .req(Method::PATCH, "/api/github/personal/repos/o/r/issues/1")
        .header(
            "x-agentgate-comment",
            reqwest::header::HeaderValue::from_bytes("schließe das Issue ✓".as_bytes()).unwrap(),
        )
        .json(&json!({"state": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id2 = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.gw.entry(&id2).unwrap().comment, "schließe das Issue ✓");

    // Without a comment it is refused and nothing is queued.
    let resp = c
        .req(Method::DELETE, "/api/github/personal/repos/o/r")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(app.gw.entries(&Default::default()).unwrap().len(), 2);
    assert!(app.upstream.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_approved_write_runs_with_the_token() {
    let app = spawn_app().await;
    let c = app.agent(&app.new_agent("w")).key.clone();
    let c = app.agent(&c);
    Mock::given(method("POST"))
        .and(path("/repos/o/r/issues"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"title": "Bug"})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"number": 7, "html_url": "https://github.com/o/r/issues/7"})),
        )
        .expect(1)
        .mount(&app.upstream)
        .await;
    let id = c
        .submit_one("POST", "/repos/o/r/issues", json!({"title": "Bug"}))
        .await;
    let (s, v) = app.approve_api(&id).await;
    assert_eq!(s, 200, "{v}");
    app.wait_done(&id).await;
    let (_, st) = c
        .get(&format!("/api/queue/github/personal/status/{id}"))
        .await;
    assert_eq!(st["status"], "completed", "{st}");
    assert_eq!(st["results"][0]["ok"], true);
    assert_eq!(st["results"][0]["status"], 201);
    assert_eq!(st["results"][0]["body"]["number"], 7);
    assert!(st["reviewed_at"].is_string() && st["completed_at"].is_string());
}

#[tokio::test]
async fn discovery_documents_describe_the_gateway_without_secrets() {
    let app = spawn_app().await;
    let key = app.new_agent("docs");
    let c = app.agent(&key);
    for path in ["/api/readme", "/api/agent_start_here"] {
        let (s, v) = c.get(path).await;
        assert_eq!(s, 200);
        assert_eq!(v["you"]["agent"], "docs");
        assert_eq!(v["services"][0]["service"], "github");
        assert!(
            v["writes"]["submit"]
                .as_str()
                .unwrap()
                .contains("/api/queue/")
        );
        assert_eq!(v["limits"]["max_batch_requests"], 50);
        let text = v.to_string();
        assert!(!text.contains(TOKEN) && !text.contains(&key));
    }
    let (s, v) = c.get("/api/services").await;
    assert_eq!(s, 200);
    assert_eq!(v["services"][0]["account"], "personal");

    let resp = c.req(Method::GET, "/api/skill").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("---\nname: agentgate\ndescription: "));
    assert!(text.contains("http://gateway.test/api/"));
    assert!(text.contains("github/personal"));
    assert!(!text.contains(&key) && !text.contains(TOKEN));
}

#[tokio::test]
async fn missing_malformed_unknown_and_disabled_keys() {
    let app = spawn_app().await;
    let key = app.new_agent("k");
    let url = format!("{}/api/services", app.agent_url);
    let s = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(s(app.http.get(&url).send().await.unwrap()), 401);
    assert_eq!(
        s(app
            .http
            .get(&url)
            .header("authorization", "Basic abc")
            .send()
            .await
            .unwrap()),
        401
    );
    assert_eq!(
        s(app
            .http
            .get(&url)
            .bearer_auth("rms_short")
            .send()
            .await
            .unwrap()),
        401
    );
    let unknown = format!("rms_{}", "A".repeat(40));
    assert_eq!(
        s(app
            .http
            .get(&url)
            .bearer_auth(&unknown)
            .send()
            .await
            .unwrap()),
        401
    );
    assert_eq!(
        s(app.http.get(&url).bearer_auth(&key).send().await.unwrap()),
        200
    );
    app.gw.set_agent_enabled("k", false).unwrap();
    let r = app.http.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("disabled"));
    app.gw.set_agent_enabled("k", true).unwrap();
    app.gw.revoke_agent("k").unwrap();
    assert_eq!(
        s(app.http.get(&url).bearer_auth(&key).send().await.unwrap()),
        401
    );
}

#[tokio::test]
async fn category_skills_exist_for_the_accounts_an_agent_may_use() {
    let app = spawn_app().await;
    let key = app.new_agent("writer");
    let other = app.new_agent("other");
    let skill = |k: String, p: &'static str| {
        let req = app.agent(&k).req(Method::GET, p);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (_, main) = skill(key.clone(), "/api/skill").await;
    assert!(
        main.contains("http://gateway.test/api/skill/code"),
        "{main}"
    );
    assert!(!main.contains("/api/skill/social"));
    let (s, code) = skill(key.clone(), "/api/skill/code").await;
    assert_eq!(s, 200);
    assert!(
        code.starts_with("---\nname: agentgate-code\ndescription: "),
        "{code}"
    );
    assert!(code.contains("GET http://gateway.test/api/github/personal/user"));
    assert!(code.contains("Create an issue"));
    assert!(!code.contains(TOKEN) && !code.contains(&key));
    assert_eq!(skill(key.clone(), "/api/skill/social").await.0, 404);
    assert_eq!(skill(key.clone(), "/api/skill/nonsense").await.0, 404);

    add_mastodon(&app, "social");
    app.gw
        .set_account_access(
            "mastodon",
            "social",
            agentgate_core::policy::AccessMode::Denylist,
            &["other".into()],
        )
        .unwrap();
    let (s, social) = skill(key.clone(), "/api/skill/social").await;
    assert_eq!(s, 200);
    assert!(
        social.contains("/api/v1/conversations*"),
        "blocked paths are listed: {social}"
    );
    assert_eq!(
        skill(other.clone(), "/api/skill/social").await.0,
        404,
        "no access, no skill"
    );
}

#[tokio::test]
async fn the_openapi_document_matches_the_real_routes() {
    let app = spawn_app().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&app.upstream)
        .await;
    let key = app.new_agent("doc-reader");
    let (s, doc) = app.agent(&key).get("/api/openapi.json").await;
    assert_eq!(s, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["components"]["securitySchemes"]["agent_key"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/health",
        "/api/readme",
        "/api/agent_start_here",
        "/api/services",
        "/api/skill",
        "/api/skill/{category}",
        "/api/openapi.json",
        "/api/queue/list",
        "/api/queue/{service}/{account}/submit",
        "/api/queue/{service}/{account}/list",
        "/api/queue/{service}/{account}/status/{id}",
        "/api/{service}/{account}",
        "/api/{service}/{account}/{path}",
        "/mcp",
    ] {
        assert!(paths.contains_key(expected), "{expected} is not documented");
    }
    // Every documented operation is served by a real route: never the router's
    // fallback or a 405.
    let mut checked = 0;
    for (template, ops) in paths {
        for (m, _) in ops.as_object().unwrap() {
            let url = template
                .replace("{service}", "github")
                .replace("{account}", "personal")
                .replace("{id}", "no-such-entry")
                .replace("{category}", "code")
                .replace("{path}", "user");
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let resp = app
                .agent(&key)
                .req(method.clone(), &url)
                .header("x-agentgate-comment", "checking the document")
                .header("content-type", "application/json")
                .body(r#"{"requests": [{"method": "POST", "path": "/x"}], "comment": "c"}"#)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{m} {url}");
            assert!(
                !body.contains("no such route"),
                "{m} {url} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 18, "only {checked} operations checked");
}

/// Lists answer pages of summaries: each request's method and path only, the
/// service's answers without bodies; `next` leads to the following page, and
/// one entry's status still has everything.
#[tokio::test]
async fn lists_are_pages_of_summaries() {
    let app = spawn_app().await;
    app.no_rate_limits();
    let key = app.new_agent("lister");
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(
            app.agent(&key)
                .submit_one(
                    "POST",
                    "/repos/o/r/issues",
                    serde_json::json!({"title": format!("big body {i}")}),
                )
                .await,
        );
    }
    let (s, first) = app.agent(&key).get("/api/queue/list").await;
    assert_eq!(s, 200);
    assert_eq!(first["count"], 50);
    assert_eq!(first["entries"][0]["id"], ids[59].as_str(), "newest first");
    let request = &first["entries"][0]["requests"][0];
    assert_eq!(request["path"], "/repos/o/r/issues");
    assert!(request.get("body").is_none(), "{request}");
    let next = first["next"].as_str().unwrap().to_string();
    let (_, second) = app
        .agent(&key)
        .get(&format!("/api/queue/github/personal/list?before={next}"))
        .await;
    assert_eq!(second["count"], 10);
    assert!(second["next"].is_null());
    let mut seen: Vec<String> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["entries"].as_array().unwrap())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 60, "every entry once");
    let (_, big) = app.agent(&key).get("/api/queue/list?limit=500").await;
    assert_eq!(big["count"], 60);
    let (_, one) = app.agent(&key).get("/api/queue/list?limit=1").await;
    assert_eq!(one["count"], 1);
    // The status of one entry is whole.
    let (_, whole) = app
        .agent(&key)
        .get(&format!("/api/queue/github/personal/status/{}", ids[0]))
        .await;
    assert_eq!(whole["requests"][0]["body"]["title"], "big body 0");
}

/// One agent's reads in flight are capped; the rest are refused at once
/// (429), and another agent is not held up.
#[tokio::test]
async fn an_agents_concurrent_reads_are_capped() {
    use agentgate_core::limits::CONCURRENT_READS_PER_AGENT;
    let app = spawn_app().await;
    app.no_rate_limits();
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_millis(800)))
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/fast"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&app.upstream)
        .await;
    let (greedy, other) = (app.new_agent("greedy"), app.new_agent("other"));
    let client = app.agent(&greedy);
    let reads = (0..20).map(|_| client.get("/api/github/personal/slow"));
    let (statuses, other_status) = tokio::join!(futures::future::join_all(reads), async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.agent(&other).get("/api/github/personal/fast").await.0
    });
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let refused = statuses.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(ok, CONCURRENT_READS_PER_AGENT, "{statuses:?}");
    assert_eq!(ok + refused, 20);
    assert_eq!(other_status, 200);
    assert_eq!(
        app.agent(&greedy).get("/api/github/personal/fast").await.0,
        200
    );
}
