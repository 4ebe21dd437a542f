//! The model a training starts from: the built-in model (a fine-tune), a freshly seeded network,
//! or a bundle being resumed or fine-tuned; and the normalisation it trains under, measured from
//! the training data.

use std::path::Path;

use tch::Device;

use super::settings::{Init, NormalizationChoice, TrainSettings};
use crate::io::intensity_statistics::{intensity_statistics, movie_statistics, MAX_SAMPLED_FRAMES};
use crate::io::FrameSource;
use crate::model::{Model, ModelMetadata, Normalization, SelfSupervision, SourceRecord};
use crate::progress::{report, Event, Progress};
use crate::Result;

/// Mean and standard deviation of the training data as the model's fixed normalisation.
pub(super) fn measured_normalization(
    sources: &mut [Box<dyn FrameSource>],
    frames_used: &[usize],
    progress: &mut dyn Progress,
) -> Result<Normalization> {
    let stats = intensity_statistics(sources, frames_used, MAX_SAMPLED_FRAMES)?;
    let scale = stats.usable_scale();
    if scale != stats.std {
        report(
            progress,
            Event::Warning(&format!(
                "the training data is (nearly) constant (mean {}, standard deviation {}); there is nothing to denoise",
                stats.mean, stats.std
            )),
        )?;
    }
    report(
        progress,
        Event::Info(&format!(
            "normalisation: mean {:.4}, standard deviation {:.4} (from {} frames)",
            stats.mean, scale, stats.frames_read
        )),
    )?;
    Ok(Normalization::Fixed { offset: stats.mean, scale })
}

pub(super) const WARM_START_ORIGIN: &str = "deepcad train (started from the built-in model)";

/// The built-in model as a new model's starting point (its weights and per-movie units, none of
/// its training history), when the settings allow it; `None` means random weights (and says why
/// when the user did not ask for them).
pub(super) fn warm_start(
    settings: &TrainSettings,
    device: Device,
    progress: &mut dyn Progress,
) -> Result<Option<Model>> {
    if settings.init == Init::Random {
        return Ok(None);
    }
    let built_in = crate::model::Model::read_metadata(std::path::Path::new(crate::model::BUILT_IN_MODEL))?;
    let why_not = if settings.base_width != built_in.base_width {
        Some(format!("base width {} (the built-in model has {})", settings.base_width, built_in.base_width))
    } else if settings.normalization != NormalizationChoice::PerMovie {
        Some("fixed normalisation (the built-in model works per movie)".to_string())
    } else {
        None
    };
    if let Some(why) = why_not {
        report(progress, Event::Info(&format!("starting from random weights: {why}")))?;
        return Ok(None);
    }
    let mut model = Model::load(std::path::Path::new(crate::model::BUILT_IN_MODEL), device)?;
    model.metadata.training = crate::model::TrainingRecord {
        origin: WARM_START_ORIGIN.into(),
        software: crate::model::bundle::software_version(),
        ..Default::default()
    };
    report(progress, Event::Info("starting from the built-in general model's weights (a fine-tune; ask for random weights to train from scratch)"))?;
    Ok(Some(model))
}

/// A fresh network initialised from `seed` (with a zero output head). libtorch's generator is
/// process-wide: the lock makes seeding and initialising one step, so trainings started at once
/// (two Fiji commands) each get the weights their seed gives.
pub(super) fn seeded_new_model(metadata: ModelMetadata, seed: u64, device: Device) -> Result<Model> {
    seeded(seed, || {
        let mut model = Model::new(metadata, device)?;
        model.net.zero_head()?;
        Ok(model)
    })
}

/// `initialise` with libtorch's process-wide generator seeded by `seed`, one at a time.
fn seeded(seed: u64, initialise: impl FnOnce() -> Result<Model>) -> Result<Model> {
    static INITIALISING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INITIALISING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(seed as i64);
    initialise()
}

/// The starting model made to train with the settings' method. An interlaced model (the
/// built-in one, or a bundle being resumed or fine-tuned) asked to train hybrid gets a seeded
/// blind-spot branch beside its U-Net; the branch starts silent, so training starts from the
/// model's own interlaced prediction; asked to train masked, it keeps its U-Net as it is (the
/// networks are the same). A hybrid or masked bundle keeps its method, like its base width.
pub(super) fn with_settings_method(
    model: Model,
    settings: &TrainSettings,
    progress: &mut dyn Progress,
) -> Result<Model> {
    let (has, asked) = (model.metadata.method, settings.method);
    match (has, asked) {
        _ if has == asked => Ok(model),
        (SelfSupervision::Interlaced, SelfSupervision::Hybrid) => {
            report(progress, Event::Info("method hybrid: a blind-spot branch joins the model's U-Net (whose weights are kept); it starts silent, so training starts from the interlaced prediction"))?;
            seeded(settings.seed, || model.with_method(asked))
        }
        (SelfSupervision::Interlaced, SelfSupervision::Masked) => {
            report(progress, Event::Info("method masked: the model's U-Net (its weights kept) now learns to predict masked voxels from consecutive frames, the current one included"))?;
            model.with_method(asked)
        }
        _ => {
            report(
                progress,
                Event::Info(&format!(
                    "the model was trained with the {has} method and continues with it (the {asked} method applies to new models)"
                )),
            )?;
            Ok(model)
        }
    }
}

/// `(offset, scale)` of each training movie: the model's fixed statistics for all, or under
/// per-movie normalisation each movie's own (measured as inference will measure it).
pub(super) fn training_affines(
    normalization: &Normalization,
    sources: &mut [Box<dyn FrameSource>],
    frames_used: &[usize],
    progress: &mut dyn Progress,
) -> Result<Vec<(f64, f64)>> {
    match *normalization {
        Normalization::Fixed { offset, scale } => Ok(vec![(offset, scale)]),
        Normalization::StackMean { .. } | Normalization::StackMin { .. } => {
            unreachable!("a resumed stack-mean or stack-min model is converted to fixed statistics")
        }
        Normalization::PerMovie => {
            let mut affines = Vec::with_capacity(sources.len());
            for (source, &frames) in sources.iter_mut().zip(frames_used) {
                let stats = movie_statistics(source.as_mut(), frames)?;
                affines.push((stats.mean, stats.usable_scale()));
            }
            report(
                progress,
                Event::Info(&format!(
                    "normalisation: per movie (each movie's own mean and standard deviation; {} movies)",
                    affines.len()
                )),
            )?;
            Ok(affines)
        }
    }
}

/// Loads the bundle to continue from; returns it with the best validation loss so far (only when
/// it was trained on these very inputs: losses on other data are not comparable).
pub(super) fn resumed_model(
    path: &Path,
    sources: &mut [Box<dyn FrameSource>],
    frames_used: &[usize],
    records: &[SourceRecord],
    settings: &TrainSettings,
    device: Device,
    progress: &mut dyn Progress,
) -> Result<(Model, f64)> {
    let mut model = Model::load(path, device)?;
    if model.metadata.base_width != settings.base_width {
        report(
            progress,
            Event::Warning(&format!(
                "{}: the bundle has base width {}; it is kept (the requested width {} applies to new models only)",
                path.display(),
                model.metadata.base_width,
                settings.base_width
            )),
        )?;
    }
    if let Normalization::StackMean { scale_factor } | Normalization::StackMin { normalize_factor: scale_factor } =
        model.metadata.normalization
    {
        // An imported reference checkpoint works in raw counts minus the mean (or minimum): keep
        // its units and fix the offset to the mean of the new training data.
        let Normalization::Fixed { offset, .. } = measured_normalization(sources, frames_used, progress)? else {
            unreachable!("measured normalisation is fixed");
        };
        model.metadata.normalization = Normalization::Fixed { offset, scale: scale_factor };
    }
    let same_data = model.metadata.training.sources == records;
    let best = match (same_data, model.metadata.training.best_epoch) {
        (true, Some(best)) => model
            .metadata
            .training
            .history
            .iter()
            .find(|r| r.epoch == best)
            .map_or(f64::INFINITY, |r| r.validation_loss),
        _ => f64::INFINITY,
    };
    if !same_data {
        model.metadata.training.best_epoch = None;
    }
    report(
        progress,
        Event::Info(&format!(
            "{} from {} after epoch {} (the optimiser's moments start afresh){}",
            if same_data { "resuming" } else { "fine-tuning" },
            path.display(),
            model.metadata.training.epochs_completed,
            if same_data { "" } else { "; keeping the model's normalisation" }
        )),
    )?;
    Ok((model, best))
}
