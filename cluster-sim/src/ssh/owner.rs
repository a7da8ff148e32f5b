//! Who owns a cluster on the ssh hosts, and removing the clusters whose owner is gone.
//!
//! Each node's working directory holds `<workdir>/<cluster>/.owner`, written before anything
//! else of the node (service, files, fault rules) exists:
//!
//! ```text
//! run=<run id>                                   what the run's watchdog removes
//! owner=pid=..,start=..,boot=..,pidns=..,host=.. the owning process, as on docker labels
//! expires=<unix seconds>                         absent when the cluster never expires
//! kept=1                                         appended once `cluster-sim up` made it ready
//! ```
//!
//! The owner is a process on the *test* machine, so it is judged there (`docker::judge`: by
//! pid when boot id and PID namespace are ours, else only past the expiry). A directory
//! without our `.owner` is never touched.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use super::backend::SshBackend;
use super::conn::HostConn;
use crate::docker::{judge, Verdict};
use crate::error::BackendError;
use crate::shell::quote as q;

/// Name of the owner file in a node's working directory.
pub(crate) const OWNER_FILE: &str = ".owner";

/// The owner file's text for a cluster made by this process.
pub(crate) fn owner_text(expires: Option<SystemTime>) -> String {
    let mut s = format!(
        "run={}\nowner={}\n",
        crate::docker::run_id(),
        crate::docker::current_owner()
    );
    if let Some(e) = expires.and_then(|e| e.duration_since(UNIX_EPOCH).ok()) {
        s.push_str(&format!("expires={}\n", e.as_secs()));
    }
    s
}

/// One cluster's owner file as read from a host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct OwnerFile {
    pub run: String,
    pub owner: String,
    pub expires: Option<String>,
    pub kept: bool,
}

impl OwnerFile {
    pub(crate) fn parse(text: &str) -> OwnerFile {
        let mut f = OwnerFile::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("run", v)) => f.run = v.to_string(),
                Some(("owner", v)) => f.owner = v.to_string(),
                Some(("expires", v)) => f.expires = Some(v.to_string()),
                Some(("kept", "1")) => f.kept = true,
                _ => {}
            }
        }
        f
    }
}

/// Marks the separator between clusters in [`list_owners`]'s output.
const SEP: &str = "@@cluster-sim-owner ";

impl SshBackend {
    /// Every cluster on `h` with an owner file, and that file.
    async fn list_owners(&self, h: &HostConn) -> Result<Vec<(String, OwnerFile)>, BackendError> {
        let script = format!(
            "for f in {base}/*/{OWNER_FILE}; do [ -f \"$f\" ] || continue; \
             d=${{f%/*}}; echo \"{SEP}${{d##*/}}\"; cat \"$f\"; done",
            base = q(&h.host.workdir)
        );
        let o = h
            .run("list owners", &script, None, super::backend::SHORT)
            .await?;
        if !o.ok() {
            return Err(BackendError::Other(format!(
                "host {}: list owners: {}",
                h.host.name,
                o.why()
            )));
        }
        let text = String::from_utf8_lossy(&o.stdout);
        Ok(text
            .split(SEP)
            .filter_map(|chunk| {
                let (name, body) = chunk.split_once('\n')?;
                Some((name.trim().to_string(), OwnerFile::parse(body)))
            })
            .filter(|(n, _)| !n.is_empty())
            .collect())
    }

    /// Clusters on every host whose owner file passes `pick`. A host that can't be reached is
    /// a warning: its clusters wait for the next pass.
    async fn clusters_where(&self, pick: impl Fn(&OwnerFile) -> bool) -> BTreeSet<String> {
        let lists = futures::future::join_all(self.hosts().iter().map(|h| self.list_owners(h)));
        let mut out = BTreeSet::new();
        for l in lists.await {
            match l {
                Ok(l) => out.extend(l.into_iter().filter(|(_, f)| pick(f)).map(|(c, _)| c)),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        out
    }

    /// Removes the clusters `run` made on the hosts and did not keep (a run's watchdog does
    /// this once the run ended). Returns their names.
    pub async fn remove_run(&self, run: &str) -> Result<Vec<String>, BackendError> {
        let found = self.clusters_where(|f| f.run == run && !f.kept).await;
        self.destroy_all(found).await
    }

    /// Removes every cluster not kept whose owner is provably dead or whose lease expired
    /// (`cluster-sim prune` with `CLUSTER_SIM_BACKEND=ssh`, and the harness at start). Returns
    /// their names.
    pub async fn reap(&self) -> Result<Vec<String>, BackendError> {
        let now = SystemTime::now();
        let found = self
            .clusters_where(|f| {
                !f.kept && judge(&f.owner, f.expires.as_deref(), now) == Verdict::Dead
            })
            .await;
        self.destroy_all(found).await
    }

    async fn destroy_all(&self, clusters: BTreeSet<String>) -> Result<Vec<String>, BackendError> {
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        for c in clusters {
            match crate::Backend::destroy(self, &c).await {
                Ok(()) => removed.push(c),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if errors.is_empty() {
            Ok(removed)
        } else {
            Err(BackendError::Other(errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_file_round_trips_and_reads_kept() {
        let t = owner_text(Some(UNIX_EPOCH + std::time::Duration::from_secs(42)));
        let f = OwnerFile::parse(&format!("{t}kept=1\n"));
        assert_eq!(f.run, crate::docker::run_id());
        assert_eq!(f.expires.as_deref(), Some("42"));
        assert!(f.kept);
        assert!(crate::docker::Owner::parse(&f.owner).is_some());
        assert!(!OwnerFile::parse("run=x\n").kept);
    }
}
