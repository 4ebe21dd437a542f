//! Every measure of a denoised movie against its ground truth, in one record.

use serde::Serialize;

use crate::footprint::Footprint;
use crate::metrics::{invariant_snr_db, mean_ssim, median, pearson, psnr_db, snr_db, trace_correlations};
use crate::Result;

/// Scores of one estimate against the truth (dB values are `null` in JSON when infinite).
#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    pub snr_db: f64,
    /// SNR after the least-squares gain/offset fit `a·x + b` (insensitive to units and offsets).
    pub invariant_snr_db: f64,
    pub psnr_db: f64,
    /// Mean SSIM over frames.
    pub ssim: f64,
    /// Pearson r of all pixels.
    pub pearson: f64,
    /// Pearson r of each neuron's mean trace against the truth's (empty without regions).
    pub trace_correlations: Vec<f64>,
    pub trace_correlation_median: Option<f64>,
}

pub fn score(estimate: &[f32], truth: &[f32], width: usize, height: usize, neurons: &[Footprint]) -> Result<Scorecard> {
    let trace_correlations =
        if neurons.is_empty() { Vec::new() } else { trace_correlations(estimate, truth, width, height, neurons)? };
    Ok(Scorecard {
        snr_db: snr_db(estimate, truth)?,
        invariant_snr_db: invariant_snr_db(estimate, truth)?,
        psnr_db: psnr_db(estimate, truth)?,
        ssim: mean_ssim(estimate, truth, width, height)?,
        pearson: pearson(estimate, truth)?,
        trace_correlation_median: median(&trace_correlations),
        trace_correlations,
    })
}
