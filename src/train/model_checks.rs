//! Checks a user without ground truth can read after training (the same three the evaluation
//! harness reports, docs/evaluation/report.md), computed on the model's own predictions: for a
//! patch, the network sees the even frames and predicts the odd ones, so `odd − prediction` is the
//! part of the recording the model calls noise.
//! * residual lag-1 autocorrelation in time: near 0 when that part is noise, positive when signal
//!   (transients) was removed with it;
//! * residual variance against predicted intensity: for shot noise it rises linearly (r near 1),
//!   with the detector's gain as slope;
//! * held-out / training residual: about 1 when the model did not memorise its training patches
//!   (a memorising model predicts its training targets' noise, so their residual shrinks);
//! * event loss: the share of the target frames' fast, cell-sized transients that is in the
//!   residual (`evaluation::event_loss`; near 0 when spikes are kept);
//! * detail kept: the share of the targets' temporally stable fine detail the prediction keeps
//!   (`evaluation::detail_retention`; about 1 when neurites and puncta survive, lower when blurred).

use serde::Serialize;
use tch::Tensor;

use super::augment::Augmentation;
use super::masked_voxels::blind_prediction;
use super::pair_reader::PairReader;
use super::patch_grid::Patch;
use crate::evaluation::residual_checks;
use crate::io::FrameSource;
use crate::model::{Model, SelfSupervision};
use crate::Result;

/// Patches per side (held-out, training) the checks look at: enough for stable numbers (each
/// patch holds ~10⁵ voxels) at a few seconds of inference.
pub const CHECKED_PATCHES: usize = 8;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelChecks {
    /// Patches the residual statistics come from: held-out ones, or training ones when nothing
    /// was held out (`held_out_ratio` is then `None`).
    pub patches: usize,
    /// Mean lag-1 temporal autocorrelation of the residual (≈ 0 is good).
    pub residual_lag1_autocorrelation: f64,
    /// Slope of residual variance against predicted intensity (counts per count: the gain).
    pub noise_gain: f64,
    /// Pearson r of that variance–intensity fit (near 1 for shot noise).
    pub variance_intensity_correlation: f64,
    /// Residual RMS on held-out patches over that on as many training patches (≈ 1 is good);
    /// `None` when nothing was held out.
    pub held_out_ratio: Option<f64>,
    /// Share of the targets' fast, cell-sized transient power left in the residual, pooled over
    /// the patches (≈ 0 is good); `None` when no checked patch had fast coherent power to lose.
    pub fast_event_loss: Option<f64>,
    /// Stable fine detail (the band around 2 px) the predictions keep, pooled over the patches (≈ 1 is good,
    /// lower: structure smoothed away); `None` when the patches hold too little to measure.
    pub detail_retention: Option<f64>,
}

impl ModelChecks {
    /// One line per check, in words, for the CLI summary and the Fiji log.
    pub fn describe(&self) -> Vec<String> {
        let kind = if self.held_out_ratio.is_some() { "held-out" } else { "training" };
        let mut lines = vec![
            format!(
                "residual lag-1 correlation {:+.3} on {} {kind} patches (near 0: what the model removes looks like noise; clearly positive: it also removes signal)",
                self.residual_lag1_autocorrelation, self.patches
            ),
            format!(
                "residual variance vs intensity: slope {:.3}, r {:.3} (r near 1: the removed part behaves like shot noise)",
                self.noise_gain, self.variance_intensity_correlation
            ),
        ];
        if let Some(loss) = self.fast_event_loss {
            lines.push(format!(
                "event loss {loss:.3} (share of fast, cell-sized transients the model removes with the noise: near 0 keeps spikes; towards 1 smooths them away)"
            ));
        }
        if let Some(kept) = self.detail_retention {
            lines.push(format!(
                "detail kept {kept:.3} (share of the movie's stable fine detail, neurites and puncta, the model keeps: about 1 keeps it; lower smooths it away)"
            ));
        }
        if let Some(ratio) = self.held_out_ratio {
            lines.push(format!(
                "held-out / training residual {ratio:.3} (about 1: no memorised noise; well below 1 on training data means overfitting)"
            ));
        }
        lines
    }
}

/// Runs the checks on up to [`CHECKED_PATCHES`] of `validation` (and of `training` for the ratio).
pub fn model_checks(
    model: &Model,
    sources: &mut [Box<dyn FrameSource>],
    reader: &mut PairReader,
    patches: &[Patch],
    validation: &[usize],
    training: &[usize],
) -> Result<Option<ModelChecks>> {
    let held_out = evenly_spaced(validation, CHECKED_PATCHES);
    let trained = evenly_spaced(training, held_out.len().clamp(1, CHECKED_PATCHES));
    let looked_at = if held_out.is_empty() { &trained } else { &held_out };
    if looked_at.is_empty() {
        return Ok(None);
    }
    let (mut lag1, mut gain, mut r, mut rms_held_out) = (0.0, 0.0, 0.0, 0.0);
    // Σ C(residual) and Σ C(raw) over the patches (see `EventLoss::raw_fast_coherent_power`).
    let (mut lost_power, mut fast_power) = (0.0, 0.0);
    // Σ kept and Σ stable fine-detail power, and how many patches had measurable detail.
    let (mut kept_detail, mut stable_detail, mut measurable) = (0.0, 0.0, 0);
    for &index in looked_at {
        let residual = residual_of(model, sources, reader, &patches[index])?;
        lag1 += residual.checks.lag1_autocorrelation;
        gain += residual.checks.noise_gain;
        r += residual.checks.variance_intensity_correlation;
        rms_held_out += residual.rms;
        let events = residual.checks.event_loss;
        if let Some(loss) = events.fast_event_loss {
            lost_power += loss * events.raw_fast_coherent_power;
            fast_power += events.raw_fast_coherent_power;
        }
        if let Some(scale) = residual.detail.filter(|s| s.retention.is_some()) {
            kept_detail += scale.kept_power;
            stable_detail += scale.stable_power;
            measurable += 1;
        }
    }
    let n = looked_at.len() as f64;
    let held_out_ratio = if held_out.is_empty() {
        None
    } else {
        let mut rms_training = 0.0;
        for &index in &trained {
            rms_training += residual_of(model, sources, reader, &patches[index])?.rms;
        }
        Some((rms_held_out / n) / (rms_training / trained.len() as f64))
    };
    Ok(Some(ModelChecks {
        patches: looked_at.len(),
        residual_lag1_autocorrelation: lag1 / n,
        noise_gain: gain / n,
        variance_intensity_correlation: r / n,
        held_out_ratio,
        fast_event_loss: (fast_power > 0.0).then(|| lost_power / fast_power),
        detail_retention: (2 * measurable >= looked_at.len() && stable_detail > 0.0)
            .then(|| kept_detail / stable_detail),
    }))
}

struct PatchResidual {
    checks: crate::evaluation::ResidualChecks,
    rms: f64,
    /// Detail retention at the headline scale (none for patches too short to split).
    detail: Option<crate::evaluation::ScaleRetention>,
}

/// Odd frames minus their prediction from the even frames (and, for a hybrid model, from the odd
/// frames' other pixels through its blind spot; for a masked model, consecutive frames minus each
/// voxel's prediction from its surroundings), in the data's own units (counts).
fn residual_of(
    model: &Model,
    sources: &mut [Box<dyn FrameSource>],
    reader: &mut PairReader,
    patch: &Patch,
) -> Result<PatchResidual> {
    let volume = reader.volume_len();
    let [pt, py, px] = reader.patch();
    let on_device = |values: &[f32]| {
        Tensor::from_slice(values).f_view([1, 1, pt as i64, py as i64, px as i64])?.f_to_device(model.device())
    };
    let mut target = vec![0f32; volume];
    let prediction = if model.metadata.method == SelfSupervision::Masked {
        reader.read_consecutive(sources, patch, Augmentation::NONE, &mut target)?;
        tch::no_grad(|| blind_prediction(model, &on_device(&target)?))?
    } else {
        let mut input = vec![0f32; volume];
        reader.read_pair(sources, patch, Augmentation::NONE, &mut input, &mut target)?;
        tch::no_grad(|| model.pair_forward(&on_device(&input)?, &on_device(&target)?))?
    };
    let prediction = prediction.f_to_device(tch::Device::Cpu)?.f_flatten(0, -1)?;
    let mut predicted: Vec<f32> = Vec::<f32>::try_from(&prediction)?;
    // Back to counts, so the variance–intensity slope is the detector's gain.
    let (offset, scale) = reader.normalization(patch.source);
    let to_counts = |v: &mut f32| *v = (*v as f64 * scale + offset) as f32;
    predicted.iter_mut().for_each(to_counts);
    target.iter_mut().for_each(to_counts);
    // In network units, so movies of different brightness (per-movie models) weigh alike in the
    // held-out/training ratio; under fixed statistics the scale cancels in the ratio anyway.
    let rms = (target.iter().zip(&predicted).map(|(&t, &p)| ((t - p) as f64).powi(2)).sum::<f64>() / volume as f64)
        .sqrt()
        / scale;
    // The prediction comes from the even frames (or, masked, from each voxel's surroundings), so
    // the targets' halves are independent of it.
    let detail = crate::evaluation::detail_retention(&target, &predicted, px, py)
        .ok()
        .and_then(|d| d.scales.into_iter().find(|s| s.sigma_px == crate::evaluation::HEADLINE_SCALE));
    Ok(PatchResidual { checks: residual_checks(&target, &predicted, px, py, None)?, rms, detail })
}

/// Up to `n` entries of `indices`, spread over the whole list.
fn evenly_spaced(indices: &[usize], n: usize) -> Vec<usize> {
    let take = n.min(indices.len());
    (0..take).map(|i| indices[i * indices.len() / take]).collect()
}
