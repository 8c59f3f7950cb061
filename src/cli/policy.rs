//! `agentgate access`, `agentgate rules` and `agentgate grants`: who may do
//! what, from the terminal, so that a headless server is configured without
//! the admin API. Rules are numbered from 1 as the dry run names them. Every
//! command prints plain words, or JSON with `--json`. Grant paths may come
//! from an agent's request, so they pass through `display::terminal_line`.

use std::process::ExitCode;

use agentgate_core::policy::{AccessMode, Effect};
use agentgate_core::{Gateway, GrantSpec, PolicyView, RuleEdit, RuleSpec, display, presets};
use clap::Subcommand;

use super::{Global, print_json};

#[derive(Subcommand)]
pub(super) enum AccessCommand {
    /// Who may use an account
    Show { service: String, account: String },
    /// Sets who may use an account: all, only (the agents named) or except (all but them)
    Set {
        service: String,
        account: String,
        #[arg(value_parser = ["all", "only", "except", "allowlist", "denylist"])]
        mode: String,
        /// The agents, by name
        agents: Vec<String>,
    },
}

#[derive(Subcommand)]
pub(super) enum RulesCommand {
    /// An account's rules, in order, in plain words
    List { service: String, account: String },
    /// Adds a rule (at the end, or at --at N)
    Add {
        service: String,
        account: String,
        /// GET, HEAD, POST, PUT, PATCH, DELETE or any
        #[arg(long, default_value = "any")]
        method: String,
        /// A path pattern: `*` matches within one segment, `**` across them
        #[arg(long)]
        path: String,
        /// deny, allow, require_approval or auto_approve
        #[arg(long)]
        effect: String,
        /// Only for this agent (repeat for several; none: every agent)
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// Its number once added (1 is first)
        #[arg(long)]
        at: Option<usize>,
    },
    /// Removes rule N
    Remove {
        service: String,
        account: String,
        number: usize,
    },
    /// Moves rule FROM to position TO
    Move {
        service: String,
        account: String,
        from: usize,
        to: usize,
    },
    /// The presets a service offers
    Presets { service: String },
    /// Puts a preset's rules at the top of the account's rules
    Preset {
        service: String,
        account: String,
        preset: String,
        /// Only for this agent (repeat for several; none: every agent)
        #[arg(long = "agent")]
        agents: Vec<String>,
    },
    /// What would happen to a request of an agent, and why; nothing is sent
    DryRun {
        service: String,
        account: String,
        #[arg(long)]
        agent: String,
        #[arg(long, default_value = "POST")]
        method: String,
        /// The path as the agent would send it
        path: String,
    },
}

#[derive(Subcommand)]
pub(super) enum GrantsCommand {
    /// Running grants, soonest to end first
    List,
    /// Lets an agent's writes to an account run without asking, for a while
    Add {
        #[arg(long)]
        agent: String,
        /// service/name
        #[arg(long)]
        account: String,
        /// 1 to 1440
        #[arg(long)]
        minutes: i64,
        /// Only this write method
        #[arg(long)]
        method: Option<String>,
        /// Only paths this pattern matches
        #[arg(long)]
        path: Option<String>,
    },
    /// Ends a grant at once
    Revoke { id: i64 },
}

/// A rule number as people count (from 1) to a position.
fn position(n: usize) -> anyhow::Result<usize> {
    n.checked_sub(1)
        .ok_or_else(|| anyhow::anyhow!("rules are numbered from 1"))
}

fn print_policy(g: &Global, service: &str, account: &str, p: &PolicyView) -> anyhow::Result<()> {
    if g.json {
        return print_json(p);
    }
    println!("{service}/{account}: {}", p.access_words);
    if p.rules.is_empty() {
        println!("no rules: reads run, writes wait for you unless the agent is trusted or granted");
    }
    for (i, (r, words)) in p.rules.iter().zip(&p.rule_words).enumerate() {
        println!(
            "{:>3}. {words}\n     {} {} → {}{}",
            i + 1,
            r.method.as_deref().unwrap_or("any"),
            r.path,
            r.effect.as_str(),
            if r.agents.is_empty() {
                String::new()
            } else {
                format!(" (for {})", r.agents.join(", "))
            }
        );
    }
    Ok(())
}

pub(super) fn access(g: &Global, gw: Gateway, cmd: AccessCommand) -> anyhow::Result<ExitCode> {
    let (service, account, p) = match cmd {
        AccessCommand::Show { service, account } => {
            let p = gw.account_policy(&service, &account)?;
            (service, account, p)
        }
        AccessCommand::Set {
            service,
            account,
            mode,
            agents,
        } => {
            let mode = match mode.as_str() {
                "only" | "allowlist" => AccessMode::Allowlist,
                "except" | "denylist" => AccessMode::Denylist,
                _ => AccessMode::All,
            };
            if mode != AccessMode::All && agents.is_empty() {
                anyhow::bail!(
                    "name the agents: agentgate access set {service} {account} only AGENT..."
                );
            }
            let p = gw.set_account_access(&service, &account, mode, &agents)?;
            (service, account, p)
        }
    };
    if g.json {
        print_json(&p)?;
    } else {
        println!("{service}/{account}: {}", p.access_words);
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn rules(g: &Global, gw: Gateway, cmd: RulesCommand) -> anyhow::Result<ExitCode> {
    let (service, account, edit) = match cmd {
        RulesCommand::List { service, account } => {
            let p = gw.account_policy(&service, &account)?;
            print_policy(g, &service, &account, &p)?;
            return Ok(ExitCode::SUCCESS);
        }
        RulesCommand::Presets { service } => {
            let def = agentgate_core::services::find(&service)
                .ok_or_else(|| anyhow::anyhow!("unknown service {service:?}"))?;
            let all = presets::for_service(def.key);
            if g.json {
                print_json(&all)?;
            } else {
                for p in all {
                    println!("{:<14} {}: {}", p.key, p.name, p.description);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        RulesCommand::DryRun {
            service,
            account,
            agent,
            method,
            path,
        } => {
            let d = gw.dry_run(&service, &account, &agent, &method, &path)?;
            if g.json {
                print_json(&d)?;
            } else {
                let p = gw.account_policy(&service, &account)?;
                println!(
                    "{}",
                    serde_json::to_value(d.outcome)?.as_str().unwrap_or("")
                );
                match d.rule {
                    Some(i) => println!(
                        "deciding rule: {} ({})",
                        i + 1,
                        p.rule_words.get(i).map_or("", String::as_str)
                    ),
                    None => println!("deciding rule: none"),
                }
                println!("why: {}", display::terminal_line(&d.reason));
            }
            return Ok(ExitCode::SUCCESS);
        }
        RulesCommand::Add {
            service,
            account,
            method,
            path,
            effect,
            agents,
            at,
        } => {
            let effect = Effect::parse(&effect).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown effect {effect:?}: deny, allow, require_approval or auto_approve"
                )
            })?;
            let rule = RuleSpec {
                method: Some(method),
                path,
                agents,
                effect,
            };
            let at = at.map(position).transpose()?;
            (service, account, RuleEdit::Add { rule, at })
        }
        RulesCommand::Remove {
            service,
            account,
            number,
        } => (
            service,
            account,
            RuleEdit::Remove {
                index: position(number)?,
            },
        ),
        RulesCommand::Move {
            service,
            account,
            from,
            to,
        } => (
            service,
            account,
            RuleEdit::Move {
                from: position(from)?,
                to: position(to)?,
            },
        ),
        RulesCommand::Preset {
            service,
            account,
            preset,
            agents,
        } => (
            service,
            account,
            RuleEdit::Preset {
                key: preset,
                agents,
            },
        ),
    };
    let p = gw.edit_rules(&service, &account, edit, None)?;
    print_policy(g, &service, &account, &p)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn grants(g: &Global, gw: Gateway, cmd: GrantsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        GrantsCommand::List => {
            let all = gw.grants()?;
            if g.json {
                print_json(&all)?;
            } else if all.is_empty() {
                eprintln!("no grants are running");
            } else {
                for gr in all {
                    println!("{:>4}  {}", gr.id, display::terminal_line(&gr.words));
                }
            }
        }
        GrantsCommand::Add {
            agent,
            account,
            minutes,
            method,
            path,
        } => {
            let (service, account) = account.split_once('/').ok_or_else(|| {
                anyhow::anyhow!("--account is service/name, e.g. github/personal")
            })?;
            let gr = gw.grant(&GrantSpec {
                agent,
                service: service.to_string(),
                account: account.to_string(),
                minutes,
                method,
                path,
            })?;
            if g.json {
                print_json(&gr)?;
            } else {
                println!("{:>4}  {}", gr.id, display::terminal_line(&gr.words));
            }
        }
        GrantsCommand::Revoke { id } => {
            gw.revoke_grant(id)?;
            eprintln!("grant {id} revoked: the agent's next write waits for you again");
        }
    }
    Ok(ExitCode::SUCCESS)
}
