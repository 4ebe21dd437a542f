//! `convert`: a movie from one format to the other (TIFF/BigTIFF ⇄ Zarr v3, or Zarr v2 → v3),
//! streamed frame by frame with its sample type, calibration and description, published complete
//! or not at all. Zarr outputs get chunks chosen for time-block work unless a shape is given.

use std::path::Path;

use serde::Serialize;

use crate::io::{check_output_path, open_movie, MovieWriter, OutputMovie, ReadOptions};
use crate::progress::{report, Event, Progress};
use crate::Result;

#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport {
    pub frames: usize,
    pub width: usize,
    pub height: usize,
    /// What was written ("u16"...): the input's type, unchanged.
    pub sample_type: String,
    pub seconds: f64,
}

/// Converts `input` into `output` (Zarr when its name ends in `.zarr`, else TIFF). An existing
/// output is refused unless `overwrite`.
pub fn convert_movie(
    input: &Path,
    output: &Path,
    options: &ReadOptions,
    chunk: Option<[usize; 3]>,
    overwrite: bool,
    progress: &mut dyn Progress,
) -> Result<ConvertReport> {
    check_output_path(output, &[input.to_path_buf()])?;
    let started = std::time::Instant::now();
    let mut movie = open_movie(input, options)?;
    for warning in &movie.warnings {
        report(progress, Event::Warning(warning))?;
    }
    let source = movie.source.as_mut();
    let (frames, width, height, sample_type) = (source.frames(), source.width(), source.height(), source.sample_type());
    let name = source.name();
    let out = OutputMovie { width, height, frames, sample_type, metadata: &movie.metadata, source: Some(&name), chunk };
    let mut writer = MovieWriter::create(output, &out, overwrite)?;
    if !overwrite {
        writer = writer.refuse_existing("convert")?;
    }
    report(progress, Event::Begin { phase: "convert", total: frames as u64 })?;
    let mut frame = crate::allocation::zeroed_f32(width * height, "one frame")?;
    for t in 0..frames {
        source.read_frame(t, &mut frame)?;
        writer.write_frame(&frame)?;
        report(progress, Event::Advance { done: t as u64 + 1, message: "frames" })?;
    }
    writer.finish()?;
    Ok(ConvertReport {
        frames,
        width,
        height,
        sample_type: sample_type.to_string(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
