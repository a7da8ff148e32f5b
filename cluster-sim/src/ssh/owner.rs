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
}
