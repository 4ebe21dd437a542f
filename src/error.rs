//! One error type for the whole engine, split the way callers need to react (after image-tiff's
//! taxonomy): the file is broken, the file is legal but unsupported, the caller asked for something
//! impossible, a limit would be exceeded, the model bundle is wrong, the run was cancelled.
//! Every message names the file or value and says what to do; the CLI and JNI print them as they are.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file exists but its content is malformed (truncated TIFF, bad header, NaN pixels...).
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },

    /// The file is valid but holds something we do not handle (RGB, 64-bit float, 5 channels...).
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },

    /// The caller asked for something that cannot work (bad option value, output equal to input...).
    #[error("{0}")]
    Usage(String),

    /// Honouring the request would exceed a memory or size limit.
    #[error("{0}")]
    Limits(String),

    /// A model bundle is missing, corrupt or incompatible.
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },

    /// An operating-system I/O error, with the path it concerned.
    #[error("{path}: {source}{}", io_remedy(.source))]
    Io { path: PathBuf, source: std::io::Error },

    /// libtorch reported an error (out of memory, CUDA failure...).
    #[error("libtorch: {0}")]
    Torch(String),

    /// A run failed while working on valid input and settings (training diverged).
    #[error("{0}")]
    Training(String),

    /// The caller's progress sink asked to stop.
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do about the common operating-system errors, so that none ends a message bare.
fn io_remedy(source: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match source.kind() {
        NotFound => "; check the path (is the file or folder where you said?)",
        PermissionDenied => "; check its permissions, or use a file or folder you may read and write",
        StorageFull => "; free some space or choose another disk",
        ReadOnlyFilesystem => "; the disk is read-only: choose another folder",
        _ => "",
    }
}

impl Error {
    pub fn format(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Format { path: path.as_ref().to_path_buf(), message: message.into() }
    }
    pub fn unsupported(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Unsupported { path: path.as_ref().to_path_buf(), message: message.into() }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }
    pub fn model(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Model { path: path.as_ref().to_path_buf(), message: message.into() }
    }
    /// Whether the user's input or request is at fault (a bad file, a bad value, a missing file, a
    /// run the memory budget cannot hold), as opposed to a failure while working: the CLI's exit
    /// code 2 against 1.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Format { .. }
            | Error::Unsupported { .. }
            | Error::Usage(_)
            | Error::Limits(_)
            | Error::Model { .. } => true,
            Error::Io { source, .. } => {
                matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied)
            }
            Error::Torch(_) | Error::Training(_) | Error::Cancelled => false,
        }
    }
    /// The same error with where it happened (a file, a tile) in front of its message; errors
    /// that already name their file are left as they are.
    pub fn in_context(self, context: &str) -> Self {
        match self {
            Error::Torch(m) => Error::Torch(format!("{context}: {m}")),
            Error::Usage(m) => Error::Usage(format!("{context}: {m}")),
            Error::Limits(m) => Error::Limits(format!("{context}: {m}")),
            Error::Training(m) => Error::Training(format!("{context}: {m}")),
            other => other,
        }
    }
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }

    /// A short machine-readable kind, used for CLI exit codes and Java exception classes.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Format { .. } => "format",
            Error::Unsupported { .. } => "unsupported",
            Error::Usage(_) => "usage",
            Error::Limits(_) => "limits",
            Error::Model { .. } => "model",
            Error::Io { .. } => "io",
            Error::Torch(_) => "torch",
            Error::Training(_) => "training",
            Error::Cancelled => "cancelled",
        }
    }
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        // libtorch messages carry a C++ backtrace after the first line; users need only the first.
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("unknown libtorch error").trim().to_string();
        Error::Torch(first)
    }
}
