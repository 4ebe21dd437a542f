//! Detail retention: how much of a movie's own temporally stable fine detail survives denoising,
//! without ground truth. The residual checks cannot see blur (a smoothed output leaves a residual
//! that still looks like noise); this can.
//!
//! The stable structure of a recording (cell edges, neurites, puncta) is the same in its first and
//! second half, while the noise of the two halves is independent. So the fine detail (each half's
//! temporal mean in the one-octave band of spatial scales around σ, `B`) of the raw halves agrees
//! exactly in the stable part: `cov(B R₁, B R₂)` is the stable fine-detail power, with no noise in
//! it. An output that keeps that detail has `cov(B D₁, B R₂) ≈ cov(B R₁, B R₂)` (its first half against the raw
//! second half, whose noise it never saw, and the reverse); smoothing the detail away shrinks it.
//! A temporal filter's output near the split has seen raw frames of the other half, so the output's
//! and raw half means leave out [`guard_frames`] frames on each side of the split.
//! Retention = that ratio: 1 for a denoiser that keeps all stable detail (and for the raw movie or
//! any purely temporal filter), below 1 when structure is blurred away, and undefined (None) when
//! the two raw halves share too little fine detail to measure (too dim, too short, or moving).

use serde::Serialize;

use crate::metrics::gaussian_filter;
use crate::{Error, Result};

/// Band centres (Gaussian σ in pixels; each band σ/√2 to σ·√2): finer structure first. The headline is [`HEADLINE_SCALE`].
pub const DETAIL_SCALES_PX: [f64; 3] = [1.0, 2.0, 4.0];
/// The scale of the headline number: detail up to about 2 px across (neurites, puncta, cell edges).
pub const HEADLINE_SCALE: f64 = 2.0;
/// Below this correlation between the raw halves' fine detail, retention is not measured (noise would dominate).
pub const MIN_HALF_AGREEMENT: f64 = 0.1;

#[derive(Debug, Clone, Serialize)]
pub struct DetailRetention {
    /// Retention at [`HEADLINE_SCALE`] (≈1 kept, lower = stable detail smoothed away), when measurable.
    pub retention: Option<f64>,
    pub scales: Vec<ScaleRetention>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleRetention {
    pub sigma_px: f64,
    pub retention: Option<f64>,
    /// Correlation of the raw first and second halves' fine detail (how measurable this scale is).
    pub raw_half_agreement: f64,
    /// `cov(H R₁, H R₂)`: the stable fine-detail power (retention's denominator, for pooling).
    pub stable_power: f64,
    /// The output's share of it (retention's numerator, for pooling).
    pub kept_power: f64,
}

/// Detail retention of `denoised` against the `raw` movie it was made from (same `T × H × W`).
pub fn detail_retention(raw: &[f32], denoised: &[f32], width: usize, height: usize) -> Result<DetailRetention> {
    let frame_len = width * height;
    if raw.len() != denoised.len() || frame_len == 0 || raw.len() % frame_len != 0 || raw.len() / frame_len < 4 {
        return Err(Error::usage(format!(
            "detail retention needs raw and denoised movies of the same four or more {width}×{height} frames \
             (got {} and {} values)",
            raw.len(),
            denoised.len()
        )));
    }
    let frames = raw.len() / frame_len;
    let (half, guard) = (frames / 2, guard_frames(frames));
    let mean_of =
        |movie: &[f32], from: usize, to: usize| temporal_mean(&movie[from * frame_len..to * frame_len], frame_len);
    // The same windows for raw and output, so drift and bleaching between them cost both alike.
    let (raw_1, raw_2) = (mean_of(raw, 0, half - guard), mean_of(raw, half + guard, frames));
    let (out_1, out_2) = (mean_of(denoised, 0, half - guard), mean_of(denoised, half + guard, frames));
    let scales: Vec<ScaleRetention> = DETAIL_SCALES_PX
        .iter()
        .map(|&sigma| {
            let detail = |image: &[f64]| band_pass(image, width, height, sigma);
            let (r1, r2, d1, d2) = (detail(&raw_1), detail(&raw_2), detail(&out_1), detail(&out_2));
            let stable = covariance(&r1, &r2);
            let agreement = stable / (covariance(&r1, &r1) * covariance(&r2, &r2)).sqrt();
            let agreement = if agreement.is_finite() { agreement } else { 0.0 };
            let kept = (covariance(&d1, &r2) + covariance(&d2, &r1)) / 2.0;
            let retention = (agreement >= MIN_HALF_AGREEMENT).then(|| kept / stable);
            ScaleRetention {
                sigma_px: sigma,
                retention,
                raw_half_agreement: agreement,
                stable_power: stable,
                kept_power: kept,
            }
        })
        .collect();
    let retention = scales.iter().find(|s| s.sigma_px == HEADLINE_SCALE).and_then(|s| s.retention);
    Ok(DetailRetention { retention, scales })
}

/// Frames of the output left out on each side of the halves' split: an eighth of the movie, at
/// most 32 (a DeepCAD network's temporal reach is about half its 64-frame patch).
pub fn guard_frames(frames: usize) -> usize {
    (frames / 8).min(32)
}

fn temporal_mean(frames: &[f32], frame_len: usize) -> Vec<f64> {
    let mut sum = vec![0f64; frame_len];
    for frame in frames.chunks_exact(frame_len) {
        sum.iter_mut().zip(frame).for_each(|(s, &v)| *s += v as f64);
    }
    let n = (frames.len() / frame_len) as f64;
    sum.into_iter().map(|s| s / n).collect()
}

fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (mean_a, mean_b) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    a.iter().zip(b).map(|(x, y)| (x - mean_a) * (y - mean_b)).sum::<f64>() / n
}

/// The band of spatial scales around σ: `Gaussian(image, σ/√2) − Gaussian(image, σ·√2)`, one octave.
/// A band rather than everything finer than σ: a temporal mean's noise is white, so a high-pass
/// keeps all of the pixel-level noise while the stable structure sits mostly in the coarser part;
/// on a thinned real recording (1/5 of the photons, 100 frames) the raw halves' agreement at σ 2 px
/// rose from 0.05 (unmeasurable) to 0.31 (docs/evaluation/real-data).
fn band_pass(image: &[f64], width: usize, height: usize, sigma: f64) -> Vec<f64> {
    // Truncated at 3σ and renormalised at the borders (no padding values are invented).
    let blur = |s: f64| gaussian_filter(image, width, height, s, (3.0 * s).ceil() as usize);
    let (fine, coarse) = (blur(sigma / std::f64::consts::SQRT_2), blur(sigma * std::f64::consts::SQRT_2));
    fine.iter().zip(&coarse).map(|(f, c)| f - c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::gaussian_3d;
    use crate::simulate::{simulate, SimulationConfig};

    fn movie() -> (Vec<f32>, Vec<f32>, usize, usize) {
        let config = SimulationConfig { width: 64, height: 64, frames: 200, photons: 20.0, ..Default::default() };
        let (noisy, clean) = simulate(&config).expect("simulation");
        (noisy, clean, 64, 64)
    }

    #[test]
    fn keeping_the_structure_scores_about_one_and_blurring_it_scores_less() {
        let (raw, truth, w, h) = movie();
        let perfect = detail_retention(&raw, &truth, w, h).unwrap().retention.expect("measurable");
        let itself = detail_retention(&raw, &raw, w, h).unwrap().retention.expect("measurable");
        assert!((perfect - 1.0).abs() < 0.1, "the truth keeps the stable detail: {perfect}");
        assert!((itself - 1.0).abs() < 0.1, "the raw movie keeps it too (its noise does not count): {itself}");
        let mut previous = perfect;
        for sigma_xy in [0.7, 1.5, 3.0] {
            // A tiny σt: a purely spatial blur of the truth.
            let blurred = gaussian_3d(&truth, w, h, 0.01, sigma_xy).unwrap();
            let retained = detail_retention(&raw, &blurred, w, h).unwrap().retention.unwrap();
            assert!(retained < previous - 0.05, "blur σ {sigma_xy}: {retained} not below {previous}");
            previous = retained;
        }
        assert!(previous < 0.5, "a 3-pixel blur keeps little fine detail: {previous}");
    }

    #[test]
    fn a_temporal_filter_keeps_the_stable_detail() {
        let (raw, _, w, h) = movie();
        let averaged = gaussian_3d(&raw, w, h, 3.0, 0.01).unwrap();
        let retained = detail_retention(&raw, &averaged, w, h).unwrap().retention.unwrap();
        assert!((retained - 1.0).abs() < 0.1, "{retained}");
    }

    #[test]
    fn pure_noise_has_nothing_to_measure_and_bad_shapes_are_refused() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let noise: Vec<f32> = (0..64 * 64 * 40).map(|_| rng.random::<f32>()).collect();
        let d = detail_retention(&noise, &noise, 64, 64).unwrap();
        assert!(d.scales.iter().all(|s| s.raw_half_agreement < MIN_HALF_AGREEMENT), "{d:?}");
        assert!(d.retention.is_none());
        assert!(detail_retention(&noise, &noise[..64 * 64], 64, 64).is_err());
        assert!(detail_retention(&noise[..64 * 64], &noise[..64 * 64], 64, 64).is_err());
    }
}
