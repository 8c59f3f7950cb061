//! `agentgate queue`: the write queue from the terminal. A person approving
//! here sees every byte that will be sent (`show`), approves exactly that (the
//! digest), and may change it first (`edit`). Whatever an agent wrote goes
//! through `agentgate_core::display`, so no escape sequence reaches the
//! terminal and no line of agent text can pass for one of these.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use agentgate_core::display;
use agentgate_core::queue::{Entry, Status, WriteRequest};
use agentgate_core::{EntryFilter, Gateway, services};
use anyhow::Context;

use super::{Global, QueueCommand, REVIEWER, print_json};

pub(super) async fn queue(g: &Global, gw: Gateway, cmd: QueueCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        QueueCommand::List {
            status,
            agent,
            limit,
        } => {
            let entries = gw.entries(&EntryFilter {
                status,
                agent_name: agent,
                limit: Some(limit),
                ..Default::default()
            })?;
            if g.json {
                print_json(&entries)?;
            } else if entries.is_empty() {
                eprintln!("no queue entries");
            } else {
                println!(
                    "{:<13} {:<10} {:<16} {:<20} {:<24} COMMENT",
                    "ID", "STATUS", "AGENT", "ACCOUNT", "SUBMITTED"
                );
                for e in entries {
                    println!(
                        "{:<13} {:<10} {:<16} {:<20} {:<24} {}",
                        e.id,
                        e.status,
                        display::terminal_line(&e.agent_name),
                        display::terminal_line(&format!("{}/{}", e.service, e.account_name)),
                        e.submitted_at,
                        one_line(&e.comment, 60)
                    );
                }
            }
        }
        QueueCommand::Show { id } => {
            let e = gw.entry(&id)?;
            if g.json {
                print_json(&e)?;
            } else {
                describe_entry(&gw, &e);
            }
        }
        QueueCommand::Approve { id, digest } => {
            let digest = match digest {
                Some(d) => d,
                None => confirm_on_terminal(&gw, &id)?,
            };
            let e = gw.approve_and_run(&id, &digest, REVIEWER).await?;
            if g.json {
                print_json(&e)?;
            } else {
                describe_entry(&gw, &e);
            }
            if e.status == Status::Failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        QueueCommand::Edit { id } => {
            let e = edit(&gw, &id)?;
            if g.json {
                print_json(&e)?;
            } else {
                describe_entry(&gw, &e);
                eprintln!(
                    "edited; approve it with: agentgate queue approve {} --digest {}",
                    e.id, e.digest
                );
            }
        }
        QueueCommand::Reject { id, reason } => {
            let e = gw.reject(&id, REVIEWER, reason)?;
            if g.json {
                print_json(&e)?;
            } else {
                eprintln!("rejected {}", e.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Without a digest on the command line, the entry is shown whole on the
/// terminal and approved only by an explicit "yes": the digest approved is
/// the one of what was just shown.
fn confirm_on_terminal(gw: &Gateway, id: &str) -> anyhow::Result<String> {
    let e = gw.entry(id)?;
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "say what you approve: agentgate queue approve {id} --digest DIGEST, \
             with the digest `agentgate queue show {id}` printed"
        );
    }
    describe_entry(gw, &e);
    eprint!("Approve exactly this and run it now? Type yes: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("cannot read from the terminal")?;
    if answer.trim() != "yes" {
        anyhow::bail!("not approved");
    }
    Ok(e.digest)
}

/// Opens the editor on the entry's requests as JSON and saves the result as
/// the human's edit, bound to the digest of what the editor was given.
fn edit(gw: &Gateway, id: &str) -> anyhow::Result<Entry> {
    let e = gw.entry(id)?;
    if e.status != Status::Pending {
        anyhow::bail!(
            "entry {id} is {}; only pending entries can be edited",
            e.status
        );
    }
    let text = serde_json::to_string_pretty(&e.requests)? + "\n";
    let mut file = tempfile::Builder::new()
        .prefix("agentgate-edit-")
        .suffix(".json")
        .tempfile()
        .context("cannot create a file to edit")?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    // The editor variable may carry arguments ("code --wait"); the file's
    // path is always the last one, never parsed by a shell.
    let mut words = editor.split_whitespace();
    let program = words.next().context("$EDITOR is empty")?;
    let status = std::process::Command::new(program)
        .args(words)
        .arg(file.path())
        .status()
        .with_context(|| format!("cannot start the editor {program:?}"))?;
    if !status.success() {
        anyhow::bail!("the editor exited with {status}; nothing was changed");
    }
    let edited = std::fs::read_to_string(file.path()).context("cannot read the edited file")?;
    if edited.trim() == text.trim() {
        anyhow::bail!("nothing was changed");
    }
    let requests: serde_json::Value = serde_json::from_str(&edited)
        .context("the edited requests are not valid JSON; nothing was changed")?;
    Ok(gw.edit(id, &e.digest, requests, REVIEWER)?)
}

/// An entry in full, as a person deciding on it needs it: every request with
/// its summary, its whole URL, its query decoded, the headers sent and the
/// body as it will be sent; the digest an approval names.
pub(super) fn describe_entry(gw: &Gateway, e: &Entry) {
    println!(
        "{} {} — {} on {}/{}",
        e.id,
        e.status,
        display::terminal_line(&e.agent_name),
        e.service,
        display::terminal_line(&e.account_name)
    );
    println!("submitted {}", e.submitted_at);
    println!(
        "comment (the agent's words): {}",
        display::quoted(&e.comment)
    );
    if e.edited {
        println!(
            "EDITED by {} before approval (the agent's own requests are kept)",
            display::terminal_line(e.edited_by.as_deref().unwrap_or("a human"))
        );
    }
    let base = gw
        .account_info(&e.service, &e.account_name)
        .map(|a| a.base_url)
        .unwrap_or_default();
    let def = services::find(&e.service);
    for (i, r) in e.requests.iter().enumerate() {
        describe_request(def, &base, i, r);
    }
    println!("digest {}", e.digest);
    if let Some(reason) = &e.rejection_reason {
        println!("reason: {}", display::quoted(reason));
    }
    for r in &e.results {
        match (&r.status, &r.error) {
            (Some(s), _) => println!(
                "  result [{}] {} {}",
                r.index,
                if r.ok { "ok" } else { "FAILED" },
                s
            ),
            (None, Some(err)) => println!(
                "  result [{}] FAILED {}",
                r.index,
                display::terminal_line(err)
            ),
            _ => {}
        }
    }
}

fn describe_request(def: Option<&services::ServiceDef>, base: &str, i: usize, r: &WriteRequest) {
    println!(
        "  [{i}] {} {}",
        display::terminal_line(&r.method),
        display::terminal_line(&format!("{base}{}", r.path))
    );
    if let Some(d) = def {
        println!("      summary: {}", display::terminal_line(&d.describe(r)));
        if let Some(what) = d.danger(r) {
            println!("      DESTRUCTIVE: this {what}");
        }
    }
    for (name, value) in r.query() {
        println!(
            "      query {}: {}",
            display::quoted(&name),
            display::quoted(&value)
        );
    }
    for (name, value) in &r.headers {
        println!(
            "      header {}: {}",
            display::terminal_line(name),
            display::quoted(value)
        );
    }
    if let Some(fields) = r.form_fields() {
        println!("      body (form fields):");
        for (name, value) in fields {
            println!(
                "        {} = {}",
                display::quoted(&name),
                display::quoted(&value)
            );
        }
        return;
    }
    match &r.body {
        None => println!("      no body"),
        Some(body) => {
            println!("      body (JSON):");
            let pretty = serde_json::to_string_pretty(body).unwrap_or_default();
            println!("{}", display::terminal_block(&pretty, "        "));
        }
    }
}

/// Agent text cut to one line of at most `max` characters for a table cell,
/// with nothing in it a terminal would act on.
fn one_line(s: &str, max: usize) -> String {
    let flat = display::terminal_line(&s.split_whitespace().collect::<Vec<_>>().join(" "));
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    } else {
        flat
    }
}
