//! Ready-made rules for the common wishes, per service, so that most people
//! never write a glob: read only, no deletions, and (where a service's paths
//! tell them apart) posts that need approval while comments do not.

use serde::Serialize;

use crate::policy::Effect;

/// A named set of rules. Applying it puts its refusals and always-ask rules
/// at the top of the account's rules (the first matching rule decides, so they
/// hold over older ones) and its run-without-asking rules at the end (so they
/// never loosen a rule the admin wrote).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preset {
    pub key: &'static str,
    pub name: &'static str,
    /// What it does, in one sentence.
    pub description: &'static str,
    #[serde(skip)]
    pub rules: &'static [(Option<&'static str>, &'static str, Effect)],
}

const READ_ONLY: Preset = Preset {
    key: "read-only",
    name: "Read only",
    description: "Agents may read; every write is refused.",
    rules: &[
        (Some("POST"), "/**", Effect::Deny),
        (Some("PUT"), "/**", Effect::Deny),
        (Some("PATCH"), "/**", Effect::Deny),
        (Some("DELETE"), "/**", Effect::Deny),
    ],
};

fn no_deletions(service: &str) -> Preset {
    let rules: &'static [(Option<&'static str>, &'static str, Effect)] = match service {
        // These services delete with a POST to a method of its own.
        // applyWrites may delete among other things: refused whole.
        "bluesky" => &[
            (Some("DELETE"), "/**", Effect::Deny),
            (Some("POST"), "/com.atproto.repo.deleterecord", Effect::Deny),
            (Some("POST"), "/com.atproto.repo.applywrites", Effect::Deny),
        ],
        // GraphQL mutations may delete: refused whole.
        "github" => &[
            (Some("DELETE"), "/**", Effect::Deny),
            (Some("POST"), "/graphql", Effect::Deny),
        ],
        "reddit" => &[
            (Some("DELETE"), "/**", Effect::Deny),
            (Some("POST"), "/api/del", Effect::Deny),
        ],
        _ => &[(Some("DELETE"), "/**", Effect::Deny)],
    };
    Preset {
        key: "no-deletions",
        name: "No deletions",
        description: "Agents may never delete anything (nor send the batch or GraphQL writes that could); other writes are decided as before.",
        rules,
    }
}

/// Comments run at once, new posts wait for a human, on services whose paths
/// tell the two apart (on Mastodon and Bluesky a reply and a post are the
/// same request, so they have no such preset).
fn comments_free(service: &str) -> Option<Preset> {
    let rules: &'static [(Option<&'static str>, &'static str, Effect)] = match service {
        "github" => &[
            (
                Some("POST"),
                "/repos/*/*/issues/*/comments",
                Effect::AutoApprove,
            ),
            (
                Some("POST"),
                "/repos/*/*/pulls/*/comments",
                Effect::AutoApprove,
            ),
            (Some("POST"), "/repos/*/*/issues", Effect::RequireApproval),
            (Some("POST"), "/repos/*/*/pulls", Effect::RequireApproval),
        ],
        "reddit" => &[
            (Some("POST"), "/api/comment", Effect::AutoApprove),
            (Some("POST"), "/api/submit", Effect::RequireApproval),
        ],
        "jira" => &[
            (Some("POST"), "/issue/*/comment", Effect::AutoApprove),
            (Some("POST"), "/issue", Effect::RequireApproval),
        ],
        "youtube" => &[
            (Some("POST"), "/committhreads", Effect::AutoApprove),
            (Some("POST"), "/comments", Effect::AutoApprove),
        ],
        "linkedin" => &[
            (
                Some("POST"),
                "/socialactions/*/comments",
                Effect::AutoApprove,
            ),
            (Some("POST"), "/ugcposts", Effect::RequireApproval),
            (Some("POST"), "/posts", Effect::RequireApproval),
        ],
        _ => return None,
    };
    Some(Preset {
        key: "comments-free",
        name: "Posts need approval, comments don't",
        description: "Comments run without asking unless a rule of yours says otherwise; new posts always wait for your approval, even from a trusted agent.",
        rules,
    })
}

/// The presets offered for a service.
pub fn for_service(service: &str) -> Vec<Preset> {
    let mut all = vec![READ_ONLY, no_deletions(service)];
    all.extend(comments_free(service));
    all
}

pub fn find(service: &str, key: &str) -> Option<Preset> {
    for_service(service).into_iter().find(|p| p.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_has_read_only_and_no_deletions_and_valid_globs() {
        for def in crate::services::REGISTRY {
            let presets = for_service(def.key);
            assert!(presets.iter().any(|p| p.key == "read-only"));
            assert!(presets.iter().any(|p| p.key == "no-deletions"));
            for p in &presets {
                for (_, path, _) in p.rules {
                    crate::policy::check_glob(path).unwrap();
                    assert_eq!(*path, path.to_lowercase(), "stored lower-case");
                }
            }
        }
        assert!(find("mastodon", "comments-free").is_none());
        assert!(find("github", "comments-free").is_some());
    }
}
