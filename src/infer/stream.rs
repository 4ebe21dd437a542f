//! The streaming core: one time block at a time, spatial tiles inside it, kept centres stitched,
//! finished frames handed to the sink in order.
//!
//! Two threads form a pipeline: the calling thread reads (and normalises, pads) block k+1 and
//! writes block k−1's frames while a compute thread runs the network on block k. Reading and
//! writing stay on the calling thread because frame sources and sinks need not be `Send` (a JNI
//! source must stay on its Java thread); only finished blocks and progress counts cross over.
//! At most two input blocks and one output block are alive at once. `pipelined: false` keeps the
//! threads but reads each block only after the previous one is written (to measure the overlap).

use std::ops::Range;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};

use tch::{Device, Kind, Tensor};

use super::event_restoration::EventRestorer;
use super::memory_plan::{method_bytes_per_voxel, plan_memory, Budget, MemoryPlan};
use super::normalization::Affine;
use super::DenoiseSettings;
use crate::allocation::zeroed_f32;
use crate::io::{FrameSource, NonFinite};
use crate::model::{slab_bytes_per_voxel, Model, SelfSupervision, TileMemory, TilePlacement, ALIGNMENT};
use crate::progress::{report, Event, Progress};
use crate::tensor_pool::PoolRun;
use crate::tiling::{reflect_index, round_up, AxisTile, TilePlan};
use crate::{Error, Result};

/// Frame and padded-frame sizes shared by the reader and the compute thread.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    frames: usize,
    height: usize,
    width: usize,
    padded_width: usize,
}

/// One piece of work: a time block, restricted to a band of tile rows (all rows unless whole frames
/// would not fit the memory budget).
#[derive(Debug, Clone)]
struct Unit {
    time: AxisTile,
    /// y tiles of the band.
    rows: Vec<AxisTile>,
    /// Whether this unit ends its time block (the block's frames are then complete).
    last_band: bool,
}

impl Unit {
    /// Padded rows read.
    fn read_rows(&self) -> Range<usize> {
        let (first, last) = (&self.rows[0], &self.rows[self.rows.len() - 1]);
        first.origin..last.origin + last.length
    }

    /// Volume rows kept.
    fn kept_rows(&self) -> Range<usize> {
        self.rows[0].keep_start..self.rows[self.rows.len() - 1].keep_end
    }

    fn kept_frames(&self) -> usize {
        self.time.keep_end - self.time.keep_start
    }
}

/// What the compute thread hands back, in order.
enum Finished {
    /// Tiles done so far (for progress).
    Tiles(u64),
    /// The kept frames and rows of one unit, in input units, `frames·rows·W`.
    Band(Vec<f32>),
}

/// What every unit of one run shares on the compute thread: the network and the numbers it runs with.
struct Run<'a> {
    model: &'a Model,
    plan: &'a TilePlan,
    settings: &'a DenoiseSettings,
    affine: Affine,
    geometry: Geometry,
    /// The movie, for messages.
    name: String,
}

/// The run crosses to the compute thread by reference to its model. `Tensor` is `Send` but not
/// `Sync`, so `&Model` is not `Send`; it is sound here because the calling thread does not touch
/// the model while the pipeline runs (it only reads frames and writes results), so the compute
/// thread's use is exclusive, and libtorch tensors may be used from any one thread at a time.
struct ExclusiveRun<'a>(Run<'a>);
// SAFETY: see above — exclusive use by the compute thread for the lifetime of the scope.
unsafe impl Send for ExclusiveRun<'_> {}

/// A bfloat16 run's activation bytes per voxel against float32's, as a fraction.
const BFLOAT16_SHARE: (usize, usize) = (3, 5);

/// The memory plan of a run: tiles and bands within `settings.max_memory_bytes`.
pub(super) fn plan(model: &Model, name: &str, shape: [usize; 3], settings: &DenoiseSettings) -> Result<MemoryPlan> {
    let halo = settings.halo.unwrap_or(model.metadata.halo);
    let mut per_voxel = method_bytes_per_voxel(model.metadata.base_width, model.metadata.method);
    if model.net.compute_kind() == tch::Kind::BFloat16 {
        // bfloat16 activations take half the bytes, but not everything is an activation: at one
        // tile the peak fell to about 0.6 of float32's (docs/measurements.md).
        per_voxel = per_voxel * BFLOAT16_SHARE.0 / BFLOAT16_SHARE.1;
    }
    let on_cpu = model.device() == Device::Cpu;
    let budget = Budget {
        bytes: settings.max_memory_bytes,
        activation_bytes_per_voxel: if on_cpu { per_voxel } else { 2 * per_voxel },
        slab_voxels: if on_cpu { slab_voxels(settings) } else { 0 },
        slab_bytes_per_voxel: slab_bytes_per_voxel(model.metadata.base_width),
        batch: settings.batch_size,
        pipelined: settings.pipelined,
    };
    plan_memory(name, shape, halo, settings.tile, &budget)
}

/// Voxels per slab: the settings' with the default memory budget or more; under a tighter one the
/// narrowest slabs (4 columns), since wide slabs there held far more than the plan allowed for
/// (2048² frames under 256 MB: 476–800 MB above the budget, against 4-column slabs within it).
fn slab_voxels(settings: &DenoiseSettings) -> usize {
    if settings.max_memory_bytes >= DenoiseSettings::default().max_memory_bytes {
        settings.slab_voxels
    } else {
        0
    }
}

/// The streamed core behind every entry point: denoises the time blocks `time_tiles` of the
/// movie's tile plan (all when `None`) with the movie's normalisation `affine` already resolved,
/// handing each finished frame to `sink` in order. A part gets exactly the frames those blocks
/// keep, computed as the whole-movie run computes them, so block jobs on other machines add up to
/// the whole movie bit for bit (`infer::blocks`), and so does the live stream (`infer::live`),
/// which runs one block at a time as its frames arrive.
pub(crate) fn denoise_to_sink(
    model: &Model,
    source: &mut dyn FrameSource,
    settings: &DenoiseSettings,
    affine: Affine,
    time_tiles: Option<Range<usize>>,
    progress: &mut dyn Progress,
    sink: &mut dyn FnMut(&[f32]) -> Result<()>,
) -> Result<TilePlan> {
    let shape = checked_shape(model, source, settings)?;
    let memory = plan(model, &source.name(), shape, settings)?;
    // Slabs and tiles reuse their activations' memory (tensor_pool.rs). Freed blocks wait idle
    // only for requests the plan counts anyway, and a new block first evicts idle ones.
    let _pool = settings.tensor_pool.then(|| PoolRun::begin(settings.max_memory_bytes));
    report_plan(progress, &memory, shape)?;
    let units = plan_units(&memory, time_tiles, &source.name())?;
    let tile_runs: usize = units.iter().map(|u| u.rows.len() * memory.tiles.per_axis[2].len()).sum();
    report(progress, Event::Begin { phase: "denoise", total: tile_runs as u64 })?;
    let geometry =
        Geometry { frames: shape[0], height: shape[1], width: shape[2], padded_width: round_up(shape[2], ALIGNMENT) };
    let restoration = settings.restore_events.decide(source)?;
    if let Some(why) = &restoration.why {
        report(progress, Event::Info(why))?;
    }
    let run = Run { model, plan: &memory.tiles, settings, affine, geometry, name: source.name() };
    run_pipeline(run, source, &units, memory.bands.len(), restoration.restore, progress, sink)?;
    Ok(memory.tiles)
}

/// The movie's `[t, y, x]` shape once the settings and the model can run on it.
fn checked_shape(model: &Model, source: &dyn FrameSource, settings: &DenoiseSettings) -> Result<[usize; 3]> {
    let shape = [source.frames(), source.height(), source.width()];
    if shape.contains(&0) {
        return Err(Error::usage(format!("{}: movie has a zero-sized axis {shape:?}", source.name())));
    }
    if settings.batch_size == 0 {
        return Err(Error::usage("batch size must be at least 1"));
    }
    if model.metadata.method == SelfSupervision::Hybrid && shape[0] < 2 {
        // Its context is the other parity's frames: a single frame has none (mirrored in time,
        // the frame would be its own context, and the blind spot would see it).
        return Err(Error::usage(format!(
            "{}: a hybrid model needs at least 2 frames; this movie has 1 (use an interlaced model)",
            source.name()
        )));
    }
    Ok(shape)
}

/// Says which tiles, halo and memory the run uses, and whether frames are split into bands.
fn report_plan(progress: &mut dyn Progress, memory: &MemoryPlan, shape: [usize; 3]) -> Result<()> {
    let MemoryPlan { tiles: plan, bands, frames_per_pass, bytes } = memory;
    report(progress, Event::Info(&format!(
        "tile {:?} (t, y, x), halo {:?}, {} tiles, {:.2}× voxels pushed through the network, about {:.0} MB of working memory",
        plan.tile, plan.halo, plan.tile_count(), plan.overhead(), *bytes as f64 / 1e6
    )))?;
    if bands.len() > 1 {
        report(progress, Event::Info(&format!(
            "frames of {}×{} do not fit the memory budget whole: each time block is read and denoised in {} bands of rows{}",
            shape[2], shape[1], bands.len(),
            if *frames_per_pass < plan.tile[0] { format!(", keeping at most {frames_per_pass} frames per pass") } else { String::new() }
        )))?;
    }
    Ok(())
}

/// The units of work for `time_tiles` (all when `None`): each time block, split into passes of at
/// most `frames_per_pass` kept frames, each pass into the plan's bands of tile rows.
fn plan_units(memory: &MemoryPlan, time_tiles: Option<Range<usize>>, name: &str) -> Result<Vec<Unit>> {
    let MemoryPlan { tiles: plan, bands, frames_per_pass, .. } = memory;
    let time_tiles = time_tiles.unwrap_or(0..plan.per_axis[0].len());
    let Some(time_blocks) = plan.per_axis[0].get(time_tiles.clone()).filter(|blocks| !blocks.is_empty()) else {
        return Err(Error::usage(format!(
            "{name}: time blocks {time_tiles:?} are outside the plan's {}",
            plan.per_axis[0].len()
        )));
    };
    let mut units = Vec::with_capacity(time_blocks.len() * bands.len());
    for &block in time_blocks {
        // A block whose kept frames would not fit whole is run once per part of them.
        for keep_start in (block.keep_start..block.keep_end).step_by((*frames_per_pass).max(1)) {
            let time = AxisTile { keep_start, keep_end: (keep_start + frames_per_pass).min(block.keep_end), ..block };
            for (b, band) in bands.iter().enumerate() {
                units.push(Unit {
                    time,
                    rows: plan.per_axis[1][band.clone()].to_vec(),
                    last_band: b + 1 == bands.len(),
                });
            }
        }
    }
    Ok(units)
}

/// Reads units on the calling thread while a compute thread runs the network on the one before,
/// and hands finished frames to `sink` in order.
fn run_pipeline(
    run: Run<'_>,
    source: &mut dyn FrameSource,
    units: &[Unit],
    band_count: usize,
    restore_events: bool,
    progress: &mut dyn Progress,
    sink: &mut dyn FnMut(&[f32]) -> Result<()>,
) -> Result<()> {
    let (settings, affine, geometry) = (run.settings, run.affine, run.geometry);
    let mut output = BlockAssembly::new(units, band_count, geometry)?;
    let mut restorer = if restore_events { Some(EventRestorer::new(geometry.width, geometry.height)?) } else { None };
    // A fresh thread starts with libtorch's default intra-op thread count; keep the caller's.
    let threads = tch::get_num_threads();
    std::thread::scope(|scope| -> Result<()> {
        // Capacity 1: the reader runs at most one block ahead of the network.
        let (block_tx, block_rx) = sync_channel::<Vec<f32>>(1);
        let (finished_tx, finished_rx) = channel::<Result<Finished>>();
        let run = ExclusiveRun(run);
        scope.spawn(move || {
            let run = run;
            compute_blocks(&run.0, units, threads, block_rx, finished_tx)
        });
        let mut frame = zeroed_f32(geometry.height * geometry.width, "one frame")?;
        // A failed send means the compute thread stopped; its error waits in `finished_rx`.
        if settings.pipelined {
            let _ = block_tx.send(read_block(source, &units[0], affine, geometry, &mut frame)?);
        }
        for (k, unit) in units.iter().enumerate() {
            // Pipelined: unit k is already queued, read k+1 while it runs. Sequential: read k
            // only now, and wait for its result before reading on.
            let to_read = if settings.pipelined { units.get(k + 1) } else { Some(unit) };
            if let Some(next) = to_read {
                let _ = block_tx.send(read_block(source, next, affine, geometry, &mut frame)?);
            }
            loop {
                match finished_rx.recv() {
                    Ok(Ok(Finished::Tiles(done))) => report(progress, Event::Advance { done, message: "tiles" })?,
                    Ok(Ok(Finished::Band(values))) => {
                        match restorer.as_mut() {
                            // Kept frames leave in order from the unit's first: restore each from its raw frame.
                            Some(restorer) => {
                                let mut t = unit.time.keep_start;
                                output.deliver(&values, unit, &mut |plane| {
                                    t += 1;
                                    sink(restorer.restore(source, t - 1, plane)?)
                                })?;
                            }
                            None => output.deliver(&values, unit, sink)?,
                        }
                        break;
                    }
                    Ok(Err(error)) => return Err(error),
                    // Only a panic ends the compute thread without a message; the scope re-raises it.
                    Err(_) => return Err(Error::Torch("the denoising thread stopped unexpectedly".into())),
                }
            }
        }
        Ok(())
        // Leaving the scope drops both channel ends, so an early return stops the compute thread
        // after its current batch; the scope then joins it.
    })
}

/// Whole frames out of bands: with one band the unit's frames go straight to the sink; with
/// several they are assembled here first and leave when the block's last band is in.
struct BlockAssembly {
    banded: bool,
    frames: Vec<f32>,
    height: usize,
    width: usize,
}

impl BlockAssembly {
    fn new(units: &[Unit], band_count: usize, g: Geometry) -> Result<BlockAssembly> {
        let banded = band_count > 1;
        let frames = if banded {
            let kept = units.iter().map(Unit::kept_frames).max().unwrap_or(0);
            zeroed_f32(kept * g.height * g.width, "the output block")?
        } else {
            Vec::new()
        };
        Ok(BlockAssembly { banded, frames, height: g.height, width: g.width })
    }

    fn deliver(&mut self, values: &[f32], unit: &Unit, sink: &mut dyn FnMut(&[f32]) -> Result<()>) -> Result<()> {
        let plane = self.height * self.width;
        if !self.banded {
            return values.chunks_exact(plane).try_for_each(sink);
        }
        place_band(&mut self.frames, values, unit, self.height, self.width);
        if unit.last_band {
            self.frames[..unit.kept_frames() * plane].chunks_exact(plane).try_for_each(sink)?;
        }
        Ok(())
    }
}

/// Copies one band's kept frames and rows (`frames·rows·W`) into whole frames (`frames·H·W`).
fn place_band(assembly: &mut [f32], values: &[f32], unit: &Unit, height: usize, width: usize) {
    let rows = unit.kept_rows();
    let band_plane = rows.len() * width;
    for (t, band) in values.chunks_exact(band_plane).enumerate() {
        let plane = &mut assembly[t * height * width..(t + 1) * height * width];
        plane[rows.start * width..rows.end * width].copy_from_slice(band);
    }
}

/// Input of one unit: its frames (mirrored past the ends) and padded rows, normalised.
fn read_block(
    source: &mut dyn FrameSource,
    unit: &Unit,
    affine: Affine,
    g: Geometry,
    frame: &mut [f32],
) -> Result<Vec<f32>> {
    let rows = unit.read_rows();
    let plane_len = rows.len() * g.padded_width;
    let mut block = zeroed_f32(unit.time.length * plane_len, "an input block")?;
    for (i, padded_t) in (unit.time.origin..unit.time.origin + unit.time.length).enumerate() {
        source.read_frame(reflect_index(padded_t, g.frames), frame)?;
        let plane = &mut block[i * plane_len..(i + 1) * plane_len];
        for (r, y) in rows.clone().enumerate() {
            let row = &frame[reflect_index(y, g.height) * g.width..][..g.width];
            let out = &mut plane[r * g.padded_width..(r + 1) * g.padded_width];
            for (x, value) in out.iter_mut().enumerate() {
                *value = (row[reflect_index(x, g.width)] - affine.offset) / affine.scale;
            }
        }
    }
    Ok(block)
}

/// The compute thread: one unit's block in, its kept frames and rows out, until the units run out
/// or the calling thread hangs up (error or cancel on its side).
fn compute_blocks(
    run: &Run<'_>,
    units: &[Unit],
    threads: i32,
    blocks: Receiver<Vec<f32>>,
    finished: Sender<Result<Finished>>,
) {
    if tch::get_num_threads() != threads {
        tch::set_num_threads(threads);
    }
    let _no_grad = tch::no_grad_guard();
    let mut done = 0u64;
    for (unit, block) in units.iter().zip(blocks.iter()) {
        let result = denoise_unit(run, unit, block, &mut done, &finished).map_err(|e| {
            let rows = unit.kept_rows();
            e.in_context(&format!(
                "{}: frames {}..{}, rows {}..{}",
                run.name, unit.time.keep_start, unit.time.keep_end, rows.start, rows.end
            ))
        });
        let stop = result.is_err();
        if finished.send(result.map(Finished::Band)).is_err() || stop {
            return;
        }
    }
}

/// Runs one unit's spatial tiles through the network and stitches their kept centres.
fn denoise_unit(
    run: &Run<'_>,
    unit: &Unit,
    values: Vec<f32>,
    done: &mut u64,
    finished: &Sender<Result<Finished>>,
) -> Result<Vec<f32>> {
    let Run { model, plan, settings, affine, geometry: g, .. } = *run;
    let (read_rows, kept_rows) = (unit.read_rows(), unit.kept_rows());
    let block = Tensor::f_from_slice(&values)?.f_reshape([
        unit.time.length as i64,
        read_rows.len() as i64,
        g.padded_width as i64,
    ])?;
    drop(values); // the tensor holds a copy
    let (keep_t0, keep_t1) = unit.time.keep_local();
    let kept_frames = keep_t1 - keep_t0;
    let stitched =
        Tensor::f_zeros([kept_frames as i64, kept_rows.len() as i64, g.width as i64], (Kind::Float, Device::Cpu))?;

    let spatial: Vec<(AxisTile, AxisTile)> =
        unit.rows.iter().flat_map(|&y| plan.per_axis[2].iter().map(move |&x| (y, x))).collect();
    for batch in spatial.chunks(settings.batch_size) {
        let inputs: Vec<Tensor> = batch
            .iter()
            .map(|(ty, tx)| {
                Ok(block.f_narrow(1, (ty.origin - read_rows.start) as i64, ty.length as i64)?.f_narrow(
                    2,
                    tx.origin as i64,
                    tx.length as i64,
                )?)
            })
            .collect::<Result<_>>()?;
        let input = Tensor::f_stack(&inputs, 0)?.f_unsqueeze(1)?.f_to_device(model.device())?;
        // Where each tile lies: its first frame (the hybrid's parity split) and how much of it is
        // movie rather than mirror padding (its blind spot must not see mirrored copies).
        let placements: Vec<TilePlacement> = batch
            .iter()
            .map(|(ty, tx)| TilePlacement {
                first_frame: unit.time.origin,
                real_rows: g.height.saturating_sub(ty.origin).min(ty.length),
                real_columns: g.width.saturating_sub(tx.origin).min(tx.length),
            })
            .collect();
        let memory = if model.device() == Device::Cpu {
            TileMemory::Slabs { voxels: slab_voxels(settings) }
        } else {
            TileMemory::Whole
        };
        // Between slabs, a heartbeat: the calling thread then checks for a stop request, and
        // once it has hung up the send fails and the pass ends there.
        let tiles_done = *done;
        let output = model.denoise_tile(&input, &placements, memory, &mut || {
            finished.send(Ok(Finished::Tiles(tiles_done))).map_err(|_| Error::Cancelled)
        })?;
        let output = output.f_to_device(Device::Cpu)?;
        for (k, (ty, tx)) in batch.iter().enumerate() {
            let (y0, y1) = ty.keep_local();
            let (x0, x1) = tx.keep_local();
            let kept = output
                .f_get(k as i64)?
                .f_get(0)?
                .f_narrow(0, keep_t0 as i64, kept_frames as i64)?
                .f_narrow(1, y0 as i64, (y1 - y0) as i64)?
                .f_narrow(2, x0 as i64, (x1 - x0) as i64)?;
            stitched
                .f_narrow(1, (ty.keep_start - kept_rows.start) as i64, (y1 - y0) as i64)?
                .f_narrow(2, tx.keep_start as i64, (x1 - x0) as i64)?
                .f_copy_(&kept)?;
            *done += 1;
        }
        // The calling thread gone means it stopped (error or cancel): stop too.
        finished.send(Ok(Finished::Tiles(*done))).map_err(|_| Error::Cancelled)?;
    }
    let mut values = Vec::<f32>::try_from(stitched.f_flatten(0, -1)?)?;
    for v in values.iter_mut() {
        *v = *v * affine.scale + affine.offset;
    }
    // Never written as 0 or a clipped extreme: a non-finite value means a broken model or input.
    if let Some(bad) = NonFinite::find(&values, g.width, kept_rows.len()) {
        return Err(Error::usage(format!(
            "the network gave a non-finite value ({}) at frame {} (y {}, x {}) ; the model is broken (retrain it or choose another) or the movie holds extreme values",
            bad.value,
            unit.time.keep_start + bad.frame,
            kept_rows.start + bad.y,
            bad.x
        )));
    }
    Ok(values)
}
