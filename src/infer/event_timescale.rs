//! How fast a movie's events decay, in frames: what decides whether denoising loses them.
//!
//! A network trained to predict a frame from its neighbours keeps a transient that lasts many
//! frames and loses part of one that decays within a few (a fast indicator, or a low frame rate).
//! The decay is measured from the raw movie alone, without ground truth or a trained model:
//!
//! 1. the cell map of the first frames' mean (`cell_map.rs`) picks the pixels where cells are
//!    (weight above 1/2; at most [`MAX_PIXELS`] of them, evenly spaced in the list);
//! 2. each picked pixel's trace, smoothed in space by a Gaussian of 1 px and minus its mean over the
//!    frames used, weighted by the map;
//! 3. the autocovariance of those traces, summed over the pixels, at lags 1 to [`MAX_LAG`]. Shot and
//!    read noise are white in time, so they only add to lag 0, which is never used: the shape of
//!    the autocovariance from lag 1 on is the cells' activity's. For Poisson spikes through an
//!    exponential indicator it falls as `exp(−lag / τ)`;
//! 4. the decay time `τ` in frames: how many lags after lag 1 the autocovariance takes to fall to
//!    1/e of its value at lag 1 (interpolated between lags), once the share of it that the traces'
//!    means absorbed is added back.
//!
//! Measured on simulated movies (docs/evaluation/experiments.md, "Restoring events automatically"):
//! a fast indicator (decay 100–200 ms) reads about 1.4, 3, 6 and 11 frames at 7.5, 15, 30 and
//! 60 Hz; GCaMP6s at 30 Hz 16–38 frames (sparse spikes and one-photon-like data included), at 0.5
//! to 5 photons per pixel, from 300 frames on. Shorter movies are not measured.

use super::cell_map::map_of_mean;
use crate::allocation::zeroed_f32;
use crate::io::FrameSource;
use crate::metrics::gaussian_kernel;
use crate::Result;

/// Fewest frames to measure from: with 300, a slow indicator (GCaMP6s, 30 Hz) still read 16 frames
/// or more on a 48×48 field with a few cells; with 100, 9–17 before the correction for the means.
pub const MIN_FRAMES: usize = 300;
/// Frames read at most (the movie's first): enough for a stable estimate, a bounded cost.
pub const MAX_FRAMES: usize = 1000;
/// Longest lag: a decay slower than about this many frames is reported as "more than".
pub const MAX_LAG: usize = 40;
/// Pixels of the cell map whose traces are used, at most: bounds the cost on large frames.
pub const MAX_PIXELS: usize = 4096;
/// How far the lag-1 correlation must stand above chance, in standard errors, for the movie to
/// count as active. With white noise alone it is about N(0, 1); simulated movies with cells read
/// 24 (a fast indicator at 7.5 Hz, 1 photon) to 350.
const ACTIVITY_SIGNIFICANCE: f64 = 5.0;
/// Spatial Gaussian on each frame before the traces are taken: without it, at 1 photon the
/// estimate of a slow indicator fell from 22 to 15 frames and of sparse spikes from 23 to 13.
const SMOOTHING_SIGMA_PX: f64 = 1.0;

/// The measurement, or why there is none.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventTimescale {
    /// The cells' activity decays to 1/e in `decay_frames` frames (`None`: more than
    /// [`MAX_LAG`]), measured on the movie's first `frames` frames.
    Measured { decay_frames: Option<f64>, frames: usize },
    /// The movie has fewer than [`MIN_FRAMES`] frames.
    TooShort { frames: usize },
    /// Nothing in the cells varies together from one frame to the next beyond chance (a static
    /// movie, or noise alone).
    NoActivity { frames: usize },
}

impl EventTimescale {
    /// The frames measured on, if the movie was long enough.
    pub fn frames_measured(&self) -> Option<usize> {
        match *self {
            EventTimescale::Measured { frames, .. } | EventTimescale::NoActivity { frames } => Some(frames),
            EventTimescale::TooShort { .. } => None,
        }
    }
}

/// Measures the decay of the cells' activity on the movie's first frames (see the module).
pub fn measure(source: &mut dyn FrameSource) -> Result<EventTimescale> {
    let frames = source.frames().min(MAX_FRAMES);
    if frames < MIN_FRAMES {
        return Ok(EventTimescale::TooShort { frames: source.frames() });
    }
    let (width, height) = (source.width(), source.height());
    let mut frame = zeroed_f32(width * height, "one frame")?;
    let mut sum = vec![0.0f64; width * height];
    for t in 0..frames {
        source.read_frame(t, &mut frame)?;
        sum.iter_mut().zip(&frame).for_each(|(s, &v)| *s += v as f64);
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / frames as f64).collect();
    let cells = map_of_mean(&mean, width, height);
    let pixels = SmoothedPixels::pick(&cells, width, height);
    if pixels.is_empty() {
        return Ok(EventTimescale::NoActivity { frames });
    }
    let mean_at: Vec<f64> = pixels.values(|i| mean[i]).collect();
    // The last MAX_LAG + 1 frames' weighted, mean-free traces, as a ring.
    let count = pixels.len();
    let mut ring = vec![0.0f64; (MAX_LAG + 1) * count];
    // Sums of products at lags 0 to MAX_LAG.
    let mut lagged = vec![0.0f64; MAX_LAG + 1];
    for t in 0..frames {
        source.read_frame(t, &mut frame)?;
        let slot = t % (MAX_LAG + 1);
        let now = &mut ring[slot * count..(slot + 1) * count];
        for ((x, v), (m, w)) in
            now.iter_mut().zip(pixels.values(|i| frame[i] as f64)).zip(mean_at.iter().zip(&pixels.weights))
        {
            *x = w * (v - m);
        }
        let now = &ring[slot * count..(slot + 1) * count];
        for (lag, sum) in lagged.iter_mut().enumerate().take(MAX_LAG.min(t) + 1) {
            let before = (t - lag) % (MAX_LAG + 1);
            *sum += now.iter().zip(&ring[before * count..(before + 1) * count]).map(|(x, y)| x * y).sum::<f64>();
        }
    }
    let raw: Vec<f64> = lagged.iter().enumerate().map(|(lag, sum)| sum / (frames - lag) as f64).collect();
    // The traces' means over the frames used absorb part of a slow activity: every lag reads low by
    // about the variance of that mean, the sum of the autocovariance over all lags over the frame
    // count. Adding it back keeps a slow indicator from reading fast in a short movie (GCaMP6s,
    // 30 Hz, 200 frames: 17 frames without, 26 with; 600 frames: 23 and 26).
    let mean_variance = (raw[0] + 2.0 * raw[1..].iter().sum::<f64>()) / (frames - 2 * MAX_LAG - 1) as f64;
    let covariance: Vec<f64> = raw[1..].iter().map(|c| c + mean_variance).collect();
    // The smoothing correlates about 4πσ² neighbouring pixels: that many fewer independent ones.
    let independent = frames as f64 * count as f64 / (4.0 * std::f64::consts::PI * SMOOTHING_SIGMA_PX.powi(2));
    if raw[0] <= 0.0 || raw[1] / raw[0] * independent.sqrt() < ACTIVITY_SIGNIFICANCE {
        return Ok(EventTimescale::NoActivity { frames });
    }
    Ok(EventTimescale::Measured { decay_frames: decay_to_one_over_e(&covariance), frames })
}

/// Lags after the first that `covariance` (lags 1, 2, …) takes to fall to 1/e of its first value,
/// interpolated linearly; `None` if it never does.
fn decay_to_one_over_e(covariance: &[f64]) -> Option<f64> {
    let level = covariance[0] * (-1.0f64).exp();
    let k = covariance.iter().position(|&c| c < level)?;
    // k ≥ 1 since covariance[0] > level; the crossing lies between lag k and lag k + 1 (indices k − 1, k).
    let (above, below) = (covariance[k - 1], covariance[k]);
    Some((k - 1) as f64 + (above - level) / (above - below))
}

/// The picked pixels of the cell map, each with its map weight and its smoothing taps.
struct SmoothedPixels {
    weights: Vec<f64>,
    /// Per pixel, `(index, weight)` taps of the truncated Gaussian, renormalised at the frame's edges.
    taps: Vec<Vec<(usize, f64)>>,
}

impl SmoothedPixels {
    fn pick(cells: &[f32], width: usize, height: usize) -> SmoothedPixels {
        let inside: Vec<usize> = (0..cells.len()).filter(|&i| cells[i] > 0.5).collect();
        let stride = inside.len().div_ceil(MAX_PIXELS).max(1);
        let radius = (3.0 * SMOOTHING_SIGMA_PX).ceil() as usize;
        // The Gaussian is separable: a tap weighs the product of the kernel at its row and column
        // offsets, renormalised over the taps inside the frame as `metrics::gaussian_filter` does.
        let kernel = gaussian_kernel(SMOOTHING_SIGMA_PX, radius);
        let mut picked = SmoothedPixels { weights: Vec::new(), taps: Vec::new() };
        for &i in inside.iter().step_by(stride) {
            let (y, x) = (i / width, i % width);
            let (rows, columns) = (
                y.saturating_sub(radius)..(y + radius + 1).min(height),
                x.saturating_sub(radius)..(x + radius + 1).min(width),
            );
            let mut taps = Vec::with_capacity(rows.len() * columns.len());
            for yy in rows {
                for xx in columns.clone() {
                    taps.push((yy * width + xx, kernel[yy + radius - y] * kernel[xx + radius - x]));
                }
            }
            let total: f64 = taps.iter().map(|t| t.1).sum();
            taps.iter_mut().for_each(|t| t.1 /= total);
            picked.weights.push(cells[i] as f64);
            picked.taps.push(taps);
        }
        picked
    }

    fn len(&self) -> usize {
        self.weights.len()
    }

    fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Each picked pixel's smoothed value of the plane read by `at`.
    fn values<'a>(&'a self, at: impl Fn(usize) -> f64 + 'a) -> impl Iterator<Item = f64> + 'a {
        self.taps.iter().map(move |taps| taps.iter().map(|&(i, w)| w * at(i)).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{InMemoryMovie, SampleType};

    /// Uniform in [0, 1), reproducible.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A bright square "cell" on a dark field whose brightness follows `activity`, plus white noise.
    fn movie(activity: &[f64]) -> InMemoryMovie {
        let (w, h) = (24, 24);
        let mut noise = Lcg(12345);
        let mut data = Vec::with_capacity(activity.len() * w * h);
        for &a in activity {
            for i in 0..w * h {
                let (y, x) = (i / w, i % w);
                let cell = (8..16).contains(&y) && (8..16).contains(&x);
                data.push((if cell { 50.0 + 20.0 * a } else { 5.0 } + 4.0 * (noise.next() - 0.5)) as f32);
            }
        }
        InMemoryMovie::new("cell", w, h, activity.len(), SampleType::F32, data).unwrap()
    }

    /// Random spikes (1 in 5 frames) through an exponential of decay `tau` frames.
    fn activity(frames: usize, tau: f64) -> Vec<f64> {
        let (mut spikes, mut level) = (Lcg(7), 0.0);
        (0..frames)
            .map(|_| {
                level = level * (-1.0 / tau).exp() + if spikes.next() < 0.2 { 1.0 } else { 0.0 };
                level
            })
            .collect()
    }

    fn decay(tau: f64) -> f64 {
        match measure(&mut movie(&activity(1000, tau))).unwrap() {
            EventTimescale::Measured { decay_frames: Some(d), frames: 1000 } => d,
            other => panic!("tau {tau}: {other:?}"),
        }
    }

    #[test]
    fn reads_the_decay_of_an_exponential_indicator_in_frames() {
        for tau in [1.5, 4.0, 10.0] {
            let d = decay(tau);
            assert!((d - tau).abs() < 0.25 * tau, "tau {tau} frames read as {d}");
        }
        assert!(decay(4.0) < decay(10.0));
    }

    #[test]
    fn short_static_and_slow_movies_say_so() {
        assert_eq!(measure(&mut movie(&activity(299, 3.0))).unwrap(), EventTimescale::TooShort { frames: 299 });
        assert_eq!(measure(&mut movie(&vec![0.0; 400])).unwrap().frames_measured(), Some(400));
        match measure(&mut movie(&activity(600, 400.0))).unwrap() {
            EventTimescale::Measured { decay_frames: None, .. } => {}
            other => panic!("a decay of 400 frames: {other:?}"),
        }
    }
}
