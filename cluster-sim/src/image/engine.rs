//! Small Docker engine queries the builder repeats: does an image exist, and tagging.

use bollard::query_parameters::TagImageOptionsBuilder;
use bollard::Docker;

use super::error::ImageError;

/// The image's id if the engine has `name` (a `repo:tag` or id), `None` if it does not.
pub(crate) async fn image_id(docker: &Docker, name: &str) -> Result<Option<String>, ImageError> {
    match docker.inspect_image(name).await {
        Ok(image) => Ok(Some(image.id.unwrap_or_default())),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(source) => Err(ImageError::Docker {
            action: format!("inspecting image {name}"),
            source,
        }),
    }
}

/// Points `repo:tag` at the image `source` (a tag or id).
pub(crate) async fn tag(
    docker: &Docker,
    source: &str,
    repo: &str,
    tag: &str,
) -> Result<(), ImageError> {
    let options = TagImageOptionsBuilder::default()
        .repo(repo)
        .tag(tag)
        .build();
    docker
        .tag_image(source, Some(options))
        .await
        .map_err(|source_err| ImageError::Docker {
            action: format!("tagging {source} as {repo}:{tag}"),
            source: source_err,
        })
}
