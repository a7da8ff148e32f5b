//! Reading a spec: from a file or text, with a test case's parameters (node count, template
//! values), into raw serde structs, then resolved (`resolve.rs`). Also where the files a spec
//! names are looked for.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::model::{ClusterSpec, SpecParams};
use super::raw::RawSpec;
use super::resolve::{node_names, resolve};
use super::units::SpecErr;
use crate::error::SpecError;
use crate::image::NODE_IMAGE;
use crate::located::Src;

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
