//! Builds the node image from its definition's Dockerfile through the engine's classic
//! builder (`POST /build`), showing each `Step n/m` and keeping the running step's output so a
//! failure names the step and shows what it printed.

use std::collections::HashMap;

use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;

use super::definition::Definition;
use super::engine;
use super::error::{ImageError, Tail};
use super::progress::Progress;

/// Label on node images: the definition's content hash.
pub(crate) const HASH_LABEL: &str = "cluster-sim.image.hash";

/// How much of a Dockerfile step's text progress lines and errors show.
const STEP_CHARS: usize = 100;

/// Builds `def` as `tag` on top of `base`, labelled with `hash` (the tag's); returns the new
/// image's id.
pub(crate) async fn build(
    docker: &Docker,
    def: &Definition,
    tag: &str,
    hash: &str,
    base: &str,
    no_cache: bool,
    progress: &Progress,
) -> Result<String, ImageError> {
    let context = def.context_tar()?;
    let buildargs = HashMap::from([("BASE", base)]);
    // One label (the engine adds a build step per label); the base shows in the progress.
    let labels = HashMap::from([(HASH_LABEL, hash)]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .nocache(no_cache)
        .buildargs(&buildargs)
        .labels(&labels)
        .build();

    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut state = StepState {
        step: "(before the first step)".to_owned(),
        tail: Tail::default(),
        partial: String::new(),
    };
    let failure = |state: &StepState, message: String| ImageError::Build {
        tag: tag.to_owned(),
        step: state.step.clone(),
        message,
        tail: state.tail.to_vec(),
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream {
                    state.feed(&text, progress);
                }
                if let Some(status) = info.status {
                    progress.detail(&status);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                state.flush(progress);
                return Err(failure(&state, error.trim().to_owned()));
            }
            Err(e) => {
                state.flush(progress);
                return Err(failure(&state, e.to_string()));
            }
        }
    }
    state.flush(progress);

    match engine::image_id(docker, tag).await? {
        Some(id) => Ok(id),
        None => Err(failure(
            &state,
            "the engine finished without producing the image".to_owned(),
        )),
    }
}

/// The build's current step and that step's output so far.
struct StepState {
    step: String,
    tail: Tail,
    /// Output received after the last newline.
    partial: String,
}

impl StepState {
    /// Takes a chunk of build output, which may end mid-line.
    fn feed(&mut self, text: &str, progress: &Progress) {
        self.partial.push_str(text);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            self.line(&line, progress);
        }
    }

    fn flush(&mut self, progress: &Progress) {
        let rest = std::mem::take(&mut self.partial);
        self.line(&rest, progress);
    }

    fn line(&mut self, line: &str, progress: &Progress) {
        let line = strip_ansi_escapes::strip_str(line);
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        if line.starts_with("Step ") {
            self.step = shorten(line);
            self.tail.take();
            progress.step(&self.step);
        } else {
            // The engine's own bookkeeping (" ---> Running in ...", "Removing intermediate
            // container ...") shows on the spinner but is noise in an error.
            if !is_engine_line(line) {
                self.tail.push(line);
            }
            progress.detail(line);
        }
    }
}

fn is_engine_line(line: &str) -> bool {
    line.starts_with(" ---> ")
        || line.starts_with("Removing intermediate container ")
        || line.starts_with("Successfully built ")
        || line.starts_with("Successfully tagged ")
}

fn shorten(line: &str) -> String {
    if line.chars().count() <= STEP_CHARS {
        return line.to_owned();
    }
    let mut short: String = line.chars().take(STEP_CHARS).collect();
    short.push_str("...");
    short
}
