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
//! fingerprint; later jobs use the recorded plan, so every job computes with the same numbers.
//! Shards hold whole frames and never straddle two blocks, so jobs never write the same file.
//! Each finished block leaves a marker; a block re-run after a failure rewrites its frames, and
//! re-running a finished block changes nothing.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::input_fingerprint::input_fingerprint;
use super::normalization::Affine;
use super::{resolve_output, stream, DenoiseSettings, EventRestoration};
use crate::io::zarr::{has_zarr_metadata, Chunking, NewArray, ZarrWriter};
use crate::io::{check_output_path, open_movie, write_file_atomically, FrameSource, ReadOptions};
use crate::model::precision::{inference_model, InferencePrecision};
use crate::model::{Model, ALIGNMENT};
use crate::progress::{report, Event, Progress};
use crate::{Error, Result};

/// The attribute holding the plan in the output array.
pub const PLAN_ATTRIBUTE: &str = "deepcad_blocks";
/// The folder, inside the output array, of the per-block completion markers.
pub const MARKER_FOLDER: &str = crate::io::zarr::BLOCK_MARKER_FOLDER;

/// How a movie is shared out between block jobs, and the numbers every job must use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockPlan {
    /// The input as the planning job named it (for messages; jobs check shape, not path).
    pub input: String,
    /// `[t, y, x]`.
    pub shape: [usize; 3],
    pub tile: [usize; 3],
    pub halo: [usize; 3],
    /// Frames per shard of the output array (divides every block boundary).
    pub shard_frames: usize,
    pub blocks: Vec<Block>,
    /// Resolved on the whole movie by the job that creates the output: the same map for every block.
    pub normalization: Option<Affine>,
    /// The output's sample type ("u16", "f32"...), resolved with the normalisation.
    pub sample_type: Option<String>,
    /// SHA-256 of the model's weights: every block must use the same model.
    pub model_fingerprint: String,
    /// What identifies the input (shape, type, three frames' pixels: see input_fingerprint.rs):
    /// every block must come from the same movie. Empty in outputs made before it was recorded.
    #[serde(default)]
    pub input_fingerprint: String,
    /// The arithmetic every block runs in, resolved once by the planning job (`float32` or
    /// `bfloat16`, never `auto`): executors whose CPUs differ would otherwise resolve `auto`
    /// differently and their blocks would not add up to one movie. Plans made before it was
    /// recorded ran in float32.
    #[serde(default)]
    pub precision: Option<InferencePrecision>,
    /// Whether the blocks restore fast events (`event_restoration.rs`): one choice for all, with
    /// `auto` resolved once by the job that creates the output (`restoration_choice.rs`).
    #[serde(default)]
    pub restore_events: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub index: usize,
    /// Output frames `[start, end)`.
    pub frames: [usize; 2],
    /// The tile plan's time blocks `[start, end)` it computes.
    pub time_tiles: [usize; 2],
}

impl Block {
    pub fn frame_range(&self) -> Range<usize> {
        self.frames[0]..self.frames[1]
    }
}

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

/// `auto` resolved on the planning job's device.
fn resolved_precision(asked: InferencePrecision, model: &Model) -> Result<InferencePrecision> {
    Ok(match asked.resolve(model.device())? {
        tch::Kind::BFloat16 => InferencePrecision::Bfloat16,
        _ => InferencePrecision::Float32,
    })
}

/// The precision a block job runs in: the plan's, whatever `auto` would pick on this machine. A
/// job that asks for another one explicitly is refused (its blocks would not match the others').
fn block_precision(plan: &BlockPlan, asked: InferencePrecision, output: &Path) -> Result<InferencePrecision> {
    let planned = plan.precision.unwrap_or(InferencePrecision::Float32);
    if asked != InferencePrecision::Auto && asked != planned {
        return Err(Error::usage(format!(
            "{}: its blocks are computed in {planned} (recorded when the output was prepared), but this job asks for {asked}; run every block in {planned} (or auto), or write another output",
            output.display()
        )));
    }
    Ok(planned)
}

/// The plan for `count` blocks of `source` under `settings` (no pixels read; the normalisation is
/// left for [`prepare_blocks`]).
pub fn plan_blocks(
    model: &Model,
    source: &dyn FrameSource,
    count: usize,
    settings: &DenoiseSettings,
) -> Result<BlockPlan> {
    if settings.compat.is_some() {
        return Err(Error::usage(
            "block jobs use the seamless tiling; an official DeepCAD-RT pipeline runs as one job",
        ));
    }
    let shape = [source.frames(), source.height(), source.width()];
    let mut tiles = stream::plan(model, &source.name(), shape, settings)?.tiles;
    if tiles.per_axis[0].len() < count && settings.tile.is_none() {
        // Too few time blocks for the jobs asked: shorter time tiles, the same spatial tiles. The
        // result is the whole-movie run's at this tile exactly, and in practice also at the
        // default tile (outputs do not depend on the tile; the block tests check it).
        let halo = tiles.halo[0];
        let mut length = tiles.tile[0];
        while length >= 2 * halo + 2 * ALIGNMENT
            && crate::tiling::plan_axis(shape[0], length, halo).map_or(0, |t| t.len()) < count
        {
            length -= ALIGNMENT;
        }
        let shorter = DenoiseSettings { tile: Some([length, tiles.tile[1], tiles.tile[2]]), ..settings.clone() };
        tiles = stream::plan(model, &source.name(), shape, &shorter)?.tiles;
    }
    let time_blocks = &tiles.per_axis[0];
    if count == 0 || count > time_blocks.len() {
        return Err(Error::usage(format!(
            "{}: {count} blocks asked, but at tile {:?} the movie has {} time blocks; ask for 1 to {} blocks (smaller tiles give more)",
            source.name(),
            tiles.tile,
            time_blocks.len(),
            time_blocks.len()
        )));
    }
    let blocks: Vec<Block> = (0..count)
        .map(|i| {
            let (first, last) = (i * time_blocks.len() / count, (i + 1) * time_blocks.len() / count);
            Block {
                index: i,
                frames: [time_blocks[first].keep_start, time_blocks[last - 1].keep_end],
                time_tiles: [first, last],
            }
        })
        .collect();
    let default_shard = Chunking::for_movie(shape, 4).shard[0] as usize;
    let boundaries = blocks.iter().skip(1).map(|b| b.frames[0]).fold(0, gcd);
    let shard_frames = if boundaries == 0 { default_shard } else { largest_divisor_at_most(boundaries, default_shard) };
    Ok(BlockPlan {
        input: source.name(),
        shape,
        tile: tiles.tile,
        halo: tiles.halo,
        shard_frames,
        blocks,
        normalization: None,
        sample_type: None,
        model_fingerprint: model_fingerprint(model)?,
        input_fingerprint: String::new(),
        precision: Some(resolved_precision(settings.precision, model)?),
        // `auto` is resolved when the output is created, from the movie's pixels.
        restore_events: settings.restore_events == EventRestoration::On,
    })
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

/// The plan recorded in an output array's attributes.
pub fn recorded_plan(output: &Path) -> Result<BlockPlan> {
    if output.exists() && !output.is_dir() {
        return Err(Error::usage(format!(
            "{}: is a file, not a block output (block jobs write a Zarr folder, e.g. out.zarr); give the folder the block jobs wrote",
            output.display()
        )));
    }
    let metadata = output.join("zarr.json");
    let text = std::fs::read_to_string(&metadata).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::usage(format!(
            "{}: no block output there (no zarr.json); run a block job or prepare it first",
            output.display()
        )),
        _ => Error::io(&metadata, e),
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::format(&metadata, format!("not valid JSON: {e}")))?;
    let plan = json.get("attributes").and_then(|a| a.get(PLAN_ATTRIBUTE)).ok_or_else(|| {
        Error::usage(format!(
            "{}: is a Zarr array but not a block output (no {PLAN_ATTRIBUTE} attribute); give the output of block jobs",
            output.display()
        ))
    })?;
    serde_json::from_value(plan.clone())
        .map_err(|e| Error::format(&metadata, format!("its block plan cannot be read ({e})")))
}

fn marker_path(output: &Path, index: usize, count: usize) -> PathBuf {
    output.join(MARKER_FOLDER).join(format!("{index}-of-{count}.done"))
}

/// SHA-256 over the model's weights in name order (what defines its output, whatever file or
/// door it came from).
pub fn model_fingerprint(model: &Model) -> Result<String> {
    let mut variables: Vec<(String, tch::Tensor)> = model.vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hash = Sha256::new();
    for (name, tensor) in variables {
        hash.update(name.as_bytes());
        let values =
            Vec::<f32>::try_from(tensor.f_to_device(tch::Device::Cpu)?.f_to_kind(tch::Kind::Float)?.f_flatten(0, -1)?)?;
        for v in values {
            hash.update(v.to_le_bytes());
        }
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn largest_divisor_at_most(n: usize, limit: usize) -> usize {
    (1..=limit.max(1).min(n)).rev().find(|d| n % d == 0).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_depth_divides_every_block_boundary() {
        assert_eq!(largest_divisor_at_most(156, 64), 52);
        assert_eq!(largest_divisor_at_most(7, 64), 7);
        assert_eq!(largest_divisor_at_most(4, 64), 4);
        assert_eq!([156usize, 260, 364].into_iter().fold(0, gcd), 52);
    }
}
