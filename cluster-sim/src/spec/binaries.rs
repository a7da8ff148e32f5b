//! `[[binary]]` and `[[node]] versions`: each binary checked against the workspace that
//! `cargo metadata` describes (a `rev` resolved to its commit by git, a `path` found beside the
//! spec), the versions of one binary grouped by `bin` and told apart by `name`, and each node's
//! choice among them; every error at its file, line and key.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::model::{BinarySource, BinarySpec};
use super::raw::{RawBinary, RawNode};
use super::service::bad_path;
use crate::error::SpecError;
use crate::located::Src;
use crate::service::revision;
use crate::service::workspace::Workspace;

fn simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Checks every `[[binary]]` (the workspace around `base_dir` read once per process) and marks
/// the ones that have other versions.
pub(super) fn binaries(
    src: &Src<'_>,
    base_dir: &Path,
    raw: &[RawBinary],
) -> Result<Vec<BinarySpec>, SpecError> {
    let mut out: Vec<BinarySpec> = Vec::new();
    for (i, b) in raw.iter().enumerate() {
        let spec = binary(src, base_dir, i, b)?;
        let key = |k: &str| format!("binary[{i}].{k}");
        let name_span = b
            .name
            .as_ref()
            .or(b.package.as_ref())
            .or(b.path.as_ref())
            .map(Spanned::span)
            .unwrap_or(0..0);
        if let Some((j, other)) = out.iter().enumerate().find(|(_, o)| o.bin == spec.bin) {
            if other.dest != spec.dest {
                return Err(src
                    .at(
                        b.dest.span(),
                        &key("dest"),
                        format!(
                            "the versions of {} go to one place, and binary[{j}] puts {} at {:?}",
                            spec.bin, other.name, other.dest
                        ),
                    )
                    .into());
            }
        }
        if let Some(j) = out
            .iter()
            .position(|o| o.bin == spec.bin && o.name == spec.name)
        {
            return Err(src
                .at(
                    name_span,
                    &key("name"),
                    format!(
                        "binary[{j}] is already the version of {} named {:?}: give each version \
                         its own `name` (`name = \"old\"`)",
                        spec.bin, spec.name
                    ),
                )
                .into());
        }
        out.push(spec);
    }
    let counts = out.iter().fold(BTreeMap::new(), |mut m, b| {
        *m.entry(b.bin.clone()).or_insert(0usize) += 1;
        m
    });
    for b in &mut out {
        b.switchable = counts[&b.bin] > 1;
    }
    Ok(out)
}

/// One `[[binary]]` table.
fn binary(
    src: &Src<'_>,
    base_dir: &Path,
    i: usize,
    b: &RawBinary,
) -> Result<BinarySpec, SpecError> {
    let key = |k: &str| format!("binary[{i}].{k}");
    let err = |span, k: &str, m: String| SpecError::from(src.at(span, &key(k), m));
    let (package, bin, source) = match (&b.package, &b.path) {
        (Some(p), Some(_)) => {
            return Err(err(
                p.span(),
                "package",
                "`package` and `path` exclude each other: build a workspace package, or place a \
                 prebuilt file"
                    .into(),
            ))
        }
        (None, None) => {
            return Err(err(
                b.dest.span(),
                "package",
                "a [[binary]] needs `package` (a workspace package to build) or `path` (a \
                 prebuilt file)"
                    .into(),
            ))
        }
        (Some(p), None) => workspace_binary(src, base_dir, i, b, p)?,
        (None, Some(path)) => {
            if let Some(r) = &b.rev {
                return Err(err(
                    r.span(),
                    "rev",
                    "`rev` builds a workspace package: it goes with `package`, not `path`".into(),
                ));
            }
            for (v, k) in [(&b.profile, "profile"), (&b.target, "target")] {
                if let Some(v) = v {
                    return Err(err(
                        v.span(),
                        k,
                        format!("a prebuilt file (`path`) is not built, so it takes no `{k}`"),
                    ));
                }
            }
            let file = base_dir.join(path.get_ref());
            if !file.is_file() {
                return Err(err(
                    path.span(),
                    "path",
                    format!(
                        "no file {} (a `path` is relative to the spec's folder)",
                        file.display()
                    ),
                ));
            }
            let file = std::path::absolute(&file).unwrap_or(file);
            let bin = match &b.bin {
                Some(s) => s.get_ref().clone(),
                None => file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            (bin.clone(), bin, BinarySource::Path(file))
        }
    };
    let name = match &b.name {
        Some(n) if !simple_name(n.get_ref()) => {
            return Err(err(
                n.span(),
                "name",
                format!(
                    "bad name {:?} (letters, digits, '-', '_' and '.')",
                    n.get_ref()
                ),
            ))
        }
        Some(n) => n.get_ref().clone(),
        None => package.clone(),
    };
    let dest = b.dest.get_ref();
    if dest.is_empty() || dest.ends_with('/') || bad_path(dest) {
        return Err(err(
            b.dest.span(),
            "dest",
            format!("dest {dest:?} must name a file (absolute, or relative to the node's working directory, without '..')"),
        ));
    }
    for (v, k) in [(&b.profile, "profile"), (&b.target, "target")] {
        if let Some(v) = v {
            if !simple_name(v.get_ref()) {
                return Err(err(
                    v.span(),
                    k,
                    format!(
                        "bad {k} {:?} (letters, digits, '-', '_' and '.')",
                        v.get_ref()
                    ),
                ));
            }
        }
    }
    Ok(BinarySpec {
        package,
        bin,
        name,
        source,
        switchable: false,
        dest: dest.clone(),
        roles: b.roles.clone(),
        profile: b.profile.as_ref().map(|p| p.get_ref().clone()),
        target: b.target.as_ref().map(|p| p.get_ref().clone()),
    })
}

/// A `package` binary: the package and target checked against the workspace (at a `rev`, the
/// package may exist only there: cargo says so when it builds), the rev resolved to a commit.
fn workspace_binary(
    src: &Src<'_>,
    base_dir: &Path,
    i: usize,
    b: &RawBinary,
    p: &Spanned<String>,
) -> Result<(String, String, BinarySource), SpecError> {
    let key = |k: &str| format!("binary[{i}].{k}");
    let err = |span, k: &str, m: String| SpecError::from(src.at(span, &key(k), m));
    let package = p.get_ref();
    let found = Workspace::for_package(base_dir, package);
    let ws = match (&found, &b.rev) {
        (Ok(ws), _) => ws.clone(),
        (Err(_), Some(_)) => {
            Workspace::around(base_dir).map_err(|m| err(p.span(), "package", m))?
        }
        (Err(m), None) => return Err(err(p.span(), "package", m.clone())),
    };
    let (bin, bin_span) = match &b.bin {
        Some(s) => (s.get_ref().clone(), s.span()),
        None => (package.clone(), p.span()),
    };
    if let Some(bins) = ws.packages.get(package) {
        if !bins.contains(&bin) && b.rev.is_none() {
            let has = if bins.is_empty() {
                "it has no binary targets".to_string()
            } else {
                format!("its binaries: {}", bins.join(", "))
            };
            return Err(err(
                bin_span,
                "bin",
                format!("package {package:?} has no binary {bin:?} ({has})"),
            ));
        }
    }
    let source = match &b.rev {
        None => BinarySource::Workspace,
        Some(r) => BinarySource::Rev {
            rev: r.get_ref().clone(),
            commit: revision::resolve(&ws.root, r.get_ref())
                .map_err(|m| err(r.span(), "rev", m))?,
        },
    };
    Ok((package.clone(), bin, source))
}

/// The binaries of one node: of each binary its roles select, the version its `versions`
/// names, else the first one declared.
pub(super) fn node_binaries(
    src: &Src<'_>,
    all: &[BinarySpec],
    node: &str,
    roles: &[String],
    over: Option<&RawNode>,
) -> Result<Vec<BinarySpec>, SpecError> {
    let selects = |b: &BinarySpec| b.roles.is_empty() || b.roles.iter().any(|r| roles.contains(r));
    let chosen = over.and_then(|o| o.versions.as_ref());
    if let Some(chosen) = chosen {
        for (bin, name) in chosen.get_ref() {
            let at = |m: String| SpecError::from(src.at(name.span(), "node.versions", m));
            let versions: Vec<&BinarySpec> = all.iter().filter(|b| &b.bin == bin).collect();
            if versions.is_empty() {
                let mut bins: Vec<&str> = all.iter().map(|b| b.bin.as_str()).collect();
                bins.dedup();
                return Err(at(format!(
                    "node {node}: no [[binary]] {bin:?} to choose a version of (binaries: {})",
                    if bins.is_empty() {
                        "none".into()
                    } else {
                        bins.join(", ")
                    }
                )));
            }
            match versions.iter().find(|b| &b.name == name.get_ref()) {
                None => {
                    return Err(at(format!(
                        "node {node}: {bin} has no version {:?} (its versions: {})",
                        name.get_ref(),
                        versions
                            .iter()
                            .map(|b| b.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
                Some(b) if !selects(b) => {
                    return Err(at(format!(
                        "node {node}: version {:?} of {bin} is for roles {} and the node has {}",
                        b.name,
                        b.roles.join(", "),
                        if roles.is_empty() {
                            "none".into()
                        } else {
                            roles.join(", ")
                        }
                    )))
                }
                Some(_) => {}
            }
        }
    }
    let mut out: Vec<BinarySpec> = Vec::new();
    for b in all.iter().filter(|b| selects(b)) {
        if out.iter().any(|o| o.bin == b.bin) {
            continue;
        }
        let pick = chosen
            .and_then(|c| c.get_ref().get(&b.bin))
            .and_then(|name| {
                all.iter()
                    .find(|v| v.bin == b.bin && &v.name == name.get_ref())
            })
            .unwrap_or(b);
        out.push(pick.clone());
    }
    Ok(out)
}
