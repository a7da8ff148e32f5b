//! The spec file as serde reads it: exactly what the file says, spans kept, unknown keys
//! refused. `resolve.rs` turns it into the types of `model.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// `[reuse]`: how tests sharing a cluster hand it on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReuse {
    pub(super) reset: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpec {
    pub(super) name: Option<String>,
    pub(super) image: Option<Spanned<String>>,
    pub(super) nodes: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub(super) roles: Vec<String>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) packages: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) publish: Vec<u16>,
    pub(super) service: Option<RawService>,
    pub(super) ready: Option<RawReady>,
    #[serde(default)]
    pub(super) limits: RawLimits,
    pub(super) timeout: Option<Spanned<String>>,
    #[serde(default, rename = "file")]
    pub(super) files: Vec<RawFile>,
    #[serde(default, rename = "dir")]
    pub(super) dirs: Vec<RawDir>,
    #[serde(default, rename = "binary")]
    pub(super) binaries: Vec<RawBinary>,
    #[serde(default)]
    pub(super) collect: Vec<Spanned<String>>,
    pub(super) collect_limit: Option<Spanned<String>>,
    #[serde(default, rename = "node")]
    pub(super) node: Vec<RawNode>,
    pub(super) reuse: Option<RawReuse>,
    #[serde(default)]
    pub(super) fail_on_log: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_log: Vec<Spanned<String>>,
    #[serde(default, rename = "hook")]
    pub(super) hooks: Vec<crate::service::hooks::RawHook>,
    #[serde(default)]
    pub(super) faulty_dirs: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) fuse: bool,
    pub(super) placement: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) command: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReady {
    pub(super) command: Option<String>,
    pub(super) log: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) memory: Option<Spanned<String>>,
    pub(super) cpus: Option<Spanned<f64>>,
    pub(super) pids: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) template: Option<Spanned<String>>,
    pub(super) source: Option<Spanned<String>>,
    pub(super) dest: String,
    pub(super) mode: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) roles: Vec<String>,
    /// Render the file again on every node whenever a node joins or leaves at run time.
    #[serde(default)]
    pub(super) rerender: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) name: Spanned<String>,
    pub(super) image: Option<Spanned<String>>,
    pub(super) roles: Option<Vec<String>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    pub(super) command: Option<String>,
    #[serde(default)]
    pub(super) packages: Vec<Spanned<String>>,
    pub(super) publish: Option<Vec<u16>>,
    pub(super) limits: Option<RawLimits>,
    pub(super) collect: Option<Vec<Spanned<String>>>,
    pub(super) faulty_dirs: Option<Vec<Spanned<String>>>,
    /// `versions = { kvd = "old" }`: which `[[binary]]` of each name-alike group this node runs.
    pub(super) versions: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(super) engine: Option<Spanned<String>>,
}

/// `[[binary]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBinary {
    pub(super) package: Option<Spanned<String>>,
    /// A git revision of the workspace to build instead of the working tree.
    pub(super) rev: Option<Spanned<String>>,
    /// A prebuilt file instead of a cargo build.
    pub(super) path: Option<Spanned<String>>,
    /// The version's name (default: the package, or the file's name).
    pub(super) name: Option<Spanned<String>>,
    pub(super) bin: Option<Spanned<String>>,
    pub(super) dest: Spanned<String>,
    #[serde(default)]
    pub(super) roles: Vec<String>,
    pub(super) profile: Option<Spanned<String>>,
    pub(super) target: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDir {
    pub(super) source: Spanned<String>,
    pub(super) dest: Spanned<String>,
    #[serde(default)]
    pub(super) roles: Vec<String>,
    /// Render the folder's templates again when a node joins or leaves at run time.
    #[serde(default)]
    pub(super) rerender: bool,
}
