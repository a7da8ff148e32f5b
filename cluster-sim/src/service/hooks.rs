//! The spec's `[[hook]]` tables: a command run on chosen nodes at a point of the cluster's
//! life (`after_up`, `before_down`, `after_restart`), resolved to node names at parse time so a
//! wrong node or role is an error at its file, line and key.

use serde::Deserialize;
use toml::Spanned;

use crate::error::SpecError;
use crate::located::Src;

pub use super::hook_when::HookWhen;

/// One `[[hook]]`, its nodes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// When it runs.
    pub when: HookWhen,
    /// The nodes it runs on, in spec order (`node`, the nodes with one of `roles`, or all).
    pub nodes: Vec<String>,
    /// The shell command (`sh -c`), run with the node's environment.
    pub command: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHook {
    when: Spanned<String>,
    node: Option<Spanned<String>>,
    roles: Option<Spanned<Vec<String>>>,
    command: Spanned<String>,
}

/// Resolves every `[[hook]]` against the spec's nodes: `(name, roles)` in spec order.
pub(crate) fn hooks(
    src: &Src<'_>,
    raw: &[RawHook],
    nodes: &[(&str, &[String])],
) -> Result<Vec<HookSpec>, SpecError> {
    let mut out = Vec::new();
    for (i, h) in raw.iter().enumerate() {
        let key = |k: &str| format!("hook[{i}].{k}");
        let err = |span: std::ops::Range<usize>, k: &str, m: String| {
            SpecError::from(src.at(span, &key(k), m))
        };
        let when = HookWhen::named(h.when.get_ref()).ok_or_else(|| {
            err(
                h.when.span(),
                "when",
                format!(
                    "unknown hook time {:?} (expected after_up, before_down or after_restart)",
                    h.when.get_ref()
                ),
            )
        })?;
        if h.command.get_ref().trim().is_empty() {
            return Err(err(
                h.command.span(),
                "command",
                "the command is empty".into(),
            ));
        }
        let chosen: Vec<String> = match (&h.node, &h.roles) {
            (Some(n), Some(_)) => {
                return Err(err(
                    n.span(),
                    "node",
                    "a hook names a `node` or `roles`, not both".into(),
                ))
            }
            (Some(n), None) => {
                if !nodes.iter().any(|(name, _)| name == n.get_ref()) {
                    return Err(err(
                        n.span(),
                        "node",
                        format!(
                            "no node {:?} in this spec (nodes: {})",
                            n.get_ref(),
                            nodes.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                vec![n.get_ref().clone()]
            }
            (None, Some(roles)) => {
                let chosen: Vec<String> = nodes
                    .iter()
                    .filter(|(_, have)| have.iter().any(|r| roles.get_ref().contains(r)))
                    .map(|(n, _)| n.to_string())
                    .collect();
                if chosen.is_empty() {
                    return Err(err(
                        roles.span(),
                        "roles",
                        format!(
                            "no node has any of the roles {:?}, so the hook would run nowhere",
                            roles.get_ref()
                        ),
                    ));
                }
                chosen
            }
            (None, None) => nodes.iter().map(|(n, _)| n.to_string()).collect(),
        };
        out.push(HookSpec {
            when,
            nodes: chosen,
            command: h.command.get_ref().clone(),
        });
    }
    Ok(out)
}
