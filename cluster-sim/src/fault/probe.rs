//! Probing a backend's hosts for the kernel features faults need, without a cluster (for
//! tests that declare `requires`).

use super::capabilities::Capabilities;
use super::error::FaultError;
use crate::backend::contract::Backend;

/// The kernel features of a backend's hosts (see [`crate::backend::FaultBackend::probe_kernel`]); a backend
/// without the fault capability has none of them.
pub async fn backend_capabilities(backend: &dyn Backend) -> Result<Capabilities, FaultError> {
    match backend.faults() {
        Some(fb) => fb.probe_kernel().await,
        None => Err(FaultError::NotOnBackend {
            backend: backend.kind().into(),
            what: "faults".into(),
        }),
    }
}
