//! How a test ends: what its body returns ([`TestResult`]), and how a returned error or a panic
//! reads in the report.

use std::future::Future;
use std::pin::Pin;

use cluster_sim::{ExecError, ProvisionError};

use crate::wait::WaitError;

/// What a test returns: `?` works on every cluster-sim error, on `std` errors and on `anyhow`.
pub type TestResult = Result<(), anyhow::Error>;

/// A test's body, boxed so tests of every shape fit one registry.
pub type TestFuture = Pin<Box<dyn Future<Output = TestResult> + Send + 'static>>;

/// A panic's message, from its payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-string panic payload)".into())
}

/// The `type` of a failure, from the error's chain.
pub(crate) fn classify(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if cause.is::<ExecError>() {
            return "exec";
        }
        if cause.is::<WaitError>() {
            return "wait";
        }
        if cause.is::<ProvisionError>() || cause.is::<cluster_sim::NodeError>() {
            return "node";
        }
        if cause.is::<cluster_sim::TransferError>() {
            return "transfer";
        }
    }
    "assertion"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_their_chain() {
        let e = anyhow::Error::new(ExecError::Failed {
            node: "n1".into(),
            command: "false".into(),
            code: 1,
            tail: String::new(),
        })
        .context("writing keys");
        assert_eq!(classify(&e), "exec");
        assert_eq!(classify(&anyhow::anyhow!("keys differ")), "assertion");
    }
}
