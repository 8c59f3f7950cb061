//! Discovery documents for agents, generated from the service registry and the
//! accounts that exist, so they never drift from what the gateway does.

use serde_json::{Value, json};

use crate::agent::Agent;
use crate::config::{MAX_BATCH_REQUESTS, MAX_COMMENT_CHARS};
use crate::error::Result;
use crate::gateway::{AccountInfo, Gateway};
use crate::services::{self, Category};

fn account_doc(gw: &Gateway, a: &AccountInfo) -> Value {
    let def = services::find(&a.service);
    let base = &gw.base_url();
    json!({
        "service": a.service,
        "account": a.name,
        "display_name": a.service_name,
        "description": def.map(|d| d.description),
        "read": format!("GET {base}/api/{}/{}/{{path}}", a.service, a.name),
        "submit": format!("POST {base}/api/queue/{}/{}/submit", a.service, a.name),
        "upstream_base_url": a.base_url,
        "example_reads": def.map(|d| d.example_reads.iter()
            .map(|p| format!("/api/{}/{}{}", a.service, a.name, p)).collect::<Vec<_>>()),
        "write_guidelines": def.map(|d| d.write_guidelines),
        "blocked_paths": def.map(|d| d.blocked.iter().chain(d.control).map(|b| b.0).collect::<Vec<_>>()),
        "privacy": def.map(|d| d.privacy),
    })
}

/// The accounts this agent may use: the only ones its documents mention.
fn usable(gw: &Gateway, agent: &Agent) -> Result<Vec<AccountInfo>> {
    Ok(gw
        .accounts()?
        .into_iter()
        .filter(|a| gw.agent_may_use(agent, &a.service, &a.name))
        .collect())
}

pub fn services(gw: &Gateway, agent: &Agent) -> Result<Value> {
    let accounts = usable(gw, agent)?;
    Ok(json!({
        "count": accounts.len(),
        "services": accounts.iter().map(|a| account_doc(gw, a)).collect::<Vec<_>>(),
    }))
}

pub fn account(gw: &Gateway, agent: &Agent, service: &str, account: &str) -> Result<Value> {
    let denied = |service: &str| {
        crate::error::Error::Forbidden(format!("Access denied to {service}/{account}"))
    };
    // No account of that name answers as one the agent may not use.
    let info = match gw.account_info(service, account) {
        Ok(info) => info,
        Err(crate::error::Error::NotFound(m)) => {
            return Err(match crate::services::find(service) {
                Some(def) => denied(def.key),
                None => crate::error::Error::NotFound(m),
            });
        }
        Err(e) => return Err(e),
    };
    if !gw.agent_may_use(agent, service, account) {
        return Err(crate::error::Error::Forbidden(format!(
            "Access denied to {}/{}",
            info.service, info.name
        )));
    }
    Ok(account_doc(gw, &info))
}

pub fn readme(gw: &Gateway, agent: &Agent) -> Result<Value> {
    let base = &gw.base_url();
    let accounts = usable(gw, agent)?;
    Ok(json!({
        "name": "agentgate",
        "description": "A gateway to your human's online accounts. Reads run at once with the account's \
            credentials injected (you never see them). Writes are queued until a human approves them.",
        "base_url": base,
        "you": {"agent": agent.name},
        "authentication": "Send \"Authorization: Bearer <your key>\" on every /api request.",
        "services": accounts.iter().map(|a| account_doc(gw, a)).collect::<Vec<_>>(),
        "reads": {
            "how": format!("GET {base}/api/{{service}}/{{account}}/{{path}}?{{query}}"),
            "answer": "The service's own status code and body.",
            "blocked": "Private messages and similar paths answer 403: they are blocked for privacy.",
            "account_info": format!("GET {base}/api/{{service}}/{{account}} describes an account with example paths."),
        },
        "writes": {
            "submit": format!("POST {base}/api/queue/{{service}}/{{account}}/submit"),
            "body": {
                "requests": [{"method": "POST | PUT | PATCH | DELETE", "path": "/path/relative/to/the/service/api",
                              "body": "a JSON value, or a form string a=1&b=2 with content-type application/x-www-form-urlencoded (optional)",
                              "headers": "object of strings (optional): accept, accept-language, content-type, if-match, if-none-match, if-modified-since, if-unmodified-since, idempotency-key, prefer, x-github-api-version, linkedin-version, x-restli-protocol-version"}],
                "comment": "required: why you want this; a human decides on it",
            },
            "answer": "201 {\"id\", \"status\": \"pending\", \"message\"}",
            "status": format!("GET {base}/api/queue/{{service}}/{{account}}/status/{{id}}"),
            "withdraw": format!("DELETE {base}/api/queue/{{service}}/{{account}}/status/{{id}} with optional {{\"reason\"}}"),
            "list": [format!("GET {base}/api/queue/list"), format!("GET {base}/api/queue/{{service}}/{{account}}/list")],
            "list_pages": "Lists answer {count, entries, next}: summaries (method and path of each request, results without bodies), 50 at a time (?limit= up to 100); pass next as ?before= for more. The status of one entry has everything.",
            "states": "pending -> approved -> executing -> completed | failed; pending -> rejected | withdrawn",
            "batches": "Requests run in order and stop at the first failure. results is a list of {index, ok, status, body} or {index, ok: false, error}.",
            "shortcut": "POST/PUT/PATCH/DELETE on a read URL queues that one request (answer 202); put the comment in an X-Agentgate-Comment header.",
            "guidelines": [
                "Say in the comment exactly what the write does and why; the human sees it beside the request.",
                "Do not resubmit while an entry is pending; poll its status.",
                "A rejected entry carries the human's reason; take it into account.",
                "The human may edit your requests before approving: then the entry says edited: true, requests are what runs and original_requests are yours.",
            ],
        },
        "webhooks": "If your admin set a webhook URL for you, agentgate POSTs {\"text\", \"mode\": \"now\"} to it when one of your entries is completed, failed or rejected.",
        "limits": {
            "max_request_body_bytes": crate::config::DEFAULT_MAX_BODY_BYTES,
            "max_batch_requests": MAX_BATCH_REQUESTS,
            "max_comment_chars": MAX_COMMENT_CHARS,
            "upstream_timeout_secs": gw.settings().upstream_timeout_secs,
            "max_upstream_response_bytes": gw.config().max_response_bytes,
        },
    }))
}

pub fn skill(gw: &Gateway, agent: &Agent) -> Result<String> {
    let base = &gw.base_url();
    let accounts = usable(gw, agent)?;
    let mut text = format!(
        "---\nname: agentgate\ndescription: Read the user's online accounts and propose writes for human approval through the agentgate gateway at {base}.\n---\n\n\
# agentgate\n\n\
agentgate holds the user's account credentials. You read through it directly and\n\
propose writes that a human approves before they run. You never see a credential.\n\n\
## Authentication\n\n\
Send `Authorization: Bearer $AGENTGATE_KEY` on every request. The key is given to\n\
you separately; never print it or write it into files.\n\n\
## Start here\n\n\
`GET {base}/api/agent_start_here` describes the gateway, your accounts and the limits.\n\n\
## Reading\n\n\
`GET {base}/api/{{service}}/{{account}}/{{path}}?{{query}}` returns the service's own answer.\n\
Private messages and similar paths are blocked (403).\n\n\
## Writing\n\n\
```\nPOST {base}/api/queue/{{service}}/{{account}}/submit\n\
{{\"requests\": [{{\"method\": \"POST\", \"path\": \"/...\", \"body\": {{}}}}], \"comment\": \"why\"}}\n```\n\n\
The answer holds an `id`. Poll `GET {base}/api/queue/{{service}}/{{account}}/status/{{id}}`\n\
until `status` is `completed`, `failed`, `rejected` or `withdrawn`. Always explain the\n\
write in `comment`: a human decides on it.\n\n## Accounts\n\n"
    );
    if accounts.is_empty() {
        text.push_str("No accounts are connected yet.\n");
    }
    for a in &accounts {
        text.push_str(&format!(
            "- `{}/{}` ({})\n",
            a.service, a.name, a.service_name
        ));
    }
    let categories: Vec<Category> = Category::ALL
        .into_iter()
        .filter(|c| accounts.iter().any(|a| category_of(a) == Some(*c)))
        .collect();
    if !categories.is_empty() {
        text.push_str("\n## Skills by category\n\nDetailed instructions per kind of account:\n\n");
        for c in categories {
            text.push_str(&format!(
                "- {}: `GET {base}/api/skill/{}`\n",
                c.as_str(),
                c.as_str()
            ));
        }
    }
    Ok(text)
}

fn category_of(a: &AccountInfo) -> Option<Category> {
    services::find(&a.service).map(|d| d.category)
}

/// A skill for one category of the agent's accounts (code, social, personal),
/// with each account's example reads, write guidelines and blocked paths.
/// `None` when the agent has no account of that category.
pub fn category_skill(gw: &Gateway, agent: &Agent, category: &str) -> Result<Option<String>> {
    let Some(cat) = Category::ALL.into_iter().find(|c| c.as_str() == category) else {
        return Ok(None);
    };
    let base = gw.base_url();
    let accounts: Vec<AccountInfo> = usable(gw, agent)?
        .into_iter()
        .filter(|a| category_of(a) == Some(cat))
        .collect();
    if accounts.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = accounts
        .iter()
        .map(|a| format!("{} ({})", a.service_name, a.name))
        .collect();
    let c = cat.as_str();
    let mut text = format!(
        "---\nname: agentgate-{c}\ndescription: Read and propose writes to the user's {c} accounts through agentgate: {}.\n---\n\n",
        names.join(", ")
    );
    text.push_str(&format!(
        "# agentgate: {c} accounts\n\nAuthenticate every request with `Authorization: Bearer $AGENTGATE_KEY`. \
         Reads run at once; writes go to `POST {base}/api/queue/{{service}}/{{account}}/submit` and wait for a human \
         (`GET {base}/api/skill` explains the queue).\n"
    ));
    for a in &accounts {
        let Some(def) = services::find(&a.service) else {
            continue;
        };
        text.push_str(&format!(
            "\n## {} `{}/{}`\n\n{}\n\nRead: `GET {base}/api/{}/{}/{{path}}`\n\nExamples:\n",
            def.display_name, a.service, a.name, def.description, a.service, a.name
        ));
        for e in def.example_reads {
            text.push_str(&format!("- `GET {base}/api/{}/{}{e}`\n", a.service, a.name));
        }
        if !def.write_guidelines.is_empty() {
            text.push_str("\nWrites:\n");
            for w in def.write_guidelines {
                text.push_str(&format!("- {w}\n"));
            }
        }
        text.push_str(&format!("\nPrivacy: {}\n", def.privacy));
        if !def.blocked.is_empty() {
            let blocked: Vec<&str> = def.blocked.iter().map(|b| b.0).collect();
            text.push_str(&format!(
                "\nBlocked for privacy (403): `{}`\n",
                blocked.join("`, `")
            ));
        }
        if !def.control.is_empty() {
            let control: Vec<&str> = def.control.iter().map(|b| b.0).collect();
            text.push_str(&format!(
                "\nAccount control, never an agent's (403): `{}`\n",
                control.join("`, `")
            ));
        }
    }
    Ok(Some(text))
}
