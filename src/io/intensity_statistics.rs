//! Mean and standard deviation of movies: of all training data for the fixed normalisation stored
//! in the bundle, or of one movie for per-movie normalisation (at training and at inference alike,
//! so it lives below both: inference no longer reaches into training for it).
//! Streamed frame by frame in f64, over at most `MAX_SAMPLED_FRAMES` frames spread evenly over the
//! inputs in proportion to their length: brightness statistics settle long before that, and a
//! 20 GB folder is not read twice.

use super::FrameSource;
use crate::Result;

pub const MAX_SAMPLED_FRAMES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntensityStatistics {
    pub mean: f64,
    pub std: f64,
    pub frames_read: usize,
}

impl IntensityStatistics {
    /// The standard deviation as a normalisation scale, or 1 for a (nearly) constant movie, which
    /// has nothing to normalise (and would otherwise divide by zero).
    pub fn usable_scale(&self) -> f64 {
        let constant = self.std.is_nan() || self.std <= 1e-6 * self.mean.abs().max(1.0);
        if constant {
            1.0
        } else {
            self.std
        }
    }
}

/// Statistics over the first `frames_used[i]` frames of each source (evenly sampled).
pub fn intensity_statistics(
    sources: &mut [Box<dyn FrameSource>],
    frames_used: &[usize],
    max_sampled_frames: usize,
) -> Result<IntensityStatistics> {
    let mut views: Vec<&mut dyn FrameSource> = sources.iter_mut().map(|s| s.as_mut() as &mut dyn FrameSource).collect();
    statistics_of(&mut views, frames_used, max_sampled_frames)
}

/// Statistics of one movie's first `frames` frames, sampled as for training, so a per-movie model
/// sees the same normalisation at inference as it saw for its training movies.
pub fn movie_statistics(source: &mut dyn FrameSource, frames: usize) -> Result<IntensityStatistics> {
    statistics_of(&mut [source], &[frames], MAX_SAMPLED_FRAMES)
}

fn statistics_of(
    sources: &mut [&mut dyn FrameSource],
    frames_used: &[usize],
    max_sampled_frames: usize,
) -> Result<IntensityStatistics> {
    let total_frames: usize = frames_used.iter().sum();
    // Accumulate around a shift (the first frame's mean) so E[x²] − E[x]² does not cancel badly
    // when the mean is large compared with the spread.
    let mut shift: Option<f64> = None;
    let (mut count, mut sum, mut sum_sq) = (0f64, 0f64, 0f64);
    let mut frames_read = 0;
    let mut buffer = Vec::new();
    for (source, &used) in sources.iter_mut().zip(frames_used) {
        let share = (max_sampled_frames as f64 * used as f64 / total_frames.max(1) as f64).round() as usize;
        let n = share.clamp(1, used.max(1));
        buffer.resize(source.width() * source.height(), 0.0);
        for i in 0..n {
            let t = ((i as f64 + 0.5) * used as f64 / n as f64) as usize;
            source.read_frame(t.min(used - 1), &mut buffer)?;
            let k = *shift.get_or_insert_with(|| buffer.iter().map(|&v| v as f64).sum::<f64>() / buffer.len() as f64);
            for &v in buffer.iter() {
                let d = v as f64 - k;
                sum += d;
                sum_sq += d * d;
            }
            count += buffer.len() as f64;
            frames_read += 1;
        }
    }
    let k = shift.unwrap_or(0.0);
    let mean_d = sum / count.max(1.0);
    let variance = (sum_sq / count.max(1.0) - mean_d * mean_d).max(0.0);
    Ok(IntensityStatistics { mean: k + mean_d, std: variance.sqrt(), frames_read })
}
