//! The cluster spec: a TOML file naming the nodes, their image, roles, environment, files and
//! templates, the service command, a readiness check and per-node limits.
//!
//! Parsing keeps source spans so that every error names the file, the line and the key.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::SpecError;
use crate::image::NODE_IMAGE;
use crate::located::Src;
pub use crate::service::hooks::{HookSpec, HookWhen};
pub use crate::service::logrules::{LogPattern, LogRules};
pub use crate::service::spec::{BinarySpec, DEFAULT_COLLECT_LIMIT};
use crate::service::spec::{RawBinary, RawDir};

/// Default time a readiness check may take before provisioning fails.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed, validated cluster spec with every node resolved.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The spec's name (its `name` key, else the file stem, else `inline`).
    pub name: String,
    /// Where the spec came from (file path, or `<inline>`), for error messages and reports.
    pub source: String,
    /// Directory against which relative template and file paths were resolved.
    pub base_dir: PathBuf,
    /// Nodes in declaration order.
    pub nodes: Vec<NodeSpec>,
    /// Readiness check run on every node after start, if any.
    pub ready: Option<ReadySpec>,
    /// Default deadline for a test on this cluster, if the spec sets one.
    pub timeout: Option<Duration>,
    /// Every `[[binary]]`, in spec order (each node lists the ones its roles select).
    pub binaries: Vec<BinarySpec>,
    /// Most bytes `collect` gathers from one node (`collect_limit`).
    pub collect_limit: u64,
    /// A test case's parameters (a matrix combination), seen by templates as `params`.
    pub params: BTreeMap<String, serde_json::Value>,
    /// `[reuse] reset`: run on every node between tests sharing the cluster (`share = ".."`).
    pub reset: Option<String>,
    /// `fail_on_log` and `allow_log`: service log lines that fail a test whose body passed.
    pub log_rules: LogRules,
    /// Every `[[hook]]`, in spec order.
    pub hooks: Vec<HookSpec>,
}

/// What a test case changes in the spec it reads: its parameters, which templates see as
/// `params.<name>`, and a node count that replaces the spec's own (`nodes = N` or
/// `nodes = { count = N, .. }`; a spec naming its nodes can't be resized).
///
/// `nodes = 3` becomes `n1`..`nN`; `nodes = { count = 3, prefix = "db" }` keeps its prefix
/// (`db1`..`dbN`). A spec that names its nodes (`nodes = ["a", "b"]`, or `[[node]]` tables
/// without `nodes`) is refused with a [`SpecError`]: nothing says what added nodes would be
/// called, or which named node (with its own roles, image or command) to drop. `[[node]]`
/// tables beside a count still override the nodes they name, and one naming a node the new
/// count drops is an error.
///
/// ```
/// use cluster_sim_core::{ClusterSpec, SpecParams};
/// use std::path::Path;
///
/// let five = SpecParams { nodes: Some(5), ..Default::default() };
/// let parse = |text: &str| ClusterSpec::parse_with(text, "x.toml", Path::new("."), "x", &five);
/// let db = parse("nodes = { count = 3, prefix = \"db\" }").unwrap();
/// assert_eq!(db.nodes.last().unwrap().name, "db5");
/// let err = parse("nodes = [\"a\", \"b\"]").unwrap_err().to_string();
/// assert!(err.contains("this spec names its nodes"), "{err}");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecParams {
    /// Replaces the spec's node count.
    pub nodes: Option<usize>,
    /// Seen by templates as `params`.
    pub values: BTreeMap<String, serde_json::Value>,
}

/// One node of a spec, with cluster-wide defaults already applied.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Node name; on docker also its host name and DNS name on the cluster network (other
    /// nodes resolve it). On ssh the inventory host keeps its own name, so use addresses there.
    pub name: String,
    /// Zero-based position in the spec.
    pub index: usize,
    /// Image reference; [`NODE_IMAGE`] means the image built from `docker/node`.
    pub image: String,
    /// Roles, used to select files and (on ssh) packages.
    pub roles: Vec<String>,
    /// Environment for the service and for every exec.
    pub env: BTreeMap<String, String>,
    /// The service command (run by `sh -c`), or none for an idle node.
    pub command: Option<String>,
    /// Files and templates to place on this node (already filtered by role).
    pub files: Vec<FileSpec>,
    /// Resource limits.
    pub limits: Limits,
    /// Packages to install (ssh backend; docker images carry their own).
    pub packages: Vec<String>,
    /// TCP ports published on 127.0.0.1 of the machine running the engine (docker backend).
    pub publish: Vec<u16>,
    /// Workspace binaries placed on this node (already filtered by role).
    pub binaries: Vec<BinarySpec>,
    /// Globs of files to gather from the node after a failed test (`collect`).
    pub collect: Vec<String>,
}

/// A file to place on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    /// Absolute path of the source on the machine running the harness.
    pub source: PathBuf,
    /// Whether the source is a template to render per node.
    pub template: bool,
    /// Destination path on the node; a relative one is inside the cluster's working directory.
    pub dest: String,
    /// Unix mode of the placed file.
    pub mode: u32,
}

/// Readiness check: a command that must exit 0 on every node, a service log line that must
/// appear, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadySpec {
    /// Shell command run on each node, if any.
    pub command: Option<String>,
    /// A line of the node's service log that must appear (`[ready] log`), if any.
    pub log: Option<LogPattern>,
    /// How long to keep trying.
    pub timeout: Duration,
    /// Pause between attempts.
    pub interval: Duration,
}

/// Per-node resource limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// CPU quota in cores (e.g. 0.5).
    pub cpus: Option<f64>,
    /// Maximum number of processes.
    pub pids: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Raw serde structs: exactly what the file says.

/// `[reuse]`: how tests sharing a cluster hand it on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReuse {
    reset: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<String>,
    image: Option<Spanned<String>>,
    nodes: Option<Spanned<toml::Value>>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    publish: Vec<u16>,
    service: Option<RawService>,
    ready: Option<RawReady>,
    #[serde(default)]
    limits: RawLimits,
    timeout: Option<Spanned<String>>,
    #[serde(default, rename = "file")]
    files: Vec<RawFile>,
    #[serde(default, rename = "dir")]
    dirs: Vec<RawDir>,
    #[serde(default, rename = "binary")]
    binaries: Vec<RawBinary>,
    #[serde(default)]
    collect: Vec<Spanned<String>>,
    collect_limit: Option<Spanned<String>>,
    #[serde(default, rename = "node")]
    node: Vec<RawNode>,
    reuse: Option<RawReuse>,
    #[serde(default)]
    fail_on_log: Vec<Spanned<String>>,
    #[serde(default)]
    allow_log: Vec<Spanned<String>>,
    #[serde(default, rename = "hook")]
    hooks: Vec<crate::service::hooks::RawHook>,
}

/// Most nodes one spec may declare (a backend may allow fewer).
pub const MAX_NODES: i64 = 1000;

/// The three shapes of `nodes`, read by hand so that a wrong one gets a message that says which
/// shapes exist (serde's untagged enums can only say "did not match any variant").
fn node_names(src: &Src<'_>, v: &Spanned<toml::Value>) -> Result<Vec<String>, SpecError> {
    let span = v.span();
    let count = |n: i64, key: &str| -> Result<u32, SpecError> {
        if (1..=MAX_NODES).contains(&n) {
            Ok(n as u32)
        } else {
            Err(src.err(
                span.clone(),
                key,
                format!("a cluster needs 1 to {MAX_NODES} nodes, not {n}"),
            ))
        }
    };
    match v.get_ref() {
        toml::Value::Integer(n) => Ok((1..=count(*n, "nodes")?).map(|i| format!("n{i}")).collect()),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::String(s) => Ok(s.clone()),
                other => Err(src.err(
                    span.clone(),
                    "nodes",
                    format!("node names are strings, not {}", other.type_str()),
                )),
            })
            .collect(),
        toml::Value::Table(t) => {
            if let Some(k) = t.keys().find(|k| *k != "count" && *k != "prefix") {
                return Err(src.err(
                    span.clone(),
                    "nodes",
                    format!("unknown key `{k}` (a nodes table has `count` and `prefix`)"),
                ));
            }
            let n = match t.get("count") {
                Some(toml::Value::Integer(n)) => count(*n, "nodes.count")?,
                Some(other) => {
                    return Err(src.err(
                        span.clone(),
                        "nodes.count",
                        format!("`count` is a number, not {}", other.type_str()),
                    ))
                }
                None => {
                    return Err(src.err(
                        span.clone(),
                        "nodes.count",
                        "a nodes table needs `count` (e.g. `nodes = { count = 3, prefix = \"db\" }`)",
                    ))
                }
            };
            let prefix = match t.get("prefix") {
                None => "n".to_string(),
                Some(toml::Value::String(p)) => p.clone(),
                Some(other) => {
                    return Err(src.err(
                        span.clone(),
                        "nodes.prefix",
                        format!("`prefix` is a string, not {}", other.type_str()),
                    ))
                }
            };
            Ok((1..=n).map(|i| format!("{prefix}{i}")).collect())
        }
        other => Err(src.err(
            span,
            "nodes",
            format!(
                "expected a node count (`nodes = 3`), a list of names (`nodes = [\"a\", \"b\"]`) or a table (`nodes = {{ count = 3, prefix = \"db\" }}`), not {}",
                other.type_str()
            ),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    command: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReady {
    command: Option<String>,
    log: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory: Option<Spanned<String>>,
    cpus: Option<Spanned<f64>>,
    pids: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    template: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    dest: String,
    mode: Option<Spanned<String>>,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Spanned<String>,
    image: Option<Spanned<String>>,
    roles: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    command: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
    publish: Option<Vec<u16>>,
    limits: Option<RawLimits>,
    collect: Option<Vec<Spanned<String>>>,
}

// ---------------------------------------------------------------------------------------------

/// Spec errors at a place in the file.
trait SpecErr {
    fn err(&self, span: std::ops::Range<usize>, key: &str, message: impl fmt::Display)
        -> SpecError;
}

impl SpecErr for Src<'_> {
    fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl fmt::Display,
    ) -> SpecError {
        self.at(span, key, message).into()
    }
}

impl ClusterSpec {
    /// Reads and validates a spec file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SpecError> {
        Self::from_file_with(path, &SpecParams::default())
    }

    /// Reads and validates a spec file for a test case with `params`.
    pub fn from_file_with(path: impl AsRef<Path>, params: &SpecParams) -> Result<Self, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            file: path.display().to_string(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cluster".into());
        Self::parse_with(&text, &path.display().to_string(), &base, &stem, params)
    }

    /// Parses spec text. `source` names it in errors; relative paths resolve against `base_dir`.
    pub fn parse(
        text: &str,
        source: &str,
        base_dir: &Path,
        default_name: &str,
    ) -> Result<Self, SpecError> {
        Self::parse_with(text, source, base_dir, default_name, &SpecParams::default())
    }

    /// Parses spec text for a test case with `params` (see [`SpecParams`]).
    pub fn parse_with(
        text: &str,
        source: &str,
        base_dir: &Path,
        default_name: &str,
        params: &SpecParams,
    ) -> Result<Self, SpecError> {
        let src = Src { path: source, text };
        let mut raw: RawSpec = toml::from_str(text).map_err(|e| SpecError::from(src.toml(&e)))?;
        if let Some(count) = params.nodes {
            let first_table = raw.node.first().map(|n| n.name.span());
            raw.nodes = Some(resize(&src, raw.nodes.take(), first_table, count)?);
            // Tables that override nodes by name must still name nodes of the resized cluster.
            let names = node_names(&src, raw.nodes.as_ref().expect("just set"))?;
            if let Some(n) = raw.node.iter().find(|n| !names.contains(n.name.get_ref())) {
                return Err(src.err(
                    n.name.span(),
                    "node.name",
                    format!(
                        "a test case sets `nodes = {count}`, so the nodes are {}; [[node]] {:?} \
                         is not one of them (give the case at least as many nodes as the tables \
                         name, or drop the table)",
                        names.join(", "),
                        n.name.get_ref()
                    ),
                ));
            }
        }
        let mut spec = resolve(raw, &src, base_dir, default_name, &params.values)?;
        spec.params = params.values.clone();
        Ok(spec)
    }

    /// Builds a spec from inline values: `count` nodes named `n1..` on `image`.
    pub fn inline(count: usize, image: Option<&str>) -> Result<Self, SpecError> {
        let image = image.unwrap_or(NODE_IMAGE);
        let text = format!("name = \"inline\"\nnodes = {count}\nimage = {image:?}\n");
        Self::parse(&text, "<inline>", Path::new("."), "inline")
    }

    /// Looks a node up by name.
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// A positive duration (`"250ms"`, `"1m 30s"`): zero would spin a poll loop or fail at once.
fn parse_duration(src: &Src<'_>, v: &Spanned<String>, key: &str) -> Result<Duration, SpecError> {
    let d = humantime::parse_duration(v.get_ref()).map_err(|e| {
        src.err(
            v.span(),
            key,
            format!("bad duration {:?}: {e}", v.get_ref()),
        )
    })?;
    if d.is_zero() {
        return Err(src.err(
            v.span(),
            key,
            format!(
                "{:?} is zero; use a positive duration such as \"250ms\"",
                v.get_ref()
            ),
        ));
    }
    Ok(d)
}

fn parse_memory(src: &Src<'_>, v: &Spanned<String>, key: &str) -> Result<u64, SpecError> {
    let s = v.get_ref().trim().to_ascii_lowercase();
    let (num, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (s.as_str(), 1u64),
        Some((i, _)) => {
            let mult = match s[i..].trim_end_matches(['b', 'i']) {
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                "" => 1,
                _ => 0,
            };
            (&s[..i], mult)
        }
    };
    match num.parse::<u64>() {
        Ok(n) if mult > 0 && n > 0 => Ok(n * mult),
        _ => Err(src.err(
            v.span(),
            key,
            format!(
                "bad memory size {:?} (use e.g. \"512m\" or \"2g\")",
                v.get_ref()
            ),
        )),
    }
}

/// Checks an image reference's syntax: `[registry/]name[:tag][@digest]`, lowercase name.
fn valid_image(s: &str) -> bool {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return false;
    }
    let (name, _digest) = s.split_once('@').unwrap_or((s, ""));
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    if let Some(t) = tag {
        if t.is_empty()
            || t.len() > 128
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return false;
        }
    }
    let mut parts = repo.split('/').peekable();
    let mut first = true;
    while let Some(p) = parts.next() {
        // The first component may be a registry host[:port] with upper case and dots.
        let is_registry = first && parts.peek().is_some() && (p.contains('.') || p.contains(':'));
        first = false;
        if is_registry {
            continue;
        }
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        {
            return false;
        }
    }
    true
}

fn check_image(src: &Src<'_>, v: &Spanned<String>, key: &str) -> Result<String, SpecError> {
    if valid_image(v.get_ref()) {
        Ok(v.get_ref().clone())
    } else {
        Err(src.err(
            v.span(),
            key,
            format!(
                "bad image reference {:?} (expected name[:tag], lowercase)",
                v.get_ref()
            ),
        ))
    }
}

fn valid_node_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn limits(src: &Src<'_>, raw: &RawLimits, key: &str) -> Result<Limits, SpecError> {
    if let Some(c) = &raw.cpus {
        let v = *c.get_ref();
        if !(v > 0.0 && v.is_finite()) {
            return Err(src.err(
                c.span(),
                &format!("{key}.cpus"),
                format!("cpus must be a positive number of cores (e.g. 0.5), not {v}"),
            ));
        }
    }
    if let Some(p) = &raw.pids {
        if *p.get_ref() < 1 {
            return Err(src.err(
                p.span(),
                &format!("{key}.pids"),
                format!("pids must be at least 1, not {}", p.get_ref()),
            ));
        }
    }
    Ok(Limits {
        memory: raw
            .memory
            .as_ref()
            .map(|m| parse_memory(src, m, &format!("{key}.memory")))
            .transpose()?,
        cpus: raw.cpus.as_ref().map(|c| *c.get_ref()),
        pids: raw.pids.as_ref().map(|p| *p.get_ref()),
    })
}

/// The spec's `nodes` with its count replaced by a test case's `count`.
fn resize(
    src: &Src<'_>,
    nodes: Option<Spanned<toml::Value>>,
    first_table: Option<std::ops::Range<usize>>,
    count: usize,
) -> Result<Spanned<toml::Value>, SpecError> {
    // Named nodes each carry their own roles, env and files: there is no way to tell what a
    // fourth one would be, or which to drop for two, so only a count is resized.
    let not_resizable = |span: std::ops::Range<usize>, how: &str| {
        src.err(
            span,
            "nodes",
            format!(
                "a test case sets `nodes = {count}`, but this spec names its nodes ({how}), and \
                 named nodes can't be added or dropped by count; give the spec a count \
                 (`nodes = 3`, or `nodes = {{ count = 3, prefix = \"db\" }}`), with `[[node]]` \
                 tables only to override some of those nodes"
            ),
        )
    };
    let n = toml::Value::Integer(i64::try_from(count).unwrap_or(i64::MAX));
    match nodes {
        None => Err(not_resizable(
            first_table.unwrap_or(0..0),
            "`[[node]]` tables and no `nodes`",
        )),
        Some(v) => {
            let span = v.span();
            match v.into_inner() {
                toml::Value::Integer(_) => Ok(Spanned::new(span, n)),
                toml::Value::Table(mut t) if t.contains_key("count") => {
                    t.insert("count".into(), n);
                    Ok(Spanned::new(span, toml::Value::Table(t)))
                }
                _ => Err(not_resizable(span, "a list of names")),
            }
        }
    }
}

fn resolve(
    raw: RawSpec,
    src: &Src<'_>,
    base_dir: &Path,
    default_name: &str,
    params: &BTreeMap<String, serde_json::Value>,
) -> Result<ClusterSpec, SpecError> {
    let image = match &raw.image {
        Some(i) => check_image(src, i, "image")?,
        None => NODE_IMAGE.to_string(),
    };
    let base_limits = limits(src, &raw.limits, "limits")?;

    // Node names in order: from `nodes`, else from the `[[node]]` tables.
    let mut names: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    match &raw.nodes {
        Some(n) => {
            let span = n.span();
            names.extend(
                node_names(src, n)?
                    .into_iter()
                    .map(|name| (name, span.clone())),
            );
        }
        None => names.extend(
            raw.node
                .iter()
                .map(|n| (n.name.get_ref().clone(), n.name.span())),
        ),
    }
    if names.is_empty() {
        return Err(src.err(
            0..0,
            "nodes",
            "the spec declares no nodes (set `nodes = 3` or add [[node]] tables)",
        ));
    }
    let mut seen = HashSet::new();
    for (name, span) in &names {
        if !valid_node_name(name) {
            return Err(src.err(
                span.clone(),
                "nodes",
                format!("bad node name {name:?} (lowercase letters, digits and '-')"),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(src.err(
                span.clone(),
                "node.name",
                format!("duplicate node {name:?}"),
            ));
        }
    }
    // With both `nodes` and `[[node]]`, the tables override nodes that `nodes` named.
    if raw.nodes.is_some() {
        let mut seen_over = HashSet::new();
        for n in &raw.node {
            if !seen.contains(n.name.get_ref()) {
                return Err(src.err(
                    n.name.span(),
                    "node.name",
                    format!(
                        "[[node]] {:?} is not one of the nodes named by `nodes`",
                        n.name.get_ref()
                    ),
                ));
            }
            if !seen_over.insert(n.name.get_ref().clone()) {
                return Err(src.err(
                    n.name.span(),
                    "node.name",
                    format!("duplicate node {:?}", n.name.get_ref()),
                ));
            }
        }
    }

    // Files: resolve and check every source up front.
    struct File {
        spec: FileSpec,
        roles: Vec<String>,
        key: String,
        span: std::ops::Range<usize>,
        text: Option<String>,
    }
    let mut files = Vec::new();
    for (i, f) in raw.files.iter().enumerate() {
        let key = format!("file[{i}]");
        let (path, template, kspan, kname) = match (&f.template, &f.source) {
            (Some(t), None) => (t, true, t.span(), "template"),
            (None, Some(s)) => (s, false, s.span(), "source"),
            _ => {
                return Err(src.err(
                    0..0,
                    &key,
                    "a [[file]] needs exactly one of `template` or `source`",
                ))
            }
        };
        let found = find_file(base_dir, path.get_ref()).map_err(|tried| {
            src.err(
                kspan.clone(),
                &format!("{key}.{kname}"),
                format!(
                    "{} {:?} not found (looked for {})",
                    kname,
                    path.get_ref(),
                    tried
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let text = if template {
            let text = std::fs::read_to_string(&found).map_err(|e| {
                src.err(
                    kspan.clone(),
                    &format!("{key}.template"),
                    format!("cannot read {}: {e}", found.display()),
                )
            })?;
            crate::template::check(&text, &found)
                .map_err(|m| src.err(kspan.clone(), &format!("{key}.template"), m))?;
            Some(text)
        } else {
            None
        };
        if f.dest.is_empty() || f.dest.ends_with('/') || f.dest.split('/').any(|p| p == "..") {
            return Err(src.err(kspan.clone(), &format!("{key}.dest"), format!("dest {:?} must name a file (absolute, or relative to the node's working directory, without '..')", f.dest)));
        }
        let mode = match &f.mode {
            None => 0o644,
            Some(m) => {
                u32::from_str_radix(m.get_ref().trim_start_matches("0o"), 8).map_err(|_| {
                    src.err(
                        m.span(),
                        &format!("{key}.mode"),
                        format!("bad mode {:?} (octal, e.g. \"0644\")", m.get_ref()),
                    )
                })?
            }
        };
        files.push(File {
            spec: FileSpec {
                source: found,
                template,
                dest: f.dest.clone(),
                mode,
            },
            roles: f.roles.clone(),
            key: format!("{key}.{kname}"),
            span: kspan,
            text,
        });
    }

    // Folders: every file becomes a [[file]] of its own, `*.tmpl` ones templates.
    for (i, d) in raw.dirs.iter().enumerate() {
        for f in crate::service::spec::dir_files(src, base_dir, i, d)? {
            files.push(File {
                spec: f.spec,
                roles: d.roles().to_vec(),
                key: f.key,
                span: f.span,
                text: f.text,
            });
        }
    }
    let binaries = crate::service::spec::binaries(src, base_dir, &raw.binaries)?;
    let collect = crate::service::spec::collect_globs(src, "collect", &raw.collect)?;
    let collect_limit = match &raw.collect_limit {
        None => DEFAULT_COLLECT_LIMIT,
        Some(l) => parse_memory(src, l, "collect_limit")?,
    };

    let mut nodes = Vec::new();
    for (index, (name, _)) in names.into_iter().enumerate() {
        let over = raw.node.iter().find(|n| n.name.get_ref() == &name);
        let roles = over
            .and_then(|o| o.roles.clone())
            .unwrap_or_else(|| raw.roles.clone());
        let mut env = raw.env.clone();
        let mut packages = raw.packages.clone();
        let mut node_limits = base_limits.clone();
        let mut node_image = image.clone();
        let mut command = raw.service.as_ref().map(|s| s.command.clone());
        let mut publish = raw.publish.clone();
        let mut node_collect = collect.clone();
        if let Some(o) = over {
            if let Some(c) = &o.collect {
                node_collect.extend(crate::service::spec::collect_globs(src, "node.collect", c)?);
            }
            env.extend(o.env.clone());
            packages.extend(o.packages.iter().cloned());
            if let Some(i) = &o.image {
                node_image = check_image(src, i, "node.image")?;
            }
            if let Some(l) = &o.limits {
                let l = limits(src, l, "node.limits")?;
                node_limits = Limits {
                    memory: l.memory.or(node_limits.memory),
                    cpus: l.cpus.or(node_limits.cpus),
                    pids: l.pids.or(node_limits.pids),
                };
            }
            if o.command.is_some() {
                command = o.command.clone();
            }
            if let Some(p) = &o.publish {
                publish = p.clone();
            }
        }
        let files = files
            .iter()
            .filter(|f| f.roles.is_empty() || f.roles.iter().any(|r| roles.contains(r)))
            .map(|f| f.spec.clone())
            .collect();
        let node_binaries = binaries
            .iter()
            .filter(|b| b.roles.is_empty() || b.roles.iter().any(|r| roles.contains(r)))
            .cloned()
            .collect();
        nodes.push(NodeSpec {
            name,
            index,
            image: node_image,
            roles,
            env,
            command,
            files,
            limits: node_limits,
            packages,
            publish,
            binaries: node_binaries,
            collect: node_collect,
        });
    }

    let name = raw.name.unwrap_or_else(|| default_name.to_string());

    // Render every template once per node with stand-in addresses and working directory, so an
    // undefined variable is reported here, with the spec's key, before any engine call.
    let stand_ins: Vec<crate::template::TemplateNode> = nodes
        .iter()
        .map(|n| crate::template::TemplateNode {
            name: n.name.clone(),
            index: n.index,
            number: n.index + 1,
            address: format!("192.0.2.{}", n.index % 250 + 2),
            roles: n.roles.clone(),
            workdir: "/var/lib/cluster-sim".into(),
        })
        .collect();
    for (node, stand_in) in nodes.iter().zip(&stand_ins) {
        let ctx = crate::template::TemplateContext {
            cluster: BTreeMap::from([("name".to_string(), name.clone())]),
            node: stand_in.clone(),
            nodes: stand_ins.clone(),
            env: node.env.clone(),
            params: params.clone(),
        };
        for f in &files {
            let (Some(text), true) = (&f.text, node.files.contains(&f.spec)) else {
                continue;
            };
            crate::template::render(text, &f.spec.source, &ctx)
                .map_err(|m| src.err(f.span.clone(), &f.key, format!("node {}: {m}", node.name)))?;
        }
    }

    let ready = match raw.ready {
        None => None,
        Some(r) => Some(ReadySpec {
            log: r
                .log
                .as_ref()
                .map(|l| crate::service::logrules::pattern(src, l, "ready.log"))
                .transpose()?,
            command: match (r.command, &r.log) {
                (None, None) => {
                    let at = src.text.find("[ready]").unwrap_or(0);
                    return Err(src.err(
                        at..at,
                        "ready",
                        "[ready] needs a `command`, a `log` regex, or both",
                    ));
                }
                (c, _) => c,
            },
            timeout: r
                .timeout
                .as_ref()
                .map(|t| parse_duration(src, t, "ready.timeout"))
                .transpose()?
                .unwrap_or(DEFAULT_READY_TIMEOUT),
            interval: r
                .interval
                .as_ref()
                .map(|t| parse_duration(src, t, "ready.interval"))
                .transpose()?
                .unwrap_or(Duration::from_millis(250)),
        }),
    };
    let timeout = raw
        .timeout
        .as_ref()
        .map(|t| parse_duration(src, t, "timeout"))
        .transpose()?;
    let log_rules = crate::service::logrules::rules(src, &raw.fail_on_log, &raw.allow_log)?;
    let roles: Vec<(&str, &[String])> = nodes
        .iter()
        .map(|n| (n.name.as_str(), n.roles.as_slice()))
        .collect();
    let hooks = crate::service::hooks::hooks(src, &raw.hooks, &roles)?;

    Ok(ClusterSpec {
        name,
        source: src.path.to_string(),
        base_dir: base_dir.to_path_buf(),
        nodes,
        ready,
        timeout,
        binaries,
        collect_limit,
        params: BTreeMap::new(),
        reset: raw.reuse.map(|r| r.reset),
        log_rules,
        hooks,
    })
}

/// Where a `template` or `source` path is looked for: as given when absolute; else beside the
/// spec, then in the fixtures' `templates/` folder (`<spec dir>/../templates`), then in the
/// fixtures folder itself. `Err` lists every path tried.
fn find_file(base: &Path, rel: &str) -> Result<PathBuf, Vec<PathBuf>> {
    let p = Path::new(rel);
    let candidates = if p.is_absolute() {
        vec![p.to_path_buf()]
    } else {
        vec![
            base.join(p),
            base.join("../templates").join(p),
            base.join("..").join(p),
        ]
    };
    match candidates.iter().find(|c| c.is_file()) {
        Some(c) => Ok(c.clone()),
        None => Err(candidates),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClusterSpec, SpecError> {
        ClusterSpec::parse(text, "t.toml", Path::new("."), "t")
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn count_and_names() {
        let s = parse("nodes = 3").unwrap();
        let names: Vec<_> = s.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["n1", "n2", "n3"]);
        assert_eq!(s.nodes[0].image, NODE_IMAGE);
        let s = parse("nodes = { count = 2, prefix = \"db\" }").unwrap();
        assert_eq!(s.nodes[1].name, "db2");
        let s = parse("nodes = [\"a\", \"b\"]\nimage = \"x/y:1\"").unwrap();
        assert_eq!(s.nodes[1].image, "x/y:1");
    }

    #[test]
    fn node_tables_override() {
        let s = parse(
            "nodes = 2\nroles = [\"r\"]\nenv = { A = \"1\" }\n[service]\ncommand = \"run\"\n\
             [[node]]\nname = \"n2\"\nroles = [\"primary\"]\nenv = { B = \"2\" }\ncommand = \"other\"\n",
        )
        .unwrap();
        assert_eq!(s.nodes[0].roles, ["r"]);
        assert_eq!(s.nodes[1].roles, ["primary"]);
        assert_eq!(s.nodes[1].env.len(), 2);
        assert_eq!(s.nodes[0].command.as_deref(), Some("run"));
        assert_eq!(s.nodes[1].command.as_deref(), Some("other"));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        insta::assert_snapshot!(err("nodes = 3\nbogus = 1\n"), @"t.toml:2:1: key `bogus`: unknown field `bogus`, expected one of `name`, `image`, `nodes`, `roles`, `env`, `packages`, `publish`, `service`, `ready`, `limits`, `timeout`, `file`, `dir`, `binary`, `collect`, `collect_limit`, `node`, `reuse`, `fail_on_log`, `allow_log`, `hook`");
        insta::assert_snapshot!(err("nodes = 3\nimage = \"Bad Image\"\n"), @r#"t.toml:2:9: key `image`: bad image reference "Bad Image" (expected name[:tag], lowercase)"#);
        insta::assert_snapshot!(err("[[node]]\nname = \"a\"\n[[node]]\nname = \"a\"\n"), @r#"t.toml:4:8: key `node.name`: duplicate node "a""#);
        insta::assert_snapshot!(err("nodes = 1\n[[file]]\ntemplate = \"nope.tmpl\"\ndest = \"/x\"\n"), @r#"t.toml:3:12: key `file[0].template`: template "nope.tmpl" not found (looked for ./nope.tmpl, ./../templates/nope.tmpl, ./../nope.tmpl)"#);
        insta::assert_snapshot!(err("nodes = 3\nname = [\n"), @"t.toml:3:1: key `name`: invalid array, expected `]`");
        insta::assert_snapshot!(err("nodes = 2\n[ready]\ncommand = \"x\"\ntimeout = \"soon\"\n"), @r#"t.toml:4:11: key `ready.timeout`: bad duration "soon": expected number at 0"#);
        insta::assert_snapshot!(err("name = \"x\"\n"), @"t.toml:1:1: key `nodes`: the spec declares no nodes (set `nodes = 3` or add [[node]] tables)");
        insta::assert_snapshot!(err("nodes = [\"N1\"]\n"), @r#"t.toml:1:9: key `nodes`: bad node name "N1" (lowercase letters, digits and '-')"#);
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        insta::assert_snapshot!(err("nodes = -1\n"), @"t.toml:1:9: key `nodes`: a cluster needs 1 to 1000 nodes, not -1");
        insta::assert_snapshot!(err("nodes = 0\n"), @"t.toml:1:9: key `nodes`: a cluster needs 1 to 1000 nodes, not 0");
        insta::assert_snapshot!(err("nodes = \"three\"\n"), @r#"t.toml:1:9: key `nodes`: expected a node count (`nodes = 3`), a list of names (`nodes = ["a", "b"]`) or a table (`nodes = { count = 3, prefix = "db" }`), not string"#);
        insta::assert_snapshot!(err("nodes = { count = 2, prefx = \"a\" }\n"), @"t.toml:1:9: key `nodes`: unknown key `prefx` (a nodes table has `count` and `prefix`)");
        insta::assert_snapshot!(err("nodes = [1, 2]\n"), @"t.toml:1:9: key `nodes`: node names are strings, not integer");
        insta::assert_snapshot!(err("nodes = 2\n[ready]\ncommand = \"x\"\ninterval = \"0s\"\n"), @r#"t.toml:4:12: key `ready.interval`: "0s" is zero; use a positive duration such as "250ms""#);
        insta::assert_snapshot!(err("nodes = 1\n[limits]\ncpus = -1.0\n"), @"t.toml:3:8: key `limits.cpus`: cpus must be a positive number of cores (e.g. 0.5), not -1");
    }

    #[test]
    fn templates_are_rendered_once_at_parse_time() {
        let dir = tempfile::tempdir().unwrap();
        let clusters = dir.path().join("clusters");
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(&clusters).unwrap();
        std::fs::create_dir_all(&templates).unwrap();
        std::fs::write(
            templates.join("ok.tmpl"),
            "{{ node.name }} {{ nodes[0].address }}\n",
        )
        .unwrap();
        std::fs::write(templates.join("typo.tmpl"), "a\n{{ node.adress }}\n").unwrap();
        std::fs::write(templates.join("plain.conf"), "as is\n").unwrap();
        let spec = |body: &str| {
            let path = clusters.join("c.toml");
            std::fs::write(&path, body).unwrap();
            ClusterSpec::from_file(&path)
        };
        // `source` files are looked up in templates/ too, as book/src/cluster-spec.md says.
        let ok = spec("nodes = 2\n[[file]]\ntemplate = \"ok.tmpl\"\ndest = \"a\"\n[[file]]\nsource = \"plain.conf\"\ndest = \"b\"\n").unwrap();
        assert_eq!(ok.nodes[1].files.len(), 2);
        let e = spec("nodes = 2\n[[file]]\ntemplate = \"typo.tmpl\"\ndest = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.toml:3:12: key `file[0].template`: node n1: "),
            "{e}"
        );
        assert!(
            e.contains("typo.tmpl:2: undefined variable `node.adress`"),
            "{e}"
        );
        let e = spec("nodes = 1\n[[file]]\nsource = \"nope.conf\"\ndest = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key `file[0].source`: source \"nope.conf\" not found (looked for "),
            "{e}"
        );
        assert!(e.contains("templates/nope.conf"), "{e}");
    }

    #[test]
    fn log_keys_and_hooks() {
        let s = parse(
            "nodes = 3\nroles = [\"db\"]\nfail_on_log = [\"panicked at\", \"(?i)data race\"]\n\
             allow_log = [\"panicked at .*expected\"]\n[ready]\nlog = \"listening on \\\\d+\"\n\
             [[node]]\nname = \"n3\"\nroles = [\"web\"]\n\
             [[hook]]\nwhen = \"after_up\"\ncommand = \"echo up\"\n\
             [[hook]]\nwhen = \"before_down\"\nnode = \"n2\"\ncommand = \"echo down\"\n\
             [[hook]]\nwhen = \"after_restart\"\nroles = [\"web\"]\ncommand = \"echo again\"\n",
        )
        .unwrap();
        let ready = s.ready.unwrap();
        assert_eq!(ready.command, None);
        assert!(ready.log.unwrap().is_match("listening on 80"));
        assert!(s.log_rules.fails("thread 'main' panicked at src/a.rs:1"));
        assert!(s.log_rules.fails("WARNING: DATA RACE"));
        assert!(!s.log_rules.fails("panicked at x, as expected"));
        let nodes: Vec<_> = s
            .hooks
            .iter()
            .map(|h| (h.when, h.nodes.join(",")))
            .collect();
        assert_eq!(
            nodes,
            [
                (HookWhen::AfterUp, "n1,n2,n3".to_string()),
                (HookWhen::BeforeDown, "n2".to_string()),
                (HookWhen::AfterRestart, "n3".to_string()),
            ]
        );
    }

    #[test]
    fn log_and_hook_errors_name_file_line_and_key() {
        insta::assert_snapshot!(err("nodes = 1\n[ready]\nlog = \"(unclosed\"\n"), @r#"t.toml:3:7: key `ready.log`: bad regex "(unclosed": unclosed group"#);
        insta::assert_snapshot!(err("nodes = 1\nfail_on_log = [\"ok\", \"a[\"]\n"), @r#"t.toml:2:22: key `fail_on_log[1]`: bad regex "a[": unclosed character class"#);
        insta::assert_snapshot!(err("nodes = 1\nallow_log = [\"x\"]\n"), @r#"t.toml:2:1: key `allow_log`: allow_log exempts lines from fail_on_log, which the spec does not set"#);
        insta::assert_snapshot!(err("nodes = 1\n[ready]\ntimeout = \"5s\"\n"), @r#"t.toml:2:1: key `ready`: [ready] needs a `command`, a `log` regex, or both"#);
        insta::assert_snapshot!(err("nodes = 2\n[[hook]]\nwhen = \"after_down\"\ncommand = \"x\"\n"), @r#"t.toml:3:8: key `hook[0].when`: unknown hook time "after_down" (expected after_up, before_down or after_restart)"#);
        insta::assert_snapshot!(err("nodes = 2\n[[hook]]\nwhen = \"after_up\"\nnode = \"n9\"\ncommand = \"x\"\n"), @r#"t.toml:4:8: key `hook[0].node`: no node "n9" in this spec (nodes: n1, n2)"#);
        insta::assert_snapshot!(err("nodes = 2\n[[hook]]\nwhen = \"after_up\"\nroles = [\"web\"]\ncommand = \"x\"\n"), @r#"t.toml:4:9: key `hook[0].roles`: no node has any of the roles ["web"], so the hook would run nowhere"#);
    }

    #[test]
    fn image_syntax() {
        for ok in [
            "a",
            "a/b:c",
            "localhost:5000/a/b:1.0",
            "cluster-sim/node",
            "a@sha256:00",
        ] {
            assert!(valid_image(ok), "{ok}");
        }
        for bad in ["", "A", "a b", "a:", "a/:x", "a:b/c:"] {
            assert!(!valid_image(bad), "{bad}");
        }
    }

    #[test]
    fn memory_sizes() {
        let s = parse("nodes = 1\n[limits]\nmemory = \"512m\"\ncpus = 0.5\n").unwrap();
        assert_eq!(s.nodes[0].limits.memory, Some(512 << 20));
        assert!(err("nodes = 1\n[limits]\nmemory = \"lots\"\n").contains("bad memory size"));
    }
}
