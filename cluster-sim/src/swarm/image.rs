//! The node image on every engine: built (or found) on one engine, then sent to each engine
//! that lacks it as a streamed `docker save` into `docker load` through the two engines' APIs.
//! Nothing is pulled. Each (engine, image id) is checked once per process.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use bollard::query_parameters::{ImportImageOptionsBuilder, TagImageOptionsBuilder};
use bollard::Docker;
use futures::StreamExt;

use crate::error::BackendError;

/// (engine endpoint, image id) pairs known to be in place.
static SENT: Mutex<Option<HashSet<(String, String)>>> = Mutex::new(None);

/// How long one image transfer may take (a node image is a few hundred MB).
const TRANSFER_LIMIT: Duration = Duration::from_secs(1800);

fn sent(endpoint: &str, id: &str) -> bool {
    SENT.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .contains(&(endpoint.to_string(), id.to_string()))
}

fn mark_sent(endpoint: &str, id: &str) {
    SENT.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert((endpoint.to_string(), id.to_string()));
}

/// The image ID of `reference` in `docker`, or `None` when it has no such image.
pub(crate) async fn image_id(docker: &Docker, reference: &str) -> Option<String> {
    docker
        .inspect_image(reference)
        .await
        .ok()
        .and_then(|i| i.id)
}

/// Makes sure engine `target` (at `endpoint`, named `engine` in messages) has `tag` as the
/// image it is on `source`: nothing when it does, a tag when it has the image under another
/// name, else the image streamed from `source`'s save into `target`'s load.
pub(crate) async fn send_image(
    source: &Docker,
    target: &Docker,
    endpoint: &str,
    engine: &str,
    tag: &str,
) -> Result<(), BackendError> {
    let step = format!("engine {engine}: send image {tag}");
    let id = image_id(source, tag)
        .await
        .ok_or_else(|| BackendError::NoImage {
            image: tag.to_string(),
        })?;
    if sent(endpoint, &id) {
        return Ok(());
    }
    if image_id(target, tag).await.as_deref() == Some(id.as_str()) {
        mark_sent(endpoint, &id);
        return Ok(());
    }
    if image_id(target, &id).await.is_some() {
        retag(target, &id, tag)
            .await
            .map_err(|e| BackendError::engine(&step, e))?;
        mark_sent(endpoint, &id);
        return Ok(());
    }
    tracing::info!(engine, tag, "sending the image (docker save | docker load)");
    // The save stream is read by a task of its own and handed over chunk by chunk, so the load
    // request body is a 'static stream and at most a few chunks are held in memory.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    let reader = source.clone().with_timeout(TRANSFER_LIMIT);
    let tag_owned = tag.to_string();
    let pump = tokio::spawn(async move {
        let mut saved = Box::pin(reader.export_image(&tag_owned));
        while let Some(chunk) = saved.next().await {
            let item = chunk.map_err(std::io::Error::other);
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let writer = target.clone().with_timeout(TRANSFER_LIMIT);
    let opts = ImportImageOptionsBuilder::default().quiet(true).build();
    let mut loading = Box::pin(writer.import_image_stream(opts, body, None));
    let mut failure = None;
    while let Some(item) = loading.next().await {
        match item {
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    failure = Some(e);
                }
            }
            Err(e) => failure = Some(e.to_string()),
        }
    }
    let _ = pump.await;
    if let Some(why) = failure {
        return Err(BackendError::Refused { what: step, why });
    }
    if image_id(target, tag).await.as_deref() != Some(id.as_str()) {
        return Err(BackendError::Refused {
            what: step,
            why: "the engine loaded the archive but has no such image after it".into(),
        });
    }
    mark_sent(endpoint, &id);
    Ok(())
}

/// Tags image `id` as `tag` (`repo:tag`).
async fn retag(docker: &Docker, id: &str, tag: &str) -> Result<(), bollard::errors::Error> {
    let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let opts = TagImageOptionsBuilder::default().repo(repo).tag(t).build();
    docker.tag_image(id, Some(opts)).await
}
