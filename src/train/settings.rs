//! What a training run is asked to do, and what it reports back.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::{EpochRecord, SelfSupervision, ALIGNMENT, MAX_PATCH};
use crate::vocabulary::Vocabulary;
use crate::{Error, Result};

/// Training knobs. Stored as JSON in the bundle's training record, so new fields need `serde(default)`.
///
/// Deviations from the reference (deepcad-spec §1.2, §3), each measured (docs/evaluation/experiments.md):
/// DeepCAD-RT trains on raw counts minus the stack mean with lr 5e-5, so the right learning rate
/// depends on the movie's brightness. We train on `(x − mean) / std` of the training data (stored in
/// the bundle and applied unchanged at inference), which makes one default learning rate work for dim
/// and bright data alike. The loss is mean squared error instead of 0.5·L1 + 0.5·MSE ([`Loss`]), the
/// learning rate warms up and decays on a cosine ([`Schedule`]), Adam's β1 is 0.9 instead of 0.5, and
/// a fresh network starts with a zero output head: all for dim data, where the reference's recipe
/// left a flat image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    /// `[t, y, x]` network input; each a positive multiple of 8. A window spans `2·t` raw frames.
    pub patch: [usize; 3],
    /// Patch-grid overlap in y/x: origins step by `int(p·(1 − overlap))` (at least 1).
    pub overlap: f64,
    /// Requested patches per epoch (approximate, like the reference's `train_datasets_size`).
    pub patches_per_epoch: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub batch_size: usize,
    /// Base width f of the U-Net (16 = DeepCAD-RT, 64 = DeepCAD). Ignored when resuming (the bundle's wins).
    pub base_width: usize,
    /// Share of the patch grid held out for the validation loss (never trained on).
    pub validation_fraction: f64,
    pub seed: u64,
    /// Use at most this many frames of each input (from the start).
    pub max_frames: Option<usize>,
    /// Arithmetic of the training forward/backward pass (weights, optimiser and loss stay float32).
    pub precision: Precision,
    /// What the network's prediction of the target frames is scored by.
    pub loss: Loss,
    /// How the learning rate changes over the run.
    pub schedule: Schedule,
    /// How a new model maps intensities to network units (a resumed model keeps its own).
    pub normalization: NormalizationChoice,
    /// Where a new model's weights start (a resumed model continues from its own).
    pub init: Init,
    /// The self-supervision: interlaced (DeepCAD's) or hybrid (interlaced context plus a blind
    /// spot on the current frame, which keeps events shorter than the frame spacing). A new model
    /// is built for it; an interlaced model resumed or fine-tuned with `Hybrid` gains the blind-spot
    /// branch; a hybrid model stays hybrid. The bundle records the method that ran.
    pub method: SelfSupervision,
    /// Replace an existing file at the output (or its `.best` companion). Off by default: training
    /// never replaces a file unless asked, except the bundle it continues from (`resume`).
    pub overwrite: bool,
    /// Stop once this much wall-clock time (seconds) has been spent, within at most `epochs`
    /// epochs: the epoch under way ends early, is validated and saved like any other.
    pub time_budget_seconds: Option<f64>,
    /// Who asked for the run, recorded as the bundle's `training.origin` ([`CLI_ORIGIN`] by
    /// default; each door sets its own). Not part of a request: the door fills it in.
    #[serde(skip)]
    pub origin: String,
}

/// The command line's name in a bundle's `training.origin`.
pub const CLI_ORIGIN: &str = "deepcad train";

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Schedule {
    /// The same rate throughout (DeepCAD's choice).
    Constant,
    /// A linear warm-up over the first [`WARMUP_SHARE`] of the run, then half a cosine from the
    /// full rate down to zero: the run is the planned iterations or the time budget, whichever ends
    /// first. Adam's first steps move every weight by about the full rate whatever its gradient;
    /// on dim data, where gradients are mostly noise, that can silence every ReLU of a layer for
    /// good (a constant output); the warm-up prevents it. The decay then settles the weights.
    #[default]
    Cosine,
}

/// Share of the run spent warming the learning rate up (with [`Schedule::Cosine`]).
pub const WARMUP_SHARE: f64 = 0.05;

impl Schedule {
    /// The rate at `progress` ∈ [0, 1] of the run for a base rate `rate`.
    pub fn rate(self, rate: f64, progress: f64) -> f64 {
        match self {
            Schedule::Constant => rate,
            Schedule::Cosine if progress < WARMUP_SHARE => rate * (progress.max(0.0) / WARMUP_SHARE).max(0.01),
            Schedule::Cosine => {
                let decay = ((progress - WARMUP_SHARE) / (1.0 - WARMUP_SHARE)).clamp(0.0, 1.0);
                rate * 0.5 * (1.0 + (std::f64::consts::PI * decay).cos())
            }
        }
    }
}

/// How a new model normalises its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NormalizationChoice {
    /// Mean and standard deviation of all training data, stored and applied unchanged to every
    /// input: a model for one microscope and one kind of movie (needs `Init::Random`).
    Fixed,
    /// Each movie's own mean and standard deviation, at training and at inference: movies of any
    /// brightness, gain and offset. The default, and the built-in model's units (so training can
    /// start from it). For one movie it equals `Fixed`.
    #[default]
    PerMovie,
}

/// Where a new model's weights start.
///
/// Starting from the built-in general model (a warm start, as Cellpose and StarDist users
/// fine-tune pretrained models) learned faster than random weights at every photon level of the
/// evaluation harness (docs/measurements.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Init {
    /// The built-in model's weights when the network fits them (base width 16, per-movie
    /// normalisation); random weights otherwise, with a note saying why.
    #[default]
    BuiltIn,
    /// PyTorch's default initialisation from the seed, with a zero output head.
    Random,
}

/// Largest batch of patches, in values (2³¹: 8 GB of float32 per buffer).
pub const MAX_BATCH_VALUES: usize = 1 << 31;
/// Largest requested patch count per epoch.
pub const MAX_PATCHES_PER_EPOCH: usize = 10_000_000;

/// `epochs` value for "as many epochs as the time budget allows" (progress then reports no total).
pub const EPOCHS_UNTIL_TIME_BUDGET: usize = 1_000_000;

/// The training loss. Self-supervised denoising predicts one noisy frame from its neighbours, so
/// the loss decides which statistic of the noisy target the network learns: mean squared error
/// learns its mean (the clean signal, whatever the noise, as long as it is zero-mean: Noise2Noise),
/// an L1 term pulls towards its median. For dim shot-noise data the median is not the signal:
/// below ~0.7 expected photons the median photon count is 0 whatever the brightness, so L1 sees
/// almost no signal: on a simulated 1-photon movie the reference's loss left a flat image where
/// MSE alone denoised (docs/measurements.md). DeepCAD-RT gets away with its L1 term only because
/// it trains on raw counts, where the squared term dominates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Loss {
    /// Mean squared error (the default).
    #[default]
    Mse,
    /// DeepCAD's 0.5·L1 + 0.5·MSE, for reproducing the reference.
    L1Mse,
}

/// Training arithmetic. Mixed bfloat16 keeps float32 master weights, Adam state and loss, and runs
/// the convolutions in bfloat16: about twice as fast and half the memory on a CPU with native
/// bfloat16 (docs/measurements.md). A step whose bfloat16 loss
/// or gradients are not finite is redone in float32 (with a warning), never applied. Float32 runs are
/// bit-reproducible for a seed; inference always runs in float32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// Mixed bfloat16 on a CPU that computes it natively (AVX-512 BF16, AMX), else float32. CUDA
    /// stays float32 here: bf16 has not been measured on a GPU yet, and cards before Ampere lack it.
    #[default]
    Auto,
    Float32,
    MixedBfloat16,
}

impl Vocabulary for Schedule {
    const WHAT: &'static str = "schedule";
    const WORDS: &'static [(Self, &'static str)] = &[(Schedule::Cosine, "cosine"), (Schedule::Constant, "constant")];
}
crate::spelled!(Schedule);

impl Vocabulary for NormalizationChoice {
    const WHAT: &'static str = "normalization";
    const WORDS: &'static [(Self, &'static str)] =
        &[(NormalizationChoice::PerMovie, "per-movie"), (NormalizationChoice::Fixed, "fixed")];
    const OLDER: &'static [(Self, &'static str)] = &[(NormalizationChoice::PerMovie, "per_movie")];
}
crate::spelled!(NormalizationChoice);

impl Vocabulary for Init {
    const WHAT: &'static str = "init";
    const WORDS: &'static [(Self, &'static str)] = &[(Init::BuiltIn, "builtin"), (Init::Random, "random")];
    const OLDER: &'static [(Self, &'static str)] = &[(Init::BuiltIn, "built_in")];
}
crate::spelled!(Init);

impl Vocabulary for Loss {
    const WHAT: &'static str = "loss";
    const WORDS: &'static [(Self, &'static str)] = &[(Loss::Mse, "mse"), (Loss::L1Mse, "l1-mse")];
    const OLDER: &'static [(Self, &'static str)] = &[(Loss::L1Mse, "l1_mse")];
}
crate::spelled!(Loss);

impl Vocabulary for Precision {
    const WHAT: &'static str = "precision";
    const WORDS: &'static [(Self, &'static str)] =
        &[(Precision::Auto, "auto"), (Precision::Float32, "float32"), (Precision::MixedBfloat16, "bfloat16")];
    const OLDER: &'static [(Self, &'static str)] = &[(Precision::MixedBfloat16, "mixed_bfloat16")];
}
crate::spelled!(Precision);

impl Precision {
    /// The precision a run on `device` actually uses: `Auto` resolved, the others as they are.
    pub fn resolve(self, device: tch::Device) -> Precision {
        match self {
            Precision::Auto if device == tch::Device::Cpu && crate::device::cpu_has_native_bfloat16() => {
                Precision::MixedBfloat16
            }
            Precision::Auto => Precision::Float32,
            explicit => explicit,
        }
    }
}

/// Peak Adam learning rate for normalised (zero-mean, unit-std) data, reached after the warm-up of
/// the default cosine schedule. A constant-rate sweep put the useful range at 5e-4 to 3e-3; with
/// the cosine decay settling the end of the run, 1e-3 gets off the flat start faster on dim data
/// (docs/measurements.md).
pub const DEFAULT_LEARNING_RATE: f64 = 1e-3;

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            patch: [64, 64, 64],
            overlap: 0.25,
            patches_per_epoch: 200,
            epochs: 10,
            learning_rate: DEFAULT_LEARNING_RATE,
            batch_size: 1,
            base_width: 16,
            validation_fraction: 0.1,
            seed: 0,
            max_frames: None,
            precision: Precision::default(),
            loss: Loss::default(),
            schedule: Schedule::default(),
            normalization: NormalizationChoice::default(),
            init: Init::default(),
            method: SelfSupervision::default(),
            overwrite: false,
            time_budget_seconds: None,
            origin: CLI_ORIGIN.to_string(),
        }
    }
}

impl TrainSettings {
    /// Checks every value before any data is read, with messages that say what to do.
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = self.patch.iter().find(|&&p| p == 0 || p % ALIGNMENT != 0) {
            return Err(Error::usage(format!(
                "patch size {p} (in {:?}, [t, y, x]) must be a positive multiple of {ALIGNMENT}",
                self.patch
            )));
        }
        // Bounds well past any real use, so no size computed from them can overflow.
        if let Some(p) = self.patch.iter().find(|&&p| p > MAX_PATCH) {
            return Err(Error::usage(format!(
                "patch size {p} (in {:?}, [t, y, x]) is above {MAX_PATCH}; 64 is the default",
                self.patch
            )));
        }
        let values = self.patch.iter().try_fold(self.batch_size, |n, &p| n.checked_mul(p));
        if values.is_none_or(|n| n > MAX_BATCH_VALUES) {
            return Err(Error::usage(format!(
                "a batch of {} patches of {:?} holds more than {MAX_BATCH_VALUES} values; use a smaller patch or batch",
                self.batch_size, self.patch
            )));
        }
        if !(0.0..1.0).contains(&self.overlap) {
            return Err(Error::usage(format!("overlap {} must be in [0, 1) (0.25 is a good default)", self.overlap)));
        }
        if self.patches_per_epoch > MAX_PATCHES_PER_EPOCH {
            return Err(Error::usage(format!(
                "patches per epoch {} is above {MAX_PATCHES_PER_EPOCH}; use more epochs instead",
                self.patches_per_epoch
            )));
        }
        if self.epochs > EPOCHS_UNTIL_TIME_BUDGET {
            return Err(Error::usage(format!("epochs {} is above {EPOCHS_UNTIL_TIME_BUDGET}", self.epochs)));
        }
        if self.patches_per_epoch == 0 {
            return Err(Error::usage("patches per epoch must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(Error::usage("epochs must be at least 1"));
        }
        if !self.learning_rate.is_finite() || self.learning_rate <= 0.0 {
            return Err(Error::usage(format!(
                "learning rate {} must be a positive number (default {DEFAULT_LEARNING_RATE})",
                self.learning_rate
            )));
        }
        if self.batch_size == 0 {
            return Err(Error::usage("batch size must be at least 1"));
        }
        if self.base_width == 0 || self.base_width > 256 {
            return Err(Error::usage(format!(
                "base width {} must be in 1..=256 (16 = DeepCAD-RT, 64 = DeepCAD)",
                self.base_width
            )));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(Error::usage(format!(
                "validation fraction {} must be in [0, 1) (0.1 is a good default)",
                self.validation_fraction
            )));
        }
        if let Some(budget) = self.time_budget_seconds {
            if !(budget.is_finite() && budget > 0.0) {
                return Err(Error::usage(format!(
                    "time budget {budget} s must be a positive number of seconds (for example 900 for 15 minutes)"
                )));
            }
        }
        if self.max_frames == Some(0) {
            return Err(Error::usage("max frames must be at least 1 (or leave it unset to use every frame)"));
        }
        Ok(())
    }
}

/// What a finished run did.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Epochs in the bundle's whole history (resumed epochs included).
    pub epochs_completed: usize,
    pub best_epoch: Option<usize>,
    pub history: Vec<EpochRecord>,
    /// The bundle of the last epoch (`output`); the best one is [`best_bundle_path`]`(output)`.
    pub bundle: PathBuf,
    /// Reference-free checks of the final model on held-out patches.
    pub checks: Option<super::ModelChecks>,
    /// Per training movie, how fast its events decay (`infer::event_timescale`): what decides
    /// whether denoising it restores fast events by default.
    pub event_timescales: Vec<crate::infer::event_timescale::EventTimescale>,
}

/// `<stem>.best.safetensors` beside `output`: the bundle of the epoch with the lowest validation loss.
pub fn best_bundle_path(output: &std::path::Path) -> PathBuf {
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    output.with_file_name(format!("{stem}.best.safetensors"))
}
