//! How reading a run's records or writing its report fails.

/// Reading a run's records or writing its report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A record on disk is not what the report expects.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Its line (1-based; 1 for a whole-file JSON document).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The directory holds no run (no `run.json`).
    #[error("{0}: not a run directory (no run.json); runs live under target/cluster-sim/runs/")]
    NotARun(String),
    /// The template failed to render (a bug in the report, not in the run).
    #[error("rendering the report: {0}")]
    Template(String),
}
