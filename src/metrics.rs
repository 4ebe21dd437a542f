//! Quality measures of a denoised movie against its ground truth (pure Rust, no torch).
//!
//! Movies are `f32` slices in frame-major row-major order (`T × H × W`). All sums run in `f64`,
//! because a 256×256×32,000 movie has 2·10⁹ terms and `f32` accumulation would lose the small
//! residuals that SNR is made of. Every function checks its inputs (same length, not empty,
//! finite values, whole frames) and answers [`Error::Usage`](crate::Error) instead of panicking.
//!
//! Conventions (the usual ones in the denoising literature, DeepCAD included):
//! * SNR compares the *fluctuations* of the truth with the error: signal power is the variance
//!   of the truth (its mean removed, so a constant offset such as a camera's 100 counts does not
//!   count as signal), noise power is the mean squared error.
//! * Results in dB are `+∞` when the estimate is exact, and Pearson correlations are `0.0` when
//!   one side has no variance (the correlation is undefined there; `0.0` keeps averages usable).

use crate::footprint::Footprint;
use crate::{Error, Result};

/// SNR in dB of `estimate` against `truth`: `10·log10(var(truth) / mean((estimate − truth)²))`.
///
/// The truth's mean is removed from the signal power (see the module conventions), so a flat
/// estimate equal to the truth's mean scores 0 dB. `+∞` for an exact estimate.
pub fn snr_db(estimate: &[f32], truth: &[f32]) -> Result<f64> {
    check_pair("estimate", estimate, "truth", truth)?;
    let signal = moments(truth).variance;
    let mse = mean_of(estimate.iter().zip(truth).map(|(&e, &t)| square(e as f64 - t as f64)), truth.len());
    Ok(to_db(signal, mse))
}

/// SNR in dB after the best affine correction of the estimate: `a·estimate + b` is fitted to
/// `truth` by least squares, then scored as in [`snr_db`].
///
/// Insensitive to gain and offset, so it measures shape fidelity of outputs whose scale is
/// arbitrary (a network's normalised output, raw counts vs photons).
pub fn invariant_snr_db(estimate: &[f32], truth: &[f32]) -> Result<f64> {
    check_pair("estimate", estimate, "truth", truth)?;
    let e = moments(estimate);
    let t = moments(truth);
    let covariance = covariance(estimate, e.mean, truth, t.mean);
    // A flat estimate carries no shape information: the best fit is the truth's mean (0 dB).
    let a = if e.variance > 0.0 { covariance / e.variance } else { 0.0 };
    let b = t.mean - a * e.mean;
    // Residuals are summed explicitly rather than as var·(1 − r²), which cancels badly near r = 1.
    let mse = mean_of(estimate.iter().zip(truth).map(|(&x, &y)| square(a * x as f64 + b - y as f64)), truth.len());
    Ok(to_db(t.variance, mse))
}

/// Peak SNR in dB: `10·log10(peak² / mse)` with `peak = max(truth) − min(truth)`.
pub fn psnr_db(estimate: &[f32], truth: &[f32]) -> Result<f64> {
    check_pair("estimate", estimate, "truth", truth)?;
    let (low, high) = range(truth);
    let mse = mean_of(estimate.iter().zip(truth).map(|(&e, &t)| square(e as f64 - t as f64)), truth.len());
    Ok(to_db(square(high - low), mse))
}

/// Pearson correlation coefficient of two equally long series; `0.0` if either is constant.
/// Median of `values` (mean of the two middle ones for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 })
}

pub fn pearson(a: &[f32], b: &[f32]) -> Result<f64> {
    check_pair("first series", a, "second series", b)?;
    let ma = moments(a);
    let mb = moments(b);
    Ok(correlation(covariance(a, ma.mean, b, mb.mean), ma.variance, mb.variance))
}

/// Side of the SSIM window (Wang et al. 2004): an 11×11 Gaussian with σ = 1.5.
const SSIM_RADIUS: usize = 5;
const SSIM_SIGMA: f64 = 1.5;
const SSIM_K1: f64 = 0.01;
const SSIM_K2: f64 = 0.03;

/// Structural similarity of each frame (Gaussian 11×11 window, σ = 1.5, K₁ = 0.01, K₂ = 0.03),
/// averaged over all pixels and then over all frames.
///
/// The data range `L` is `max(truth) − min(truth)` over the whole movie (one range for all
/// frames, so quiet frames are not judged on a magnified scale); `1` if the truth is constant.
/// Near borders the window is truncated and renormalised, so every pixel counts and frames
/// smaller than the window still work.
pub fn mean_ssim(estimate: &[f32], truth: &[f32], width: usize, height: usize) -> Result<f64> {
    check_pair("estimate", estimate, "truth", truth)?;
    let frame_len = check_frames(truth.len(), width, height)?;
    let (low, high) = range(truth);
    let data_range = if high > low { high - low } else { 1.0 };
    let c1 = square(SSIM_K1 * data_range);
    let c2 = square(SSIM_K2 * data_range);
    let kernel = gaussian_kernel(SSIM_SIGMA, SSIM_RADIUS);

    let frames = truth.len() / frame_len;
    let mut total = 0.0;
    for (x_frame, y_frame) in estimate.chunks_exact(frame_len).zip(truth.chunks_exact(frame_len)) {
        let x: Vec<f64> = x_frame.iter().map(|&v| v as f64).collect();
        let y: Vec<f64> = y_frame.iter().map(|&v| v as f64).collect();
        let xx: Vec<f64> = x.iter().map(|v| v * v).collect();
        let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
        let xy: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
        let [mx, my, mxx, myy, mxy] =
            [&x, &y, &xx, &yy, &xy].map(|plane| filter_separable(plane, width, height, &kernel));
        let mut frame_sum = 0.0;
        for i in 0..frame_len {
            let (ux, uy) = (mx[i], my[i]);
            let vx = mxx[i] - ux * ux;
            let vy = myy[i] - uy * uy;
            let cxy = mxy[i] - ux * uy;
            frame_sum += ((2.0 * ux * uy + c1) * (2.0 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
        }
        total += frame_sum / frame_len as f64;
    }
    Ok(total / frames as f64)
}

/// Centred moving average over time, `window` frames wide, truncated at the movie's ends (the
/// first and last frames average fewer neighbours); same shape as the input.
///
/// For an even `window` the extra frame is taken after `t`: frames `t − (window−1)/2 ..= t + window/2`.
/// This is the classic baseline denoiser that a learned one must beat.
pub fn temporal_moving_average(movie: &[f32], width: usize, height: usize, window: usize) -> Result<Vec<f32>> {
    check_finite("movie", movie)?;
    let frame_len = check_frames(movie.len(), width, height)?;
    if window == 0 {
        return Err(Error::usage("moving-average window is 0 frames; use a window of at least 1 frame"));
    }
    let frames = movie.len() / frame_len;
    let before = (window - 1) / 2;
    let after = window / 2;
    let frame = |t: usize| &movie[t * frame_len..(t + 1) * frame_len];

    // A running sum makes the cost independent of the window: add the frame entering, drop the one leaving.
    let mut sum = vec![0.0f64; frame_len];
    let (mut first, mut end) = (0usize, 0usize); // frames first..end are in `sum`
    let mut out = Vec::with_capacity(movie.len());
    for t in 0..frames {
        let want_first = t.saturating_sub(before);
        let want_end = (t + after + 1).min(frames);
        while end < want_end {
            sum.iter_mut().zip(frame(end)).for_each(|(s, &v)| *s += v as f64);
            end += 1;
        }
        while first < want_first {
            sum.iter_mut().zip(frame(first)).for_each(|(s, &v)| *s -= v as f64);
            first += 1;
        }
        let count = (end - first) as f64;
        out.extend(sum.iter().map(|&s| (s / count) as f32));
    }
    Ok(out)
}

/// Pearson correlation, per neuron, between the footprint-weighted mean traces of `estimate`
/// and `truth` (`Σ_p w_p·movie[t, p] / Σ_p w_p` for every frame `t`).
///
/// This is what a calcium-imaging analysis ultimately consumes, so it is the measure closest
/// to "did denoising help the science". A neuron with an empty footprint scores `0.0`.
pub fn trace_correlations(
    estimate: &[f32],
    truth: &[f32],
    width: usize,
    height: usize,
    footprints: &[Footprint],
) -> Result<Vec<f64>> {
    check_pair("estimate", estimate, "truth", truth)?;
    let frame_len = check_frames(truth.len(), width, height)?;
    for (n, footprint) in footprints.iter().enumerate() {
        if let Some(&(index, _)) = footprint.pixels.iter().find(|&&(index, _)| index >= frame_len) {
            return Err(Error::usage(format!(
                "footprint of neuron {n} holds pixel index {index}, outside a {width}×{height} frame \
                 ({frame_len} pixels); footprints must come from a movie of the same size"
            )));
        }
    }
    let weighted_trace = |movie: &[f32], footprint: &Footprint| -> Vec<f32> {
        let norm: f64 = footprint.pixels.iter().map(|&(_, w)| w as f64).sum();
        movie
            .chunks_exact(frame_len)
            .map(|frame| {
                let s: f64 = footprint.pixels.iter().map(|&(i, w)| w as f64 * frame[i] as f64).sum();
                if norm != 0.0 {
                    (s / norm) as f32
                } else {
                    0.0
                }
            })
            .collect()
    };
    Ok(footprints
        .iter()
        .map(|footprint| {
            let e = weighted_trace(estimate, footprint);
            let t = weighted_trace(truth, footprint);
            let (me, mt) = (moments(&e), moments(&t));
            correlation(covariance(&e, me.mean, &t, mt.mean), me.variance, mt.variance)
        })
        .collect())
}

/// The value at rank `round(q · (n − 1))` of `values` (reordered in place; linear time), e.g. the
/// upper median for `q = 0.5`; `0.0` when empty.
pub(crate) fn quantile_in_place(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let rank = (q * (values.len() - 1) as f64).round() as usize;
    *values.select_nth_unstable_by(rank, f64::total_cmp).1
}

/// Separable Gaussian filter of one `width × height` plane; the kernel is truncated at
/// `radius` and renormalised at the borders (no padding values are invented).
pub(crate) fn gaussian_filter(plane: &[f64], width: usize, height: usize, sigma: f64, radius: usize) -> Vec<f64> {
    filter_separable(plane, width, height, &gaussian_kernel(sigma, radius))
}

/// The Gaussian of `sigma` sampled at -radius..=radius, not normalised (filters renormalise it).
pub(crate) fn gaussian_kernel(sigma: f64, radius: usize) -> Vec<f64> {
    let r = radius as f64;
    (0..=2 * radius).map(|i| (-square(i as f64 - r) / (2.0 * sigma * sigma)).exp()).collect()
}

fn filter_separable(plane: &[f64], width: usize, height: usize, kernel: &[f64]) -> Vec<f64> {
    let radius = kernel.len() / 2;
    let pass = |src: &[f64], len: usize, stride: usize, lines: usize, line_stride: usize| -> Vec<f64> {
        let mut dst = vec![0.0; src.len()];
        for line in 0..lines {
            let base = line * line_stride;
            for i in 0..len {
                let lo = i.saturating_sub(radius);
                let hi = (i + radius).min(len - 1);
                let (mut acc, mut norm) = (0.0, 0.0);
                for j in lo..=hi {
                    let w = kernel[j + radius - i];
                    acc += w * src[base + j * stride];
                    norm += w;
                }
                dst[base + i * stride] = acc / norm;
            }
        }
        dst
    };
    let rows = pass(plane, width, 1, height, width);
    pass(&rows, height, width, width, 1)
}

struct Moments {
    mean: f64,
    /// Population variance (divided by n).
    variance: f64,
}

fn moments(values: &[f32]) -> Moments {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let variance = values.iter().map(|&v| square(v as f64 - mean)).sum::<f64>() / n;
    Moments { mean, variance }
}

fn covariance(a: &[f32], mean_a: f64, b: &[f32], mean_b: f64) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - mean_a) * (y as f64 - mean_b)).sum::<f64>() / a.len() as f64
}

fn correlation(covariance: f64, variance_a: f64, variance_b: f64) -> f64 {
    if variance_a > 0.0 && variance_b > 0.0 {
        (covariance / (variance_a * variance_b).sqrt()).clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

fn range(values: &[f32]) -> (f64, f64) {
    values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v as f64), hi.max(v as f64)))
}

fn mean_of(terms: impl Iterator<Item = f64>, n: usize) -> f64 {
    terms.sum::<f64>() / n as f64
}

fn to_db(signal_power: f64, noise_power: f64) -> f64 {
    if noise_power == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal_power / noise_power).log10()
    }
}

fn square(x: f64) -> f64 {
    x * x
}

fn check_pair(name_a: &str, a: &[f32], name_b: &str, b: &[f32]) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::usage(format!(
            "{name_a} has {} values but {name_b} has {}; compare movies of the same shape",
            a.len(),
            b.len()
        )));
    }
    check_finite(name_a, a)?;
    check_finite(name_b, b)
}

fn check_finite(name: &str, values: &[f32]) -> Result<()> {
    if values.is_empty() {
        return Err(Error::usage(format!("{name} is empty; quality measures need at least one value")));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::usage(format!(
            "{name} holds a non-finite value ({}) at index {i}; measures are only defined on finite data",
            values[i]
        )));
    }
    Ok(())
}

/// Checks that `len` values form whole `width × height` frames; returns the frame size.
fn check_frames(len: usize, width: usize, height: usize) -> Result<usize> {
    let frame_len = width.checked_mul(height).filter(|&n| n > 0).ok_or_else(|| {
        Error::usage(format!("frame size {width}×{height} is invalid; width and height must be at least 1"))
    })?;
    if len % frame_len != 0 {
        return Err(Error::usage(format!(
            "{len} values are not a whole number of {width}×{height} frames ({frame_len} pixels each); \
             check the width and height"
        )));
    }
    Ok(frame_len)
}
