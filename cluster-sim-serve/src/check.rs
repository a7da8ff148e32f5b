//! Check files: one TOML file per check in the checks folder, read once at start. A malformed
//! file stops the server before it serves anything, with `file:line:column: key `k`: why`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::ServeError;
use super::parse::{OutputParser, Thresholds, ValueSource};
use super::status::Status;
use cluster_sim_core::located::{Located, Src};

/// Deadline of a check that sets none.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Which nodes of the cluster a check runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One node, by name.
    Node(String),
    /// Every node holding any of these roles.
    Roles(Vec<String>),
    /// Every node of the cluster.
    All,
}

/// What to do when a check's status changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// Only when the new status is one of these (empty: any change).
    pub on: Vec<Status>,
    /// What to do.
    pub kind: ActionKind,
}

/// The two kinds of action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// A shell command run on the server's machine, with `CHECK_*` variables set.
    Command(String),
    /// An HTTP POST of the change as JSON to this URL.
    Webhook(String),
}

/// One check, as its file describes it.
#[derive(Debug, Clone)]
pub struct CheckDef {
    /// Unique name.
    pub name: String,
    /// Free-form grouping (`health`, `perf`...), for filters.
    pub category: String,
    /// The component it watches (`etcd`...), for filters.
    pub component: String,
    /// The cluster (brought up with `cluster-sim up`) it runs on.
    pub cluster: String,
    /// Its nodes.
    pub target: Target,
    /// The shell command.
    pub command: String,
    /// How often it runs by itself; `None`: on demand only.
    pub interval: Option<Duration>,
    /// Its deadline per node; past it the node's result is UNKNOWN.
    pub timeout: Duration,
    /// User to run the command as.
    pub user: Option<String>,
    /// How the output may set the status.
    pub parser: Option<OutputParser>,
    /// What to do on a status change.
    pub actions: Vec<Action>,
    /// The file it came from.
    pub file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Spanned<String>,
    category: Option<String>,
    component: Option<String>,
    cluster: Spanned<String>,
    node: Option<Spanned<String>>,
    roles: Option<Spanned<Vec<String>>>,
    command: Spanned<String>,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    user: Option<String>,
    parse: Option<RawParse>,
    #[serde(default, rename = "action")]
    actions: Vec<RawAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParse {
    regex: Option<Spanned<String>>,
    json: Option<Spanned<String>>,
    warn_above: Option<f64>,
    error_above: Option<f64>,
    warn_below: Option<f64>,
    error_below: Option<f64>,
    #[serde(default)]
    map: BTreeMap<String, Spanned<String>>,
    missing: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(default)]
    on: Vec<Spanned<String>>,
    command: Option<Spanned<String>>,
    webhook: Option<Spanned<String>>,
}

/// A check or node name: letters, digits, `.`, `_` and `-` (it appears in URLs).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn duration(src: &Src<'_>, v: &Spanned<String>, key: &str) -> Result<Duration, Located> {
    let d = humantime::parse_duration(v.get_ref()).map_err(|e| {
        src.at(
            v.span(),
            key,
            format!("bad duration {:?}: {e}", v.get_ref()),
        )
    })?;
    if d.is_zero() {
        return Err(src.at(v.span(), key, "must be more than zero"));
    }
    Ok(d)
}

fn status(src: &Src<'_>, v: &Spanned<String>, key: &str) -> Result<Status, Located> {
    v.get_ref()
        .parse()
        .map_err(|e: String| src.at(v.span(), key, e))
}

impl CheckDef {
    /// Parses one check file's text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<CheckDef, ServeError> {
        let src = Src { path: source, text };
        let raw: RawCheck = toml::from_str(text).map_err(|e| src.toml(&e))?;
        Ok(resolve(raw, &src)?)
    }

    /// Reads and parses one check file.
    pub fn from_file(path: &Path) -> Result<CheckDef, ServeError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServeError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }
}

fn resolve(raw: RawCheck, src: &Src<'_>) -> Result<CheckDef, Located> {
    if !valid_name(raw.name.get_ref()) {
        return Err(src.at(
            raw.name.span(),
            "name",
            format!(
                "{:?} is not a check name (letters, digits, '.', '_' and '-')",
                raw.name.get_ref()
            ),
        ));
    }
    if raw.cluster.get_ref().trim().is_empty() {
        return Err(src.at(raw.cluster.span(), "cluster", "must not be empty"));
    }
    if raw.command.get_ref().trim().is_empty() {
        return Err(src.at(raw.command.span(), "command", "must not be empty"));
    }
    let target = match (raw.node, raw.roles) {
        (Some(n), None) => {
            if !valid_name(n.get_ref()) {
                return Err(src.at(
                    n.span(),
                    "node",
                    format!("{:?} is not a node name", n.get_ref()),
                ));
            }
            Target::Node(n.into_inner())
        }
        (None, Some(r)) => {
            if r.get_ref().is_empty() {
                return Err(src.at(r.span(), "roles", "must name at least one role"));
            }
            Target::Roles(r.into_inner())
        }
        (None, None) => Target::All,
        (Some(_), Some(r)) => {
            return Err(src.at(r.span(), "roles", "give `node` or `roles`, not both"));
        }
    };
    let interval = raw
        .interval
        .as_ref()
        .map(|v| duration(src, v, "interval"))
        .transpose()?;
    let timeout = raw
        .timeout
        .as_ref()
        .map(|v| duration(src, v, "timeout"))
        .transpose()?
        .unwrap_or(DEFAULT_CHECK_TIMEOUT);
    let parser = raw.parse.map(|p| parser(p, src)).transpose()?;
    let mut actions = Vec::new();
    for (i, a) in raw.actions.into_iter().enumerate() {
        let key = |k: &str| format!("action[{i}].{k}");
        let on =
            a.on.iter()
                .map(|s| status(src, s, &key("on")))
                .collect::<Result<Vec<_>, _>>()?;
        let kind = match (a.command, a.webhook) {
            (Some(c), None) => {
                if c.get_ref().trim().is_empty() {
                    return Err(src.at(c.span(), &key("command"), "must not be empty"));
                }
                ActionKind::Command(c.into_inner())
            }
            (None, Some(w)) => {
                let ok = reqwest::Url::parse(w.get_ref())
                    .map(|u| u.scheme() == "http" || u.scheme() == "https")
                    .unwrap_or(false);
                if !ok {
                    return Err(src.at(
                        w.span(),
                        &key("webhook"),
                        format!("{:?} is not an http:// or https:// URL", w.get_ref()),
                    ));
                }
                ActionKind::Webhook(w.into_inner())
            }
            (Some(c), Some(_)) => {
                return Err(src.at(
                    c.span(),
                    &key("command"),
                    "an action has `command` or `webhook`, not both",
                ))
            }
            (None, None) => {
                return Err(src.at(
                    0..0,
                    &format!("action[{i}]"),
                    "an action needs `command` or `webhook`",
                ))
            }
        };
        actions.push(Action { on, kind });
    }
    Ok(CheckDef {
        name: raw.name.into_inner(),
        category: raw.category.unwrap_or_default(),
        component: raw.component.unwrap_or_default(),
        cluster: raw.cluster.into_inner(),
        target,
        command: raw.command.into_inner(),
        interval,
        timeout,
        user: raw.user,
        parser,
        actions,
        file: src.path.to_string(),
    })
}

fn parser(p: RawParse, src: &Src<'_>) -> Result<OutputParser, Located> {
    let source = match (p.regex, p.json) {
        (Some(r), None) => {
            let re = regex::Regex::new(r.get_ref())
                .map_err(|e| src.at(r.span(), "parse.regex", one_line(&e.to_string())))?;
            ValueSource::Regex(re)
        }
        (None, Some(j)) => {
            let ptr = j.get_ref();
            if !ptr.is_empty() && !ptr.starts_with('/') {
                return Err(src.at(
                    j.span(),
                    "parse.json",
                    format!("{ptr:?} is not a JSON pointer (it starts with '/', e.g. \"/health\")"),
                ));
            }
            ValueSource::JsonPointer(ptr.clone())
        }
        (Some(r), Some(_)) => {
            return Err(src.at(r.span(), "parse.regex", "give `regex` or `json`, not both"))
        }
        (None, None) => {
            return Err(src.at(0..0, "parse", "a parser needs `regex` or `json`"));
        }
    };
    let mut map = BTreeMap::new();
    for (k, v) in &p.map {
        map.insert(k.clone(), status(src, v, &format!("parse.map.{k}"))?);
    }
    let missing = p
        .missing
        .as_ref()
        .map(|m| status(src, m, "parse.missing"))
        .transpose()?
        .unwrap_or(Status::Unknown);
    Ok(OutputParser {
        source,
        thresholds: Thresholds {
            warn_above: p.warn_above,
            error_above: p.error_above,
            warn_below: p.warn_below,
            error_below: p.error_below,
        },
        map,
        missing,
    })
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads every `*.toml` file of the folder (sorted by name); the first bad file, or a name
/// two files share, is the error.
pub fn load_dir(dir: &Path) -> Result<Vec<CheckDef>, ServeError> {
    let read_err = |source| ServeError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    files.sort();
    let mut out: Vec<CheckDef> = Vec::new();
    for f in files {
        let def = CheckDef::from_file(&f)?;
        if let Some(other) = out.iter().find(|d| d.name == def.name) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let src = Src {
                path: &def.file,
                text: &text,
            };
            let at = text.find("name").unwrap_or(0);
            return Err(src
                .at(
                    at..at,
                    "name",
                    format!("check {:?} is also defined in {}", def.name, other.file),
                )
                .into());
        }
        out.push(def);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        CheckDef::parse(text, "checks/x.toml")
            .unwrap_err()
            .to_string()
    }

    const OK: &str = "name = \"etcd-health\"\ncategory = \"health\"\ncomponent = \"etcd\"\ncluster = \"demo\"\nnode = \"n1\"\ncommand = \"etcdctl endpoint health\"\ninterval = \"10s\"\ntimeout = \"5s\"\n";

    #[test]
    fn reads_the_issue_example() {
        let c = CheckDef::parse(OK, "x.toml").unwrap();
        assert_eq!(c.name, "etcd-health");
        assert_eq!(c.target, Target::Node("n1".into()));
        assert_eq!(c.interval, Some(Duration::from_secs(10)));
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(c.parser.is_none());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = err(&OK.replace("timeout = \"5s\"", "timeout = \"soon\""));
        assert!(e.starts_with("checks/x.toml:8:"), "{e}");
        assert!(e.contains("key `timeout`: bad duration \"soon\""), "{e}");
        let e = err(&format!("{OK}colour = \"red\"\n"));
        assert!(e.starts_with("checks/x.toml:9:"), "{e}");
        assert!(e.contains("key `colour`"), "{e}");
        let e = err(&format!("{OK}roles = [\"a\"]\n"));
        assert!(
            e.contains("key `roles`: give `node` or `roles`, not both"),
            "{e}"
        );
        let e = err(&format!("{OK}[parse]\nregex = \"(\"\n"));
        assert!(e.starts_with("checks/x.toml:10:"), "{e}");
        assert!(e.contains("key `parse.regex`"), "{e}");
        let e = err(&format!(
            "{OK}[[action]]\non = [\"fine\"]\ncommand = \"true\"\n"
        ));
        assert!(e.contains("checks/x.toml:10:"), "{e}");
        assert!(
            e.contains("key `action[0].on`: unknown status \"fine\""),
            "{e}"
        );
        let e = err(&format!("{OK}[[action]]\nwebhook = \"ftp://x\"\n"));
        assert!(e.contains("key `action[0].webhook`"), "{e}");
    }

    #[test]
    fn parser_and_actions() {
        let text = format!(
            "{OK}[parse]\njson = \"/used\"\nwarn_above = 80\nerror_above = 90\n[parse.map]\n\n[[action]]\non = [\"ERROR\", \"ok\"]\nwebhook = \"http://127.0.0.1:9/hook\"\n[[action]]\ncommand = \"logger x\"\n"
        );
        let c = CheckDef::parse(&text, "x.toml").unwrap();
        let p = c.parser.unwrap();
        assert_eq!(p.thresholds.error_above, Some(90.0));
        assert_eq!(c.actions.len(), 2);
        assert_eq!(c.actions[0].on, vec![Status::Error, Status::Ok]);
    }
}
