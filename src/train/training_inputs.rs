//! What `train` is pointed at: one movie (TIFF or Zarr), or a folder of them, opened as frame sources.

use std::path::Path;

use crate::io::{list_movie_inputs, open_movie, FrameSource, ReadOptions};
use crate::progress::{report, Event, Progress};
use crate::Result;

/// One movie, or every TIFF and Zarr movie directly inside a folder (sorted by name; other entries are skipped with
/// a warning through `progress`). Files are opened (headers checked), not read.
pub fn open_training_inputs(path: &Path, progress: &mut dyn Progress) -> Result<Vec<Box<dyn FrameSource>>> {
    let (files, warnings) = list_movie_inputs(path)?;
    for warning in &warnings {
        report(progress, Event::Warning(warning))?;
    }
    let mut sources: Vec<Box<dyn FrameSource>> = Vec::with_capacity(files.len());
    for file in &files {
        let movie = open_movie(file, &ReadOptions::default())?;
        for warning in &movie.warnings {
            report(progress, Event::Warning(warning))?;
        }
        sources.push(movie.source);
    }
    Ok(sources)
}
