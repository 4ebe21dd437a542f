//! Whole-file writes that appear complete or not at all (model bundles, reports): write a hidden
//! temporary file beside the target, fsync, rename. The previous file stays intact until the rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = temporary_sibling(path);
    let outcome = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = outcome {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

fn temporary_sibling(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial-{}-{n}", std::process::id()))
}
