//! Policy errors. Each names where the problem is: the file, `line:column`
//! and the key path, so a user can fix it without guessing.

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("{path}: cannot read policy: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name}:{line}:{column}: {}{message}", key_prefix(key))]
    Invalid {
        source_name: String,
        line: usize,
        column: usize,
        /// Key path such as `filesystem.allowWrite[2]`; empty for the root.
        key: String,
        message: String,
    },
    /// A value that is valid JSON but cannot be used on this host
    /// (for example a `~` path when no home directory is known).
    #[error("{source_name}: {key}: {message}")]
    Resolve {
        source_name: String,
        key: String,
        message: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}
