//! A simulated movie written to disk frame by frame (any length fits in memory): the noisy movie
//! (16-bit), optionally its noise-free truth (32-bit float) and the neurons as a label image, each
//! TIFF or Zarr by its name, published complete or not at all. The engine call behind the CLI's
//! `simulate` and `demo`.

use std::path::Path;

use super::{SimulationConfig, Simulator};
use crate::io::{ImageJMetadata, MovieWriter, OutputMovie, SampleType};
use crate::progress::{report, Event, Progress};
use crate::Result;

/// Where to write a simulation.
pub struct SimulationFiles<'a> {
    pub noisy: &'a Path,
    pub truth: Option<&'a Path>,
    pub labels: Option<&'a Path>,
    /// Replace existing files (refused before any work otherwise).
    pub overwrite: bool,
}

pub fn write_simulation(
    config: &SimulationConfig,
    files: &SimulationFiles<'_>,
    progress: &mut dyn Progress,
) -> Result<()> {
    let sim = Simulator::new(config)?;
    let (w, h, t) = (config.width, config.height, config.frames);
    let create = |path: &Path, frames: usize, sample_type: SampleType| -> Result<MovieWriter> {
        let metadata = ImageJMetadata { frames, hyperstack: false, ..Default::default() };
        let movie = OutputMovie {
            width: w,
            height: h,
            frames,
            sample_type,
            metadata: &metadata,
            source: Some("deepcad simulate"),
            chunk: None,
        };
        let writer = MovieWriter::create(path, &movie, files.overwrite)?;
        if files.overwrite {
            Ok(writer)
        } else {
            writer.refuse_existing("simulate")
        }
    };
    let mut noisy_writer = create(files.noisy, t, SampleType::U16)?;
    let mut truth_writer = files.truth.map(|p| create(p, t, SampleType::F32)).transpose()?;
    let mut labels_writer = files.labels.map(|p| create(p, 1, SampleType::U16)).transpose()?;
    let (mut clean, mut raw) = (vec![0f32; w * h], vec![0f32; w * h]);
    report(progress, Event::Begin { phase: "simulate", total: t as u64 })?;
    for f in 0..t {
        sim.frame(f, &mut clean, &mut raw);
        noisy_writer.write_frame(&raw)?;
        if let Some(writer) = truth_writer.as_mut() {
            writer.write_frame(&clean)?;
        }
        report(progress, Event::Advance { done: f as u64 + 1, message: "frames" })?;
    }
    noisy_writer.finish()?;
    if let Some(writer) = truth_writer {
        writer.finish()?;
    }
    if let Some(mut writer) = labels_writer.take() {
        writer.write_frame(&crate::evaluation::labels_from_footprints(sim.footprints(), w * h, 0.5))?;
        writer.finish()?;
    }
    Ok(())
}
