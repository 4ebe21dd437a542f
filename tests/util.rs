//! Shared test helpers.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The team's shared folder: beside the repository (as in CI's clean clone), overridable with
/// DEEPCAD_SHARED.
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DEEPCAD_SHARED") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("shared")
}

/// Runs the `deepcad` binary quietly.
pub fn deepcad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deepcad")).args(args).arg("--quiet").output().expect("run deepcad")
}

/// Standard output and error together, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}
