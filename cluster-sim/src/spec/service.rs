//! The spec's keys for your own service besides `[[binary]]` (`binaries.rs`): `[[dir]]`
//! (expanded into files, templates rendered at parse time like `[[file]]`) and `collect`, with
//! every error at its file, line and key.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::model::FileSpec;
use super::raw::RawDir;
use crate::error::SpecError;
use crate::located::Src;

pub(super) fn bad_path(p: &str) -> bool {
    p.split('/').any(|c| c == "..")
}

/// One file of a `[[dir]]`: what it becomes, and its text when it is a template (checked for
/// syntax already; the spec renders it per node with stand-in addresses).
pub(super) struct DirFile {
    pub(super) spec: FileSpec,
    pub(super) text: Option<String>,
    pub(super) key: String,
    pub(super) span: std::ops::Range<usize>,
}

/// Expands `[[dir]]` number `i`: every file under the folder, `*.tmpl` ones as templates
/// without their suffix, in a stable order. The folder is looked up like a `[[file]]` source.
pub(super) fn dir_files(
    src: &Src<'_>,
    base_dir: &Path,
    i: usize,
    d: &RawDir,
) -> Result<Vec<DirFile>, SpecError> {
    let key = format!("dir[{i}].source");
    let span = d.source.span();
    let err = |k: &str, m: String| SpecError::from(src.at(span.clone(), k, m));
    let rel = d.source.get_ref();
    let candidates: Vec<PathBuf> = if Path::new(rel).is_absolute() {
        vec![PathBuf::from(rel)]
    } else {
        vec![
            base_dir.join(rel),
            base_dir.join("../templates").join(rel),
            base_dir.join("..").join(rel),
        ]
    };
    let Some(root) = candidates.iter().find(|c| c.is_dir()) else {
        return Err(err(
            &key,
            format!(
                "folder {rel:?} not found (looked for {})",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let dest = d.dest.get_ref().trim_end_matches('/');
    if dest.is_empty() || bad_path(dest) {
        return Err(SpecError::from(src.at(
            d.dest.span(),
            &format!("dir[{i}].dest"),
            format!("dest {:?} must name a folder (absolute, or relative to the node's working directory, without '..')", d.dest.get_ref()),
        )));
    }
    let mut files = Vec::new();
    walk(root, Path::new(""), &mut files).map_err(|e| err(&key, e))?;
    if files.is_empty() {
        return Err(err(
            &key,
            format!("folder {} holds no files", root.display()),
        ));
    }
    let mut out = Vec::new();
    for relpath in files {
        let path = root.join(&relpath);
        let name = relpath.to_string_lossy().into_owned();
        let (target, template) = match name.strip_suffix(".tmpl") {
            Some(stem) => (stem.to_string(), true),
            None => (name.clone(), false),
        };
        let text = if template {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(&key, format!("cannot read {}: {e}", path.display())))?;
            crate::template::check(&text, &path).map_err(|m| err(&key, m))?;
            Some(text)
        } else {
            None
        };
        use std::os::unix::fs::PermissionsExt as _;
        let executable = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        out.push(DirFile {
            spec: FileSpec {
                source: path,
                template,
                dest: format!("{dest}/{target}"),
                mode: if executable { 0o755 } else { 0o644 },
                rerender: false,
            },
            text,
            key: key.clone(),
            span: span.clone(),
        });
    }
    Ok(out)
}

/// Files under `dir` (recursively, sorted), as paths relative to the folder walked first.
fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let here = root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&here)
        .map_err(|e| format!("cannot read {}: {e}", here.display()))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = rel.join(e.file_name());
        let full = root.join(&p);
        if full.is_dir() {
            walk(root, &p, out)?;
        } else if full.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// Checks `collect` globs: paths on the node (relative ones inside its working directory) with
/// `*`, `?` and `[...]`; no whitespace or shell characters, since the node's shell expands them.
pub(super) fn collect_globs(
    src: &Src<'_>,
    key: &str,
    globs: &[Spanned<String>],
) -> Result<Vec<String>, SpecError> {
    globs
        .iter()
        .map(|g| {
            let s = g.get_ref();
            let ok = !s.is_empty()
                && !bad_path(s)
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-*?[]+,=@:~%".contains(c));
            if ok {
                Ok(s.clone())
            } else {
                Err(SpecError::from(src.at(
                    g.span(),
                    key,
                    format!("bad collect pattern {s:?} (a path or glob on the node, such as \"/var/log/app/*.log\" or \"data/*.meta\"; no spaces, quotes, '$' or '..')"),
                )))
            }
        })
        .collect()
}
