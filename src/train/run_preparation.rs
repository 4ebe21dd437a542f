//! A training run prepared: the patch plan and its split into training and validation, the
//! starting model (new, warm-started from the built-in model, or resumed) with its training record
//! filled in, the optimiser and the pair reader in the model's units. The loop in `trainer.rs`
//! runs its epochs.

use std::path::Path;

use tch::nn::OptimizerConfig;
use tch::{nn, Device};

use super::pair_loss::PairBuffers;
use super::pair_reader::PairReader;
use super::patch_grid::{plan_patches, PatchPlan, SourceShape};
use super::settings::{NormalizationChoice, Precision, TrainSettings};
use super::starting_model::{
    measured_normalization, resumed_model, seeded_new_model, training_affines, warm_start, with_settings_method,
    WARM_START_ORIGIN,
};
use super::validation_split::split_validation;
use crate::io::FrameSource;
use crate::model::{Model, ModelMetadata, Normalization, SourceRecord};
use crate::progress::{report, Event, Progress};
use crate::{Error, Result};

/// A prepared run: the patch plan and its split, the starting model with its training record
/// filled in, the pair reader in the model's units and the optimiser.
pub(super) struct Run<'s> {
    pub(super) settings: &'s TrainSettings,
    /// The bundle written after every epoch.
    pub(super) output: &'s Path,
    pub(super) plan: PatchPlan,
    pub(super) training: Vec<usize>,
    pub(super) validation: Vec<usize>,
    pub(super) model: Model,
    pub(super) best_loss: f64,
    /// Re-running a stopped command on the same movies finishes that training: `epochs` is then
    /// the total. On other movies (fine-tuning) it counts the epochs to add.
    pub(super) continuing: bool,
    pub(super) reader: PairReader,
    pub(super) optimizer: nn::Optimizer,
    pub(super) bfloat16: bool,
    /// One batch of inputs and targets (and masks, for masked training), reused by every step.
    pub(super) pairs: PairBuffers,
}

/// Plans the patches, builds or loads the starting model, records what this run is and builds the
/// optimiser and the pair reader.
pub(super) fn prepare<'s>(
    sources: &mut [Box<dyn FrameSource>],
    settings: &'s TrainSettings,
    output: &'s Path,
    resume: Option<&Path>,
    device: Device,
    progress: &mut dyn Progress,
) -> Result<Run<'s>> {
    let shapes = source_shapes(sources, settings);
    let (plan, training, validation) = plan_training(&shapes, settings, progress)?;
    let records = source_records(sources, &shapes);
    let frames_used: Vec<usize> = shapes.iter().map(|s| s.frames).collect();
    let (model, best_loss) = match resume {
        None => (new_or_warm_model(sources, &frames_used, &plan, settings, device, progress)?, f64::INFINITY),
        Some(path) => resumed_model(path, sources, &frames_used, &records, settings, device, progress)?,
    };
    let mut model = with_settings_method(model, settings, progress)?;
    model.metadata.patch = plan.patch;
    let continuing = resume.is_some() && model.metadata.training.sources == records;
    // The bundle records the precision that actually ran (auto resolved).
    let precision = settings.precision.resolve(device);
    record_run(&mut model, settings, resume.is_some(), precision, records, device)?;
    let affines = training_affines(&model.metadata.normalization, sources, &frames_used, progress)?;
    let optimizer = nn::Adam { beta1: ADAM_BETA1, beta2: 0.999, wd: 0.0, eps: 1e-8, amsgrad: false }
        .build(&model.vs, settings.learning_rate)?;
    let bfloat16 = precision == Precision::MixedBfloat16;
    report(
        progress,
        Event::Info(if bfloat16 {
            "precision: mixed bfloat16 (bfloat16 convolutions; float32 weights, optimiser and loss)"
        } else {
            "precision: float32"
        }),
    )?;
    let reader = PairReader::per_source(plan.patch, &affines);
    let method = model.metadata.method;
    let batch_values = settings.batch_size * reader.volume_len();
    Ok(Run {
        settings,
        output,
        plan,
        training,
        validation,
        model,
        best_loss,
        continuing,
        reader,
        optimizer,
        bfloat16,
        pairs: PairBuffers::new(batch_values, method),
    })
}

/// Each source's name and size, counting only the frames used.
fn source_shapes(sources: &[Box<dyn FrameSource>], settings: &TrainSettings) -> Vec<SourceShape> {
    sources
        .iter()
        .map(|s| SourceShape {
            name: s.name(),
            width: s.width(),
            height: s.height(),
            frames: settings.max_frames.map_or(s.frames(), |m| m.min(s.frames())),
        })
        .collect()
}

/// The patch grid over the sources, split into training and validation patches.
fn plan_training(
    shapes: &[SourceShape],
    settings: &TrainSettings,
    progress: &mut dyn Progress,
) -> Result<(PatchPlan, Vec<usize>, Vec<usize>)> {
    let plan = plan_patches(shapes, settings.patch, settings.overlap, settings.patches_per_epoch)?;
    for warning in &plan.warnings {
        report(progress, Event::Warning(warning))?;
    }
    let (training, validation) = split_validation(plan.patches.len(), settings.validation_fraction, settings.seed);
    if validation.is_empty() {
        report(
            progress,
            Event::Warning("no patches are held out for validation; the validation loss reported is the training loss"),
        )?;
    }
    let [pt, py, px] = plan.patch;
    report(
        progress,
        Event::Info(&format!(
            "{} training and {} validation patches of {pt}×{py}×{px} (t×y×x) from {} input(s)",
            training.len(),
            validation.len(),
            shapes.len()
        )),
    )?;
    Ok((plan, training, validation))
}

/// What the bundle records of each input.
fn source_records(sources: &[Box<dyn FrameSource>], shapes: &[SourceShape]) -> Vec<SourceRecord> {
    sources
        .iter()
        .zip(shapes)
        .map(|(s, shape)| SourceRecord {
            path: shape.name.clone(),
            width: shape.width,
            height: shape.height,
            frames: shape.frames,
            sample_type: s.sample_type().name().to_string(),
        })
        .collect()
}

/// The built-in model when the settings allow a warm start, else a new network from the seed.
fn new_or_warm_model(
    sources: &mut [Box<dyn FrameSource>],
    frames_used: &[usize],
    plan: &PatchPlan,
    settings: &TrainSettings,
    device: Device,
    progress: &mut dyn Progress,
) -> Result<Model> {
    if let Some(model) = warm_start(settings, device, progress)? {
        return Ok(model);
    }
    let normalization = match settings.normalization {
        NormalizationChoice::Fixed => measured_normalization(sources, frames_used, progress)?,
        NormalizationChoice::PerMovie => Normalization::PerMovie,
    };
    let metadata = ModelMetadata::new(settings.base_width, plan.patch, normalization).with_method(settings.method);
    seeded_new_model(metadata, settings.seed, device)
}

/// Fills the model's training record with this run: origin, settings as run, inputs, device, software.
fn record_run(
    model: &mut Model,
    settings: &TrainSettings,
    resumed: bool,
    precision: Precision,
    records: Vec<SourceRecord>,
    device: Device,
) -> Result<()> {
    let method = model.metadata.method;
    let record = &mut model.metadata.training;
    let origin = &settings.origin;
    record.origin = if resumed {
        format!("{origin} (resumed)")
    } else if record.origin == WARM_START_ORIGIN {
        format!("{origin} (started from the built-in model)")
    } else {
        origin.clone()
    };
    let recorded = TrainSettings { precision, method, ..settings.clone() };
    record.settings = serde_json::to_value(&recorded).map_err(|e| Error::usage(e.to_string()))?;
    record.sources = records;
    record.device = crate::device::device_id(device);
    record.software = crate::model::bundle::software_version();
    Ok(())
}

/// Adam's first-moment decay. DeepCAD uses 0.5; at low light, where one patch's gradient is mostly
/// noise, the usual 0.9 averages more steps and learned faster (docs/measurements.md).
const ADAM_BETA1: f64 = 0.9;
