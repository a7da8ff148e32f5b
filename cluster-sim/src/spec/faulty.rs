//! `faulty_dirs`: the directories of a node on the fault filesystem, checked at file, line and
//! key, and the fault filesystem itself as the `[[binary]]` those nodes get.

use std::path::Path;

use toml::Spanned;

use super::model::BinarySpec;
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
        let k = format!("{key}[{i}]");
        let v = d.get_ref().trim_end_matches('/');
        let v = v.strip_prefix("./").unwrap_or(v);
        let why = if v.is_empty() || v == "." {
            Some("names the node's working directory itself; name a directory inside it")
        } else if bad_path(v) {
            Some("must not contain '..'")
        } else if v.contains(['*', '?', '[']) {
            Some("must be a directory, not a glob")
        } else if v == ".cluster-sim" || v.starts_with(".cluster-sim/") {
            Some("is cluster-sim's own directory")
        } else if out.iter().any(|o| o == v) {
            Some("is listed twice")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(SpecError::from(src.at(
                d.span(),
                &k,
                format!("faulty dir {:?} {why}", d.get_ref()),
            )));
        }
        out.push(v.to_string());
    }
    Ok(out)
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
