//! The swarm backend: one cluster across several Docker engines joined in a Docker Swarm. Each
//! engine is driven by the docker backend's own code (`crate::docker`, one `DockerBackend` per
//! engine); this folder adds what several engines need: the engines file (`engines.rs`),
//! placement (`place.rs`), the node image sent to each engine (`image.rs`), `impl Backend`
//! routing each node to its engine (`backend.rs`: the overlay network is made through the
//! manager by `docker/part.rs`) and the capabilities (`caps.rs`), and the engines lab (up in
//! `lab.rs`, down in `lab_down.rs`, what both name in `lab_names.rs`).

pub mod backend;
mod caps;
pub mod engines;
mod image;
pub mod lab;
mod lab_down;
pub mod lab_names;
mod place;

pub use backend::SwarmBackend;
pub use engines::{EngineEntry, Engines, EnginesError};
pub use lab::lab_up;
pub use lab_down::{lab_down, LabDown};
