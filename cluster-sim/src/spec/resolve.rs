//! From what the file says to a spec: the node list, the files (from `[[file]]` and
//! `[[dir]]`), each node with the spec's defaults and its `[[node]]` table applied, every
//! template rendered once per node so an undefined variable fails here, the readiness check.
//! One function per section, each returning the first error at its file, line and key.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::{
    BinarySpec, ClusterSpec, FileSpec, Limits, NodeBlueprint, NodeSpec, Placement, ReadySpec,
    DEFAULT_COLLECT_LIMIT, DEFAULT_READY_TIMEOUT, MAX_NODES,
};
use toml::Spanned;

use super::binaries::{binaries, node_binaries};
use super::faulty::{faultfs_binary, faulty_dirs};
use super::raw::{RawFile, RawReady, RawSpec};
use super::service::{collect_globs, dir_files};
use super::units::{
    check_image, check_package, limits, parse_duration, parse_memory, valid_node_name, SpecErr,
};
use crate::error::SpecError;
use crate::image::NODE_IMAGE;
use crate::located::Src;
use crate::service::{hooks, logrules};
use crate::template::{self, TemplateContext, TemplateNode};

/// A file to place, with where in the spec it came from (for errors) and, for a template,
/// its text (to render at parse time).
struct SourcedFile {
    spec: FileSpec,
    roles: Vec<String>,
    key: String,
    span: Range<usize>,
    text: Option<String>,
}

/// What every node starts from before its `[[node]]` table.
struct Defaults {
    image: String,
    limits: Limits,
    collect: Vec<String>,
    binaries: Vec<BinarySpec>,
    faulty_dirs: Vec<String>,
}

pub(super) fn resolve(
    raw: RawSpec,
    src: &Src<'_>,
    base_dir: &Path,
    default_name: &str,
    params: &BTreeMap<String, serde_json::Value>,
) -> Result<ClusterSpec, SpecError> {
    let defaults = Defaults {
        image: match &raw.image {
            Some(i) => check_image(src, i, "image")?,
            None => NODE_IMAGE.to_string(),
        },
        limits: limits(src, &raw.limits, "limits")?,
        collect: collect_globs(src, "collect", &raw.collect)?,
        binaries: binaries(src, base_dir, &raw.binaries)?,
        faulty_dirs: faulty_dirs(src, "faulty_dirs", &raw.faulty_dirs)?,
    };
    let names = node_list(&raw, src)?;
    let mut files = file_list(&raw.files, src, base_dir)?;
    // Folders: every file becomes a [[file]] of its own, `*.tmpl` ones templates.
    for (i, d) in raw.dirs.iter().enumerate() {
        for f in dir_files(src, base_dir, i, d)? {
            let mut spec = f.spec;
            spec.rerender = d.rerender;
            files.push(SourcedFile {
                spec,
                roles: d.roles.clone(),
                key: f.key,
                span: f.span,
                text: f.text,
            });
        }
    }
    let collect_limit = match &raw.collect_limit {
        None => DEFAULT_COLLECT_LIMIT,
        Some(l) => parse_memory(src, l, "collect_limit")?,
    };
    let mut nodes = names
        .into_iter()
        .enumerate()
        .map(|(index, name)| node(&raw, src, index, name, &defaults, &files))
        .collect::<Result<Vec<_>, _>>()?;
    let mut binaries = defaults.binaries;
    // The fault filesystem is built and placed like a [[binary]] on the nodes that mount it.
    if let Some(faultfs) = faultfs_binary(src, base_dir, &raw, &nodes)? {
        for n in nodes.iter_mut().filter(|n| !n.faulty_dirs.is_empty()) {
            n.binaries.push(faultfs.clone());
        }
        binaries.push(faultfs);
    }
    // A node that mounts FUSE gets fusermount3 (a service that is not root mounts with it).
    for n in nodes.iter_mut().filter(|n| n.fuse) {
        if !n.packages.iter().any(|p| p == "fuse3") {
            n.packages.push("fuse3".into());
        }
    }
    let package_lines = package_lines(&raw, src);
    let name = raw.name.clone().unwrap_or_else(|| default_name.to_string());
    render_once(src, &name, &nodes, &files, params)?;
    let ready = raw.ready.map(|r| ready(r, src)).transpose()?;
    let timeout = raw
        .timeout
        .as_ref()
        .map(|t| parse_duration(src, t, "timeout"))
        .transpose()?;
    let log_rules = logrules::rules(src, &raw.fail_on_log, &raw.allow_log)?;
    let roles: Vec<(&str, &[String])> = nodes
        .iter()
        .map(|n| (n.name.as_str(), n.roles.as_slice()))
        .collect();
    let hooks = hooks::hooks(src, &raw.hooks, &roles)?;
    let placement = match &raw.placement {
        None => Placement::Spread,
        Some(p) => match p.get_ref().as_str() {
            "spread" => Placement::Spread,
            "pack" => Placement::Pack,
            other => {
                return Err(src.err(
                    p.span(),
                    "placement",
                    format!("{other:?} is not a placement (expected \"spread\" or \"pack\")"),
                ))
            }
        },
    };
    let blueprint = NodeBlueprint {
        image: defaults.image.clone(),
        roles: raw.roles.clone(),
        env: raw.env.clone(),
        command: raw.service.as_ref().map(|s| s.command.clone()),
        files: files
            .iter()
            .map(|f| (f.spec.clone(), f.roles.clone()))
            .collect(),
        limits: defaults.limits.clone(),
        packages: raw
            .packages
            .iter()
            .map(|p| check_package(src, p, "packages"))
            .collect::<Result<Vec<_>, _>>()?,
        publish: raw.publish.clone(),
        collect: defaults.collect.clone(),
        faulty_dirs: defaults.faulty_dirs.clone(),
        fuse: raw.fuse,
    };
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
        package_lines,
        placement,
        blueprint,
    })
}

/// The line each package is first named on, top-level `packages` before `[[node]]` tables.
fn package_lines(raw: &RawSpec, src: &Src<'_>) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    let named = raw
        .packages
        .iter()
        .chain(raw.node.iter().flat_map(|n| n.packages.iter()));
    for p in named {
        let line = src.text[..p.span().start.min(src.text.len())]
            .matches('\n')
            .count()
            + 1;
        lines.entry(p.get_ref().clone()).or_insert(line);
    }
    lines
}

/// Node names in order: from `nodes`, else from the `[[node]]` tables; each valid, none twice,
/// and (with both) every table naming a node that `nodes` named.
fn node_list(raw: &RawSpec, src: &Src<'_>) -> Result<Vec<String>, SpecError> {
    let mut names: Vec<(String, Range<usize>)> = Vec::new();
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
    Ok(names.into_iter().map(|(n, _)| n).collect())
}

/// Every `[[file]]`, its source found and (for a template) read and checked up front.
fn file_list(
    raw: &[RawFile],
    src: &Src<'_>,
    base_dir: &Path,
) -> Result<Vec<SourcedFile>, SpecError> {
    let mut files = Vec::new();
    for (i, f) in raw.iter().enumerate() {
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
            template::check(&text, &found)
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
        files.push(SourcedFile {
            spec: FileSpec {
                source: found,
                template,
                dest: f.dest.clone(),
                mode,
                rerender: f.rerender,
            },
            roles: f.roles.clone(),
            key: format!("{key}.{kname}"),
            span: kspan,
            text,
        });
    }
    Ok(files)
}

/// Whether something for `for_roles` (empty: every node) goes to a node with `roles`.
fn selects(for_roles: &[String], roles: &[String]) -> bool {
    for_roles.is_empty() || for_roles.iter().any(|r| roles.contains(r))
}

/// One node: the spec's defaults, then its `[[node]]` table, then the files and binaries its
/// roles select.
fn node(
    raw: &RawSpec,
    src: &Src<'_>,
    index: usize,
    name: String,
    defaults: &Defaults,
    files: &[SourcedFile],
) -> Result<NodeSpec, SpecError> {
    let over = raw.node.iter().find(|n| n.name.get_ref() == &name);
    let roles = over
        .and_then(|o| o.roles.clone())
        .unwrap_or_else(|| raw.roles.clone());
    let mut env = raw.env.clone();
    let mut packages = raw
        .packages
        .iter()
        .map(|p| check_package(src, p, "packages"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut node_limits = defaults.limits.clone();
    let mut node_image = defaults.image.clone();
    let mut command = raw.service.as_ref().map(|s| s.command.clone());
    let mut publish = raw.publish.clone();
    let mut node_collect = defaults.collect.clone();
    let mut node_faulty = defaults.faulty_dirs.clone();
    let mut engine = None;
    if let Some(o) = over {
        if let Some(d) = &o.faulty_dirs {
            node_faulty = faulty_dirs(src, "node.faulty_dirs", d)?;
        }
        if let Some(e) = &o.engine {
            if e.get_ref().trim().is_empty() {
                return Err(src.err(e.span(), "node.engine", "an engine name can't be empty"));
            }
            engine = Some(e.get_ref().trim().to_string());
        }
        if let Some(c) = &o.collect {
            node_collect.extend(collect_globs(src, "node.collect", c)?);
        }
        env.extend(o.env.clone());
        for p in &o.packages {
            packages.push(check_package(src, p, "node.packages")?);
        }
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
        .filter(|f| selects(&f.roles, &roles))
        .map(|f| f.spec.clone())
        .collect();
    let binaries = node_binaries(src, &defaults.binaries, &name, &roles, over)?;
    Ok(NodeSpec {
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
        binaries,
        collect: node_collect,
        fuse: raw.fuse || !node_faulty.is_empty(),
        faulty_dirs: node_faulty,
        engine,
    })
}

/// Renders every template once per node with stand-in addresses and working directory, so an
/// undefined variable is reported here, with the spec's key, before any engine call.
fn render_once(
    src: &Src<'_>,
    cluster: &str,
    nodes: &[NodeSpec],
    files: &[SourcedFile],
    params: &BTreeMap<String, serde_json::Value>,
) -> Result<(), SpecError> {
    let stand_ins: Vec<TemplateNode> = nodes
        .iter()
        .map(|n| TemplateNode {
            name: n.name.clone(),
            index: n.index,
            number: n.index + 1,
            address: format!("192.0.2.{}", n.index % 250 + 2),
            roles: n.roles.clone(),
            workdir: "/var/lib/cluster-sim".into(),
            added: false,
        })
        .collect();
    for (node, stand_in) in nodes.iter().zip(&stand_ins) {
        let ctx = TemplateContext {
            cluster: BTreeMap::from([("name".to_string(), cluster.to_string())]),
            node: stand_in.clone(),
            nodes: stand_ins.clone(),
            env: node.env.clone(),
            params: params.clone(),
        };
        for f in files {
            let (Some(text), true) = (&f.text, node.files.contains(&f.spec)) else {
                continue;
            };
            template::render(text, &f.spec.source, &ctx)
                .map_err(|m| src.err(f.span.clone(), &f.key, format!("node {}: {m}", node.name)))?;
        }
    }
    Ok(())
}

/// The readiness check (a command, a log line, or both), its durations defaulted.
fn ready(r: RawReady, src: &Src<'_>) -> Result<ReadySpec, SpecError> {
    Ok(ReadySpec {
        log: r
            .log
            .as_ref()
            .map(|l| logrules::pattern(src, l, "ready.log"))
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
    })
}

/// The three shapes of `nodes`, read by hand so that a wrong one gets a message that says which
/// shapes exist (serde's untagged enums can only say "did not match any variant").
pub(super) fn node_names(
    src: &Src<'_>,
    v: &Spanned<toml::Value>,
) -> Result<Vec<String>, SpecError> {
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
