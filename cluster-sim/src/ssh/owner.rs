//! Who owns a cluster on the ssh hosts: the owner file each node's working directory holds.
//!
//! Each node's working directory holds `<workdir>/<cluster>/.owner`, written before anything
//! else of the node (service, files, fault rules) exists:
//!
//! ```text
//! run=<run id>                                   what the run's watchdog removes
//! owner=pid=..,start=..,boot=..,pidns=..,host=.. the owning process, as on docker labels
//! expires=<unix seconds>                         absent when the cluster never expires
//! kept=1                                         appended once `cluster-sim up` made it ready
//! kept_by=<test>                                 with it: the test that kept it, if one did
//! kept_spec=<spec name>, kept_nodes=<count>      with it: what the cluster was made from
//! kept_spec_file=<absolute path>                 and the spec's file, where it had one
//! ```
//!
//! The owner is a process on the *test* machine, so it is judged there (`backend::ownership`:
//! by pid when boot id and PID namespace are ours, else only past the expiry; see
//! `janitor.rs`). A directory without our `.owner` is never touched.

use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the owner file in a node's working directory.
pub(crate) const OWNER_FILE: &str = ".owner";

/// The owner file's text for a cluster made by this process.
pub(crate) fn owner_text(expires: Option<SystemTime>) -> String {
    let mut s = format!(
        "run={}\nowner={}\n",
        crate::backend::ownership::run_id(),
        crate::backend::ownership::current_owner()
    );
    if let Some(e) = expires.and_then(|e| e.duration_since(UNIX_EPOCH).ok()) {
        s.push_str(&format!("expires={}\n", e.as_secs()));
    }
    s
}

/// The lines `Backend::keep` appends to each node's owner file (newlines in a test's name, which
/// would start a line of their own, become spaces).
pub(crate) fn kept_text(mark: &crate::backend::KeepMark) -> String {
    let mut s = String::from("kept=1\n");
    let one_line = |v: &str| v.replace(['\n', '\r'], " ");
    if let Some(by) = &mark.by {
        s.push_str(&format!("kept_by={}\n", one_line(by)));
    }
    if let Some(spec) = &mark.spec {
        s.push_str(&format!("kept_spec={}\n", one_line(spec)));
    }
    if let Some(n) = mark.nodes {
        s.push_str(&format!("kept_nodes={n}\n"));
    }
    if let Some(f) = &mark.spec_file {
        s.push_str(&format!("kept_spec_file={}\n", one_line(f)));
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
    /// What the keep lines say (who kept it, its spec).
    pub mark: crate::backend::KeepMark,
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
                Some(("kept_by", v)) => f.mark.by = Some(v.to_string()),
                Some(("kept_spec", v)) => f.mark.spec = Some(v.to_string()),
                Some(("kept_nodes", v)) => f.mark.nodes = v.parse().ok(),
                Some(("kept_spec_file", v)) => f.mark.spec_file = Some(v.to_string()),
                _ => {}
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_file_round_trips_and_reads_kept() {
        let t = owner_text(Some(UNIX_EPOCH + std::time::Duration::from_secs(42)));
        let f = OwnerFile::parse(&format!("{t}kept=1\n"));
        assert_eq!(f.run, crate::backend::ownership::run_id());
        assert_eq!(f.expires.as_deref(), Some("42"));
        assert!(f.kept);
        assert!(crate::backend::ownership::Owner::parse(&f.owner).is_some());
        assert!(!OwnerFile::parse("run=x\n").kept);
    }

    #[test]
    fn keep_lines_carry_the_mark() {
        let mark = crate::backend::KeepMark {
            by: Some("kvd::put::one\nkept=0".into()),
            spec: Some("kvd3".into()),
            nodes: Some(3),
            spec_file: Some("/specs/kvd3.toml".into()),
        };
        let f = OwnerFile::parse(&format!("{}{}", owner_text(None), kept_text(&mark)));
        assert!(f.kept);
        assert_eq!(f.mark.by.as_deref(), Some("kvd::put::one kept=0"));
        assert_eq!(
            (f.mark.spec.as_deref(), f.mark.nodes),
            (Some("kvd3"), Some(3))
        );
        // `cluster-sim up`'s mark names no test.
        let up = crate::backend::KeepMark { by: None, ..mark };
        let f = OwnerFile::parse(&kept_text(&up));
        assert_eq!((f.kept, f.mark), (true, up));
    }
}
