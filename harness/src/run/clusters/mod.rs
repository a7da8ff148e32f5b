//! How a test gets its cluster: `provision.rs` (the spec, the backend, the node budget, the
//! run's registry and the limits every cluster lives under) beneath the three ways to have one:
//! `fresh.rs` (a cluster per attempt, the default), `shared.rs` (one per `share = ".."` group)
//! and `walks.rs` (one per walk definition, driven by a coordinator).

pub(crate) mod fresh;
pub(crate) mod provision;
pub(crate) mod shared;
pub(crate) mod walks;
