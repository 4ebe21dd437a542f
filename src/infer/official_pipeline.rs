//! DeepCAD-RT's own test pipelines, reproduced for interop (`--compat`), so a checkpoint gives
//! the numbers its authors got. Two versions exist and disagree (deepcad-spec §4;
//! `fixtures/deepcad-rt-official/pipeline/README.md` describes both and holds their outputs):
//!
//! - **deepcad-rt** (the `deepcad` package since 2022): `x/scale − mean(stack)`; tiles of `patch`
//!   every `gap = int(patch·(1 − overlap))`, the last one snapped to the end; each tile's kept part
//!   (`cut = (patch − gap)/2` trimmed on inner sides) is multiplied by `√(Σin/Σout)` (float64, both
//!   with the mean added back) and overwrites the result in y-outer, x, t-inner order; the float32
//!   result is cast to the input's type by truncation.
//! - **deepcad-rt-2021** (the release that trained the official checkpoint): `(x − min)/factor`,
//!   the same tiling with explicit gaps, a float32 factor, nothing added back; the shipped file is
//!   the result stretched to the full 16-bit range.
//!
//! Unlike our seamless default, every voxel depends on its tile (hard seams at tile borders), and
//! the whole movie is held in memory, as the reference does. Deliberate differences, all outside
//! what the reference defines: values beyond the output type's range are clipped (numpy's cast is
//! undefined there and wraps in practice), and the float32 sums of the 2021 factor are taken in
//! float64 (numpy sums pairwise in float32: ≤ 1e-6 relative).

use std::ops::Range;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::OutputType;
use crate::io::FrameSource;
use crate::io::SampleType;
use crate::model::{Model, Normalization};
use crate::progress::{report, Event, Progress};
use crate::vocabulary::Vocabulary;
use crate::{Error, Result};

/// Which official pipeline to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfficialPipeline {
    /// `deepcad.test_collection.testing_class` (DeepCAD-RT since 2022).
    DeepcadRt,
    /// The 2021 root-level `test.py`.
    DeepcadRt2021,
}

/// The words every door uses (`--compat`, request JSON).
impl Vocabulary for OfficialPipeline {
    const WHAT: &'static str = "compatibility mode";
    const WORDS: &'static [(Self, &'static str)] =
        &[(OfficialPipeline::DeepcadRt, "deepcad-rt"), (OfficialPipeline::DeepcadRt2021, "deepcad-rt-2021")];
}
crate::spelled!(OfficialPipeline);

/// The pipeline and its tile geometry, `[t, y, x]`. Read from JSON as the doors ask for it
/// ([`CompatRequest`]) and checked by [`CompatSettings::new`]; written as it was resolved, which
/// reads back the same.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CompatRequest")]
pub struct CompatSettings {
    pub pipeline: OfficialPipeline,
    pub patch: [usize; 3],
    pub gap: [usize; 3],
}

/// `{"pipeline": "deepcad-rt" | "deepcad-rt-2021", "patch": [t, y, x], "overlap": f | "gap": [t, y, x]}`:
/// the pipeline and what of its tiling the caller changes (`--compat`, `--patch`, `--overlap`, `--gap`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompatRequest {
    pub pipeline: OfficialPipeline,
    pub patch: Option<[usize; 3]>,
    pub overlap: Option<f64>,
    pub gap: Option<[usize; 3]>,
}

impl TryFrom<CompatRequest> for CompatSettings {
    type Error = Error;
    fn try_from(r: CompatRequest) -> Result<Self> {
        CompatSettings::new(r.pipeline, r.patch, r.overlap, r.gap)
    }
}

impl CompatSettings {
    /// The official defaults unless given: patch 150³; deepcad-rt's demo overlap 0.6 (gap 60);
    /// the 2021 script's gaps 60 (t), 90 (y, x). `overlap` and `gap` are alternatives.
    pub fn new(
        pipeline: OfficialPipeline,
        patch: Option<[usize; 3]>,
        overlap: Option<f64>,
        gap: Option<[usize; 3]>,
    ) -> Result<Self> {
        let patch = patch.unwrap_or([150; 3]);
        if patch.iter().any(|&p| p == 0 || p > crate::model::MAX_PATCH) {
            return Err(Error::usage(format!(
                "compatibility patch {patch:?} must be 1..={} on every axis",
                crate::model::MAX_PATCH
            )));
        }
        let gap = match (overlap, gap) {
            (Some(_), Some(_)) => {
                return Err(Error::usage(
                    "give either an overlap factor or gaps for the compatibility tiling, not both",
                ))
            }
            (Some(overlap), None) => {
                if !(0.0..1.0).contains(&overlap) {
                    return Err(Error::usage(format!(
                        "overlap factor {overlap} must be in [0, 1) (DeepCAD-RT's demo uses 0.6)"
                    )));
                }
                let gap = patch.map(|p| (p as f64 * (1.0 - overlap)) as usize);
                if gap.contains(&0) {
                    return Err(Error::usage(format!(
                        "overlap factor {overlap} leaves no step between tiles of patch {patch:?} (tiles would start at the same place); use a smaller overlap such as 0.6"
                    )));
                }
                gap
            }
            (None, Some(gap)) => gap,
            (None, None) => match pipeline {
                OfficialPipeline::DeepcadRt => patch.map(|p| (p as f64 * (1.0 - 0.6)) as usize),
                OfficialPipeline::DeepcadRt2021 => [60, 90, 90].map(|g: usize| g.min(patch[1])),
            },
        };
        for a in 0..3 {
            if gap[a] == 0 || gap[a] > patch[a] {
                return Err(Error::usage(format!(
                    "compatibility gap {gap:?} must be 1..=patch {patch:?} on every axis"
                )));
            }
        }
        Ok(CompatSettings { pipeline, patch, gap })
    }
}

/// One tile along one axis: where it reads, which stack range it writes, from which local range.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReferenceAxisTile {
    start: usize,
    kept: Range<usize>,
    local: Range<usize>,
}

/// The reference's tiles along an axis of `len` (deepcad-spec §4.1): `n = ceil((len − patch +
/// gap)/gap)`, tile i at `gap·i`, the last at `len − patch`; `cut = (patch − gap)/2` in floating
/// point, truncated like Python's `int()`. A single tile keeps only `[0, patch − cut)`: the
/// reference leaves the rest of such an axis 0, and so does this.
fn reference_axis_tiles(len: usize, patch: usize, gap: usize) -> Vec<ReferenceAxisTile> {
    let n = (len - patch + gap).div_ceil(gap);
    let cut = (patch - gap) as f64 / 2.0;
    let int = |v: f64| v as usize;
    (0..n)
        .map(|i| {
            let start = if i == n - 1 && n > 1 { len - patch } else { gap * i };
            if i == 0 {
                ReferenceAxisTile { start, kept: 0..int(patch as f64 - cut), local: 0..int(patch as f64 - cut) }
            } else if i == n - 1 {
                ReferenceAxisTile { start, kept: int((len - patch) as f64 + cut)..len, local: int(cut)..patch }
            } else {
                let origin = (i * gap) as f64;
                ReferenceAxisTile {
                    start,
                    kept: int(origin + cut)..int(origin + patch as f64 - cut),
                    local: int(cut)..int(patch as f64 - cut),
                }
            }
        })
        .collect()
}

/// The intensity convention of the pipeline: subtract `offset` after dividing by `factor`.
fn factor_of(model: &Model) -> f64 {
    match model.metadata.normalization {
        Normalization::StackMean { scale_factor } => scale_factor,
        Normalization::StackMin { normalize_factor } => normalize_factor,
        // Our own models carry no reference factor; the reference's default is 1.
        Normalization::Fixed { .. } | Normalization::PerMovie => 1.0,
    }
}

/// The official pipelines run a plain U-Net on consecutive frames (interlaced and masked models);
/// a hybrid model's output comes from its parity split and blind spot, which they have no place for.
fn check_interlaced(model: &Model, pipeline: OfficialPipeline) -> Result<()> {
    if model.metadata.method.denoises_with_plain_unet() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--compat {} reproduces the official DeepCAD-RT pipeline for plain U-Net models; this model was trained with the {} method: denoise it without --compat",
        pipeline.word(),
        model.metadata.method
    )))
}

/// Runs `settings.pipeline` on `movie` (`shape = [t, y, x]`, raw values) and returns its float32
/// result, the array the official code holds just before its final cast.
pub fn denoise_official(
    model: &Model,
    movie: &[f32],
    shape: [usize; 3],
    settings: &CompatSettings,
    progress: &mut dyn Progress,
) -> Result<Vec<f32>> {
    check_interlaced(model, settings.pipeline)?;
    check_movie_fits_patch(shape, settings.patch)?;
    let factor = factor_of(model);
    let (normalised, mean) = normalise(movie, settings.pipeline, factor);
    let axes: Vec<Vec<ReferenceAxisTile>> =
        (0..3).map(|a| reference_axis_tiles(shape[a], settings.patch[a], settings.gap[a])).collect();
    let mut result = crate::allocation::zeroed_f32(movie.len(), "the compatibility result")?;
    let total = axes.iter().map(Vec::len).product::<usize>() as u64;
    report(
        progress,
        Event::Info(&format!(
            "{} compatibility: patch {:?}, gap {:?}, {total} tiles, per-tile brightness factor, overwriting stitching",
            settings.pipeline.word(),
            settings.patch,
            settings.gap
        )),
    )?;
    report(progress, Event::Begin { phase: "denoise", total })?;
    let _no_grad = tch::no_grad_guard();
    let brightness = Brightness { pipeline: settings.pipeline, mean, factor };
    let mut tile = vec![0f32; settings.patch.iter().product()];
    let mut done = 0;
    // The reference's visiting order: y outer, x, t inner; later tiles overwrite earlier ones.
    for y in &axes[1] {
        for x in &axes[2] {
            for t in &axes[0] {
                let place = TilePlace { t, y, x, shape, patch: settings.patch };
                place.gather(&normalised, &mut tile);
                let output = run_tile(model, &tile, settings.patch)?;
                brightness.write_kept(&mut result, &place, &tile, &output);
                done += 1;
                report(progress, Event::Advance { done, message: "tiles" })?;
            }
        }
    }
    check_finite(&result, shape)?;
    Ok(result)
}

/// The official pipelines tile with a fixed patch; a movie smaller than it on any axis has no tile.
fn check_movie_fits_patch(shape: [usize; 3], patch: [usize; 3]) -> Result<()> {
    for (a, name) in ["time", "height", "width"].iter().enumerate() {
        if shape[a] < patch[a] {
            return Err(Error::usage(format!(
                "the movie's {name} ({}) is shorter than the compatibility patch ({}); the official pipeline cannot tile it: choose a smaller patch",
                shape[a], patch[a]
            )));
        }
    }
    Ok(())
}

/// The pipeline's network input and the stack mean (which deepcad-rt adds back to its output).
fn normalise(movie: &[f32], pipeline: OfficialPipeline, factor: f64) -> (Vec<f32>, f64) {
    let (sum, min) = movie.iter().fold((0f64, f32::INFINITY), |(sum, min), &v| (sum + v as f64, min.min(v)));
    let mean = sum / movie.len() as f64;
    let normalised = match pipeline {
        // `x.astype(float32)/scale_factor − mean` is float64 under NumPy 2, cast per tile.
        OfficialPipeline::DeepcadRt => movie.iter().map(|&x| ((x / factor as f32) as f64 - mean) as f32).collect(),
        // `(x − x.min()).astype(float32)/normalize_factor`.
        OfficialPipeline::DeepcadRt2021 => movie.iter().map(|&x| (x - min) / factor as f32).collect(),
    };
    (normalised, mean)
}

/// The network's output for one tile (`patch` long, `[t, y, x]` order), as float32 on the host.
fn run_tile(model: &Model, tile: &[f32], patch: [usize; 3]) -> Result<Vec<f32>> {
    let [pt, py, px] = patch.map(|p| p as i64);
    let input = Tensor::f_from_slice(tile)?.f_reshape([1, 1, pt, py, px])?.f_to_device(model.device())?;
    let output = model.net.forward(&input)?.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?;
    Ok(Vec::<f32>::try_from(output.f_flatten(0, -1)?)?)
}

/// One tile's place in the movie: its span on each axis.
struct TilePlace<'a> {
    t: &'a ReferenceAxisTile,
    y: &'a ReferenceAxisTile,
    x: &'a ReferenceAxisTile,
    shape: [usize; 3],
    patch: [usize; 3],
}

impl TilePlace<'_> {
    /// Copies the tile's span of `movie` into `tile`.
    fn gather(&self, movie: &[f32], tile: &mut [f32]) {
        let [_, height, width] = self.shape;
        let [pt, py, px] = self.patch;
        for t in 0..pt {
            for y in 0..py {
                let from = ((self.t.start + t) * height + self.y.start + y) * width + self.x.start;
                tile[(t * py + y) * px..][..px].copy_from_slice(&movie[from..from + px]);
            }
        }
    }

    /// Index in the tile of local voxel `(t, y, x)`.
    fn local(&self, t: usize, y: usize, x: usize) -> usize {
        let [_, py, px] = self.patch;
        (t * py + y) * px + x
    }

    /// Tile indices of the kept part.
    fn kept(&self) -> impl Iterator<Item = usize> + '_ {
        self.t.local.clone().flat_map(move |t| {
            self.y.local.clone().flat_map(move |y| self.x.local.clone().map(move |x| self.local(t, y, x)))
        })
    }

    /// Writes the kept part into the result: `value(i)` for tile index `i`.
    fn write_kept(&self, result: &mut [f32], value: impl Fn(usize) -> f32) {
        let [_, height, width] = self.shape;
        for (t, lt) in self.t.kept.clone().zip(self.t.local.clone()) {
            for (y, ly) in self.y.kept.clone().zip(self.y.local.clone()) {
                let row = (t * height + y) * width;
                for (x, lx) in self.x.kept.clone().zip(self.x.local.clone()) {
                    result[row + x] = value(self.local(lt, ly, lx));
                }
            }
        }
    }
}

/// How each pipeline rescales a tile's output before writing it: by `√(Σin/Σout)` over the kept
/// part, times the factor (deepcad-rt: in float64 with the mean added back; 2021: in float32).
struct Brightness {
    pipeline: OfficialPipeline,
    mean: f64,
    factor: f64,
}

impl Brightness {
    fn write_kept(&self, result: &mut [f32], place: &TilePlace<'_>, tile: &[f32], output: &[f32]) {
        let (mean, factor) = (self.mean, self.factor);
        match self.pipeline {
            OfficialPipeline::DeepcadRt => {
                let (sum_in, sum_out) = place
                    .kept()
                    .fold((0f64, 0f64), |(r, o), i| (r + tile[i] as f64 + mean, o + output[i] as f64 + mean));
                let scale = (sum_in / sum_out).sqrt();
                place.write_kept(result, |i| (((output[i] as f64 + mean) * scale) as f32) * factor as f32);
            }
            OfficialPipeline::DeepcadRt2021 => {
                let (sum_in, sum_out) =
                    place.kept().fold((0f64, 0f64), |(r, o), i| (r + tile[i] as f64, o + output[i] as f64));
                let scale = ((sum_in as f32) / (sum_out as f32)).sqrt();
                place.write_kept(result, |i| output[i] * scale * factor as f32);
            }
        }
    }
}

/// A tile whose output sums to 0 (or a broken model) gives a non-finite scale; refuse to ship it.
fn check_finite(result: &[f32], shape: [usize; 3]) -> Result<()> {
    match result.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::usage(format!(
            "the official pipeline gave a non-finite value at frame {} (a tile whose output sums to 0 or a broken model)",
            i / (shape[1] * shape[2])
        ))),
    }
}

/// The sample type the pipeline writes for an input of type `input`: `Float32` asks for the float32
/// result, anything else for what the pipeline ships (the input's type; the 2021 stretch: uint16).
pub fn output_sample_type(pipeline: OfficialPipeline, output_type: OutputType, input: SampleType) -> SampleType {
    match (output_type, pipeline) {
        (OutputType::Float32, _) => SampleType::F32,
        (_, OfficialPipeline::DeepcadRt) => input,
        (_, OfficialPipeline::DeepcadRt2021) => SampleType::U16,
    }
}

/// Runs the pipeline on every frame of `source` (held whole, as the reference holds it) and returns
/// the values to write as `sample_type` ([`output_sample_type`]), `T·H·W`.
pub fn denoise_source(
    model: &Model,
    source: &mut dyn FrameSource,
    compat: &CompatSettings,
    sample_type: SampleType,
    progress: &mut dyn Progress,
) -> Result<Vec<f32>> {
    check_interlaced(model, compat.pipeline)?;
    let shape = [source.frames(), source.height(), source.width()];
    let plane = shape[1] * shape[2];
    let mut movie = crate::allocation::zeroed_f32(
        shape.iter().product(),
        &format!("{} held whole for the official pipeline", source.name()),
    )?;
    for (t, frame) in movie.chunks_exact_mut(plane).enumerate() {
        source.read_frame(t, frame)?;
    }
    let input_type = source.sample_type();
    let mut values = denoise_official(model, &movie, shape, compat, progress).map_err(|e| match e {
        Error::Usage(message) => Error::usage(format!("{}: {message}", source.name())),
        other => other,
    })?;
    drop(movie);
    if sample_type != SampleType::F32 {
        shipped(compat.pipeline, &mut values, input_type);
    }
    Ok(values)
}

/// Tile, trimmed cut (in the halo's place), tile count and overhead, for the run's report.
pub fn tiling_summary(shape: [usize; 3], compat: &CompatSettings) -> ([usize; 3], [usize; 3], usize, f64) {
    let axes: Vec<Vec<ReferenceAxisTile>> =
        (0..3).map(|a| reference_axis_tiles(shape[a], compat.patch[a], compat.gap[a])).collect();
    let pushed: f64 = (0..3).map(|a| (axes[a].len() * compat.patch[a]) as f64).product();
    (
        compat.patch,
        [0, 1, 2].map(|a| (compat.patch[a] - compat.gap[a]) / 2),
        axes.iter().map(Vec::len).product(),
        pushed / shape.iter().map(|&s| s as f64).product::<f64>(),
    )
}

/// What the pipeline ships from its float32 result, in place, and the sample type it is in:
/// deepcad-rt truncates to the input's type; the 2021 release stretches to the full 16-bit range.
pub fn shipped(pipeline: OfficialPipeline, values: &mut [f32], input: SampleType) -> SampleType {
    match pipeline {
        OfficialPipeline::DeepcadRt => {
            if input != SampleType::F32 {
                let (lo, hi) = input.range();
                values.iter_mut().for_each(|v| *v = v.trunc().clamp(lo, hi));
            }
            input
        }
        OfficialPipeline::DeepcadRt2021 => {
            // As the 2021 test.py: subtract the min, divide by the max, ×65535, clip, cast (float32).
            let min = values.iter().copied().fold(f32::INFINITY, f32::min);
            values.iter_mut().for_each(|v| *v -= min);
            let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            values.iter_mut().for_each(|v| *v = (*v / max * 65535.0).clamp(0.0, 65535.0).trunc());
            SampleType::U16
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_follow_the_fixture_table() {
        // fixtures/deepcad-rt-official/pipeline/README.md: L=120, P=64, G=48 → starts 0, 48, 56;
        // kept 0:56, 56:104, 64:120.
        let t = reference_axis_tiles(120, 64, 48);
        assert_eq!(t.iter().map(|a| a.start).collect::<Vec<_>>(), vec![0, 48, 56]);
        assert_eq!(t.iter().map(|a| a.kept.clone()).collect::<Vec<_>>(), vec![0..56, 56..104, 64..120]);
        assert_eq!(t[2].local, 8..64);
        let y = reference_axis_tiles(96, 64, 48);
        assert_eq!(y.iter().map(|a| (a.start, a.kept.clone())).collect::<Vec<_>>(), vec![(0, 0..56), (32, 40..96)]);
        // deepcad-spec §4.1: L=492, P=150, gap 90 → kept [0,120), [120,210), [210,300), [300,390), [372,492).
        let k: Vec<_> = reference_axis_tiles(492, 150, 90).into_iter().map(|a| a.kept).collect();
        assert_eq!(k, vec![0..120, 120..210, 210..300, 300..390, 372..492]);
    }

    #[test]
    fn the_2021_stretch_spans_the_16_bit_range() {
        let mut values = vec![10.0, 20.0, 30.0];
        assert_eq!(shipped(OfficialPipeline::DeepcadRt2021, &mut values, SampleType::U16), SampleType::U16);
        assert_eq!(values, vec![0.0, 32767.0, 65535.0]);
        let mut values = vec![-1.5, 1.9, 70000.0];
        shipped(OfficialPipeline::DeepcadRt, &mut values, SampleType::U16);
        assert_eq!(values, vec![0.0, 1.0, 65535.0]);
    }
}
