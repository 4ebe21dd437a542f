//! Where the cells are, for event restoration: a soft map (0 in the background, 1 on the brightest
//! structures) from the temporal mean of the raw movie.
//!
//! Restoring fast events adds part of the smoothed residual back (`event_restoration.rs`); weighted
//! by this map, it is added where a neuron's transient can be and not in the background, where it
//! could only be noise. Measured on the spike suite's movies (docs/evaluation/experiments.md,
//! "Event restoration where the cells are"): at the same SNR, more of the fast events come back.
//!
//! The mean runs over whole chunks of [`CELL_MAP_FRAMES`] frames, so that a frame's map never
//! depends on where a run or a block started, and needs no frames after it (live acquisition):
//! frames of chunk `c ≥ 1` use the mean of chunk `c − 1`; frames of the first chunk use the mean of
//! the frames from 0 to themselves. Sums run frame by frame from a chunk's start, in float64, the
//! same way whichever frame a run starts at, so the maps are bit-identical.

use crate::allocation::zeroed_f32;
use crate::io::FrameSource;
use crate::metrics::{gaussian_filter, quantile_in_place};
use crate::Result;

/// Frames per chunk of the mean: enough for the cells to stand out of the noise at 1 photon.
pub const CELL_MAP_FRAMES: usize = 100;
/// Spatial Gaussian on the mean, in pixels: takes the remaining shot noise off the map's edges.
const CELL_MAP_SIGMA_PX: f64 = 1.0;
/// Quantiles of the smoothed mean that map to 0 (the background: half the field of view) and to 1.
const BACKGROUND_QUANTILE: f64 = 0.5;
const BRIGHT_QUANTILE: f64 = 0.99;

/// The cell map of each frame of one run, read from its source as frames are restored in order.
pub(super) struct CellMap {
    width: usize,
    height: usize,
    /// The chunk being summed and the next frame its sum needs (`None` before the first frame).
    summing: Option<(usize, usize)>,
    sum: Vec<f64>,
    /// The map from the previous chunk's mean, and the chunk it serves (`None`: not made yet).
    previous: Vec<f32>,
    previous_serves: Option<usize>,
    current: Vec<f32>,
    frame: Vec<f32>,
}

impl CellMap {
    pub(super) fn new(width: usize, height: usize) -> Result<CellMap> {
        let plane = width * height;
        Ok(CellMap {
            width,
            height,
            summing: None,
            sum: vec![0.0; plane],
            previous: Vec::new(),
            previous_serves: None,
            current: zeroed_f32(plane, "one frame")?,
            frame: zeroed_f32(plane, "one frame")?,
        })
    }

    /// The map for frame `t`, whose raw values are `raw`. Frames come in order; any other frame
    /// (a block's first) re-reads the frames its chunks need from `source`.
    pub(super) fn weights(&mut self, source: &mut dyn FrameSource, t: usize, raw: &[f32]) -> Result<&[f32]> {
        let chunk = t / CELL_MAP_FRAMES;
        if self.summing == Some((chunk.wrapping_sub(1), t)) && t % CELL_MAP_FRAMES == 0 {
            // The previous chunk is complete: its mean serves this chunk.
            self.previous = self.map_of_sum(CELL_MAP_FRAMES);
            self.previous_serves = Some(chunk);
            self.restart_sum(chunk);
        } else if self.summing != Some((chunk, t)) {
            self.start_at(source, t)?;
        }
        self.sum.iter_mut().zip(raw).for_each(|(s, &v)| *s += v as f64);
        self.summing = Some((chunk, t + 1));
        if chunk == 0 {
            self.current = self.map_of_sum(t + 1);
            return Ok(&self.current);
        }
        debug_assert_eq!(self.previous_serves, Some(chunk), "start_at or the chunk change made this chunk's map");
        Ok(&self.previous)
    }

    /// Sums the frames of `t`'s chunk before `t`, and the previous chunk's map, from the source.
    fn start_at(&mut self, source: &mut dyn FrameSource, t: usize) -> Result<()> {
        let chunk = t / CELL_MAP_FRAMES;
        if chunk > 0 && self.previous_serves != Some(chunk) {
            self.restart_sum(chunk - 1);
            self.add_frames(source, (chunk - 1) * CELL_MAP_FRAMES..chunk * CELL_MAP_FRAMES)?;
            self.previous = self.map_of_sum(CELL_MAP_FRAMES);
            self.previous_serves = Some(chunk);
        }
        self.restart_sum(chunk);
        self.add_frames(source, chunk * CELL_MAP_FRAMES..t)
    }

    fn restart_sum(&mut self, chunk: usize) {
        self.sum.iter_mut().for_each(|s| *s = 0.0);
        self.summing = Some((chunk, chunk * CELL_MAP_FRAMES));
    }

    fn add_frames(&mut self, source: &mut dyn FrameSource, frames: std::ops::Range<usize>) -> Result<()> {
        for t in frames {
            source.read_frame(t, &mut self.frame)?;
            self.sum.iter_mut().zip(&self.frame).for_each(|(s, &v)| *s += v as f64);
        }
        Ok(())
    }

    /// The soft map of the mean `sum / count`.
    fn map_of_sum(&self, count: usize) -> Vec<f32> {
        let mean: Vec<f64> = self.sum.iter().map(|s| s / count as f64).collect();
        map_of_mean(&mean, self.width, self.height)
    }
}

/// The soft map of a temporal mean: smoothed, then its background quantile to 0 and its bright
/// quantile to 1, clipped. A flat mean (no structure) weighs every pixel 1.
pub(super) fn map_of_mean(mean: &[f64], width: usize, height: usize) -> Vec<f32> {
    let radius = (3.0 * CELL_MAP_SIGMA_PX).ceil() as usize;
    let smoothed = gaussian_filter(mean, width, height, CELL_MAP_SIGMA_PX, radius);
    let mut scratch = smoothed.clone();
    let low = quantile_in_place(&mut scratch, BACKGROUND_QUANTILE);
    let high = quantile_in_place(&mut scratch, BRIGHT_QUANTILE);
    if high <= low {
        return vec![1.0; smoothed.len()];
    }
    smoothed.iter().map(|&m| ((m - low) / (high - low)).clamp(0.0, 1.0) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{InMemoryMovie, SampleType};

    /// A movie whose left half is bright (a "cell") and right half dark, with a frame-dependent
    /// ripple so that chunk means differ.
    fn movie(frames: usize) -> InMemoryMovie {
        let (w, h) = (16, 8);
        let data: Vec<f32> = (0..frames * w * h)
            .map(|i| {
                let (t, x) = (i / (w * h), i % w);
                (if x < w / 2 { 10.0 } else { 1.0 }) + ((t * 7 + x * 3) % 5) as f32 * 0.1
            })
            .collect();
        InMemoryMovie::new("ripple", w, h, frames, SampleType::F32, data).unwrap()
    }

    fn maps(source: &mut InMemoryMovie, frames: std::ops::Range<usize>) -> Vec<Vec<f32>> {
        let mut map = CellMap::new(source.width(), source.height()).unwrap();
        let mut raw = vec![0.0; source.width() * source.height()];
        frames
            .map(|t| {
                source.read_frame(t, &mut raw).unwrap();
                map.weights(source, t, &raw).unwrap().to_vec()
            })
            .collect()
    }

    #[test]
    fn the_bright_half_weighs_one_and_the_dark_half_nothing() {
        let mut source = movie(30);
        let last = maps(&mut source, 0..30).pop().unwrap();
        assert!(last[2] > 0.9 && last[16 * 4 + 3] > 0.9, "bright half: {} {}", last[2], last[67]);
        assert!(last[13] < 0.01 && last[16 * 4 + 14] < 0.01, "dark half: {} {}", last[13], last[78]);
    }

    #[test]
    fn a_run_started_at_any_frame_gives_the_maps_of_a_whole_run() {
        let frames = 2 * CELL_MAP_FRAMES + 37;
        let mut source = movie(frames);
        let whole = maps(&mut source, 0..frames);
        for start in [1, CELL_MAP_FRAMES - 1, CELL_MAP_FRAMES, CELL_MAP_FRAMES + 5, 2 * CELL_MAP_FRAMES + 10] {
            let part = maps(&mut source, start..frames);
            assert!(part == whole[start..], "a run from frame {start} gave other maps");
        }
    }
}
