//! What the builders return: the image they found or made (`builder.rs` for definitions,
//! `packages.rs` for package sets).

/// What [`ImageBuilder::ensure_image`](super::ImageBuilder::ensure_image) found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnsuredImage {
    /// The content-hashed tag, e.g. `cluster-sim/node:0123abcd4567`.
    pub tag: String,
    /// The engine's image id (`sha256:...`).
    pub id: String,
    /// Whether this call built the image (false: it was already in the engine).
    pub built: bool,
    /// The base image it was built from, when this call built it.
    pub base: Option<String>,
}
