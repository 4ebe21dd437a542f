//! Inference: tile plan, network, stitching, streamed frame by frame.
//!
//! The movie is processed one time block at a time (a tile row along time): its frames are read
//! (mirrored past the ends), normalised with the bundle's fixed statistics, split into spatial
//! tiles, run through the network under no-grad, and only each tile's centre is kept. Finished
//! frames leave at once, so memory is set by the tile, never by the movie's length.
//!
//! Deliberate differences from the reference (deepcad-spec §4.1): no per-tile √(Σin/Σout)
//! brightness rescaling (it makes a voxel depend on its tile), no per-stack mean for our own models
//! (statistics are fixed at training), halo at the receptive-field radius (seamless), mirror padding
//! instead of negative indexing, clipping and rounding instead of wrapping on the integer cast.
//!
//! Which entry point (all run the same streamed core, `stream.rs`, so they give the same numbers;
//! each name says what it takes and what it gives):
//!
//! | entry point | from | to | for |
//! |---|---|---|---|
//! | [`denoise_file_to_file`] | a movie file (TIFF, Zarr) | a file, written as frames finish | the CLI, batches |
//! | [`denoise_source_to_file`] | any frame source | a TIFF, written as frames finish | Fiji's virtual stacks |
//! | [`denoise_source_to_memory`] | any frame source | one buffer and the sample type to store it as | Fiji's in-memory images, tests |
//! | [`BlockJob`] | a movie file | its share of one Zarr output | SLURM arrays, Spark |
//! | [`LiveStream`] | frames pushed one by one | frames as they become final | live acquisition |
//!
//! After the network, fast events can be added back (`event_restoration.rs`, `cell_map.rs`); the
//! default decides per movie from how fast its events decay (`restoration_choice.rs`,
//! `event_timescale.rs`).

pub mod batch;
mod block_plan;
pub mod blocks;
mod cell_map;
pub mod event_restoration;
pub mod event_timescale;
mod input_fingerprint;
pub mod live;
mod live_ring;
pub mod live_schedule;
mod live_worker;
mod memory_plan;
pub mod normalization;
pub mod official_pipeline;
mod output_type;
pub mod restoration_choice;
mod stream;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use batch::{denoise_batch, plan_batch, BatchPlan, BatchReport, DEFAULT_SUFFIX};
pub use blocks::{block_status, plan_blocks, BlockJob, BlockPlan, BlockReport, BlockStatus};
pub use live::{Backlog, LiveFrame, LiveNormalization, LiveSettings, LiveStatus, LiveStream};
pub use memory_plan::{bytes_per_voxel, plan_memory, split_bands, Budget, MemoryPlan};
pub use output_type::{OutputType, MIN_SPREAD_FOR_INTEGER_OUTPUT};
pub use restoration_choice::EventRestoration;

use crate::io::{open_movie, FrameSource, ImageJMetadata, MovieWriter, OutputMovie, ReadOptions, SampleType};
use crate::model::precision::{inference_model, InferencePrecision};
use crate::model::Model;
use crate::progress::Progress;
use crate::Result;

/// How many counts one network unit spans for `source` under `model` ([`normalization::spread`]):
/// `None` for imported stack-mean and stack-min models.
pub fn output_spread(model: &Model, source: &mut dyn FrameSource) -> Result<Option<f64>> {
    let affine = normalization::resolve_normalization(&model.metadata.normalization, source)?;
    Ok(normalization::spread(&model.metadata.normalization, affine))
}

/// The movie's normalisation and the sample type to write, resolved with one pass over the movie
/// at most; says why when the automatic choice differs from the input's type.
fn resolve_output(
    model: &Model,
    source: &mut dyn FrameSource,
    settings: &DenoiseSettings,
    progress: &mut dyn Progress,
) -> Result<(normalization::Affine, SampleType)> {
    // Before the statistics pass decodes a whole frame: one that cannot fit the budget is refused
    // with the size it needs (a 30000² frame once aborted the process here).
    memory_plan::check_frame_fits(source, settings.max_memory_bytes)?;
    let output_type = settings.output_type;
    let affine = normalization::resolve_normalization(&model.metadata.normalization, source)?;
    let (sample_type, why) =
        output_type.resolve(source.sample_type(), normalization::spread(&model.metadata.normalization, affine));
    if let Some(why) = why {
        crate::progress::report(progress, crate::progress::Event::Info(&why))?;
    }
    Ok((affine, sample_type))
}

/// Denoises a whole movie held by `source` into one `T·H·W` buffer (in input units, allocated up
/// front, fallibly) and says which sample type it should be stored as (the output type resolved):
/// the engine call behind Fiji's in-memory denoise.
pub fn denoise_source_to_memory(
    model: &Model,
    source: &mut dyn FrameSource,
    settings: &DenoiseSettings,
    progress: &mut dyn Progress,
) -> Result<(Vec<f32>, SampleType)> {
    settings.check_restoration_applies(&source.name())?;
    if let Some(compat) = &settings.compat {
        let sample_type =
            official_pipeline::output_sample_type(compat.pipeline, settings.output_type, source.sample_type());
        return Ok((official_pipeline::denoise_source(model, source, compat, sample_type, progress)?, sample_type));
    }
    let (affine, sample_type) = resolve_output(model, source, settings, progress)?;
    let len = source.frames().saturating_mul(source.width()).saturating_mul(source.height());
    let mut out = crate::allocation::with_capacity_f32(len, "the denoised movie")?;
    let converted = inference_model(model, settings.precision)?;
    let model = converted.as_ref().unwrap_or(model);
    stream::denoise_to_sink(model, source, settings, affine, None, progress, &mut |frame: &[f32]| {
        out.extend_from_slice(frame);
        Ok(())
    })?;
    Ok((out, sample_type))
}

/// Serde: the Fiji and Spark doors send the settings they change as JSON with these keys (keys
/// left out keep the defaults), so a new setting needs no edit in the doors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DenoiseSettings {
    /// Tile `[t, y, x]`; `None` chooses the least-overhead tile within `max_memory_bytes`.
    pub tile: Option<[usize; 3]>,
    /// Halo `[t, y, x]`; `None` uses the bundle's (the receptive-field radius: seamless).
    pub halo: Option<[usize; 3]>,
    /// Tiles run through the network at once (useful on GPUs with small tiles).
    pub batch_size: usize,
    pub output_type: OutputType,
    /// Budget for the streaming core's whole working set: network activations, blocks of frames
    /// in flight and the output block (`memory_plan.rs`). Large frames are split into bands of
    /// rows to fit; the default keeps a CPU run near 1.5 GB in all.
    pub max_memory_bytes: usize,
    /// Voxels per slab of the CPU's low-memory forward (`model::slab_columns` turns them into
    /// columns for each tile shape); under a memory budget below the default, 4-column slabs.
    pub slab_voxels: usize,
    /// Read the next block (and write the last) while the network runs on this one. `false` runs
    /// read, compute and write one after the other: the same output, kept to measure the overlap.
    pub pipelined: bool,
    /// Arithmetic of the network: `auto` (float32 unless bfloat16 passed the quality gate on a
    /// device with native bfloat16), `float32`, or `bfloat16` (`model::precision`). The official
    /// pipelines (`compat`) always run float32, to give their authors' numbers.
    pub precision: InferencePrecision,
    /// Reproduce an official DeepCAD-RT test pipeline instead of our seamless tiling (interop:
    /// a checkpoint then gives its authors' numbers, seams included). The movie is held whole.
    pub compat: Option<official_pipeline::CompatSettings>,
    /// Replace an existing file at the output. Off by default: an existing file is refused before
    /// any work, and if one appears meanwhile (another run writing the same path), this run fails
    /// at the end instead of replacing it.
    pub overwrite: bool,
    /// Reuse large CPU tensors between slabs and tiles (`tensor_pool.rs`): fewer page faults, a
    /// lower peak. Off by default: in one process (Fiji's JVM), with the pool on, an official-
    /// pipeline run after a bfloat16 run and a training gave other numbers than before them (up to
    /// 29 counts; the Fiji runtime test's replay); with it off, identical. Cause not yet found.
    pub tensor_pool: bool,
    /// Add back the fast, cell-sized events the network removed with the noise
    /// (`event_restoration.rs`). `auto` (the default) does when the movie's events decay within a
    /// few frames (a fast indicator at a low frame rate: `restoration_choice.rs`).
    pub restore_events: EventRestoration,
}

impl Default for DenoiseSettings {
    fn default() -> Self {
        DenoiseSettings {
            tile: None,
            halo: None,
            batch_size: 1,
            output_type: OutputType::Auto,
            max_memory_bytes: 1 << 30,
            slab_voxels: crate::model::SLAB_VOXELS,
            pipelined: true,
            precision: InferencePrecision::Auto,
            compat: None,
            overwrite: false,
            tensor_pool: false,
            restore_events: EventRestoration::Auto,
        }
    }
}

impl DenoiseSettings {
    /// Event restoration adds to our own tiling's output; an official pipeline reproduces its
    /// authors' numbers, which restoration would change (`auto` leaves it off there).
    fn check_restoration_applies(&self, name: &str) -> Result<()> {
        if self.restore_events == EventRestoration::On && self.compat.is_some() {
            return Err(crate::Error::usage(format!(
                "{name}: event restoration cannot be combined with an official DeepCAD-RT pipeline (it would change the \
                 pipeline's numbers); turn one of them off"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DenoiseReport {
    pub output: PathBuf,
    pub frames: usize,
    pub width: usize,
    pub height: usize,
    pub tile: [usize; 3],
    pub halo: [usize; 3],
    pub tiles: usize,
    pub overhead: f64,
    pub seconds: f64,
    /// What was written (the output type resolved), e.g. "u16".
    #[serde(serialize_with = "serialize_as_text")]
    pub sample_type: SampleType,
    /// Where the writer put the frames in a TIFF output (none for Zarr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_layout: Option<FrameLayout>,
}

/// Where a TIFF output's frames lie, as the writer reports it: frame t's little-endian samples
/// start at `data_offset + t * frame_bytes` when `contiguous`, so a reader of raw planes (Fiji's
/// `FileInfoVirtualStack`, which unlike ImageJ's TIFF reader opens BigTIFF too) can open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FrameLayout {
    pub data_offset: u64,
    pub frame_bytes: u64,
    pub contiguous: bool,
}

fn serialize_as_text<S: serde::Serializer>(value: &SampleType, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Denoises a movie file (TIFF or Zarr) into another (TIFF, or Zarr for a `.zarr` output), streaming: frames are written as soon as they are final,
/// under a temporary name renamed at the end (a crash or cancel leaves nothing under `output`).
pub fn denoise_file_to_file(
    model: &Model,
    input: &Path,
    output: &Path,
    read_options: &ReadOptions,
    settings: &DenoiseSettings,
    progress: &mut dyn Progress,
) -> Result<DenoiseReport> {
    crate::io::check_output_path(output, &[input.to_path_buf()])?;
    let mut movie = open_movie(input, read_options)?;
    for warning in &movie.warnings {
        crate::progress::report(progress, crate::progress::Event::Warning(warning))?;
    }
    denoise_source_to_file(
        model,
        movie.source.as_mut(),
        output,
        &[input.to_path_buf()],
        &movie.metadata,
        settings,
        progress,
    )
}

/// Denoises any frame source (a file, a Fiji virtual stack...) into a TIFF at `output`, streaming
/// like [`denoise_file_to_file`]. `protected` are paths the output must not be (the source's files);
/// `metadata` (calibration, extra description lines) is written with the result.
pub fn denoise_source_to_file(
    model: &Model,
    source: &mut dyn FrameSource,
    output: &Path,
    protected: &[PathBuf],
    metadata: &ImageJMetadata,
    settings: &DenoiseSettings,
    progress: &mut dyn Progress,
) -> Result<DenoiseReport> {
    crate::io::check_output_path(output, protected)?;
    settings.check_restoration_applies(&source.name())?;
    let (frames, width, height) = (source.frames(), source.width(), source.height());
    let (affine, sample_type) = match &settings.compat {
        Some(compat) => {
            (None, official_pipeline::output_sample_type(compat.pipeline, settings.output_type, source.sample_type()))
        }
        None => {
            let (affine, sample_type) = resolve_output(model, source, settings, progress)?;
            (Some(affine), sample_type)
        }
    };
    let name = source.name();
    let movie = OutputMovie { width, height, frames, sample_type, metadata, source: Some(&name), chunk: None };
    let mut writer = MovieWriter::create(output, &movie, settings.overwrite)?;
    if !settings.overwrite {
        writer = writer.refuse_existing("denoising")?;
    }
    let started = std::time::Instant::now();
    let (tile, halo, tiles, overhead) = match &settings.compat {
        Some(compat) => {
            let values = official_pipeline::denoise_source(model, source, compat, sample_type, progress)?;
            for frame in values.chunks_exact(width * height) {
                writer.write_frame(frame)?;
            }
            official_pipeline::tiling_summary([frames, height, width], compat)
        }
        None => {
            let affine = affine.expect("resolved above for the seamless path");
            let converted = inference_model(model, settings.precision)?;
            let model = converted.as_ref().unwrap_or(model);
            let plan =
                stream::denoise_to_sink(model, source, settings, affine, None, progress, &mut |frame: &[f32]| {
                    writer.write_frame(frame)
                })?;
            (plan.tile, plan.halo, plan.tile_count(), plan.overhead())
        }
    };
    let frame_layout = match &writer {
        MovieWriter::Tiff(tiff) => Some(FrameLayout {
            data_offset: tiff.frame_offsets().first().copied().unwrap_or_default(),
            frame_bytes: tiff.frame_bytes(),
            contiguous: tiff.frames_contiguous(),
        }),
        MovieWriter::Zarr(_) => None,
    };
    writer.finish()?;
    Ok(DenoiseReport {
        output: output.to_path_buf(),
        frames,
        width,
        height,
        tile,
        halo,
        tiles,
        overhead,
        seconds: started.elapsed().as_secs_f64(),
        sample_type,
        frame_layout,
    })
}
