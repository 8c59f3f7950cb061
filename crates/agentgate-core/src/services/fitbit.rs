//! Fitbit: OAuth2 authorization code with PKCE and refresh.

use serde_json::Value;

use super::{Auth, Category, ClientAuth, OAuthSpec, ServiceDef};
use crate::paths::BlockRule;

pub static FITBIT_OAUTH: OAuthSpec = OAuthSpec {
    provider: "fitbit",
    authorize_url: "https://www.fitbit.com/oauth2/authorize",
    token_url: "https://api.fitbit.com/oauth2/token",
    scopes: &[
        "activity",
        "heartrate",
        "sleep",
        "profile",
        "weight",
        "nutrition",
    ],
    pkce: true,
    client_auth: ClientAuth::Basic,
    extra_params: &[],
};

pub static FITBIT: ServiceDef = ServiceDef {
    key: "fitbit",
    category: Category::Personal,
    aliases: &[],
    display_name: "Fitbit",
    description: "Activity, sleep, heart rate and body measurements from Fitbit.",
    auth: Auth::OAuth2(&FITBIT_OAUTH),
    default_base_url: Some("https://api.fitbit.com"),
    base_url_template: None,
    credential_fields: &[],
    blocked: &[],
    control: &[BlockRule("/oauth2"), BlockRule("/1.1/oauth2")],
    privacy: "All of it is health data, readable as connected; the token endpoints are never an agent's (403).",
    example_reads: &[
        "/1/user/-/profile.json",
        "/1/user/-/activities/date/today.json",
        "/1.2/user/-/sleep/date/today.json",
        "/1/user/-/activities/heart/date/today/1d.json",
    ],
    by_number: &[],
    write_guidelines: &[
        "Log a weight: POST /1/user/-/body/log/weight.json?weight=72.5&date=yyyy-MM-dd.",
    ],
    identity_path: "/1/user/-/profile.json",
    identity_name: |v: &Value| {
        v.pointer("/user/displayName")
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
    dangers: &[],
    summarize: None,
};
