//! What can stop the server from starting: a bad check file, database, token file or address.

use cluster_sim_core::error::BackendError;
use cluster_sim_core::located::{key_prefix, Located};

/// Why `cluster-sim serve` could not start (or a check file could not be read).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A file or folder could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A check file was read but does not describe a valid check.
    #[error("{file}:{line}:{column}: {}{message}", key_prefix(.key))]
    CheckFile {
        /// Check file path.
        file: String,
        /// One-based line.
        line: usize,
        /// One-based column.
        column: usize,
        /// The key at fault (`timeout`, `parse.regex`, `action[0].webhook`...).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The history database could not be opened or used.
    #[error("database {path}: {source}")]
    Db {
        /// Database file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The token file is unusable.
    #[error("token file {path}: {message}")]
    Token {
        /// Token file path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A non-loopback address without a token.
    #[error("refusing to listen on {addr}: it is not a loopback address; give --token-file FILE so that every request must carry the token")]
    NotLoopback {
        /// The address asked for.
        addr: String,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The backend could not be reached.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The server stopped on an I/O error.
    #[error("server: {0}")]
    Serve(#[source] std::io::Error),
}

impl From<Located> for ServeError {
    fn from(l: Located) -> Self {
        ServeError::CheckFile {
            file: l.file,
            line: l.line,
            column: l.column,
            key: l.key,
            message: l.message,
        }
    }
}
