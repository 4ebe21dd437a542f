//! One movie, many independent jobs, one result: block jobs for clusters (SLURM arrays, Spark).
//!
//! The movie's time blocks (the tile plan's tile rows along time, shorter ones when the movie has
//! fewer than `count`) are shared out into `count` contiguous groups; job `i` computes only group `i`, exactly as the whole-movie run computes
//! those tiles (same tile, halo and normalisation, its input read with its halo from the shared
//! input), and writes only its own frames into one shared Zarr array. The union of all blocks is
//! therefore the whole-movie output bit for bit, with no baseline jumps between blocks.
//!
//! The first job (or a prepare step) creates the array and records the plan in its attributes:
//! the tile, halo, the normalisation resolved on the whole movie, the output type and the model's
//! fingerprint (`block_plan.rs`); later jobs use the recorded plan, so every job computes with the same numbers.
//! Shards hold whole frames and never straddle two blocks, so jobs never write the same file.
//! Each finished block leaves a marker; a block re-run after a failure rewrites its frames, and
//! re-running a finished block changes nothing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::block_plan::block_precision;
pub use super::block_plan::{model_fingerprint, plan_blocks, recorded_plan, Block, BlockPlan, PLAN_ATTRIBUTE};
use super::input_fingerprint::input_fingerprint;
use super::{resolve_output, stream, DenoiseSettings, EventRestoration};
use crate::io::zarr::{has_zarr_metadata, Chunking, NewArray, ZarrWriter};
use crate::io::{check_output_path, open_movie, write_file_atomically, FrameSource, ReadOptions};
use crate::model::precision::inference_model;
use crate::model::Model;
use crate::progress::{report, Event, Progress};
use crate::{Error, Result};

/// The folder, inside the output array, of the per-block completion markers.
pub const MARKER_FOLDER: &str = crate::io::zarr::BLOCK_MARKER_FOLDER;

/// What one block job did.
#[derive(Debug, Clone, Serialize)]
pub struct BlockReport {
    pub output: PathBuf,
    pub index: usize,
    pub count: usize,
    pub frames: [usize; 2],
    /// The block was already done: nothing was computed or written.
    pub already_done: bool,
    pub seconds: f64,
}

/// Which blocks of an output are done.
#[derive(Debug, Clone, Serialize)]
pub struct BlockStatus {
    pub output: PathBuf,
    pub count: usize,
    pub frames: usize,
    pub done: Vec<usize>,
    pub missing: Vec<usize>,
    /// Blocks whose marker says they were computed from another movie than the plan's (outputs
    /// written before blocks were checked against their input): redo them.
    pub from_another_input: Vec<usize>,
    pub complete: bool,
}

/// What a completion marker records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    index: usize,
    count: usize,
    frames: [usize; 2],
    seconds: f64,
    host: String,
    #[serde(default)]
    input_fingerprint: String,
}

/// One block job's inputs: what every block of one output shares.
pub struct BlockJob<'a> {
    pub model: &'a Model,
    pub input: &'a Path,
    /// The shared `.zarr` output.
    pub output: &'a Path,
    /// Blocks in the plan.
    pub count: usize,
    pub options: &'a ReadOptions,
    pub settings: &'a DenoiseSettings,
}

impl BlockJob<'_> {
    /// The plan recorded in the output, creating the output array first when no job has yet (the
    /// first of several racing jobs wins; the others read its plan). Refuses an output prepared
    /// for another movie shape, block count or model.
    pub fn prepare(&self, progress: &mut dyn Progress) -> Result<BlockPlan> {
        let mut movie = open_movie(self.input, self.options)?;
        self.prepare_with(movie.source.as_mut(), &movie.metadata, progress)
    }

    fn prepare_with(
        &self,
        source: &mut dyn FrameSource,
        metadata: &crate::io::ImageJMetadata,
        progress: &mut dyn Progress,
    ) -> Result<BlockPlan> {
        let (model, output, count, settings) = (self.model, self.output, self.count, self.settings);
        let mut plan = plan_blocks(model, source, count, settings)?;
        plan.input_fingerprint = input_fingerprint(source)?;
        if !has_zarr_metadata(output) {
            if !crate::io::zarr::is_zarr(output) {
                return Err(Error::usage(format!(
                    "{}: block jobs write into a shared Zarr array; name the output .zarr",
                    output.display()
                )));
            }
            check_output_path(output, &[self.input.to_path_buf()])?;
            let (affine, sample_type) = resolve_output(model, source, settings, progress)?;
            plan.normalization = Some(affine);
            let restoration = settings.restore_events.decide(source)?;
            if let Some(why) = &restoration.why {
                report(progress, Event::Info(why))?;
            }
            plan.restore_events = restoration.restore;
            plan.sample_type = Some(sample_type.to_string());
            let mut attributes = serde_json::Map::new();
            attributes
                .insert(PLAN_ATTRIBUTE.into(), serde_json::to_value(&plan).map_err(|e| Error::usage(e.to_string()))?);
            let name = source.name();
            let array = NewArray {
                width: plan.shape[2],
                height: plan.shape[1],
                frames: plan.shape[0],
                sample_type,
                metadata,
                source: Some(&name),
                chunking: Some(
                    Chunking::for_movie(plan.shape, sample_type.bytes()).with_time_step(plan.shard_frames as u64),
                ),
                attributes,
            };
            if ZarrWriter::create_empty(output, &array)? {
                report(
                    progress,
                    Event::Info(&format!("{}: created for {} blocks of {}", output.display(), count, source.name())),
                )?;
            }
        }
        let recorded = recorded_plan(output)?;
        let same = recorded.shape == plan.shape
            && recorded.blocks.len() == count
            && recorded.model_fingerprint == plan.model_fingerprint;
        if !recorded.input_fingerprint.is_empty() && recorded.input_fingerprint != plan.input_fingerprint {
            return Err(Error::usage(format!(
                "{}: was prepared from the movie {} and {} is another movie of the same shape (its pixels differ); give every block job the same input, or a new output",
                output.display(),
                recorded.input,
                source.name()
            )));
        }
        if !same {
            return Err(Error::usage(format!(
                "{}: was prepared for {} blocks of a {:?} movie with model {}…; this job asks for {} blocks of a {:?} movie with model {}…; use the same input, model and block count, or a new output",
                output.display(),
                recorded.blocks.len(),
                recorded.shape,
                &recorded.model_fingerprint[..12.min(recorded.model_fingerprint.len())],
                count,
                plan.shape,
                &plan.model_fingerprint[..12]
            )));
        }
        let asked = match settings.restore_events {
            EventRestoration::Auto => recorded.restore_events,
            explicit => explicit == EventRestoration::On,
        };
        if recorded.restore_events != asked {
            let word = |on: bool| if on { "on" } else { "off" };
            return Err(Error::usage(format!(
                "{}: was prepared with event restoration {}, and this job asks for it {}; give every block job the same choice, or a new output",
                output.display(),
                word(recorded.restore_events),
                word(asked)
            )));
        }
        Ok(recorded)
    }

    /// Denoises block `index` into the shared output (created if no job did yet). A finished block
    /// is skipped; an unfinished one is (re)written whole.
    pub fn denoise(&self, index: usize, progress: &mut dyn Progress) -> Result<BlockReport> {
        let (output, count) = (self.output, self.count);
        if index >= count {
            return Err(Error::usage(format!(
                "block {index} of {count} does not exist; blocks count from 0 to {}",
                count.saturating_sub(1)
            )));
        }
        let started = std::time::Instant::now();
        let mut movie = open_movie(self.input, self.options)?;
        for warning in &movie.warnings {
            report(progress, Event::Warning(warning))?;
        }
        let source = movie.source.as_mut();
        let plan = self.prepare_with(source, &movie.metadata, progress)?;
        let precision = block_precision(&plan, self.settings.precision, output)?;
        let block = plan.blocks[index].clone();
        let marker = marker_path(output, index, count);
        if marker.is_file() {
            report(
                progress,
                Event::Info(&format!(
                    "{}: block {index} of {count} (frames {}..{}) is already done",
                    output.display(),
                    block.frames[0],
                    block.frames[1]
                )),
            )?;
            return Ok(BlockReport {
                output: output.to_path_buf(),
                index,
                count,
                frames: block.frames,
                already_done: true,
                seconds: 0.0,
            });
        }
        let affine = plan
            .normalization
            .ok_or_else(|| Error::format(output, "the block plan has no normalisation; prepare the output again"))?;
        let restore_events = if plan.restore_events { EventRestoration::On } else { EventRestoration::Off };
        let job_settings =
            DenoiseSettings { tile: Some(plan.tile), halo: Some(plan.halo), restore_events, ..self.settings.clone() };
        let mut writer = ZarrWriter::region(output, block.frame_range())?;
        report(
            progress,
            Event::Info(&format!("block {index} of {count}: frames {}..{}", block.frames[0], block.frames[1])),
        )?;
        let time_tiles = Some(block.time_tiles[0]..block.time_tiles[1]);
        let converted = inference_model(self.model, precision)?;
        stream::denoise_to_sink(
            converted.as_ref().unwrap_or(self.model),
            source,
            &job_settings,
            affine,
            time_tiles,
            progress,
            &mut |frame: &[f32]| writer.write_frame(frame),
        )?;
        writer.finish()?;
        let seconds = started.elapsed().as_secs_f64();
        let record = Marker {
            index,
            count,
            frames: block.frames,
            seconds,
            host: crate::io::host_name(),
            input_fingerprint: plan.input_fingerprint.clone(),
        };
        std::fs::create_dir_all(marker.parent().expect("markers live in a folder"))
            .map_err(|e| Error::io(output, e))?;
        write_file_atomically(&marker, &serde_json::to_vec_pretty(&record).map_err(|e| Error::usage(e.to_string()))?)?;
        Ok(BlockReport {
            output: output.to_path_buf(),
            index,
            count,
            frames: block.frames,
            already_done: false,
            seconds,
        })
    }
}

/// Which blocks of `output` are done (their markers exist).
pub fn block_status(output: &Path) -> Result<BlockStatus> {
    let plan = recorded_plan(output)?;
    let count = plan.blocks.len();
    let (mut done, missing): (Vec<usize>, Vec<usize>) =
        (0..count).partition(|&i| marker_path(output, i, count).is_file());
    // A marker from another movie than the plan's (possible in outputs made before blocks were
    // checked against their input) does not count as done.
    let from_another_input: Vec<usize> = done
        .iter()
        .copied()
        .filter(|&i| {
            let marker = std::fs::read(marker_path(output, i, count)).ok();
            let fingerprint = marker
                .and_then(|bytes| serde_json::from_slice::<Marker>(&bytes).ok())
                .map(|m| m.input_fingerprint)
                .unwrap_or_default();
            !plan.input_fingerprint.is_empty() && fingerprint != plan.input_fingerprint
        })
        .collect();
    done.retain(|i| !from_another_input.contains(i));
    Ok(BlockStatus {
        output: output.to_path_buf(),
        count,
        frames: plan.shape[0],
        complete: missing.is_empty() && from_another_input.is_empty(),
        done,
        missing,
        from_another_input,
    })
}

fn marker_path(output: &Path, index: usize, count: usize) -> PathBuf {
    output.join(MARKER_FOLDER).join(format!("{index}-of-{count}.done"))
}
