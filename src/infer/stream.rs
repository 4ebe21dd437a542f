//! The streaming core: one time block at a time, spatial tiles inside it, kept centres stitched,
//! finished frames handed to the sink in order.
//!
//! Two threads form a pipeline: the calling thread reads (and normalises, pads) block k+1 and
//! writes block k−1's frames while a compute thread runs the network on block k. Reading and
//! writing stay on the calling thread because frame sources and sinks need not be `Send` (a JNI
//! source must stay on its Java thread); only finished blocks and progress counts cross over.
//! At most two input blocks and one output block are alive at once. `pipelined: false` keeps the
//! threads but reads each block only after the previous one is written (to measure the overlap).

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};

use tch::{Device, Kind, Tensor};

use super::{choose_tile, DenoiseSettings};
use crate::model::{Model, Normalization};
use crate::progress::{report, Event, Progress};
use crate::tiling::{reflect_index, AxisTile, TilePlan};
use crate::train::FrameSource;
use crate::{Error, Result};

/// `x' = (x - offset) / scale` and back.
#[derive(Debug, Clone, Copy)]
struct Affine {
    offset: f32,
    scale: f32,
}

fn resolve_normalization(normalization: &Normalization, source: &mut dyn FrameSource) -> Result<Affine> {
    match *normalization {
        Normalization::Fixed { offset, scale } => Ok(Affine { offset: offset as f32, scale: scale as f32 }),
        Normalization::StackMean { scale_factor } => {
            // Imported reference models: the mean of the whole input stack (one streaming pass).
            let mut frame = vec![0f32; source.width() * source.height()];
            let mut sum = 0f64;
            for t in 0..source.frames() {
                source.read_frame(t, &mut frame)?;
                sum += frame.iter().map(|&v| v as f64).sum::<f64>();
            }
            let mean = sum / (source.frames() * frame.len()) as f64;
            Ok(Affine { offset: mean as f32, scale: scale_factor as f32 })
        }
        Normalization::PerMovie => {
            let frames = source.frames();
            let stats = crate::train::normalization_stats::movie_statistics(source, frames)?;
            Ok(Affine { offset: stats.mean as f32, scale: stats.usable_scale() as f32 })
        }
    }
}

/// Frame and padded-frame sizes shared by the reader and the compute thread.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    frames: usize,
    height: usize,
    width: usize,
    padded_height: usize,
    padded_width: usize,
}

/// What the compute thread hands back, in order.
enum Finished {
    /// Tiles done so far (for progress).
    Tiles(u64),
    /// The kept frames of one time block, in input units, `frames·H·W`.
    Block(Vec<f32>),
}

/// The model crosses to the compute thread by reference. `Tensor` is `Send` but not `Sync`, so
/// `&Model` is not `Send`; it is sound here because the calling thread does not touch the model
/// while the pipeline runs (it only reads frames and writes results), so the compute thread's use
/// is exclusive, and libtorch tensors may be used from any one thread at a time.
struct ExclusiveModel<'a>(&'a Model);
// SAFETY: see above — exclusive use by the compute thread for the lifetime of the scope.
unsafe impl Send for ExclusiveModel<'_> {}

pub fn denoise_stream(
    model: &Model,
    source: &mut dyn FrameSource,
    settings: &DenoiseSettings,
    progress: &mut dyn Progress,
    sink: &mut dyn FnMut(&[f32]) -> Result<()>,
) -> Result<TilePlan> {
    let shape = [source.frames(), source.height(), source.width()];
    if shape.contains(&0) {
        return Err(Error::usage(format!("{}: movie has a zero-sized axis {shape:?}", source.name())));
    }
    if settings.batch_size == 0 {
        return Err(Error::usage("batch size must be at least 1"));
    }
    let halo = settings.halo.unwrap_or(model.metadata.halo);
    let tile = match settings.tile {
        Some(tile) => tile,
        None => {
            let per_voxel = if model.device() == Device::Cpu { super::bytes_per_voxel(model.metadata.base_width) } else { 2 * super::bytes_per_voxel(model.metadata.base_width) };
            choose_tile(shape, halo, settings.max_memory_bytes / per_voxel / settings.batch_size)?
        }
    };
    let plan = TilePlan::new(shape, tile, halo).map_err(|e| Error::usage(format!("{}: cannot tile {shape:?} with tile {tile:?} and halo {halo:?}: {}", source.name(), e.0)))?;
    let affine = resolve_normalization(&model.metadata.normalization, source)?;
    report(progress, Event::Info(&format!(
        "tile {:?} (t, y, x), halo {:?}, {} tiles, {:.2}× voxels pushed through the network",
        plan.tile, plan.halo, plan.tile_count(), plan.overhead()
    )))?;
    report(progress, Event::Begin { phase: "denoise", total: plan.tile_count() as u64 })?;

    let (height, width) = (shape[1], shape[2]);
    let geometry = Geometry {
        frames: shape[0],
        height,
        width,
        padded_height: plan.per_axis[1].iter().map(|t| t.origin + t.length).max().unwrap_or(height),
        padded_width: plan.per_axis[2].iter().map(|t| t.origin + t.length).max().unwrap_or(width),
    };
    // A fresh thread starts with libtorch's default intra-op thread count; keep the caller's.
    let threads = tch::get_num_threads();
    let time_tiles = &plan.per_axis[0];
    std::thread::scope(|scope| -> Result<()> {
        // Capacity 1: the reader runs at most one block ahead of the network.
        let (block_tx, block_rx) = sync_channel::<Vec<f32>>(1);
        let (finished_tx, finished_rx) = channel::<Result<Finished>>();
        let compute_model = ExclusiveModel(model);
        let plan = &plan;
        scope.spawn(move || {
            let compute_model = compute_model;
            compute_blocks(compute_model.0, plan, settings, affine, geometry, threads, block_rx, finished_tx)
        });
        let mut frame = vec![0f32; height * width];
        // A failed send means the compute thread stopped; its error waits in `finished_rx`.
        if settings.pipelined {
            let _ = block_tx.send(read_block(source, &time_tiles[0], affine, geometry, &mut frame)?);
        }
        for k in 0..time_tiles.len() {
            // Pipelined: block k is already queued, read k+1 while it runs. Sequential: read k
            // only now, and wait for its result before reading on.
            let to_read = if settings.pipelined { time_tiles.get(k + 1) } else { Some(&time_tiles[k]) };
            if let Some(tile) = to_read {
                let _ = block_tx.send(read_block(source, tile, affine, geometry, &mut frame)?);
            }
            loop {
                match finished_rx.recv() {
                    Ok(Ok(Finished::Tiles(done))) => report(progress, Event::Advance { done, message: "tiles" })?,
                    Ok(Ok(Finished::Block(values))) => {
                        for frame in values.chunks_exact(height * width) {
                            sink(frame)?;
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
    })?;
    Ok(plan)
}

/// Input block of one time tile: its frames, mirrored past the ends, normalised, spatially padded.
fn read_block(
    source: &mut dyn FrameSource,
    time_tile: &AxisTile,
    affine: Affine,
    g: Geometry,
    frame: &mut [f32],
) -> Result<Vec<f32>> {
    let plane_len = g.padded_height * g.padded_width;
    let mut block = vec![0f32; time_tile.length * plane_len];
    for (i, padded_t) in (time_tile.origin..time_tile.origin + time_tile.length).enumerate() {
        source.read_frame(reflect_index(padded_t, g.frames), frame)?;
        let plane = &mut block[i * plane_len..(i + 1) * plane_len];
        for y in 0..g.padded_height {
            let row = &frame[reflect_index(y, g.height) * g.width..][..g.width];
            let out = &mut plane[y * g.padded_width..(y + 1) * g.padded_width];
            for (x, value) in out.iter_mut().enumerate() {
                *value = (row[reflect_index(x, g.width)] - affine.offset) / affine.scale;
            }
        }
    }
    Ok(block)
}

/// The compute thread: one block in, its kept frames out, until the blocks run out or the
/// calling thread hangs up (error or cancel on its side).
#[allow(clippy::too_many_arguments)]
fn compute_blocks(
    model: &Model,
    plan: &TilePlan,
    settings: &DenoiseSettings,
    affine: Affine,
    g: Geometry,
    threads: i32,
    blocks: Receiver<Vec<f32>>,
    finished: Sender<Result<Finished>>,
) {
    if tch::get_num_threads() != threads {
        tch::set_num_threads(threads);
    }
    let _no_grad = tch::no_grad_guard();
    let mut done = 0u64;
    for (time_tile, block) in plan.per_axis[0].iter().zip(blocks.iter()) {
        let result = denoise_block(model, plan, settings, affine, g, time_tile, block, &mut done, &finished);
        let stop = result.is_err();
        if finished.send(result.map(Finished::Block)).is_err() || stop {
            return;
        }
    }
}

/// Runs one time block's spatial tiles through the network and stitches their kept centres.
#[allow(clippy::too_many_arguments)]
fn denoise_block(
    model: &Model,
    plan: &TilePlan,
    settings: &DenoiseSettings,
    affine: Affine,
    g: Geometry,
    time_tile: &AxisTile,
    values: Vec<f32>,
    done: &mut u64,
    finished: &Sender<Result<Finished>>,
) -> Result<Vec<f32>> {
    let block = Tensor::f_from_slice(&values)?.f_reshape([
        time_tile.length as i64,
        g.padded_height as i64,
        g.padded_width as i64,
    ])?;
    drop(values); // the tensor holds a copy
    let (keep_t0, keep_t1) = time_tile.keep_local();
    let kept_frames = keep_t1 - keep_t0;
    let stitched = Tensor::f_zeros([kept_frames as i64, g.height as i64, g.width as i64], (Kind::Float, Device::Cpu))?;

    let spatial: Vec<(AxisTile, AxisTile)> = plan.spatial_tiles().collect();
    for batch in spatial.chunks(settings.batch_size) {
        let inputs: Vec<Tensor> = batch
            .iter()
            .map(|(ty, tx)| {
                Ok(block
                    .f_narrow(1, ty.origin as i64, ty.length as i64)?
                    .f_narrow(2, tx.origin as i64, tx.length as i64)?)
            })
            .collect::<Result<_>>()?;
        let input = Tensor::f_stack(&inputs, 0)?.f_unsqueeze(1)?.f_to_device(model.device())?;
        let output = if model.device() == Device::Cpu {
            model.net.forward_low_memory(&input, settings.slab as i64)?
        } else {
            model.net.forward(&input)?
        };
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
                .f_narrow(1, ty.keep_start as i64, (y1 - y0) as i64)?
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
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let plane = g.height * g.width;
        return Err(Error::usage(format!(
            "the network gave a non-finite value ({}) at frame {} (y {}, x {}) ; the model is broken (retrain it or choose another) or the movie holds extreme values",
            values[i],
            time_tile.keep_start + i / plane,
            (i % plane) / g.width,
            i % g.width
        )));
    }
    Ok(values)
}
