//! A simulated movie written to disk frame by frame (any length fits in memory): the noisy movie
//! (16-bit), optionally its noise-free truth (32-bit float), the neurons as a label image (each
//! TIFF or Zarr by its name) and the true spike trains (CSV), published complete or not at all:
//! all paths are checked before any work, and if one output fails, those already published by
//! this run are removed. The engine call behind the CLI's `simulate` and `demo`.

use std::path::Path;

use super::{SimulationConfig, Simulator};
use crate::io::{
    check_outputs, write_file_atomically, ImageJMetadata, MovieWriter, OutputForm, OutputMovie, SampleType,
};
use crate::progress::{report, Event, Progress};
use crate::Result;

/// Where to write a simulation.
pub struct SimulationFiles<'a> {
    pub noisy: &'a Path,
    pub truth: Option<&'a Path>,
    pub labels: Option<&'a Path>,
    /// The true spikes: one row per frame, one column per neuron (numbered as in the labels).
    pub spikes: Option<&'a Path>,
    /// Replace existing files (refused before any work otherwise).
    pub overwrite: bool,
}

pub fn write_simulation(
    config: &SimulationConfig,
    files: &SimulationFiles<'_>,
    progress: &mut dyn Progress,
) -> Result<()> {
    let mut outputs = vec![(files.noisy, OutputForm::of_movie(files.noisy))];
    outputs.extend(files.truth.map(|p| (p, OutputForm::of_movie(p))));
    outputs.extend(files.labels.map(|p| (p, OutputForm::of_movie(p))));
    outputs.extend(files.spikes.map(|p| (p, OutputForm::File)));
    check_outputs(&outputs, &[], files.overwrite)?;
    let sim = Simulator::new(config)?;
    let mut published: Vec<&Path> = Vec::new();
    let written = write_all(&sim, files, &mut published, progress);
    if written.is_err() {
        // Complete or not at all: a later output failed, so the earlier ones of this run go too.
        for path in published {
            let _ = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
        }
    }
    written
}

fn write_all<'a>(
    sim: &Simulator,
    files: &SimulationFiles<'a>,
    published: &mut Vec<&'a Path>,
    progress: &mut dyn Progress,
) -> Result<()> {
    let config = sim.config();
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
    if let Some(mut writer) = labels_writer.take() {
        writer.write_frame(&crate::footprint::labels_from_footprints(sim.footprints(), w * h, 0.5))?;
        labels_writer = Some(writer);
    }
    let spikes_csv = files.spikes.map(|_| spikes_table(sim));
    noisy_writer.finish()?;
    published.push(files.noisy);
    if let (Some(writer), Some(path)) = (truth_writer, files.truth) {
        writer.finish()?;
        published.push(path);
    }
    if let (Some(writer), Some(path)) = (labels_writer, files.labels) {
        writer.finish()?;
        published.push(path);
    }
    if let (Some(table), Some(path)) = (spikes_csv, files.spikes) {
        write_file_atomically(path, table.as_bytes())?;
        published.push(path);
    }
    Ok(())
}

/// The spike trains as a CSV table: a header `frame,neuron_1,...`, then one row per frame with the
/// number of each neuron's spikes whose transient starts at that frame: a spike at time s counts
/// at the first frame time at or after it (frame ⌈s·rate⌉), where the simulator adds it.
pub fn spikes_table(sim: &Simulator) -> String {
    let config = sim.config();
    let neurons = sim.footprints().len();
    let mut counts = vec![0u32; config.frames * neurons];
    for n in 0..neurons {
        for &time in sim.spike_times(n) {
            let frame = (time * config.frame_rate_hz).ceil() as usize;
            if frame < config.frames {
                counts[frame * neurons + n] += 1;
            }
        }
    }
    let mut table = String::from("frame");
    for n in 1..=neurons {
        table.push_str(&format!(",neuron_{n}"));
    }
    table.push('\n');
    for frame in 0..config.frames {
        table.push_str(&frame.to_string());
        for count in &counts[frame * neurons..(frame + 1) * neurons] {
            table.push_str(&format!(",{count}"));
        }
        table.push('\n');
    }
    table
}
