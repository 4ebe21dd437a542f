//! The training loop: bundles every epoch, seeds, cancel, resume, per-movie normalisation, the
//! built-in warm start, precision, time budget, loss and reference-free checks.

use std::path::Path;

use deepcad::infer::{denoise_source_to_memory, DenoiseSettings};
use deepcad::io::{FrameSource, InMemoryMovie, SampleType};
use deepcad::model::{Model, Normalization};
use deepcad::progress::{Control, Event, Progress, Silent};
use deepcad::simulate::{simulate, SimulationConfig};
use deepcad::train::{best_bundle_path, train, Init, NormalizationChoice, Precision, TrainSettings};
use deepcad::Error;
use tch::Device;

pub fn simulated(frames: usize, size: usize, seed: u64) -> Vec<Box<dyn FrameSource>> {
    let config =
        SimulationConfig { width: size, height: size, frames, neurons: 8, photons: 3.0, seed, ..Default::default() };
    let (_, noisy) = simulate(&config).unwrap();
    vec![Box::new(InMemoryMovie::new("sim", size, size, frames, SampleType::U16, noisy).unwrap())]
}

pub fn small_settings() -> TrainSettings {
    TrainSettings {
        patch: [8, 16, 16],
        overlap: 0.5,
        patches_per_epoch: 12,
        epochs: 2,
        learning_rate: 1e-3,
        base_width: 4,
        validation_fraction: 0.25,
        seed: 3,
        ..Default::default()
    }
}

/// Collects events; asks to stop after `stop_after` Advance events.
#[derive(Default)]
pub struct Recorder {
    pub stop_after: Option<u64>,
    pub warnings: Vec<String>,
    pub advances: Vec<String>,
    pub epochs: Vec<usize>,
    pub epoch_totals: Vec<usize>,
    pub remaining: Vec<f64>,
    pub iterations_per_second: Vec<f64>,
    pub infos: Vec<String>,
    pub total: u64,
    /// When the run began (the Begin event) and when each Advance event arrived.
    pub began_at: Option<std::time::Instant>,
    pub advanced_at: Vec<std::time::Instant>,
}

impl Progress for Recorder {
    fn event(&mut self, event: Event<'_>) -> Control {
        match event {
            Event::Warning(w) => self.warnings.push(w.to_string()),
            Event::Begin { total, .. } => {
                self.total = total;
                self.began_at = Some(std::time::Instant::now());
            }
            Event::Epoch { epoch, epochs, remaining_seconds, iterations_per_second, .. } => {
                assert!(iterations_per_second.is_finite() && iterations_per_second > 0.0, "{iterations_per_second}");
                self.epochs.push(epoch);
                self.epoch_totals.push(epochs);
                self.remaining.push(remaining_seconds);
                self.iterations_per_second.push(iterations_per_second);
            }
            Event::Advance { done, message } => {
                self.advances.push(message.to_string());
                self.advanced_at.push(std::time::Instant::now());
                if self.stop_after.is_some_and(|n| done >= n) {
                    return Control::Stop;
                }
            }
            Event::Info(text) => self.infos.push(text.to_string()),
        }
        Control::Continue
    }
}

pub fn weights(model: &Model) -> Vec<(String, Vec<f32>)> {
    let mut named: Vec<(String, Vec<f32>)> =
        model.vs.variables().into_iter().map(|(n, t)| (n, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap())).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

// ---------------------------------------------------------------- the loop

#[test]
fn training_lowers_the_loss_and_writes_bundles_every_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("model.safetensors");
    let mut sources = simulated(120, 48, 1);
    let settings = TrainSettings {
        patch: [16, 32, 32],
        patches_per_epoch: 24,
        epochs: 4,
        base_width: 8,
        normalization: NormalizationChoice::Fixed,
        ..small_settings()
    };
    let mut recorder = Recorder::default();
    let report = train(&mut sources, &settings, &output, None, Device::Cpu, &mut recorder).unwrap();

    assert_eq!(report.epochs_completed, 4);
    assert_eq!(recorder.epochs, vec![1, 2, 3, 4]);
    assert_eq!(recorder.total as usize, recorder.advances.len());
    assert!(recorder.advances[0].starts_with("epoch 1/4 loss "), "{}", recorder.advances[0]);
    let first = &report.history[0];
    let last = report.history.last().unwrap();
    assert!(last.train_loss < 0.9 * first.train_loss, "{:?}", report.history);
    assert!(last.validation_loss < first.validation_loss, "{:?}", report.history);

    let model = Model::load(&output, Device::Cpu).unwrap();
    let training = &model.metadata.training;
    assert_eq!(training.epochs_completed, 4);
    // serde_json (without its float_roundtrip feature) may move a float by one ulp on reading.
    assert_eq!(training.history.len(), report.history.len());
    for (stored, reported) in training.history.iter().zip(&report.history) {
        assert_eq!(stored.epoch, reported.epoch);
        assert!((stored.validation_loss - reported.validation_loss).abs() <= 1e-12 * reported.validation_loss.abs());
        assert!((stored.train_loss - reported.train_loss).abs() <= 1e-12 * reported.train_loss.abs());
    }
    assert_eq!(training.sources[0].frames, 120);
    assert_eq!(training.settings["patch"], serde_json::json!([16, 32, 32]));
    assert_eq!(model.metadata.patch, [16, 32, 32]);

    // Normalisation: mean and std of the movie.
    let (_, noisy) = simulate(&SimulationConfig {
        width: 48,
        height: 48,
        frames: 120,
        neurons: 8,
        photons: 3.0,
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    let mean = noisy.iter().map(|&v| v as f64).sum::<f64>() / noisy.len() as f64;
    let std = (noisy.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / noisy.len() as f64).sqrt();
    let Normalization::Fixed { offset, scale } = model.metadata.normalization else { panic!("fixed expected") };
    assert!((offset - mean).abs() < 0.05 * std && (scale / std - 1.0).abs() < 0.05, "{offset} {scale} vs {mean} {std}");

    // The best bundle is the epoch with the lowest validation loss.
    let best_epoch = report.best_epoch.unwrap();
    let lowest = report.history.iter().min_by(|a, b| a.validation_loss.total_cmp(&b.validation_loss)).unwrap();
    assert_eq!(best_epoch, lowest.epoch);
    let best = Model::load(&best_bundle_path(&output), Device::Cpu).unwrap();
    assert_eq!(best.metadata.training.epochs_completed, best_epoch);
}

fn run_small(dir: &Path, seed: u64) -> (Vec<(f64, f64)>, Model) {
    let output = dir.join(format!("seed{seed}-{}.safetensors", rand::random::<u32>()));
    let mut sources = simulated(60, 32, 2);
    let settings = TrainSettings { seed, ..small_settings() };
    let report = train(&mut sources, &settings, &output, None, Device::Cpu, &mut Silent).unwrap();
    let losses = report.history.iter().map(|r| (r.train_loss, r.validation_loss)).collect();
    (losses, Model::load(&output, Device::Cpu).unwrap())
}

#[test]
fn the_same_seed_gives_the_same_run_on_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let (losses_a, model_a) = run_small(dir.path(), 11);
    let (losses_b, model_b) = run_small(dir.path(), 11);
    assert_eq!(losses_a, losses_b);
    assert!(weights(&model_a) == weights(&model_b), "weights differ between identical runs");
    let (losses_c, _) = run_small(dir.path(), 12);
    assert_ne!(losses_a, losses_c);
}

#[test]
fn cancelling_keeps_the_last_finished_epoch_and_never_a_partial_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let settings = TrainSettings { epochs: 3, ..small_settings() };
    let iterations = {
        let mut recorder = Recorder { stop_after: Some(1), ..Default::default() };
        let output = dir.path().join("early.safetensors");
        let err = train(&mut simulated(60, 32, 2), &settings, &output, None, Device::Cpu, &mut recorder).unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{err:?}");
        assert!(!output.exists(), "no epoch finished, so no bundle");
        assert!(!best_bundle_path(&output).exists());
        recorder.total / 3
    };
    assert!(iterations >= 2);

    let output = dir.path().join("mid.safetensors");
    let mut recorder = Recorder { stop_after: Some(iterations + 1), ..Default::default() };
    let err = train(&mut simulated(60, 32, 2), &settings, &output, None, Device::Cpu, &mut recorder).unwrap_err();
    assert!(matches!(err, Error::Cancelled));
    assert_eq!(recorder.advances.len() as u64, iterations + 1, "stopped right after the iteration that asked");
    let model = Model::load(&output, Device::Cpu).unwrap();
    assert_eq!(model.metadata.training.epochs_completed, 1);
    assert_eq!(model.metadata.training.history.len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "only mid and mid.best remain: {leftovers:?}");
}

#[test]
fn resuming_continues_the_epochs_and_keeps_the_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.safetensors");
    let settings = TrainSettings { epochs: 1, ..small_settings() };
    train(&mut simulated(60, 32, 2), &settings, &first, None, Device::Cpu, &mut Silent).unwrap();
    let before = Model::load(&first, Device::Cpu).unwrap();

    let resumed = dir.path().join("resumed.safetensors");
    // The same movie: `epochs` is the total, so 3 means two more.
    let settings2 = TrainSettings { epochs: 3, ..small_settings() };
    let mut recorder = Recorder::default();
    let report =
        train(&mut simulated(60, 32, 2), &settings2, &resumed, Some(&first), Device::Cpu, &mut recorder).unwrap();
    assert_eq!(report.epochs_completed, 3);
    assert_eq!(report.history.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(report.history[0], before.metadata.training.history[0]);
    assert_eq!(recorder.epochs, vec![2, 3]);
    assert!(recorder.advances[0].starts_with("epoch 2/3"), "{}", recorder.advances[0]);
    let after = Model::load(&resumed, Device::Cpu).unwrap();
    assert_eq!(after.metadata.normalization, before.metadata.normalization);

    // Fine-tuning on a brighter movie keeps the model's units (its normalisation).
    let mut bright: Vec<Box<dyn FrameSource>> = {
        let (_, noisy) = simulate(&SimulationConfig {
            width: 32,
            height: 32,
            frames: 60,
            neurons: 8,
            photons: 30.0,
            seed: 5,
            ..Default::default()
        })
        .unwrap();
        vec![Box::new(InMemoryMovie::new("bright", 32, 32, 60, SampleType::U16, noisy).unwrap())]
    };
    let tuned = dir.path().join("tuned.safetensors");
    let report = train(&mut bright, &settings, &tuned, Some(&resumed), Device::Cpu, &mut Silent).unwrap();
    assert_eq!(report.epochs_completed, 4);
    let tuned = Model::load(&tuned, Device::Cpu).unwrap();
    assert_eq!(tuned.metadata.normalization, before.metadata.normalization);
    assert_eq!(tuned.metadata.training.sources[0].path, "bright");
}

#[test]
fn per_movie_normalisation_makes_a_model_blind_to_brightness_gain_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("general.safetensors");
    let movie = |photons: f64, gain: f64, offset: f64, seed: u64| -> Box<dyn FrameSource> {
        let config = SimulationConfig {
            width: 32,
            height: 32,
            frames: 60,
            neurons: 8,
            photons,
            gain,
            offset,
            seed,
            ..Default::default()
        };
        Box::new(
            InMemoryMovie::new(format!("sim{seed}"), 32, 32, 60, SampleType::U16, simulate(&config).unwrap().1)
                .unwrap(),
        )
    };
    let mut sources = vec![movie(1.0, 1.0, 50.0, 1), movie(30.0, 6.0, 400.0, 2)];
    let settings = TrainSettings { epochs: 1, normalization: NormalizationChoice::PerMovie, ..small_settings() };
    let mut recorder = Recorder::default();
    train(&mut sources, &settings, &bundle, None, Device::Cpu, &mut recorder).unwrap();
    assert!(recorder.infos.iter().any(|i| i.contains("per movie") && i.contains("2 movies")), "{:?}", recorder.infos);
    let general = Model::load(&bundle, Device::Cpu).unwrap();
    assert_eq!(general.metadata.normalization, Normalization::PerMovie);

    // Denoising a·x + b gives a·denoise(x) + b: each movie is measured in its own units.
    let (_, noisy) =
        simulate(&SimulationConfig { width: 32, height: 32, frames: 40, photons: 2.0, seed: 9, ..Default::default() })
            .unwrap();
    let brighter: Vec<f32> = noisy.iter().map(|v| 3.0 * v + 500.0).collect();
    let denoise = |model: &Model, data: Vec<f32>| {
        let mut m = InMemoryMovie::new("m", 32, 32, 40, SampleType::F32, data).unwrap();
        denoise_source_to_memory(model, &mut m, &DenoiseSettings::default(), &mut Silent).unwrap().0
    };
    let worst_mismatch = |model: &Model| {
        let (a, b) = (denoise(model, noisy.clone()), denoise(model, brighter.clone()));
        a.iter().zip(&b).map(|(x, y)| ((3.0 * x + 500.0 - y) / y.abs().max(1.0)).abs()).fold(0f32, f32::max)
    };
    let general_mismatch = worst_mismatch(&general);
    assert!(general_mismatch < 1e-4, "per-movie model: relative mismatch {general_mismatch}");
    // A fixed-statistics network is not: the same weights behind fixed units see another movie.
    let fixed = Model {
        metadata: deepcad::model::ModelMetadata {
            normalization: Normalization::Fixed { offset: 150.0, scale: 20.0 },
            ..general.metadata.clone()
        },
        ..Model::load(&bundle, Device::Cpu).unwrap()
    };
    let fixed_mismatch = worst_mismatch(&fixed);
    assert!(fixed_mismatch > 1e-2, "fixed model: relative mismatch {fixed_mismatch}");
}

#[test]
fn new_models_start_from_the_built_in_model_when_it_fits_and_say_so_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let warm = dir.path().join("warm.safetensors");
    let settings =
        TrainSettings { patch: [16, 16, 16], base_width: 16, epochs: 1, patches_per_epoch: 4, ..small_settings() };
    let mut recorder = Recorder::default();
    train(&mut simulated(40, 32, 4), &settings, &warm, None, Device::Cpu, &mut recorder).unwrap();
    assert!(recorder.infos.iter().any(|i| i.contains("built-in general model")), "{:?}", recorder.infos);
    let model = Model::load(&warm, Device::Cpu).unwrap();
    // Its own history only (not the built-in model's 20 epochs), in the built-in model's units.
    assert_eq!(model.metadata.training.epochs_completed, 1);
    assert!(model.metadata.training.origin.contains("built-in"), "{}", model.metadata.training.origin);
    assert_eq!(model.metadata.normalization, Normalization::PerMovie);
    // One short epoch at the warm-up's small rates stays close to the built-in weights.
    let built_in = Model::load(Path::new(deepcad::model::BUILT_IN_MODEL), Device::Cpu).unwrap();
    let distance = |a: &Model, b: &Model| -> f64 {
        let (wa, wb) = (weights(a), weights(b));
        wa.iter()
            .zip(&wb)
            .flat_map(|((_, x), (_, y))| x.iter().zip(y).map(|(p, q)| ((p - q) as f64).powi(2)))
            .sum::<f64>()
            .sqrt()
    };
    let random_start = dir.path().join("random.safetensors");
    let random = TrainSettings { init: Init::Random, ..settings.clone() };
    train(&mut simulated(40, 32, 4), &random, &random_start, None, Device::Cpu, &mut Silent).unwrap();
    let random_model = Model::load(&random_start, Device::Cpu).unwrap();
    assert!(
        distance(&model, &built_in) < 0.1 * distance(&random_model, &built_in),
        "warm {} vs random {}",
        distance(&model, &built_in),
        distance(&random_model, &built_in)
    );

    // A network the built-in weights do not fit starts from random weights, and says why.
    let mut recorder = Recorder::default();
    let narrow = TrainSettings { base_width: 4, ..settings };
    train(&mut simulated(40, 32, 4), &narrow, &dir.path().join("narrow.safetensors"), None, Device::Cpu, &mut recorder)
        .unwrap();
    assert!(recorder.infos.iter().any(|i| i.contains("random weights: base width 4")), "{:?}", recorder.infos);
}

// ---------------------------------------------------------------- precision

/// Gradients of the pair loss for every variable, with the network computing in `kind`.
fn network_gradients(
    vs: &tch::nn::VarStore,
    net: &deepcad::model::UNet3d,
    x: &tch::Tensor,
    y: &tch::Tensor,
    kind: tch::Kind,
) -> Vec<(String, tch::Tensor)> {
    for (_, v) in vs.variables() {
        let mut g = v.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    let out = net.forward(&x.to_kind(kind)).unwrap().to_kind(tch::Kind::Float);
    let loss = (out.l1_loss(y, tch::Reduction::Mean) + out.mse_loss(y, tch::Reduction::Mean)) * 0.5;
    loss.backward();
    let mut grads: Vec<_> = vs.variables().into_iter().map(|(n, v)| (n, v.grad().copy())).collect();
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    grads
}

#[test]
fn bfloat16_gradients_match_float32_even_where_the_bottom_level_is_two_frames_deep() {
    // A 16-frame patch is 2 frames deep at the bottom level, where oneDNN's bf16 weight gradient is
    // garbage; the network must still give float32's gradients to bf16 accuracy, in every layer.
    tch::manual_seed(7);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let net = deepcad::model::UNet3d::new(&vs.root(), 8);
    let x = tch::Tensor::randn([1, 1, 16, 32, 32], (tch::Kind::Float, Device::Cpu));
    let y = &x * 0.5 + tch::Tensor::randn([1, 1, 16, 32, 32], (tch::Kind::Float, Device::Cpu)) * 0.5;
    let reference = network_gradients(&vs, &net, &x, &y, tch::Kind::Float);
    for attempt in 0..3 {
        let mixed = network_gradients(&vs, &net, &x, &y, tch::Kind::BFloat16);
        for ((name, r), (_, m)) in reference.iter().zip(&mixed) {
            // bf16 keeps ~3 significant digits: a few % of relative error is expected (measured
            // ≤ 8 %); the broken kernel gives 50 % to 1e37 or NaN.
            let error = (m - r).norm().double_value(&[]) / r.norm().double_value(&[]);
            assert!(error < 0.15, "attempt {attempt}, {name}: bf16 gradient off by {error} (relative L2)");
        }
    }
}

#[test]
fn mixed_bfloat16_training_stays_finite_and_lowers_the_validation_loss() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("bf16.safetensors");
    let settings = TrainSettings {
        patch: [16, 32, 32],
        patches_per_epoch: 24,
        epochs: 4,
        base_width: 8,
        precision: Precision::MixedBfloat16,
        ..small_settings()
    };
    let mut recorder = Recorder::default();
    let report = train(&mut simulated(120, 48, 1), &settings, &output, None, Device::Cpu, &mut recorder).unwrap();
    // No step needed the float32 safety net: the reduced-precision path itself is sound.
    assert!(recorder.warnings.iter().all(|w| !w.contains("bfloat16")), "{:?}", recorder.warnings);
    let (first, last) = (&report.history[0], report.history.last().unwrap());
    assert!(last.validation_loss < first.validation_loss, "{:?}", report.history);
    assert!(last.train_loss < 0.9 * first.train_loss, "{:?}", report.history);
    let model = Model::load(&output, Device::Cpu).unwrap();
    assert!(weights(&model).iter().all(|(_, w)| w.iter().all(|v| v.is_finite())));
    assert_eq!(model.metadata.training.settings["precision"], serde_json::json!("bfloat16"));
}

#[test]
fn a_non_finite_bfloat16_step_is_redone_in_float32_and_never_applied() {
    // A learning rate this large blows the weights up after one step: the next bf16 step is not
    // finite, is redone in float32 with a warning, and (still not finite) stops the run with advice.
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("diverged.safetensors");
    let settings = TrainSettings { learning_rate: 1e12, precision: Precision::MixedBfloat16, ..small_settings() };
    let mut recorder = Recorder::default();
    let err = train(&mut simulated(60, 32, 2), &settings, &output, None, Device::Cpu, &mut recorder).unwrap_err();
    let redone: Vec<_> = recorder.warnings.iter().filter(|w| w.contains("redone in float32")).collect();
    assert_eq!(redone.len(), 1, "{:?}", recorder.warnings);
    assert!(redone[0].starts_with("epoch 1, iteration "), "{}", redone[0]);
    assert!(err.to_string().contains("lower the learning rate"), "{err}");
    assert!(
        !err.is_bad_input() && err.kind() == "training",
        "divergence is a failure while working, not bad usage: {err:?}"
    );
    assert!(!output.exists(), "a diverged first epoch writes no bundle");
}

#[test]
fn float32_training_is_bit_reproducible_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let output = dir.path().join(name);
        let settings = TrainSettings { precision: Precision::Float32, seed: 21, ..small_settings() };
        let report = train(&mut simulated(60, 32, 2), &settings, &output, None, Device::Cpu, &mut Silent).unwrap();
        (
            report.history.iter().map(|r| (r.train_loss, r.validation_loss)).collect::<Vec<_>>(),
            Model::load(&output, Device::Cpu).unwrap(),
        )
    };
    let (losses_a, model_a) = run("a.safetensors");
    let (losses_b, model_b) = run("b.safetensors");
    assert_eq!(losses_a, losses_b);
    assert!(weights(&model_a) == weights(&model_b), "weights differ between identical float32 runs");
    assert_eq!(model_a.metadata.training.settings["precision"], serde_json::json!("float32"));
}

#[test]
fn auto_precision_resolves_per_device_and_old_settings_default_to_it() {
    assert_eq!(Precision::Float32.resolve(Device::Cpu), Precision::Float32);
    assert_eq!(Precision::MixedBfloat16.resolve(Device::Cpu), Precision::MixedBfloat16);
    assert_eq!(Precision::Auto.resolve(Device::Cuda(0)), Precision::Float32, "bf16 is unmeasured on GPUs");
    let native = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default().contains("avx512_bf16");
    let expected = if native { Precision::MixedBfloat16 } else { Precision::Float32 };
    assert_eq!(Precision::Auto.resolve(Device::Cpu), expected);
    // Bundles written before the setting existed read back with the default.
    let old: TrainSettings = serde_json::from_value(serde_json::json!({"patch": [16, 32, 32], "seed": 4})).unwrap();
    assert_eq!(old.precision, Precision::Auto);
    let named: TrainSettings = serde_json::from_value(serde_json::json!({"precision": "mixed_bfloat16"})).unwrap();
    assert_eq!(named.precision, Precision::MixedBfloat16);
}

// ---------------------------------------------------------------- time budget, loss, checks

#[test]
fn a_time_budget_ends_the_run_early_with_a_saved_validated_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("budget.safetensors");
    // Far more epochs than 2 s allow; the budget must end the run, not the epoch count.
    let settings = TrainSettings {
        epochs: deepcad::train::EPOCHS_UNTIL_TIME_BUDGET,
        time_budget_seconds: Some(2.0),
        patches_per_epoch: 400,
        ..small_settings()
    };
    let mut recorder = Recorder::default();
    let report = train(&mut simulated(80, 32, 2), &settings, &output, None, Device::Cpu, &mut recorder).unwrap();
    // No step starts once the budget is spent: every step but the first began after the one before
    // it had reported, at a check that found time left. (Wall time itself depends on the machine's
    // load, so it is not asserted.)
    let began = recorder.began_at.expect("a Begin event");
    let steps = &recorder.advanced_at;
    assert!(!steps.is_empty() && steps.len() < 400 * 50, "{} steps", steps.len());
    if steps.len() >= 2 {
        let before_last_step = steps[steps.len() - 2].duration_since(began).as_secs_f64();
        // The slack covers the moment between the Begin event and the trainer's clock starting.
        assert!(before_last_step < 2.0 + 0.5, "a step started {before_last_step:.2} s into a 2 s budget");
    }
    assert!(report.epochs_completed >= 1 && report.epochs_completed < 50, "{}", report.epochs_completed);
    assert_eq!(recorder.total, 0, "an open-ended run announces no iteration total");
    assert!(recorder.epoch_totals.iter().all(|&t| t == 0), "{:?}", recorder.epoch_totals);
    assert_eq!(*recorder.remaining.last().unwrap(), 0.0);
    assert!(recorder.infos.iter().any(|i| i.contains("time budget of 2 s spent")), "{:?}", recorder.infos);
    let model = Model::load(&output, Device::Cpu).unwrap();
    assert_eq!(model.metadata.training.epochs_completed, report.epochs_completed);
    assert!(model.metadata.training.history.iter().all(|e| e.validation_loss.is_finite()));
    assert!(best_bundle_path(&output).exists());
    assert_eq!(model.metadata.training.settings["time_budget_seconds"], serde_json::json!(2.0));
}

#[test]
fn with_epochs_and_no_budget_the_estimate_counts_down_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let settings = TrainSettings { epochs: 3, ..small_settings() };
    let mut recorder = Recorder::default();
    train(&mut simulated(60, 32, 2), &settings, &dir.path().join("m.safetensors"), None, Device::Cpu, &mut recorder)
        .unwrap();
    assert_eq!(recorder.epoch_totals, vec![3, 3, 3]);
    let (r, speed) = (&recorder.remaining, &recorder.iterations_per_second);
    assert!(r[0] > 0.0 && r[1] > 0.0 && r[2] == 0.0, "{r:?}");
    // The estimate counts the iterations left (2 epochs, then 1) at the last epoch's speed; a
    // comparison of the seconds themselves would depend on how fast each epoch happened to run.
    let iterations_left: Vec<f64> = r.iter().zip(speed).map(|(seconds, speed)| seconds * speed).collect();
    assert!((iterations_left[0] - 2.0 * iterations_left[1]).abs() < 1e-6 * iterations_left[0], "{iterations_left:?}");
}

#[test]
fn a_bad_time_budget_is_refused_before_any_work() {
    for budget in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        let settings = TrainSettings { time_budget_seconds: Some(budget), ..small_settings() };
        let err = settings.validate().unwrap_err();
        assert!(matches!(err, Error::Usage(_)) && err.to_string().contains("time budget"), "{budget}: {err}");
    }
}

#[test]
fn the_default_loss_is_mean_squared_error_and_the_reference_loss_differs() {
    assert_eq!(TrainSettings::default().loss, deepcad::train::Loss::Mse);
    let dir = tempfile::tempdir().unwrap();
    let run = |loss, name: &str| {
        let settings = TrainSettings { epochs: 1, loss, precision: Precision::Float32, ..small_settings() };
        train(&mut simulated(60, 32, 2), &settings, &dir.path().join(name), None, Device::Cpu, &mut Silent).unwrap()
    };
    let mse = run(deepcad::train::Loss::Mse, "mse.safetensors");
    let reference = run(deepcad::train::Loss::L1Mse, "l1.safetensors");
    // Same data and seed: only the loss differs, so the recorded losses must too.
    assert_ne!(mse.history[0].train_loss, reference.history[0].train_loss);
    let recorded = Model::load(&dir.path().join("l1.safetensors"), Device::Cpu).unwrap().metadata.training.settings;
    assert_eq!(recorded["loss"], serde_json::json!("l1-mse"));
}

#[test]
fn training_reports_reference_free_checks_on_held_out_patches() {
    let dir = tempfile::tempdir().unwrap();
    let settings = TrainSettings { epochs: 2, ..small_settings() };
    let mut recorder = Recorder::default();
    let report = train(
        &mut simulated(60, 32, 2),
        &settings,
        &dir.path().join("m.safetensors"),
        None,
        Device::Cpu,
        &mut recorder,
    )
    .unwrap();
    let checks = report.checks.expect("patches were held out, so the checks ran");
    assert!(checks.patches >= 1 && checks.patches <= deepcad::train::model_checks::CHECKED_PATCHES);
    assert!(checks.residual_lag1_autocorrelation.abs() < 1.0);
    let ratio = checks.held_out_ratio.expect("a held-out ratio");
    assert!(ratio > 0.2 && ratio < 5.0, "{ratio}");
    // Shot noise on simulated data: residual variance rises with intensity (gain 2 in the simulation).
    assert!(checks.noise_gain > 0.0, "{checks:?}");
    // One line per check, each saying what it measured and how to read it.
    let lines: Vec<_> = recorder.infos.iter().filter(|i| i.starts_with("check: ")).collect();
    for check in
        ["residual lag-1", "residual variance vs intensity", "event loss", "detail kept", "held-out / training"]
    {
        let line = lines.iter().find(|l| l.starts_with(&format!("check: {check}")));
        assert!(line.is_some_and(|l| l.contains('(')), "no explained '{check}' line in {lines:?}");
    }
    // And what denoising the training movie will do about fast events: 60 frames are too few to tell.
    assert_eq!(report.event_timescales, vec![deepcad::infer::event_timescale::EventTimescale::TooShort { frames: 60 }]);
    assert!(lines.iter().any(|l| l.starts_with("check: denoising ") && l.contains("too few to measure")), "{lines:?}");
    assert_eq!(lines.len(), 6, "{lines:?}");
}
