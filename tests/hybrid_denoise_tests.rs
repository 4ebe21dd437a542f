//! Denoising with a hybrid model: tiled and streamed runs equal the whole-movie run, a short
//! training on a simulated movie beats the raw movie, and the doors that cannot express the hybrid
//! forward (the official pipelines, bioimage.io) refuse it by name.

use deepcad::infer::official_pipeline::{denoise_official, CompatSettings, OfficialPipeline};
use deepcad::infer::{denoise_source_to_memory, DenoiseSettings};
use deepcad::io::{InMemoryMovie, SampleType};
use deepcad::metrics;
use deepcad::model::export_bioimageio::{export_bioimageio, ExportOptions};
use deepcad::model::{Model, ModelMetadata, Normalization, SelfSupervision};
use deepcad::progress::Silent;
use tch::Device;

use crate::util::{deepcad_ok, p, read_movie};

/// A small hybrid model with every weight random (the head's zero output layer too, so the blind
/// spot contributes and a tiling mistake there would show).
fn random_hybrid_model() -> Model {
    tch::manual_seed(17);
    let metadata = ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 500.0, scale: 300.0 });
    let model = Model::new(metadata.with_method(SelfSupervision::Hybrid), Device::Cpu).unwrap();
    tch::no_grad(|| {
        for (name, mut var) in model.vs.variables() {
            if name.starts_with("BlindSpot.output") {
                let _ = var.normal_(0.0, 0.5);
            }
        }
    });
    model
}

fn random_movie(t: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..t * h * w).map(|_| rng.random_range(0.0..1000.0)).collect()
}

fn max_relative_difference(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().map(|v| v.abs() as f64).fold(0.0, f64::max).max(1e-12);
    a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).fold(0.0, f64::max) / scale
}

fn assert_tiled_equals_whole(shape: [usize; 3], settings: &[DenoiseSettings]) {
    let model = random_hybrid_model();
    let [t, h, w] = shape;
    let data = random_movie(t, h, w, 1);
    let run = |settings: &DenoiseSettings| {
        let mut movie = InMemoryMovie::new("random", w, h, t, SampleType::F32, data.clone()).unwrap();
        denoise_source_to_memory(&model, &mut movie, settings, &mut Silent).unwrap().0
    };
    let padded = |n: usize| n.div_ceil(8) * 8;
    let whole = run(&DenoiseSettings { tile: Some([padded(t), padded(h), padded(w)]), ..Default::default() });
    assert_eq!(whole.len(), t * h * w);
    assert!(whole.iter().all(|v| v.is_finite()));
    for settings in settings {
        let tiled = run(settings);
        let error = max_relative_difference(&tiled, &whole);
        assert!(error < 1e-4, "shape {shape:?}, {settings:?}: tiled vs whole relative difference {error}");
    }
}

#[test]
fn hybrid_tiles_along_time_equal_the_whole_movie() {
    // The temporal halo is 104: 232-frame tiles keep 24 frames each, so tiles start on frames
    // 0, 24, 48...: every other one is 4 frames off the parity passes' 8-frame grid. 403 frames
    // mirror to 408 at the end, where the last tile snaps.
    let tiled = DenoiseSettings { tile: Some([232, 24, 24]), ..Default::default() };
    let sequential = DenoiseSettings { pipelined: false, ..tiled.clone() };
    assert_tiled_equals_whole([403, 20, 20], &[tiled, sequential]);
}

#[test]
fn hybrid_tiles_in_space_and_batches_equal_the_whole_movie() {
    // Mirrored rows and columns past 150×141, tiles batched two at a time, and the low-memory
    // slabs of a tight budget.
    let batched = DenoiseSettings { tile: Some([24, 120, 112]), batch_size: 2, ..Default::default() };
    let tight = DenoiseSettings { tile: Some([24, 120, 112]), max_memory_bytes: 256 << 20, ..Default::default() };
    assert_tiled_equals_whole([21, 150, 141], &[batched, tight]);
}

#[test]
fn a_hybrid_model_refuses_a_single_frame_and_the_doors_that_cannot_express_it() {
    let model = random_hybrid_model();
    let mut one_frame = InMemoryMovie::new("one", 16, 16, 1, SampleType::F32, random_movie(1, 16, 16, 2)).unwrap();
    let error = denoise_source_to_memory(&model, &mut one_frame, &DenoiseSettings::default(), &mut Silent).unwrap_err();
    assert!(error.to_string().contains("at least 2 frames"), "{error}");

    let compat = CompatSettings::new(OfficialPipeline::DeepcadRt, Some([16, 16, 16]), None, None).unwrap();
    let movie = random_movie(32, 16, 16, 3);
    let error = denoise_official(&model, &movie, [32, 16, 16], &compat, &mut Silent).unwrap_err().to_string();
    assert!(error.contains("--compat") && error.contains("hybrid"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("package.zip");
    let error = export_bioimageio(&model, &output, &ExportOptions::default()).unwrap_err().to_string();
    assert!(error.contains("export-bioimageio") && error.contains("hybrid"), "{error}");
    assert!(!output.exists());
}

#[test]
fn a_short_hybrid_training_denoises_a_simulated_movie_better_than_the_raw_movie() {
    let dir = tempfile::tempdir().unwrap();
    let (noisy, truth, model, denoised) = (
        dir.path().join("noisy.tif"),
        dir.path().join("truth.tif"),
        dir.path().join("m.safetensors"),
        dir.path().join("d.tif"),
    );
    #[rustfmt::skip]
    deepcad_ok(&["simulate", "-o", p(&noisy), "--truth", p(&truth), "--width", "64", "--height", "64", "--frames", "160",
        "--neurons", "10", "--photons", "2", "--seed", "3"]);
    #[rustfmt::skip]
    deepcad_ok(&["train", p(&noisy), "-o", p(&model), "--method", "hybrid", "--epochs", "2", "--patch-t", "16", "--patch-xy", "32",
        "--patches-per-epoch", "24", "--seed", "1", "--device", "cpu"]);
    let metadata = Model::read_metadata(&model).unwrap();
    assert_eq!(metadata.method, SelfSupervision::Hybrid);
    assert_eq!(metadata.training.settings["method"], "hybrid", "the settings record the method that ran");

    deepcad_ok(&["denoise", p(&noisy), "--model", p(&model), "-o", p(&denoised), "--float32", "--device", "cpu"]);
    let (raw, clean, out) = (read_movie(&noisy), read_movie(&truth), read_movie(&denoised));
    assert_eq!(out.len(), raw.len(), "one output frame per input frame");
    assert!(out.iter().all(|v| v.is_finite()));
    let (snr_raw, snr_out) = (metrics::snr_db(&raw, &clean).unwrap(), metrics::snr_db(&out, &clean).unwrap());
    eprintln!("hybrid, 2 short epochs: SNR raw {snr_raw:.2} dB, denoised {snr_out:.2} dB");
    assert!(snr_out > snr_raw + 3.0, "denoised {snr_out:.2} dB vs raw {snr_raw:.2} dB");
}
