//! Private data and unchecked resources reached by a route beside the one
//! the blocks name: a Mastodon visibility other than `direct` that is just as
//! private, a status's text through a write (a translation), a poll by id,
//! Pleroma chats; GitHub resources by number, past rules written on names;
//! Bluesky chat settings as records and push registrations. Each is refused,
//! nothing is queued and nothing reaches the service; the plain forms still
//! work.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use agentgate_core::RuleSpec;
use agentgate_core::policy::Effect;

use crate::helpers::{
    TestApp, add_bluesky, add_mastodon, nothing_queued_or_sent, spawn_app, status_form,
};

async fn submit(app: &TestApp, key: &str, service: &str, account: &str, r: Value) -> (u16, Value) {
    app.agent(key)
        .submit_to(service, account, json!({"requests": [r], "comment": "c"}))
        .await
}

#[tokio::test]
async fn mastodon_private_statuses_are_refused_by_an_allow_list_of_visibilities() {
    let app = spawn_app().await;
    add_mastodon(&app, "m");
    let key = app.new_agent("bot");
    let refused = [
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "@bob psst", "visibility": "limited"}}),
        json!({"method": "POST", "path": "/api/v1/statuses?visibility=Limited", "body": {"status": "@bob psst"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "psst", "visibility": "list:7"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "psst", "visibility": "circle"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "psst", "visibility": "mutual"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "psst", "visibility": ""}}),
        status_form("status=psst&visibility=public&visibility=%6cimited"),
        // Writes under a status that answer with its text but not its visibility.
        json!({"method": "POST", "path": "/api/v1/statuses/900/translate", "body": {}}),
        json!({"method": "POST", "path": "/api/v1/statuses/900/Translate.json", "body": {"lang": "en"}}),
        json!({"method": "POST", "path": "/api/v1/statuses/900/translate;x", "body": {}}),
        json!({"method": "POST", "path": "/api/v1/statuses/900/favourite/x", "body": {}}),
        // Pleroma makes a post in a conversation direct; a reply without a
        // visibility may take a private message's.
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "x", "in_reply_to_conversation_id": "1"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "x", "in_reply_to_conversation_id": "1", "visibility": "public"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "@bob x", "in_reply_to_id": "900"}}),
        json!({"method": "POST", "path": "/api/v1/statuses?in_reply_to_id=900", "body": {"status": "@bob x", "visibility": null}}),
        // A visibility the server does not read (another case, nested, with
        // a blank) does not make a reply say one.
        status_form("status=%40bob+hi&in_reply_to_id=900&Visibility=public"),
        status_form("status=hi&in_reply_to_id=900&x%5Bvisibility%5D=public"),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "x", "in_reply_to_id": "900", "visibility ": "public"}}),
        json!({"method": "POST", "path": "/api/v2/polls/5/votes", "body": {"choices": [0]}}),
        json!({"method": "DELETE", "path": "/api/oauth_tokens/3"}),
        // Pleroma's account control.
        json!({"method": "POST", "path": "/api/pleroma/change_password", "body": {"password": "p", "new_password": "n"}}),
        json!({"method": "POST", "path": "/api/v1/pleroma/backups", "body": {}}),
        // Polls by id, and Pleroma's chats.
        json!({"method": "POST", "path": "/api/v1/polls/5/votes", "body": {"choices": [0]}}),
        json!({"method": "POST", "path": "/api/v1/pleroma/chats/by-account-id/3", "body": {}}),
        json!({"method": "POST", "path": "/api/v1/pleroma/chats/1/messages", "body": {"content": "hi"}}),
    ];
    for case in refused {
        let (s, v) = submit(&app, &key, "mastodon", "m", case.clone()).await;
        assert!(s == 403 || s == 400, "{case} was accepted ({s}): {v}");
    }
    for read in [
        "/api/v1/polls/5",
        "/api/v1/Polls/5",
        "/api/v1/pleroma/chats",
        "/api/v2/pleroma/chats",
        "/api/v1/pleroma/conversations/3/statuses",
        "/api/v1/statuses/900/translations/en",
        "/api/v1/pleroma/backups",
        "/media/backups/archive.zip",
        "/api/v1/pleroma/admin/users/bob/chats",
        "/api/pleroma/admin/users/bob/password_reset",
        "/api/pleroma/accounts/mfa/backup_codes",
    ] {
        let (s, v) = app.agent(&key).get(&format!("/api/mastodon/m{read}")).await;
        assert_eq!(s, 403, "{read}: {v}");
    }
    nothing_queued_or_sent(&app).await;

    // A translation read: its answer holds the status's text, not its
    // visibility, and is not passed on.
    Mock::given(method("GET"))
        .and(path("/api/v1/statuses/900/translate"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"content": "<p>SECRET-DM</p>"})),
        )
        .mount(&app.upstream)
        .await;
    let (s, v) = app
        .agent(&key)
        .get("/api/mastodon/m/api/v1/statuses/900/translate")
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(!v.to_string().contains("SECRET-DM"));

    // Public, unlisted, followers-only and local posts, the server's default
    // (null), replies that say their visibility, and actions that answer
    // with the status, still queue.
    for ok in [
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "hi", "visibility": null}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "hi", "visibility": "local"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "re", "in_reply_to_id": "5", "visibility": "public"}}),
        json!({"method": "PUT", "path": "/api/v1/statuses/900/interaction_policy", "body": {"quote_approval_policy": "public"}}),
        json!({"method": "POST", "path": "/api/v1/statuses/900/quotes/901/revoke", "body": {}}),
        json!({"method": "PUT", "path": "/api/v1/statuses/900/emoji_reactions/smile", "body": {}}),
        json!({"method": "POST", "path": "/api/v1/statuses/900/favourite.json", "body": {}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "hi", "visibility": "public"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "hi", "visibility": "Unlisted"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "hi", "visibility": "private"}}),
        json!({"method": "POST", "path": "/api/v1/statuses", "body": {"status": "no visibility given"}}),
        json!({"method": "POST", "path": "/api/v1/statuses/900/favourite", "body": {}}),
    ] {
        let (s, v) = submit(&app, &key, "mastodon", "m", ok.clone()).await;
        assert_eq!(s, 201, "{ok}: {v}");
    }
}

#[tokio::test]
async fn a_limited_status_is_as_private_as_a_direct_one_in_answers() {
    let app = spawn_app().await;
    add_mastodon(&app, "m");
    let key = app.new_agent("bot");
    let secret = "a status only its mentioned accounts may see";
    Mock::given(method("GET"))
        .and(path("/api/v1/timelines/home"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "1", "visibility": "limited", "content": secret, "account": {"id": "9", "acct": "a"}},
            {"id": "2", "visibility": "public", "content": "hello all", "account": {"id": "9", "acct": "a"}},
        ])))
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/statuses/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "1", "visibility": "limited", "content": secret, "account": {"id": "9", "acct": "a"}}),
        ))
        .mount(&app.upstream)
        .await;
    let r = app
        .agent(&key)
        .req(
            reqwest::Method::GET,
            "/api/mastodon/m/api/v1/timelines/home",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-agentgate-private-removed"], "1");
    let text = r.text().await.unwrap();
    assert!(
        text.contains("hello all") && !text.contains(secret),
        "{text}"
    );
    let (s, v) = app
        .agent(&key)
        .get("/api/mastodon/m/api/v1/statuses/1")
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(!v.to_string().contains(secret));
}

/// Answers that carry a private message in another shape: a status that
/// does not say its visibility, a Pleroma chat message and its notification.
#[tokio::test]
async fn statuses_without_a_visibility_and_chat_messages_leave_answers() {
    let app = spawn_app().await;
    add_mastodon(&app, "m");
    let key = app.new_agent("bot");
    Mock::given(method("GET"))
        .and(path("/api/v1/notifications"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "1", "type": "pleroma:chat_mention", "account": {"id": "9", "acct": "a"},
             "chat_message": {"id": "c1", "chat_id": "3", "account_id": "9", "content": "SECRET-CHAT"}},
            {"id": "2", "type": "mention", "account": {"id": "9", "acct": "a"},
             "status": {"id": "7", "content": "SECRET-NO-VISIBILITY", "account": {"id": "9", "acct": "a"}}},
            {"id": "3", "type": "mention", "account": {"id": "9", "acct": "a"},
             "status": {"id": "8", "visibility": null, "content": "SECRET-NULL", "account": {"id": "9", "acct": "a"}}},
            {"id": "4", "type": "follow", "account": {"id": "8", "acct": "b"}},
        ])))
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/statuses/7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "7", "content": "SECRET-NO-VISIBILITY", "account": {"id": "9", "acct": "a"}}),
        ))
        .mount(&app.upstream)
        .await;
    for raw in [false, true] {
        let r = app
            .agent(&key)
            .req(reqwest::Method::GET, "/api/mastodon/m/api/v1/notifications")
            .header("x-agentgate-raw", raw.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-agentgate-private-removed"], "3");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("SECRET") && text.contains("follow"),
            "{text}"
        );
    }
    let (s, v) = app
        .agent(&key)
        .get("/api/mastodon/m/api/v1/statuses/7")
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(!v.to_string().contains("SECRET"));
}

#[tokio::test]
async fn github_resources_by_number_are_refused_so_that_rules_on_names_hold() {
    let app = spawn_app().await;
    let key = app.new_agent("bot");
    app.gw
        .set_account_rules(
            "github",
            "personal",
            vec![RuleSpec {
                method: None,
                path: "/repos/acme/private/**".into(),
                agents: vec![],
                effect: Effect::Deny,
            }],
        )
        .unwrap();
    for read in [
        "/repositories/999/contents/secret.txt",
        "/repositories/999abc/contents/secret.txt",
        "/repositories/+999",
        "/repositories/%20999/issues",
        "/Repositories/999",
        "/repositories/999/actions/secrets",
        "/organizations/5/members",
        "/teams/7/members",
        "/api/v3/repositories/999/issues",
    ] {
        let (s, v) = app
            .agent(&key)
            .get(&format!("/api/github/personal{read}"))
            .await;
        assert_eq!(s, 403, "{read}: {v}");
        assert!(
            v.to_string().contains("by number"),
            "{read}: the reason names the cause: {v}"
        );
    }
    for write in [
        json!({"method": "PUT", "path": "/repositories/123/contents/a.txt", "body": {"message": "m", "content": "eA=="}}),
        json!({"method": "PATCH", "path": "/repositories/123", "body": {"private": false}}),
        json!({"method": "PUT", "path": "/repositories/123/collaborators/x", "body": {}}),
        json!({"method": "POST", "path": "/repositories/123/keys", "body": {"key": "ssh-ed25519 AAAA"}}),
        json!({"method": "PUT", "path": "/teams/7/members/mallory", "body": {}}),
    ] {
        let (s, v) = submit(&app, &key, "github", "personal", write.clone()).await;
        assert_eq!(s, 403, "{write}: {v}");
    }
    nothing_queued_or_sent(&app).await;

    // The named form is what rules see: denied here by the owner's rule.
    let (s, _) = app
        .agent(&key)
        .get("/api/github/personal/repos/acme/private/contents/secret.txt")
        .await;
    assert_eq!(s, 403);
    // Organization routes that take the name (billing usage) are not numbers.
    Mock::given(method("GET"))
        .and(path("/organizations/acme/settings/billing/usage"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"usageItems": []})))
        .mount(&app.upstream)
        .await;
    let (s, v) = app
        .agent(&key)
        .get("/api/github/personal/organizations/acme/settings/billing/usage")
        .await;
    assert_eq!(s, 200, "{v}");
    // The list of public repositories, which has no number in its path, passes.
    Mock::given(method("GET"))
        .and(path("/repositories"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&app.upstream)
        .await;
    let (s, v) = app
        .agent(&key)
        .get("/api/github/personal/repositories?since=10")
        .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn bluesky_chat_settings_and_push_registrations_are_refused() {
    let app = spawn_app().await;
    add_bluesky(&app, "b");
    let key = app.new_agent("bot");
    let declaration = json!({"$type": "chat.bsky.actor.declaration", "allowIncoming": "all"});
    for write in [
        json!({"method": "POST", "path": "/com.atproto.repo.putRecord", "body":
            {"repo": "did:plc:me", "collection": "chat.bsky.actor.declaration", "rkey": "self", "record": declaration}}),
        json!({"method": "POST", "path": "/com.atproto.repo.createRecord", "body":
            {"repo": "did:plc:me", "collection": " Chat.Bsky.Actor.Declaration", "record": declaration}}),
        json!({"method": "POST", "path": "/com.atproto.repo.applyWrites", "body":
            {"repo": "did:plc:me", "writes": [{"$type": "com.atproto.repo.applyWrites#update",
              "collection": "chat.bsky.actor.declaration", "rkey": "self", "value": declaration}]}}),
        json!({"method": "POST", "path": "/app.bsky.notification.registerPush", "body":
            {"serviceDid": "did:web:evil.example", "token": "t", "platform": "web", "appId": "x"}}),
        json!({"method": "POST", "path": "/xrpc/app.bsky.notification.RegisterPush", "body": {}}),
    ] {
        let (s, v) = submit(&app, &key, "bluesky", "b", write.clone()).await;
        assert_eq!(s, 403, "{write}: {v}");
    }
    nothing_queued_or_sent(&app).await;
    let post = json!({"method": "POST", "path": "/com.atproto.repo.createRecord", "body":
        {"repo": "did:plc:me", "collection": "app.bsky.feed.post",
         "record": {"$type": "app.bsky.feed.post", "text": "about chat.bsky.convo", "createdAt": "2026-12-01T00:00:00Z"}}});
    let (s, v) = submit(&app, &key, "bluesky", "b", post).await;
    assert_eq!(s, 201, "{v}");
}
