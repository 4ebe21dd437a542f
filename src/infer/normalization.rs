//! How a model maps a movie's intensities to network units, resolved once per movie: the
//! bundle's fixed statistics, or statistics measured on the movie (per-movie models; imported
//! stack-mean and stack-min models). One pass over the movie at most, shared by the output-type
//! choice and the denoiser.

use crate::io::FrameSource;
use crate::model::Normalization;
use crate::Result;

/// `x' = (x - offset) / scale` and back. Block plans store it as `{"offset", "scale"}`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Affine {
    pub offset: f32,
    pub scale: f32,
}

/// The affine map `normalization` gives `source`.
pub fn resolve_normalization(normalization: &Normalization, source: &mut dyn FrameSource) -> Result<Affine> {
    match *normalization {
        Normalization::Fixed { offset, scale } => Ok(Affine { offset: offset as f32, scale: scale as f32 }),
        Normalization::StackMean { scale_factor } => {
            // Imported reference models: the mean of the whole input stack.
            let sum = fold_stack(source, 0f64, |sum, frame| sum + frame.iter().map(|&v| v as f64).sum::<f64>())?;
            let mean = sum / (source.frames() * source.width() * source.height()) as f64;
            Ok(Affine { offset: mean as f32, scale: scale_factor as f32 })
        }
        Normalization::StackMin { normalize_factor } => {
            // The 2021 convention: the minimum of the whole input stack.
            let min = fold_stack(source, f32::INFINITY, |min, frame| frame.iter().fold(min, |m, &v| m.min(v)))?;
            Ok(Affine { offset: min, scale: normalize_factor as f32 })
        }
        Normalization::PerMovie => {
            let frames = source.frames();
            let stats = crate::io::intensity_statistics::movie_statistics(source, frames)?;
            Ok(Affine { offset: stats.mean as f32, scale: stats.usable_scale() as f32 })
        }
    }
}

/// One streaming pass over every frame of `source`, folding each into `state`.
fn fold_stack<T>(source: &mut dyn FrameSource, mut state: T, mut step: impl FnMut(T, &[f32]) -> T) -> Result<T> {
    let mut frame = crate::allocation::zeroed_f32(source.width() * source.height(), "one frame")?;
    for t in 0..source.frames() {
        source.read_frame(t, &mut frame)?;
        state = step(state, &frame);
    }
    Ok(state)
}

/// How many counts one network unit spans (the output type's rule): the fixed scale, or the
/// movie's own standard deviation for per-movie models. `None` for imported stack-mean and
/// stack-min models, whose factor says nothing about the data.
pub fn spread(normalization: &Normalization, affine: Affine) -> Option<f64> {
    match normalization {
        Normalization::Fixed { scale, .. } => Some(*scale),
        Normalization::PerMovie => Some(affine.scale as f64),
        Normalization::StackMean { .. } | Normalization::StackMin { .. } => None,
    }
}
