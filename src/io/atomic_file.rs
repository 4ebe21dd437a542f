//! Whole-file writes that appear complete or not at all (model bundles, reports): write a hidden
//! temporary file beside the target, fsync, rename. The previous file stays intact until the rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `bytes` to `path`, replacing a regular file there (never a device, FIFO or folder: see
/// [`super::check_replaceable`]). Whether an existing file may be replaced at all is the caller's
/// rule ([`super::check_outputs`]).
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    super::check_replaceable(path, super::OutputForm::File)?;
    let temp = temporary_sibling(path);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    let outcome = written
        .map_err(|e| Error::io(path, e))
        .and_then(|_| super::check_replaceable(path, super::OutputForm::File))
        .and_then(|_| std::fs::rename(&temp, path).map_err(|e| Error::io(path, e)));
    if outcome.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    outcome
}

fn temporary_sibling(path: &Path) -> PathBuf {
    super::partial_sibling(path, "partial")
}
