//! The cluster spec as the rest of the crate sees it: plain, validated types with every node
//! resolved and every default applied. How a file becomes one is in `load.rs` and
//! `resolve.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::service::hooks::HookSpec;
use crate::service::logrules::{LogPattern, LogRules};

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
    /// Where each package of `packages` (top level or a `[[node]]` table) is first named: its
    /// line in the spec file, for errors about a package apt can't find.
    pub package_lines: BTreeMap<String, usize>,
    /// How a backend with several engines (swarm) places the nodes a `[[node]]` `engine` key
    /// does not pin (`placement`); one-machine backends ignore it.
    pub placement: Placement,
    /// What a node added at run time (`Cluster::add_node`) is made from: the spec's defaults,
    /// every file and binary with the roles that select it.
    pub blueprint: NodeBlueprint,
}

/// `placement`: how nodes are spread over several engines (the swarm backend).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Placement {
    /// Each node on the engine holding the fewest nodes for its capacity (the default).
    #[default]
    Spread,
    /// Fill the engines in the order the engines file lists them, each up to its capacity.
    Pack,
}

/// The spec's defaults for a node it does not name: a node added at run time gets them, then
/// the files and binaries its roles select (see [`ClusterSpec::added_node`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeBlueprint {
    /// Image reference.
    pub image: String,
    /// Roles when the caller gives none (the spec's top-level `roles`).
    pub roles: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// The service command.
    pub command: Option<String>,
    /// Every file, with the roles that select it (empty: every node).
    pub files: Vec<(FileSpec, Vec<String>)>,
    /// Resource limits.
    pub limits: Limits,
    /// Packages (ssh).
    pub packages: Vec<String>,
    /// Published ports (docker).
    pub publish: Vec<u16>,
    /// `collect` globs.
    pub collect: Vec<String>,
    /// The spec's top-level `faulty_dirs`.
    pub faulty_dirs: Vec<String>,
    /// The spec's `fuse`.
    pub fuse: bool,
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
    /// Image reference; `cluster-sim/node` (`crate::image::NODE_IMAGE`) means the image built
    /// from `docker/node`.
    pub image: String,
    /// Roles, used to select files and binaries.
    pub roles: Vec<String>,
    /// Environment for the service and for every exec.
    pub env: BTreeMap<String, String>,
    /// The service command (run by `sh -c`), or none for an idle node.
    pub command: Option<String>,
    /// Files and templates to place on this node (already filtered by role).
    pub files: Vec<FileSpec>,
    /// Resource limits.
    pub limits: Limits,
    /// Debian packages the node needs: the ssh backend installs the missing ones on the host;
    /// the docker backend runs the node on an image derived from `image` with them installed
    /// (built once per package set and cached).
    pub packages: Vec<String>,
    /// TCP ports published on 127.0.0.1 of the machine running the engine (docker backend).
    pub publish: Vec<u16>,
    /// Binaries placed on this node (already filtered by role), one version of each: the one
    /// its `versions` names, else the first its roles select.
    pub binaries: Vec<BinarySpec>,
    /// Globs of files to gather from the node after a failed test (`collect`).
    pub collect: Vec<String>,
    /// Directories the fault filesystem is mounted on before the service starts
    /// (`faulty_dirs`): relative to the node's working directory, or absolute. Empty: no FUSE,
    /// no extra capability.
    pub faulty_dirs: Vec<String>,
    /// The node may mount FUSE: docker gives its container `/dev/fuse` and CAP_SYS_ADMIN, and
    /// its packages hold `fuse3`. True with `faulty_dirs`, and on every node with the spec's
    /// `fuse = true` (a host for a lab of the ssh backend, say, that mounts nothing itself).
    pub fuse: bool,
    /// The engine (by its name in the engines file) this node must run on (swarm backend;
    /// `[[node]] engine`); one-machine backends ignore it.
    pub engine: Option<String>,
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
    /// Rendered again on the nodes already running when a node joins or leaves at run time
    /// (`rerender = true`; `Cluster::add_node`, `remove_node`). Only templates change.
    pub rerender: bool,
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

/// Default cap on the bytes gathered from one node by `collect` (20 MiB).
pub const DEFAULT_COLLECT_LIMIT: u64 = 20 << 20;

/// A binary to build (or take prebuilt) and place on nodes (`[[binary]]`). Tables with the
/// same `bin` are versions of one binary, told apart by `name`; a node runs one of them
/// (`[[node]] versions`, `Node::set_version`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BinarySpec {
    /// The workspace package (for a prebuilt file: its `bin`).
    pub package: String,
    /// Its binary target (default: the package name; for a prebuilt file, the file's name).
    /// Versions of one binary share it: `versions = { <bin> = "<name>" }`.
    pub bin: String,
    /// This version's name (default: the package, or for a prebuilt file its `bin`).
    pub name: String,
    /// Where it comes from: the working tree, a git revision, or a prebuilt file.
    pub source: BinarySource,
    /// Whether the spec declares other versions of it, so that a node may switch between
    /// them at run time (backends then place it where it can be swapped).
    pub switchable: bool,
    /// Where it goes on the node; a relative path is inside the node's working directory.
    pub dest: String,
    /// Nodes with one of these roles get it; empty means every node.
    pub roles: Vec<String>,
    /// The cargo profile; `None` means the test run's own.
    pub profile: Option<String>,
    /// A target triple (e.g. `x86_64-unknown-linux-musl`), if not the host's.
    pub target: Option<String>,
}

/// Where a [`BinarySpec`] comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BinarySource {
    /// `cargo build` in the workspace as it is.
    Workspace,
    /// `cargo build` of the workspace at a git revision (`rev = "v0.1.0"`), built once per
    /// commit and cached under the target directory.
    Rev {
        /// What the spec said.
        rev: String,
        /// The full commit hash it named when the spec was read.
        commit: String,
    },
    /// A prebuilt file (`path = "..."`), absolute.
    Path(PathBuf),
}

/// Most nodes one spec may declare (a backend may allow fewer).
pub const MAX_NODES: i64 = 1000;

impl ClusterSpec {
    /// Looks a node up by name.
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The spec of a node added at run time: the spec's defaults (a `[[node]]` table naming it
    /// applies too, when the spec has one), `roles` (default: the spec's `roles`), then the
    /// files those roles select and, of each binary they select, its first version; `env` goes
    /// over the spec's.
    pub fn added_node(
        &self,
        name: &str,
        index: usize,
        roles: Option<Vec<String>>,
        env: &BTreeMap<String, String>,
    ) -> NodeSpec {
        let b = &self.blueprint;
        // A node of the spec keeps its `[[node]] versions` choices unless its roles change.
        let keep_binaries = self.node(name).is_some() && roles.is_none();
        let mut node = match self.node(name) {
            // A node of the spec removed earlier and added again keeps what the spec gave it.
            Some(n) => n.clone(),
            None => NodeSpec {
                name: name.to_string(),
                index,
                image: b.image.clone(),
                roles: b.roles.clone(),
                env: b.env.clone(),
                command: b.command.clone(),
                files: Vec::new(),
                limits: b.limits.clone(),
                packages: b.packages.clone(),
                publish: b.publish.clone(),
                binaries: Vec::new(),
                collect: b.collect.clone(),
                engine: None,
                // The spec's top-level `faulty_dirs` (`Cluster::add_node` may set others).
                faulty_dirs: b.faulty_dirs.clone(),
                fuse: b.fuse || !b.faulty_dirs.is_empty(),
            },
        };
        node.index = index;
        if let Some(r) = roles {
            node.roles = r;
        }
        let selects = |for_roles: &[String]| {
            for_roles.is_empty() || for_roles.iter().any(|r| node.roles.contains(r))
        };
        node.files = b
            .files
            .iter()
            .filter(|(_, r)| selects(r))
            .map(|(f, _)| f.clone())
            .collect();
        if !keep_binaries {
            // Of each binary its roles select, the first version declared (`Node::set_version`
            // switches it once the node runs).
            let mut binaries: Vec<BinarySpec> = Vec::new();
            for bin in self.binaries.iter().filter(|bin| selects(&bin.roles)) {
                if !binaries.iter().any(|b| b.bin == bin.bin) {
                    binaries.push(bin.clone());
                }
            }
            node.binaries = binaries;
        }
        self.fit_faultfs(&mut node);
        node.env
            .extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
        node
    }

    /// The fault filesystem's binary on `node` exactly when it has `faulty_dirs`, and `fuse3`
    /// among its packages when it mounts FUSE.
    pub(super) fn fit_faultfs(&self, node: &mut NodeSpec) {
        use crate::fault::storage::FAULTFS_PACKAGE;
        node.binaries.retain(|b| b.package != FAULTFS_PACKAGE);
        if !node.faulty_dirs.is_empty() {
            if let Some(f) = self.binaries.iter().find(|b| b.package == FAULTFS_PACKAGE) {
                node.binaries.push(f.clone());
            }
        }
        if node.fuse && !node.packages.iter().any(|p| p == "fuse3") {
            node.packages.push("fuse3".into());
        }
    }

    /// The versions of binary `bin` that node `node` may run (the `[[binary]]` tables with that
    /// `bin` whose roles select it), in spec order.
    pub fn versions_of(&self, node: &NodeSpec, bin: &str) -> Vec<&BinarySpec> {
        self.binaries
            .iter()
            .filter(|b| {
                b.bin == bin
                    && (b.roles.is_empty() || b.roles.iter().any(|r| node.roles.contains(r)))
            })
            .collect()
    }
}
