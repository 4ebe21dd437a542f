//! Shared test helpers.
use std::path::PathBuf;

/// The team's shared folder: beside the repository (as in CI's clean clone), overridable with
/// DEEPCAD_SHARED.
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DEEPCAD_SHARED") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("shared")
}
