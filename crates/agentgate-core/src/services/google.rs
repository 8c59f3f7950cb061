//! Google Calendar and YouTube: Google OAuth2 (authorization code, PKCE, offline
//! access). One Google OAuth client serves both.

use serde_json::Value;

use super::{Auth, Category, ClientAuth, Danger, OAuthSpec, ServiceDef};

pub static GOOGLE_CALENDAR_OAUTH: OAuthSpec = OAuthSpec {
    provider: "google",
    authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
    token_url: "https://oauth2.googleapis.com/token",
    scopes: &["https://www.googleapis.com/auth/calendar"],
    pkce: true,
    client_auth: ClientAuth::RequestBody,
    // Offline access yields a refresh token; consent makes Google send it again
    // when the account is reconnected.
    extra_params: &[("access_type", "offline"), ("prompt", "consent")],
};

pub static YOUTUBE_OAUTH: OAuthSpec = OAuthSpec {
    scopes: &["https://www.googleapis.com/auth/youtube"],
    ..GOOGLE_CALENDAR_OAUTH
};

pub static CALENDAR: ServiceDef = ServiceDef {
    key: "calendar",
    category: Category::Personal,
    aliases: &["google_calendar"],
    display_name: "Google Calendar",
    description: "Calendars and events in Google Calendar.",
    auth: Auth::OAuth2(&GOOGLE_CALENDAR_OAUTH),
    default_base_url: Some("https://www.googleapis.com/calendar/v3"),
    base_url_template: None,
    credential_fields: &[],
    blocked: &[],
    control: &[],
    by_number: &[],
    privacy: "Nothing is blocked beyond the token's scope; deleting, replacing, moving events and changing who can see a calendar need a human's second confirmation.",
    example_reads: &[
        "/users/me/calendarList",
        "/calendars/primary/events?maxResults=10&singleEvents=true&orderBy=startTime&timeMin={RFC 3339 time}",
        "/calendars/primary/events/{eventId}",
    ],
    write_guidelines: &[
        "Create an event: POST /calendars/primary/events with {\"summary\", \"start\": {\"dateTime\"}, \"end\": {\"dateTime\"}}.",
        "Delete an event: DELETE /calendars/primary/events/{eventId}. Say in the comment which event it is (title and time).",
    ],
    identity_path: "/calendars/primary",
    identity_name: |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_string),
    default_headers: &[],
    write_check: None,
    compact: None,
    instance_oauth: None,
    private_items: None,
    reroute: None,
    private_in_answer: None,
    dangers: &[
        Danger::new("PUT", "/calendars/*/events/*", "replaces an event"),
        Danger::new(
            "POST",
            "/calendars/*/events/*/move",
            "moves an event to another calendar",
        ),
        Danger::new(
            "POST",
            "/calendars/*/acl",
            "shares the calendar with someone",
        ),
        Danger::new(
            "PUT",
            "/calendars/*/acl/*",
            "changes who the calendar is shared with",
        ),
        Danger::new(
            "PATCH",
            "/calendars/*/acl/*",
            "changes who the calendar is shared with",
        ),
        Danger::new(
            "POST",
            "/calendars/*/clear",
            "deletes every event of the calendar",
        ),
    ],
    summarize: Some(super::summary::calendar),
};

pub static YOUTUBE: ServiceDef = ServiceDef {
    key: "youtube",
    category: Category::Social,
    aliases: &[],
    display_name: "YouTube",
    description: "Channels, playlists, videos and comments on YouTube.",
    auth: Auth::OAuth2(&YOUTUBE_OAUTH),
    default_base_url: Some("https://www.googleapis.com/youtube/v3"),
    base_url_template: None,
    credential_fields: &[],
    blocked: &[],
    control: &[],
    by_number: &[],
    privacy: "Nothing is blocked beyond the token's scope; deletions and replacements need a human's second confirmation.",
    example_reads: &[
        "/channels?part=snippet,statistics&mine=true",
        "/playlists?part=snippet&mine=true",
        "/search?part=snippet&q={query}&type=video",
        "/commentThreads?part=snippet&videoId={id}",
    ],
    write_guidelines: &[
        "Add to a playlist: POST /playlistItems?part=snippet with {\"snippet\": {\"playlistId\", \"resourceId\": {\"kind\": \"youtube#video\", \"videoId\"}}}.",
        "Comment: POST /commentThreads?part=snippet.",
    ],
    identity_path: "/channels?part=snippet&mine=true",
    identity_name: |v: &Value| {
        v.pointer("/items/0/snippet/title")
            .and_then(Value::as_str)
            .map(str::to_string)
    },
    default_headers: &[],
    write_check: None,
    compact: None,
    instance_oauth: None,
    private_items: None,
    reroute: None,
    private_in_answer: None,
    dangers: &[
        Danger::new(
            "PUT",
            "/videos",
            "replaces a video's title, description and settings",
        ),
        Danger::new("PUT", "/playlists", "replaces a playlist's details"),
    ],
    summarize: None,
};
