//! `convert`: a movie from one format to the other (TIFF/BigTIFF ⇄ Zarr v3, or Zarr v2 → v3),
//! streamed frame by frame with its sample type, calibration and description, published complete
//! or not at all. Zarr outputs get chunks chosen for time-block work unless a shape is given.

use std::path::Path;

use serde::Serialize;

use crate::io::{check_output_path, human_bytes, open_movie, MovieWriter, OutputMovie, ReadOptions};
use crate::progress::{report, Event, Progress};
use crate::{Error, Result};

/// How to convert: which plane of the input, the Zarr chunk shape, and the limits.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub read: ReadOptions,
    /// Zarr chunk shape `[t, y, x]`; `None` chooses one for time-block work.
    pub chunk: Option<[usize; 3]>,
    /// Replace an existing output.
    pub overwrite: bool,
    /// What reading, converting and writing may hold at once; a movie whose frames need more is
    /// refused before anything is read.
    pub max_memory_bytes: usize,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions { read: ReadOptions::default(), chunk: None, overwrite: false, max_memory_bytes: 1 << 30 }
    }
}

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
/// output is refused unless `options.overwrite`.
pub fn convert_movie(
    input: &Path,
    output: &Path,
    options: &ConvertOptions,
    progress: &mut dyn Progress,
) -> Result<ConvertReport> {
    check_output_path(output, &[input.to_path_buf()])?;
    let started = std::time::Instant::now();
    let mut movie = open_movie(input, &options.read)?;
    for warning in &movie.warnings {
        report(progress, Event::Warning(warning))?;
    }
    let source = movie.source.as_mut();
    let (frames, width, height, sample_type) = (source.frames(), source.width(), source.height(), source.sample_type());
    let name = source.name();
    let out = OutputMovie {
        width,
        height,
        frames,
        sample_type,
        metadata: &movie.metadata,
        source: Some(&name),
        chunk: options.chunk,
    };
    let mut writer = MovieWriter::create(output, &out, options.overwrite)?;
    if !options.overwrite {
        writer = writer.refuse_existing("convert")?;
    }
    let needed = source
        .read_bytes()
        .saturating_add(width.saturating_mul(height).saturating_mul(4))
        .saturating_add(writer.buffer_bytes());
    if needed > options.max_memory_bytes {
        return Err(Error::Limits(format!(
            "{name}: converting {width}×{height} frames needs about {} of memory at once (reading, one frame as float, writing), above the memory budget of {}; raise the memory budget to at least {}, or for a Zarr output choose smaller chunks",
            human_bytes(needed as u64),
            human_bytes(options.max_memory_bytes as u64),
            human_bytes(needed.next_multiple_of(1 << 20).saturating_add(64 << 20) as u64)
        )));
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
