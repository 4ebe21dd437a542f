//! Before any training work: the bundle (and its `.best` companion) can be written where asked,
//! lands on no training input, and replaces nothing the user did not ask to replace.

use std::path::Path;

use super::settings::best_bundle_path;
use crate::io::FrameSource;
use crate::{Error, Result};

/// Fails before any work when the bundle could never be written, would land on a training input
/// (by any name: `./`, a symbolic or a hard link), or would replace an existing file the user did
/// not ask to replace. The bundle being resumed may be replaced: continuing in place is the point.
pub(super) fn check_training_output(
    output: &Path,
    resume: Option<&Path>,
    sources: &[Box<dyn FrameSource>],
    overwrite: bool,
) -> Result<()> {
    let inputs: Vec<std::path::PathBuf> =
        sources.iter().map(|s| std::path::PathBuf::from(s.name())).filter(|p| p.is_file()).collect();
    // Continuing in place also rewrites that bundle's `.best` companion.
    let in_place = resume.is_some_and(|r| crate::io::same_file(output, r));
    for path in [output.to_path_buf(), best_bundle_path(output)] {
        crate::io::check_output_path(&path, &inputs)?;
        let is_resumed = in_place || resume.is_some_and(|r| crate::io::same_file(&path, r));
        if path.exists() && !overwrite && !is_resumed {
            return Err(Error::usage(format!(
                "{}: already exists and training never replaces a file unless asked; choose another model name, or allow replacing existing files",
                path.display()
            )));
        }
    }
    check_folder_is_writable(output)
}

/// Tries a hidden file beside `output`, so an unwritable folder is reported before any training,
/// not after the first epoch.
fn check_folder_is_writable(output: &Path) -> Result<()> {
    let name = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let probe = output.with_file_name(format!(".{name}.probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Error::usage(format!(
            "{}: the model cannot be written in this folder ({e}); choose a folder you can write to",
            output.display()
        ))),
    }
}
