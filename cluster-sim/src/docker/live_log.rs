//! A container's log as a live stream (`Backend::log_stream`): the engine's `follow` logs
//! API, opened again after the container stops or restarts, from the last line passed on.
//! Lines come with the engine's timestamps (fixed-width RFC 3339, nanoseconds): a stream opened
//! again asks for what was logged since that line's second and skips what is not later than
//! it, so each line comes once and a restart costs about a second of log, not all of it.

use std::time::{Duration, UNIX_EPOCH};

use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;

use super::engine::engine_call;
use crate::backend::types::LogStream;
use crate::error::BackendError;

/// How long to wait before asking again for the log of a container that is not running.
const AGAIN: Duration = Duration::from_millis(250);

/// The log of container `name`, all of it and then as it is written, until dropped or the
/// container is gone.
pub(super) fn live_log(docker: Docker, name: String) -> LogStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, BackendError>>(64);
    tokio::spawn(async move {
        let mut last: Option<Vec<u8>> = None;
        loop {
            let opts = LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .follow(true)
                .timestamps(true)
                .since(last.as_deref().map_or(0, since))
                .build();
            let mut logs = docker.logs(&name, Some(opts));
            loop {
                let chunk = tokio::select! {
                    _ = tx.closed() => return,
                    c = logs.next() => c,
                };
                let frame = match chunk {
                    None => break,
                    Some(Ok(f)) => f.into_bytes(),
                    Some(Err(e)) => {
                        let _ = tx.send(Err(engine_call("logs")(e))).await;
                        return;
                    }
                };
                let fresh = fresh(&frame, &mut last);
                if !fresh.is_empty() && tx.send(Ok(fresh)).await.is_err() {
                    return;
                }
            }
            // The container stopped (its stream ended): ask again in a while.
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(AGAIN) => {}
            }
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// The lines of `frame` ("TIMESTAMP text", a line each) logged after `last`, timestamps
/// removed; `last` moves to the latest.
fn fresh(frame: &[u8], last: &mut Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in frame.split_inclusive(|b| *b == b'\n') {
        let Some(sp) = piece.iter().position(|b| *b == b' ') else {
            continue;
        };
        let (at, text) = (&piece[..sp], &piece[sp + 1..]);
        if last.as_deref().is_some_and(|l| at <= l) {
            continue;
        }
        *last = Some(at.to_vec());
        out.extend_from_slice(text);
    }
    out
}

/// The whole second (UNIX time) of a timestamp, to ask the engine for what came since.
fn since(at: &[u8]) -> i32 {
    std::str::from_utf8(at)
        .ok()
        .and_then(|s| humantime::parse_rfc3339(s).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i32::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{fresh, since};

    #[test]
    fn lines_once_each_without_their_timestamps() {
        let mut last = None;
        let a = b"2026-12-05T13:10:00.100000000Z one\n2026-12-05T13:10:00.200000000Z two\n";
        assert_eq!(fresh(a, &mut last), b"one\ntwo\n");
        // Opened again since that second: what was passed on is skipped.
        let b = b"2026-12-05T13:10:00.200000000Z two\n2026-12-05T13:10:01.000000000Z three";
        assert_eq!(fresh(b, &mut last), b"three");
        assert_eq!(
            since(last.as_deref().unwrap()),
            humantime::parse_rfc3339("2026-12-05T13:10:01Z")
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i32
        );
    }
}
