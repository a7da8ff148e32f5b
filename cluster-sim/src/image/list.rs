//! The node images the local engine holds, for `cluster-sim image ls`.

use std::collections::HashMap;

use bollard::query_parameters::ListImagesOptionsBuilder;
use bollard::Docker;

use super::builder::NODE_IMAGE;
use super::error::ImageError;

/// One node image in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeImage {
    /// The content-hashed tag, e.g. `cluster-sim/node:0123abcd4567` (the first of its tags
    /// when it has no content-hashed one).
    pub tag: String,
    /// The definition's content hash the tag carries (`None` for an image tagged otherwise).
    pub hash: Option<String>,
    /// Every tag of the image in [`NODE_IMAGE`], sorted.
    pub tags: Vec<String>,
    /// The engine's image id (`sha256:...`).
    pub id: String,
    /// Size in bytes, as the engine reports it.
    pub size: u64,
    /// Unix time in seconds when it was built.
    pub created: i64,
}

impl NodeImage {
    /// Whether `cluster-sim/node:latest` names it (the one most recently ensured).
    pub fn latest(&self) -> bool {
        self.tags
            .iter()
            .any(|t| *t == format!("{NODE_IMAGE}:latest"))
    }
}

/// The node images in the local engine (`DOCKER_HOST`, else the local socket), newest first.
pub async fn list_local() -> Result<Vec<NodeImage>, ImageError> {
    let engine = |action: &str| {
        let action = action.to_string();
        move |source| ImageError::Docker { action, source }
    };
    let docker = Docker::connect_with_defaults()
        .map_err(engine("connecting to the Docker engine"))?
        .negotiate_version()
        .await
        .map_err(engine("connecting to the Docker engine"))?;
    let filters = HashMap::from([("reference", vec![format!("{NODE_IMAGE}:*")])]);
    let options = ListImagesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let found = docker
        .list_images(Some(options))
        .await
        .map_err(engine("listing node images"))?;
    let prefix = format!("{NODE_IMAGE}:");
    let mut images: Vec<NodeImage> = found
        .into_iter()
        .filter_map(|s| {
            let mut tags: Vec<String> = s
                .repo_tags
                .into_iter()
                .filter(|t| t.starts_with(&prefix))
                .collect();
            tags.sort();
            let hash = tags.iter().find_map(|t| {
                let h = t.strip_prefix(&prefix)?;
                (h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| h.to_string())
            });
            let tag = match &hash {
                Some(h) => format!("{prefix}{h}"),
                None => tags.first()?.clone(),
            };
            Some(NodeImage {
                tag,
                hash,
                tags,
                id: s.id,
                size: u64::try_from(s.size).unwrap_or_default(),
                created: s.created,
            })
        })
        .collect();
    images.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.tag.cmp(&b.tag)));
    Ok(images)
}
