//! Checks that need no ground truth, for real recordings. The residual `raw − denoised` of a good
//! denoiser is the noise it removed, so it should look like noise:
//! * uncorrelated in time (lag-1 autocorrelation near 0; structure removed along with the noise
//!   — blurred transients — shows up as positive correlation);
//! * shot-noise-like: its variance rises linearly with the denoised intensity (Poisson–Gaussian
//!   noise: `var = gain·intensity + floor`);
//! * no better on the frames the model was trained on than on frames it never saw (a model that
//!   memorised the training frames' noise would leave a smaller residual there);
//! * free of fast, cell-sized transients (`event_loss.rs`: lost spikes show up there).

use serde::Serialize;

use super::event_loss::{event_loss, EventLoss};
use crate::{Error, Result};

/// Intensity bins of the variance–intensity fit.
const INTENSITY_BINS: usize = 20;
/// Bins with fewer samples are left out of the fit (their variance is too uncertain).
const MIN_BIN_SAMPLES: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct ResidualChecks {
    /// Pooled lag-1 temporal autocorrelation of the residual (each pixel's mean removed).
    pub lag1_autocorrelation: f64,
    /// The same for the raw movie, for comparison (signal makes it positive).
    pub raw_lag1_autocorrelation: f64,
    /// Slope of residual variance against denoised intensity (≈ the detector gain for shot noise).
    pub noise_gain: f64,
    /// Intercept of that fit (read-noise variance minus gain × offset).
    pub noise_floor: f64,
    /// Pearson r between bin intensity and residual variance (near 1 for shot noise).
    pub variance_intensity_correlation: f64,
    /// Residual RMS on frames before / from `held_out_from` (when given).
    pub held_out: Option<HeldOut>,
    /// Share of the raw movie's fast, cell-sized transient power left in the residual.
    pub event_loss: EventLoss,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldOut {
    pub first_held_out_frame: usize,
    pub training_frames_rms: f64,
    pub held_out_frames_rms: f64,
    /// held-out / training; ≈ 1 when the model did not memorise its training frames.
    pub ratio: f64,
}

pub fn residual_checks(
    raw: &[f32],
    denoised: &[f32],
    width: usize,
    height: usize,
    held_out_from: Option<usize>,
) -> Result<ResidualChecks> {
    let frame_len = width * height;
    if raw.len() != denoised.len() || frame_len == 0 || raw.is_empty() || raw.len() % frame_len != 0 {
        return Err(Error::usage(format!(
            "raw ({} values) and denoised ({} values) must be the same whole number of {width}×{height} frames",
            raw.len(),
            denoised.len()
        )));
    }
    let frames = raw.len() / frame_len;
    if frames < 3 {
        return Err(Error::usage(format!("residual checks need at least 3 frames, the movie has {frames}")));
    }
    let residual: Vec<f32> = raw.iter().zip(denoised).map(|(&r, &d)| r - d).collect();
    let (noise_gain, noise_floor, variance_intensity_correlation) = variance_against_intensity(&residual, denoised);
    let held_out = match held_out_from {
        None => None,
        Some(first) if first == 0 || first >= frames => {
            return Err(Error::usage(format!(
                "first held-out frame {first} must lie inside the movie's 1..{} so both parts have frames",
                frames - 1
            )))
        }
        Some(first) => {
            let (train, held) = residual.split_at(first * frame_len);
            let (training_frames_rms, held_out_frames_rms) = (rms(train), rms(held));
            Some(HeldOut {
                first_held_out_frame: first,
                training_frames_rms,
                held_out_frames_rms,
                ratio: held_out_frames_rms / training_frames_rms,
            })
        }
    };
    Ok(ResidualChecks {
        lag1_autocorrelation: lag1_autocorrelation(&residual, frame_len),
        raw_lag1_autocorrelation: lag1_autocorrelation(raw, frame_len),
        noise_gain,
        noise_floor,
        variance_intensity_correlation,
        held_out,
        event_loss: event_loss(raw, denoised, width, height),
    })
}

fn rms(values: &[f32]) -> f64 {
    (values.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / values.len() as f64).sqrt()
}

/// `Σ_p Σ_t r'(t)·r'(t+1) / Σ_p Σ_t r'(t)²` with `r' = r − mean_t(r)` per pixel.
fn lag1_autocorrelation(movie: &[f32], frame_len: usize) -> f64 {
    let frames = movie.len() / frame_len;
    let mut mean = vec![0f64; frame_len];
    for frame in movie.chunks_exact(frame_len) {
        mean.iter_mut().zip(frame).for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= frames as f64);
    let (mut lagged, mut power) = (0f64, 0f64);
    for t in 0..frames {
        let now = &movie[t * frame_len..(t + 1) * frame_len];
        for (p, &v) in now.iter().enumerate() {
            let centred = v as f64 - mean[p];
            power += centred * centred;
            if t + 1 < frames {
                lagged += centred * (movie[(t + 1) * frame_len + p] as f64 - mean[p]);
            }
        }
    }
    if power > 0.0 {
        lagged / power
    } else {
        0.0
    }
}

/// Bins voxels by denoised intensity (equal-width bins between the 1st and 99th percentile),
/// takes the residual variance in each, and fits `variance = gain·intensity + floor`.
/// Returns (gain, floor, r); zeros when too few bins are populated for a fit.
fn variance_against_intensity(residual: &[f32], intensity: &[f32]) -> (f64, f64, f64) {
    let stride = (intensity.len() / 200_000).max(1);
    let mut sample: Vec<f32> = intensity.iter().step_by(stride).copied().collect();
    sample.sort_by(f32::total_cmp);
    let (low, high) = (sample[sample.len() / 100] as f64, sample[sample.len() * 99 / 100] as f64);
    if high <= low {
        return (0.0, 0.0, 0.0);
    }
    let width = (high - low) / INTENSITY_BINS as f64;
    let mut bins = [(0usize, 0f64, 0f64, 0f64); INTENSITY_BINS]; // count, Σ intensity, Σ r, Σ r²
    for (&r, &i) in residual.iter().zip(intensity) {
        let i = i as f64;
        if i < low || i > high {
            continue;
        }
        let bin = &mut bins[(((i - low) / width) as usize).min(INTENSITY_BINS - 1)];
        bin.0 += 1;
        bin.1 += i;
        bin.2 += r as f64;
        bin.3 += (r as f64).powi(2);
    }
    let points: Vec<(f64, f64)> = bins
        .iter()
        .filter(|b| b.0 >= MIN_BIN_SAMPLES)
        .map(|&(n, si, sr, srr)| {
            let n = n as f64;
            (si / n, srr / n - (sr / n).powi(2))
        })
        .collect();
    if points.len() < 3 {
        return (0.0, 0.0, 0.0);
    }
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let gain = sxy / sxx;
    let r = if syy > 0.0 { sxy / (sxx * syy).sqrt() } else { 0.0 };
    (gain, my - gain * mx, r)
}
