//! How a movie is shared out between block jobs (`blocks.rs`), and the numbers every job must
//! use: the plan the first job records in the shared output's attributes and every later job reads.

use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::normalization::Affine;
use super::{stream, DenoiseSettings, EventRestoration};
use crate::io::zarr::Chunking;
use crate::io::FrameSource;
use crate::model::precision::InferencePrecision;
use crate::model::{Model, ALIGNMENT};
use crate::{Error, Result};

/// The attribute holding the plan in the output array.
pub const PLAN_ATTRIBUTE: &str = "deepcad_blocks";

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

/// `auto` resolved on the planning job's device.
fn resolved_precision(asked: InferencePrecision, model: &Model) -> Result<InferencePrecision> {
    Ok(match asked.resolve(model.device())? {
        tch::Kind::BFloat16 => InferencePrecision::Bfloat16,
        _ => InferencePrecision::Float32,
    })
}

/// The precision a block job runs in: the plan's, whatever `auto` would pick on this machine. A
/// job that asks for another one explicitly is refused (its blocks would not match the others').
pub(super) fn block_precision(
    plan: &BlockPlan,
    asked: InferencePrecision,
    output: &Path,
) -> Result<InferencePrecision> {
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
/// left for [`BlockJob::prepare`](super::BlockJob::prepare)).
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
