//! How a test gets its cluster: `provision.rs` (the spec, the backend, the node budget, the
//! run's registry and the limits every cluster lives under) beneath the three ways to have one:
//! `fresh.rs` (a cluster per attempt, the default), `shared.rs` (one per `share = ".."` group)
//! `walks.rs` (one per walk definition, driven by a coordinator) and `attached.rs` (a running
//! cluster named by `CLUSTER_SIM_CLUSTER`). `keep.rs` keeps a test's cluster instead of
//! tearing it down (`CLUSTER_SIM_KEEP_CLUSTER`), whichever way it came.

pub(crate) mod attached;
pub(crate) mod fresh;
pub(crate) mod keep;
pub(crate) mod provision;
pub(crate) mod shared;
pub(crate) mod walks;
