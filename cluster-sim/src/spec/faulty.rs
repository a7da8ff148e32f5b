//! `faulty_dirs`: the directories of a node on the fault filesystem, checked at file, line and
//! key, and the fault filesystem itself as the `[[binary]]` those nodes get.

use std::path::Path;

use toml::Spanned;

use super::model::{BinarySpec, ClusterSpec, NodeSpec};
use super::service::bad_path;
use crate::error::SpecError;
use crate::located::Src;
use crate::service::workspace::Workspace;

/// Checks `faulty_dirs` (top level, or a `[[node]]`'s, which replaces it): each a directory
/// relative to the node's working directory or absolute, without `..`, globs, the working
/// directory itself or cluster-sim's own `.cluster-sim`, none twice.
pub(super) fn faulty_dirs(
    src: &Src<'_>,
    key: &str,
    raw: &[Spanned<String>],
) -> Result<Vec<String>, SpecError> {
    let mut out: Vec<String> = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        match faulty_dir(d.get_ref(), &out) {
            Ok(v) => out.push(v),
            Err(why) => {
                return Err(SpecError::from(src.at(
                    d.span(),
                    &format!("{key}[{i}]"),
                    format!("faulty dir {:?} {why}", d.get_ref()),
                )))
            }
        }
    }
    Ok(out)
}

/// One faulty dir, normalised (no trailing `/` or leading `./`), or why it can't be one;
/// `seen` holds the ones before it.
pub(crate) fn faulty_dir(d: &str, seen: &[String]) -> Result<String, &'static str> {
    let v = d.trim_end_matches('/');
    let v = v.strip_prefix("./").unwrap_or(v);
    if v.is_empty() || v == "." {
        Err("names the node's working directory itself; name a directory inside it")
    } else if bad_path(v) {
        Err("must not contain '..'")
    } else if v.contains(['*', '?', '[']) {
        Err("must be a directory, not a glob")
    } else if v == ".cluster-sim" || v.starts_with(".cluster-sim/") {
        Err("is cluster-sim's own directory")
    } else if seen.iter().any(|o| o == v) {
        Err("is listed twice")
    } else {
        Ok(v.to_string())
    }
}

/// The fault filesystem as a `[[binary]]`, when some node has `faulty_dirs`: the package
/// `cluster-sim-faultfs` of the workspace around the spec, or of the cluster-sim source this
/// library was built from, placed in the node's `.cluster-sim/bin`. An error at the first
/// `faulty_dirs` when neither has it.
pub(super) fn faultfs_binary(
    src: &Src<'_>,
    base_dir: &Path,
    raw: &super::raw::RawSpec,
    nodes: &[super::model::NodeSpec],
) -> Result<Option<BinarySpec>, SpecError> {
    use crate::fault::storage::{FAULTFS_DEST, FAULTFS_PACKAGE};
    if nodes.iter().all(|n| n.faulty_dirs.is_empty()) {
        return Ok(None);
    }
    let first = raw.faulty_dirs.first().or_else(|| {
        raw.node
            .iter()
            .filter_map(|n| n.faulty_dirs.as_ref()?.first())
            .next()
    });
    if let Err(m) = Workspace::for_tool(base_dir, FAULTFS_PACKAGE) {
        let span = first.map(|f| f.span()).unwrap_or(0..0);
        return Err(SpecError::from(src.at(
            span,
            "faulty_dirs",
            format!("faulty_dirs needs the fault filesystem, cluster-sim's workspace package {FAULTFS_PACKAGE}: {m}"),
        )));
    }
    Ok(Some(BinarySpec {
        package: FAULTFS_PACKAGE.into(),
        bin: FAULTFS_PACKAGE.into(),
        name: FAULTFS_PACKAGE.into(),
        source: super::model::BinarySource::Workspace,
        switchable: false,
        dest: FAULTFS_DEST.into(),
        roles: Vec::new(),
        profile: None,
        target: None,
    }))
}

impl ClusterSpec {
    /// Makes `node` mount the fault filesystem on `dirs` (none: no fault filesystem), for a
    /// node added at run time (`NodeOptions::faulty_dirs`); its binaries and packages follow.
    /// Says why not for a bad directory, or when the spec builds no fault filesystem (no node
    /// of it has `faulty_dirs`).
    pub fn set_faulty_dirs(&self, node: &mut NodeSpec, dirs: &[String]) -> Result<(), String> {
        let mut out: Vec<String> = Vec::new();
        for d in dirs {
            let v = faulty_dir(d, &out).map_err(|why| format!("faulty dir {d:?} {why}"))?;
            out.push(v);
        }
        let has_faultfs = self
            .binaries
            .iter()
            .any(|b| b.package == crate::fault::storage::FAULTFS_PACKAGE);
        if !out.is_empty() && !has_faultfs {
            return Err(format!(
                "faulty_dirs {out:?}: the spec {} builds no fault filesystem (none of its nodes has faulty_dirs); list faulty_dirs in the spec",
                self.source
            ));
        }
        node.faulty_dirs = out;
        node.fuse = self.blueprint.fuse || !node.faulty_dirs.is_empty();
        self.fit_faultfs(node);
        Ok(())
    }
}
