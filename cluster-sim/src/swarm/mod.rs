//! The swarm backend: one cluster across several Docker engines joined in a Docker Swarm. Each
//! engine is driven by the docker backend's own code (`crate::docker`, one `DockerBackend` per
//! engine); this folder adds what several engines need: the engines file (`engines.rs`),
//! placement (`place.rs`), the cluster's attachable overlay network made through the manager
//! (`overlay.rs`), the node image sent to each engine (`image.rs`), `impl Backend` routing each
//! node to its engine (`backend.rs`) and the capabilities (`caps.rs`), and the engines lab
//! (`lab.rs`).

pub mod backend;
mod caps;
pub mod engines;
mod image;
pub mod lab;
mod place;

pub use backend::SwarmBackend;
pub use engines::{EngineEntry, Engines, EnginesError};
pub use lab::{lab_down, lab_up, LabDown};
