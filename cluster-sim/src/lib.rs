//! Multi-node clusters for integration tests: a TOML spec, a `Backend` trait with docker and
//! ssh implementations, and the `Cluster`/`Node` handle that tests and the CLI drive.
#![warn(missing_docs)]

pub mod image;
