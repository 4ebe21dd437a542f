//! The training loop: patch plan → normalisation → model (new or resumed) → epochs of shuffled,
//! augmented pairs with Adam → a validation loss and an atomically written bundle after every epoch.
//!
//! Reproducibility: `tch::manual_seed(seed)` before the network is built, and ChaCha8 streams of
//! the seed for everything sampled (stream 0: validation split; stream e: the order and
//! augmentations of epoch e, so a resumed run draws what an uninterrupted one would have).
//!
//! Resuming restores the weights, the normalisation, the epoch count and the history, but not
//! Adam's moment estimates (the bundle holds no optimiser state): the first steps after a resume
//! behave like a fresh Adam with the same learning rate. Fine-tuning on other data keeps the
//! bundle's normalisation, so the model's units do not change.
//!
//! Precision ([`Precision`]): mixed bfloat16 runs the network in bf16 on float32 master weights;
//! validation always runs in float32, so validation losses compare across precisions.

use std::path::Path;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Reduction, Tensor};

use super::augment::Augmentation;
use super::model_checks::model_checks;
use super::output_checks::check_training_output;
use super::pair_reader::PairReader;
use super::patch_grid::{plan_patches, PatchPlan, SourceShape};
use super::settings::{
    best_bundle_path, Loss, NormalizationChoice, Precision, TrainReport, TrainSettings, EPOCHS_UNTIL_TIME_BUDGET,
};
use super::starting_model::{
    measured_normalization, resumed_model, seeded_new_model, training_affines, warm_start, with_settings_method,
    WARM_START_ORIGIN,
};
use super::validation_split::split_validation;
use crate::io::FrameSource;
use crate::model::{EpochRecord, Model, ModelMetadata, Normalization, SourceRecord};
use crate::progress::{report, Event, Progress};
use crate::{Error, Result};

/// Trains a model on `sources` and writes it to `output` (a `.safetensors` bundle) after every
/// epoch, plus `<stem>.best.safetensors` whenever the validation loss improves. With `resume`, the
/// weights and normalisation of that bundle are the starting point and epochs continue its count.
/// A stop request from `progress` ends the run with `Error::Cancelled`; the bundle of the last
/// finished epoch (if any) stays in place.
pub fn train(
    sources: &mut [Box<dyn FrameSource>],
    settings: &TrainSettings,
    output: &Path,
    resume: Option<&Path>,
    device: Device,
    progress: &mut dyn Progress,
) -> Result<TrainReport> {
    train_from_door(CLI_ORIGIN, sources, settings, output, resume, device, progress)
}

/// The command line's name in a bundle's `training.origin`.
pub const CLI_ORIGIN: &str = "deepcad train";

/// [`train`], recording `door` (e.g. "fiji") as the bundle's `training.origin`: "door", "door (resumed)"
/// or "door (started from the built-in model)".
pub fn train_from_door(
    door: &str,
    sources: &mut [Box<dyn FrameSource>],
    settings: &TrainSettings,
    output: &Path,
    resume: Option<&Path>,
    device: Device,
    progress: &mut dyn Progress,
) -> Result<TrainReport> {
    settings.validate()?;
    check_training_output(output, resume, sources, settings.overwrite)?;
    if sources.is_empty() {
        return Err(Error::usage("no training input: give at least one movie"));
    }
    let shapes: Vec<SourceShape> = sources
        .iter()
        .map(|s| SourceShape {
            name: s.name(),
            width: s.width(),
            height: s.height(),
            frames: settings.max_frames.map_or(s.frames(), |m| m.min(s.frames())),
        })
        .collect();
    let plan = plan_patches(&shapes, settings.patch, settings.overlap, settings.patches_per_epoch)?;
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
            sources.len()
        )),
    )?;

    let records: Vec<SourceRecord> = sources
        .iter()
        .zip(&shapes)
        .map(|(s, shape)| SourceRecord {
            path: shape.name.clone(),
            width: shape.width,
            height: shape.height,
            frames: shape.frames,
            sample_type: s.sample_type().name().to_string(),
        })
        .collect();
    let frames_used: Vec<usize> = shapes.iter().map(|s| s.frames).collect();

    let (model, mut best_loss) = match resume {
        None => {
            let model = match warm_start(settings, device, progress)? {
                Some(model) => model,
                None => {
                    let normalization = match settings.normalization {
                        NormalizationChoice::Fixed => measured_normalization(sources, &frames_used, progress)?,
                        NormalizationChoice::PerMovie => Normalization::PerMovie,
                    };
                    let metadata =
                        ModelMetadata::new(settings.base_width, plan.patch, normalization).with_method(settings.method);
                    seeded_new_model(metadata, settings.seed, device)?
                }
            };
            (model, f64::INFINITY)
        }
        Some(path) => resumed_model(path, sources, &frames_used, &records, settings, device, progress)?,
    };
    let mut model = with_settings_method(model, settings, progress)?;
    model.metadata.patch = plan.patch;
    // Re-running a stopped command on the same movies finishes that training: `epochs` is then
    // the total. On other movies (fine-tuning) it counts the epochs to add.
    let continuing = resume.is_some() && model.metadata.training.sources == records;
    let record = &mut model.metadata.training;
    record.origin = if resume.is_some() {
        format!("{door} (resumed)")
    } else if record.origin == WARM_START_ORIGIN {
        format!("{door} (started from the built-in model)")
    } else {
        door.to_string()
    };
    // The bundle records the precision that actually ran (auto resolved).
    let precision = settings.precision.resolve(device);
    let recorded = TrainSettings { precision, method: model.metadata.method, ..settings.clone() };
    record.settings = serde_json::to_value(&recorded).map_err(|e| Error::usage(e.to_string()))?;
    record.sources = records;
    record.device = crate::device::device_id(device);
    record.software = crate::model::bundle::software_version();
    let affines = training_affines(&model.metadata.normalization, sources, &frames_used, progress)?;

    let mut optimizer = nn::Adam { beta1: ADAM_BETA1, beta2: 0.999, wd: 0.0, eps: 1e-8, amsgrad: false }
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
    let mut reader = PairReader::per_source(plan.patch, &affines);
    let volume = reader.volume_len();
    let batch = settings.batch_size;
    let mut input = vec![0f32; batch * volume];
    let mut target = vec![0f32; batch * volume];
    let iterations = training.len().div_ceil(batch);
    let completed = model.metadata.training.epochs_completed;
    let first_epoch = completed + 1;
    let best_path = best_bundle_path(output);
    let open_ended = settings.time_budget_seconds.is_some() && settings.epochs >= EPOCHS_UNTIL_TIME_BUDGET;
    let epochs_to_run =
        if continuing && !open_ended { settings.epochs.saturating_sub(completed) } else { settings.epochs };
    if epochs_to_run == 0 {
        report(progress, Event::Info(&format!(
            "the model has already trained {completed} of the {} epochs asked for on these movies; nothing left to do (ask for more epochs to continue)",
            settings.epochs
        )))?;
        model.save(output)?;
        let record = &model.metadata.training;
        return Ok(TrainReport {
            epochs_completed: record.epochs_completed,
            best_epoch: record.best_epoch,
            history: record.history.clone(),
            bundle: output.to_path_buf(),
            checks: None,
        });
    }
    let last_epoch = first_epoch + epochs_to_run - 1;
    let (planned_iterations, planned_epochs) =
        if open_ended { (0, 0) } else { ((epochs_to_run * iterations) as u64, last_epoch) };
    report(progress, Event::Begin { phase: "train", total: planned_iterations })?;

    let mut done = 0u64;
    let run_started = Instant::now();
    let budget = settings.time_budget_seconds;
    let over_budget = || budget.is_some_and(|b| run_started.elapsed().as_secs_f64() >= b);
    // Where the time budget ended the run: (epoch, iterations done in it).
    let mut budget_spent_in: Option<(usize, usize)> = None;
    for epoch in first_epoch..=last_epoch {
        if epoch > first_epoch && over_budget() {
            budget_spent_in = Some((epoch - 1, iterations));
            break;
        }
        let started = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        rng.set_stream(epoch as u64);
        let mut order = training.clone();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut pairs) = (0f64, 0usize);
        let mut stopped_early = false;
        for chunk in order.chunks(batch) {
            if pairs > 0 && over_budget() {
                stopped_early = true;
                break;
            }
            for (b, &index) in chunk.iter().enumerate() {
                let augmentation = Augmentation::draw(&mut rng, py, px);
                let (x, y) = (&mut input[b * volume..(b + 1) * volume], &mut target[b * volume..(b + 1) * volume]);
                reader.read_pair(sources, &plan.patches[index], augmentation, x, y)?;
            }
            let n = chunk.len();
            let pairs_now =
                PairBatch { input: &input[..n * volume], target: &target[..n * volume], n, patch: plan.patch };
            // A libtorch failure names the step and the first patch it was working on.
            let in_step = |e: Error| {
                let p = &plan.patches[chunk[0]];
                let at = format!(
                    "training epoch {epoch}, iteration {} ({} at frame {}, row {}, column {})",
                    pairs / batch + 1,
                    sources[p.source].name(),
                    p.t0,
                    p.y0,
                    p.x0
                );
                e.in_context(&at)
            };
            let mut value =
                loss_and_gradients(&model, &mut optimizer, &pairs_now, settings.loss, bfloat16).map_err(in_step)?;
            if bfloat16 && !(value.is_finite() && gradients_are_finite(&model.vs)?) {
                // Like AMP's gradient scaler: never apply a non-finite reduced-precision step.
                report(progress, Event::Warning(&format!(
                    "epoch {epoch}, iteration {}: the bfloat16 step gave a non-finite loss or gradient (loss {value}); redone in float32",
                    pairs / batch + 1
                )))?;
                value =
                    loss_and_gradients(&model, &mut optimizer, &pairs_now, settings.loss, false).map_err(in_step)?;
            }
            if !value.is_finite() {
                return Err(Error::Training(format!(
                    "training diverged in epoch {epoch} (loss {value}); lower the learning rate (now {})",
                    settings.learning_rate
                )));
            }
            // Progress of the run: planned iterations or time budget, whichever is further along.
            let by_iterations = if open_ended { 0.0 } else { done as f64 / planned_iterations.max(1) as f64 };
            let by_time = budget.map_or(0.0, |b| run_started.elapsed().as_secs_f64() / b);
            optimizer.set_lr(settings.schedule.rate(settings.learning_rate, by_iterations.max(by_time)));
            optimizer.step();
            loss_sum += value * n as f64;
            pairs += n;
            done += 1;
            report(progress, Event::Advance { done, message: &format!("epoch {epoch}/{last_epoch} loss {value:.4}") })?;
        }
        let train_loss = loss_sum / pairs as f64;
        let validation_loss = if validation.is_empty() {
            train_loss
        } else {
            validation_loss(&model, sources, &mut reader, &plan, &validation, batch, settings.loss)
                .map_err(|e| e.in_context(&format!("validation after training epoch {epoch}")))?
        };
        let seconds = started.elapsed().as_secs_f64();
        let record = &mut model.metadata.training;
        record.history.push(EpochRecord { epoch, train_loss, validation_loss, seconds });
        record.epochs_completed = epoch;
        let improved = validation_loss < best_loss;
        if improved {
            best_loss = validation_loss;
            record.best_epoch = Some(epoch);
        }
        model.save(output)?;
        if improved {
            model.save(&best_path)?;
        }
        let seconds_per_iteration = seconds / pairs.div_ceil(batch) as f64;
        let left_by_plan = (last_epoch - epoch) as f64 * iterations as f64 * seconds_per_iteration;
        let remaining_seconds = match budget {
            _ if stopped_early => 0.0,
            Some(b) => left_by_plan.min((b - run_started.elapsed().as_secs_f64()).max(0.0)),
            None => left_by_plan,
        };
        report(
            progress,
            Event::Epoch {
                epoch,
                epochs: planned_epochs,
                train_loss,
                validation_loss,
                seconds,
                iterations_per_second: 1.0 / seconds_per_iteration,
                remaining_seconds,
            },
        )?;
        if stopped_early {
            budget_spent_in = Some((epoch, pairs.div_ceil(batch)));
            break;
        }
    }
    if let Some((epoch, done_in_epoch)) = budget_spent_in {
        report(
            progress,
            Event::Info(&format!(
            "time budget of {:.0} s spent: stopped after iteration {done_in_epoch} of {iterations} in epoch {epoch}",
            budget.unwrap_or_default()
        )),
        )?;
    }
    let checks = model_checks(&model, sources, &mut reader, &plan.patches, &validation, &training)?;
    if let Some(checks) = &checks {
        for line in checks.describe() {
            report(progress, Event::Info(&format!("check: {line}")))?;
        }
    }
    let record = &model.metadata.training;
    Ok(TrainReport {
        epochs_completed: record.epochs_completed,
        best_epoch: record.best_epoch,
        history: record.history.clone(),
        bundle: output.to_path_buf(),
        checks,
    })
}

/// Adam's first-moment decay. DeepCAD uses 0.5; at low light, where one patch's gradient is mostly
/// noise, the usual 0.9 averages more steps and learned faster (1 photon, 400 iterations: 10.9 dB
/// against 9.5 dB, trace r 0.949 against 0.932; docs/evaluation/experiments.md).
const ADAM_BETA1: f64 = 0.9;

/// Fresh gradients of the pair loss in the optimiser's variables; returns the loss.
fn loss_and_gradients(
    model: &Model,
    optimizer: &mut nn::Optimizer,
    pairs: &PairBatch<'_>,
    loss: Loss,
    bfloat16: bool,
) -> Result<f64> {
    let loss = pair_loss(model, pairs, loss, bfloat16)?;
    optimizer.zero_grad();
    loss.f_backward()?;
    Ok(loss.f_double_value(&[])?)
}

/// Whether every gradient is finite (one reduction per variable, cheap beside a step).
fn gradients_are_finite(vs: &nn::VarStore) -> Result<bool> {
    for variable in vs.trainable_variables() {
        let grad = variable.grad();
        if grad.defined() && grad.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `n` training pairs, each volume `patch` (`[t, y, x]`) long, one after the other.
struct PairBatch<'a> {
    input: &'a [f32],
    target: &'a [f32],
    n: usize,
    patch: [usize; 3],
}

/// The `loss` (a mean) of the network's output on the pairs' inputs against their targets. With
/// `bfloat16` the network computes in bfloat16 (its float32 weights cast per convolution) and the
/// loss in float32.
fn pair_loss(model: &Model, pairs: &PairBatch<'_>, loss: Loss, bfloat16: bool) -> Result<Tensor> {
    let [t, y, x] = pairs.patch.map(|v| v as i64);
    let shape = [pairs.n as i64, 1, t, y, x];
    let device = model.device();
    let x = Tensor::from_slice(pairs.input).f_view(shape)?.f_to_device(device)?;
    let y = Tensor::from_slice(pairs.target).f_view(shape)?.f_to_device(device)?;
    let out = if bfloat16 {
        model.pair_forward(&x.f_to_kind(Kind::BFloat16)?, &y.f_to_kind(Kind::BFloat16)?)?.f_to_kind(Kind::Float)?
    } else {
        model.pair_forward(&x, &y)?
    };
    let l2 = out.f_mse_loss(&y, Reduction::Mean)?;
    match loss {
        Loss::Mse => Ok(l2),
        Loss::L1Mse => Ok(out.f_l1_loss(&y, Reduction::Mean)?.f_add(&l2)?.f_mul_scalar(0.5)?),
    }
}

/// Mean loss over the held-out patches, without augmentation or gradients.
fn validation_loss(
    model: &Model,
    sources: &mut [Box<dyn FrameSource>],
    reader: &mut PairReader,
    plan: &PatchPlan,
    validation: &[usize],
    batch: usize,
    loss: Loss,
) -> Result<f64> {
    let volume = reader.volume_len();
    let mut input = vec![0f32; batch * volume];
    let mut target = vec![0f32; batch * volume];
    let mut sum = 0f64;
    for chunk in validation.chunks(batch) {
        for (b, &index) in chunk.iter().enumerate() {
            let (x, y) = (&mut input[b * volume..(b + 1) * volume], &mut target[b * volume..(b + 1) * volume]);
            reader.read_pair(sources, &plan.patches[index], Augmentation::NONE, x, y)?;
        }
        let n = chunk.len();
        let pairs = PairBatch { input: &input[..n * volume], target: &target[..n * volume], n, patch: plan.patch };
        let loss = tch::no_grad(|| pair_loss(model, &pairs, loss, false))?;
        sum += loss.f_double_value(&[])? * n as f64;
    }
    Ok(sum / validation.len() as f64)
}
