//! The streaming core: one time block at a time, spatial tiles inside it, kept centres stitched,
//! finished frames handed to the sink in order.

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
    }
}

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

    let _no_grad = tch::no_grad_guard();
    let (height, width) = (shape[1], shape[2]);
    let padded_height = plan.per_axis[1].iter().map(|t| t.origin + t.length).max().unwrap_or(height);
    let padded_width = plan.per_axis[2].iter().map(|t| t.origin + t.length).max().unwrap_or(width);
    let mut frame = vec![0f32; height * width];
    let mut done = 0u64;
    for time_tile in &plan.per_axis[0] {
        // Input block: the time tile's frames, mirrored past the ends, normalised, spatially padded.
        let mut block = vec![0f32; time_tile.length * padded_height * padded_width];
        for (i, padded_t) in (time_tile.origin..time_tile.origin + time_tile.length).enumerate() {
            source.read_frame(reflect_index(padded_t, shape[0]), &mut frame)?;
            let plane = &mut block[i * padded_height * padded_width..(i + 1) * padded_height * padded_width];
            for y in 0..padded_height {
                let row = &frame[reflect_index(y, height) * width..][..width];
                let out = &mut plane[y * padded_width..(y + 1) * padded_width];
                for (x, value) in out.iter_mut().enumerate() {
                    *value = (row[reflect_index(x, width)] - affine.offset) / affine.scale;
                }
            }
        }
        let block = Tensor::f_from_slice(&block)?.f_reshape([
            time_tile.length as i64,
            padded_height as i64,
            padded_width as i64,
        ])?;
        let (keep_t0, keep_t1) = time_tile.keep_local();
        let kept_frames = keep_t1 - keep_t0;
        let stitched = Tensor::f_zeros([kept_frames as i64, height as i64, width as i64], (Kind::Float, Device::Cpu))?;

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
                done += 1;
            }
            report(progress, Event::Advance { done, message: "tiles" })?;
        }
        let mut values = Vec::<f32>::try_from(stitched.f_flatten(0, -1)?)?;
        for v in values.iter_mut() {
            *v = *v * affine.scale + affine.offset;
        }
        for frame in values.chunks_exact(height * width) {
            sink(frame)?;
        }
    }
    Ok(plan)
}
