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
use tch::Device;

use super::augment::Augmentation;
use super::model_checks::model_checks;
use super::output_checks::check_training_output;
use super::pair_loss::{gradients_are_finite, loss_and_gradients, validation_loss};
use super::run_preparation::{prepare, Run};
use super::settings::{best_bundle_path, TrainReport, TrainSettings, EPOCHS_UNTIL_TIME_BUDGET};
use crate::io::FrameSource;
use crate::model::EpochRecord;
use crate::progress::{report, Event, Progress};
use crate::{Error, Result};

/// Trains a model on `sources` and writes it to `output` (a `.safetensors` bundle) after every
/// epoch, plus `<stem>.best.safetensors` whenever the validation loss improves. With `resume`, the
/// weights and normalisation of that bundle are the starting point and epochs continue its count.
/// The bundle's `training.origin` is `settings.origin` ("… (resumed)" or "… (started from the
/// built-in model)" when it did). A stop request from `progress` ends the run with
/// `Error::Cancelled`; the bundle of the last finished epoch (if any) stays in place.
pub fn train(
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
    let mut run = prepare(sources, settings, output, resume, device, progress)?;
    let Some(epochs) = EpochRange::plan(&run) else {
        return nothing_left_to_do(run, progress);
    };
    let budget_spent_in = run_epochs(&mut run, sources, &epochs, progress)?;
    finish(run, sources, budget_spent_in, progress)
}

/// Which epochs this run trains and how progress counts them.
struct EpochRange {
    first: usize,
    last: usize,
    /// Optimiser steps per full epoch.
    iterations: usize,
    /// Epochs run until the time budget ends them (progress then has no total).
    open_ended: bool,
    planned_iterations: u64,
    planned_epochs: usize,
}

impl EpochRange {
    /// `None` when a continued run has already trained every epoch asked for.
    fn plan(run: &Run<'_>) -> Option<EpochRange> {
        let settings = run.settings;
        let completed = run.model.metadata.training.epochs_completed;
        let open_ended = settings.time_budget_seconds.is_some() && settings.epochs >= EPOCHS_UNTIL_TIME_BUDGET;
        let epochs_to_run =
            if run.continuing && !open_ended { settings.epochs.saturating_sub(completed) } else { settings.epochs };
        if epochs_to_run == 0 {
            return None;
        }
        let (first, last) = (completed + 1, completed + epochs_to_run);
        let iterations = run.training.len().div_ceil(settings.batch_size);
        let (planned_iterations, planned_epochs) =
            if open_ended { (0, 0) } else { ((epochs_to_run * iterations) as u64, last) };
        Some(EpochRange { first, last, iterations, open_ended, planned_iterations, planned_epochs })
    }
}

/// A continued run that has nothing left to train: says so and rewrites the bundle unchanged in weights.
fn nothing_left_to_do(run: Run<'_>, progress: &mut dyn Progress) -> Result<TrainReport> {
    report(progress, Event::Info(&format!(
        "the model has already trained {} of the {} epochs asked for on these movies; nothing left to do (ask for more epochs to continue)",
        run.model.metadata.training.epochs_completed, run.settings.epochs
    )))?;
    run.model.save(run.output)?;
    Ok(train_report(&run, None, Vec::new()))
}

/// The wall clock of the whole run against the optional time budget.
struct RunClock {
    started: Instant,
    budget: Option<f64>,
}

impl RunClock {
    fn over_budget(&self) -> bool {
        self.budget.is_some_and(|b| self.started.elapsed().as_secs_f64() >= b)
    }
}

/// Trains the planned epochs, saving and reporting each; returns where the time budget ended the
/// run, if it did: (epoch, iterations done in it).
fn run_epochs(
    run: &mut Run<'_>,
    sources: &mut [Box<dyn FrameSource>],
    epochs: &EpochRange,
    progress: &mut dyn Progress,
) -> Result<Option<(usize, usize)>> {
    report(progress, Event::Begin { phase: "train", total: epochs.planned_iterations })?;
    let clock = RunClock { started: Instant::now(), budget: run.settings.time_budget_seconds };
    let mut done = 0u64;
    for epoch in epochs.first..=epochs.last {
        if epoch > epochs.first && clock.over_budget() {
            return Ok(Some((epoch - 1, epochs.iterations)));
        }
        let trained = train_epoch(run, sources, epoch, epochs, &clock, &mut done, progress)?;
        end_epoch(run, sources, epoch, &trained, epochs, &clock, progress)?;
        if trained.stopped_early {
            return Ok(Some((epoch, trained.pairs.div_ceil(run.settings.batch_size))));
        }
    }
    Ok(None)
}

/// What one epoch's training steps did.
struct EpochTraining {
    started: Instant,
    loss_sum: f64,
    pairs: usize,
    /// The time budget ended the epoch before its last step.
    stopped_early: bool,
}

/// One epoch's optimiser steps over the training patches in the epoch's shuffled order.
fn train_epoch(
    run: &mut Run<'_>,
    sources: &mut [Box<dyn FrameSource>],
    epoch: usize,
    epochs: &EpochRange,
    clock: &RunClock,
    done: &mut u64,
    progress: &mut dyn Progress,
) -> Result<EpochTraining> {
    let settings = run.settings;
    let batch = settings.batch_size;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    rng.set_stream(epoch as u64);
    let mut order = run.training.clone();
    order.shuffle(&mut rng);
    let mut trained = EpochTraining { started: Instant::now(), loss_sum: 0.0, pairs: 0, stopped_early: false };
    for chunk in order.chunks(batch) {
        if trained.pairs > 0 && clock.over_budget() {
            trained.stopped_early = true;
            break;
        }
        let value = train_step(run, sources, chunk, &mut rng, epoch, trained.pairs / batch + 1, progress)?;
        // Progress of the run: planned iterations or time budget, whichever is further along.
        let by_iterations =
            if epochs.open_ended { 0.0 } else { *done as f64 / epochs.planned_iterations.max(1) as f64 };
        let by_time = clock.budget.map_or(0.0, |b| clock.started.elapsed().as_secs_f64() / b);
        run.optimizer.set_lr(settings.schedule.rate(settings.learning_rate, by_iterations.max(by_time)));
        run.optimizer.step();
        trained.loss_sum += value * chunk.len() as f64;
        trained.pairs += chunk.len();
        *done += 1;
        let message = format!("epoch {epoch}/{} loss {value:.4}", epochs.last);
        report(progress, Event::Advance { done: *done, message: &message })?;
    }
    Ok(trained)
}

/// Reads the augmented pairs of `chunk` and computes their loss and gradients (redone in float32
/// when a bfloat16 step is not finite); returns the loss.
fn train_step(
    run: &mut Run<'_>,
    sources: &mut [Box<dyn FrameSource>],
    chunk: &[usize],
    rng: &mut ChaCha8Rng,
    epoch: usize,
    iteration: usize,
    progress: &mut dyn Progress,
) -> Result<f64> {
    let [_, py, px] = run.plan.patch;
    for (b, &index) in chunk.iter().enumerate() {
        let augmentation = Augmentation::draw(rng, py, px);
        run.pairs.read(&mut run.reader, sources, &run.plan.patches[index], augmentation, b, rng)?;
    }
    let pairs = run.pairs.batch(chunk.len(), run.plan.patch);
    // A libtorch failure names the step and the first patch it was working on.
    let in_step = |e: Error| {
        let p = &run.plan.patches[chunk[0]];
        let at = format!(
            "training epoch {epoch}, iteration {iteration} ({} at frame {}, row {}, column {})",
            sources[p.source].name(),
            p.t0,
            p.y0,
            p.x0
        );
        e.in_context(&at)
    };
    let loss = run.settings.loss;
    let mut value = loss_and_gradients(&run.model, &mut run.optimizer, &pairs, loss, run.bfloat16).map_err(in_step)?;
    if run.bfloat16 && !(value.is_finite() && gradients_are_finite(&run.model.vs)?) {
        // Like AMP's gradient scaler: never apply a non-finite reduced-precision step.
        report(progress, Event::Warning(&format!(
            "epoch {epoch}, iteration {iteration}: the bfloat16 step gave a non-finite loss or gradient (loss {value}); redone in float32"
        )))?;
        value = loss_and_gradients(&run.model, &mut run.optimizer, &pairs, loss, false).map_err(in_step)?;
    }
    if !value.is_finite() {
        return Err(Error::Training(format!(
            "training diverged in epoch {epoch} (loss {value}); lower the learning rate (now {})",
            run.settings.learning_rate
        )));
    }
    Ok(value)
}

/// Validates the epoch's model, records the epoch, saves the bundle (and the best one when the
/// validation loss improved) and reports the epoch.
fn end_epoch(
    run: &mut Run<'_>,
    sources: &mut [Box<dyn FrameSource>],
    epoch: usize,
    trained: &EpochTraining,
    epochs: &EpochRange,
    clock: &RunClock,
    progress: &mut dyn Progress,
) -> Result<()> {
    let batch = run.settings.batch_size;
    let train_loss = trained.loss_sum / trained.pairs as f64;
    let validation_loss = if run.validation.is_empty() {
        train_loss
    } else {
        validation_loss(&run.model, sources, &mut run.reader, &run.plan, &run.validation, batch, run.settings.loss)
            .map_err(|e| e.in_context(&format!("validation after training epoch {epoch}")))?
    };
    let seconds = trained.started.elapsed().as_secs_f64();
    let record = &mut run.model.metadata.training;
    record.history.push(EpochRecord { epoch, train_loss, validation_loss, seconds });
    record.epochs_completed = epoch;
    let improved = validation_loss < run.best_loss;
    if improved {
        run.best_loss = validation_loss;
        record.best_epoch = Some(epoch);
    }
    run.model.save(run.output)?;
    if improved {
        run.model.save(&best_bundle_path(run.output))?;
    }
    let seconds_per_iteration = seconds / trained.pairs.div_ceil(batch) as f64;
    let left_by_plan = (epochs.last - epoch) as f64 * epochs.iterations as f64 * seconds_per_iteration;
    let remaining_seconds = match clock.budget {
        _ if trained.stopped_early => 0.0,
        Some(b) => left_by_plan.min((b - clock.started.elapsed().as_secs_f64()).max(0.0)),
        None => left_by_plan,
    };
    report(
        progress,
        Event::Epoch {
            epoch,
            epochs: epochs.planned_epochs,
            train_loss,
            validation_loss,
            seconds,
            iterations_per_second: 1.0 / seconds_per_iteration,
            remaining_seconds,
        },
    )
}

/// Says where the time budget ended the run, runs the reference-free model checks and reports.
fn finish(
    mut run: Run<'_>,
    sources: &mut [Box<dyn FrameSource>],
    budget_spent_in: Option<(usize, usize)>,
    progress: &mut dyn Progress,
) -> Result<TrainReport> {
    if let Some((epoch, done_in_epoch)) = budget_spent_in {
        let iterations = run.training.len().div_ceil(run.settings.batch_size);
        report(
            progress,
            Event::Info(&format!(
                "time budget of {:.0} s spent: stopped after iteration {done_in_epoch} of {iterations} in epoch {epoch}",
                run.settings.time_budget_seconds.unwrap_or_default()
            )),
        )?;
    }
    let checks = model_checks(&run.model, sources, &mut run.reader, &run.plan.patches, &run.validation, &run.training)?;
    if let Some(checks) = &checks {
        for line in checks.describe() {
            report(progress, Event::Info(&format!("check: {line}")))?;
        }
    }
    let mut event_timescales = Vec::with_capacity(sources.len());
    for source in sources.iter_mut() {
        let timescale = crate::infer::event_timescale::measure(source.as_mut())?;
        let choice = crate::infer::restoration_choice::explain(timescale);
        report(progress, Event::Info(&format!("check: denoising {} by default: {choice}", source.name())))?;
        event_timescales.push(timescale);
    }
    Ok(train_report(&run, checks, event_timescales))
}

fn train_report(
    run: &Run<'_>,
    checks: Option<super::ModelChecks>,
    event_timescales: Vec<crate::infer::event_timescale::EventTimescale>,
) -> TrainReport {
    let record = &run.model.metadata.training;
    TrainReport {
        epochs_completed: record.epochs_completed,
        best_epoch: record.best_epoch,
        history: record.history.clone(),
        bundle: run.output.to_path_buf(),
        checks,
        event_timescales,
    }
}
