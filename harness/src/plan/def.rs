//! What `#[cluster_test]` registers: a [`TestDef`] per test, collected with `inventory`.
//!
//! `TestDef` is built with `const fn` setters so the attribute can grow (parameters, a matrix)
//! without breaking code that registers tests by hand.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster_sim_core::Cluster;

use super::matrix::Axis;
use super::walk::Plan;
use crate::outcome::TestFuture;

/// The cluster a test asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterRequest {
    /// No cluster: the test runs on its own.
    None,
    /// A spec: a name in `fixtures/clusters/` (`"etcd3"`), or a path ending in `.toml` or holding a
    /// `/`, relative to the registering crate's manifest directory.
    Spec(&'static str),
    /// `nodes` idle nodes of `image` (default: the `cluster-sim/node` image).
    Inline {
        /// How many nodes.
        nodes: u32,
        /// Image reference.
        image: Option<&'static str>,
    },
}

/// The function that runs a test.
#[derive(Debug, Clone, Copy)]
pub enum TestBody {
    /// Takes the provisioned cluster (the harness keeps a handle for teardown).
    Cluster(fn(Cluster) -> TestFuture),
    /// Needs no cluster.
    Plain(fn() -> TestFuture),
    /// A walk definition (`#[cluster_walk]`): one case per generated walk, all on one cluster.
    Walks(fn() -> Box<dyn Plan>),
}

/// One registered test. Made by `#[cluster_test]`; read by the runner.
#[derive(Debug, Clone, Copy)]
pub struct TestDef {
    /// `module_path!()` where the test was written (`tests_d::snapshot::basic`).
    pub module_path: &'static str,
    /// The function's name.
    pub name: &'static str,
    /// `file!()` of the test.
    pub file: &'static str,
    /// `line!()` of the test.
    pub line: u32,
    /// `CARGO_MANIFEST_DIR` of the crate holding the test: spec names resolve against it.
    pub manifest_dir: &'static str,
    /// The cluster asked for.
    pub cluster: ClusterRequest,
    /// The attribute's `timeout`, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// `Some(reason)` when ignored (the reason may be empty).
    pub ignore: Option<&'static str>,
    /// The attribute's `retries`: how many more attempts a failing test gets.
    pub retries: Option<u32>,
    /// Kernel features the test needs (`netem`): where the backend lacks one, the test is
    /// reported skipped with the reason. Names from `cluster_sim_core::fault::KERNEL_FEATURES`.
    pub requires: &'static [&'static str],
    /// The attribute's `matrix(...)` axes: one case per combination (empty: one case).
    pub matrix: &'static [Axis],
    /// `share = "group"`: runs on the group's shared cluster.
    pub share: Option<&'static str>,
    /// The body.
    pub body: TestBody,
}

inventory::collect!(TestDef);

impl TestDef {
    /// A test with no cluster request, no timeout of its own, not ignored.
    pub const fn new(
        module_path: &'static str,
        name: &'static str,
        file: &'static str,
        line: u32,
        manifest_dir: &'static str,
        body: TestBody,
    ) -> Self {
        Self {
            module_path,
            name,
            file,
            line,
            manifest_dir,
            cluster: ClusterRequest::None,
            timeout_ms: None,
            ignore: None,
            retries: None,
            requires: &[],
            matrix: &[],
            share: None,
            body,
        }
    }

    /// Shares one cluster with the other tests of `group` (`#[cluster_test(share = "...")]`).
    /// One cluster per group name, cluster request and matrix values: tests of one group that
    /// ask for different specs, or matrix cases with different values, get different clusters.
    ///
    /// ```no_run
    /// use harness::prelude::*;
    ///
    /// #[cluster_test(cluster = "etcd3", share = "etcd")] // one cluster for both tests
    /// async fn first(cluster: &Cluster) -> TestResult {
    ///     cluster.node("n1")?.exec("etcdctl put a 1").await?.check()?;
    ///     Ok(())
    /// }
    ///
    /// #[cluster_test(cluster = "etcd3", share = "etcd")]
    /// async fn second(cluster: &Cluster) -> TestResult {
    ///     cluster.node("n1")?.exec("etcdctl put b 1").await?.check()?;
    ///     Ok(())
    /// }
    ///
    /// #[cluster_test(cluster = "etcd3", share = "etcd", matrix(nodes = [1, 3]))] // one per value
    /// async fn sized(cluster: &Cluster, nodes: usize) -> TestResult {
    ///     ensure!(cluster.nodes().len() == nodes);
    ///     Ok(())
    /// }
    /// # fn main() {}
    /// ```
    pub const fn share(mut self, group: &'static str) -> Self {
        self.share = Some(group);
        self
    }

    /// Sets the matrix: the test runs once per combination of the axes' values.
    pub const fn matrix(mut self, axes: &'static [Axis]) -> Self {
        self.matrix = axes;
        self
    }

    /// Sets the cluster request.
    pub const fn cluster(mut self, cluster: ClusterRequest) -> Self {
        self.cluster = cluster;
        self
    }

    /// Sets the deadline, in milliseconds.
    pub const fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// Marks the test ignored, with a reason (may be empty).
    pub const fn ignore(mut self, reason: &'static str) -> Self {
        self.ignore = Some(reason);
        self
    }

    /// Gives a failing test `n` more attempts, each on a fresh cluster.
    pub const fn retries(mut self, n: u32) -> Self {
        self.retries = Some(n);
        self
    }

    /// Sets the kernel features the test needs.
    pub const fn requires(mut self, features: &'static [&'static str]) -> Self {
        self.requires = features;
        self
    }

    /// The test's name: `module_path` without its crate segment, then the function:
    /// `snapshot::basic::save_and_restore`.
    pub fn full_name(&self) -> String {
        match self.module_path.split_once("::") {
            Some((_, rest)) => format!("{rest}::{}", self.name),
            None => self.name.to_string(),
        }
    }

    /// `file:line` of the test.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The attribute's timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }

    /// Whether this registers walks rather than a test.
    pub fn is_walks(&self) -> bool {
        matches!(self.body, TestBody::Walks(_))
    }

    /// Whether the test needs a cluster.
    pub fn needs_cluster(&self) -> bool {
        !matches!(self.cluster, ClusterRequest::None)
    }

    /// Where a spec name points: `<dir>/fixtures/clusters/<name>.toml` in the manifest directory
    /// or the nearest ancestor holding one; a path is taken relative to the manifest directory.
    pub fn spec_path(&self, spec: &str) -> PathBuf {
        let base = Path::new(self.manifest_dir);
        if spec.contains('/') || spec.ends_with(".toml") {
            return base.join(spec);
        }
        let rel = Path::new("fixtures/clusters").join(format!("{spec}.toml"));
        base.ancestors()
            .map(|d| d.join(&rel))
            .find(|p| p.is_file())
            .unwrap_or_else(|| base.join(&rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> TestFuture {
        Box::pin(async { Ok(()) })
    }

    #[test]
    fn names_drop_the_crate_segment() {
        let d = TestDef::new(
            "tests_d::snapshot::basic",
            "save",
            "f.rs",
            1,
            ".",
            TestBody::Plain(body),
        );
        assert_eq!(d.full_name(), "snapshot::basic::save");
        assert_eq!(d.location(), "f.rs:1");
        let d = TestDef::new("suite", "t", "f.rs", 1, ".", TestBody::Plain(body));
        assert_eq!(d.full_name(), "t");
    }

    #[test]
    fn builder_is_const() {
        const D: TestDef = TestDef::new("a::b", "c", "f.rs", 3, ".", TestBody::Plain(body))
            .cluster(ClusterRequest::Inline {
                nodes: 2,
                image: None,
            })
            .timeout_ms(1500)
            .ignore("slow")
            .retries(2)
            .requires(&["netem"]);
        assert_eq!(D.retries, Some(2));
        assert_eq!(D.timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(D.requires, ["netem"]);
        assert_eq!(D.ignore, Some("slow"));
        assert!(D.needs_cluster());
    }
}
