//! What `train` is pointed at: one TIFF, or a folder of them, opened as frame sources.

use std::path::Path;

use crate::io::{list_tiff_inputs, FileMovie, FrameSource, ReadOptions, StackReader};
use crate::progress::{report, Event, Progress};
use crate::Result;

/// One TIFF, or every TIFF directly inside a folder (sorted by name; other entries are skipped with
/// a warning through `progress`). Files are opened (headers checked), not read.
pub fn open_training_inputs(path: &Path, progress: &mut dyn Progress) -> Result<Vec<Box<dyn FrameSource>>> {
    let (files, warnings) = list_tiff_inputs(path)?;
    for warning in &warnings {
        report(progress, Event::Warning(warning))?;
    }
    let mut sources: Vec<Box<dyn FrameSource>> = Vec::with_capacity(files.len());
    for file in &files {
        sources.push(Box::new(FileMovie(StackReader::open(file, &ReadOptions::default())?)));
    }
    Ok(sources)
}
