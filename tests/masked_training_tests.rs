//! Masked-voxel training (issue 23): a masked voxel's output never sees its own value (autograd,
//! through the real network), a short training denoises a simulated movie, the bundle records the
//! method, and denoising is the plain U-Net's, so a masked model denoises exactly as the same
//! weights described as interlaced do, in the engine's and the official pipelines' forms.

use deepcad::infer::official_pipeline::{denoise_official, CompatSettings, OfficialPipeline};
use deepcad::infer::{denoise_source_to_memory, DenoiseSettings};
use deepcad::io::{InMemoryMovie, SampleType};
use deepcad::metrics;
use deepcad::model::{Model, ModelMetadata, Normalization, SelfSupervision};
use deepcad::progress::Silent;
use deepcad::train::masked_voxels::{blind_prediction, draw_mask, masked_input};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::util::{deepcad, deepcad_logged, deepcad_ok, p, read_movie, seeded_model, text};

/// A small U-Net with weights from `seed` alone (libtorch's generator is shared by parallel
/// tests, so `manual_seed` could not pin them) and a movie patch `shape` of values from `seed`.
fn model_and_patch(seed: u64, shape: [i64; 5]) -> (Model, Tensor) {
    let metadata = ModelMetadata::new(4, [8, 16, 16], Normalization::Fixed { offset: 0.0, scale: 1.0 });
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f32> = (0..shape.iter().product::<i64>()).map(|_| rng.random_range(0.0..1.0)).collect();
    (seeded_model(metadata, seed), Tensor::from_slice(&values).reshape(shape))
}

/// The principle, proved by autograd through the real network: the output at a masked voxel
/// does not depend on the raw value there, through any path (the replacement, a neighbour's
/// replacement, the U-Net), while an unmasked voxel's output does depend on its own value.
#[test]
fn a_masked_voxels_output_never_sees_its_own_value() {
    let shape = [1, 1, 8, 16, 16];
    let (model, x) = model_and_patch(7, shape);
    let x = x.set_requires_grad(true);
    let mut mask = vec![0f32; shape.iter().product::<i64>() as usize];
    draw_mask(&mut ChaCha8Rng::seed_from_u64(11), &mut mask);
    let mask = Tensor::from_slice(&mask).reshape(shape);
    // Clustered masks too: neighbours masked together must not leak into each other.
    let _ = mask.get(0).get(0).get(4).narrow(0, 6, 3).narrow(1, 6, 3).fill_(1.0);
    let out = model.pair_forward(&masked_input(&x, &mask).unwrap(), &x).unwrap();
    let masked_sum = out.multiply(&mask).sum(Kind::Float);
    let grads = Tensor::run_backward(&[masked_sum], &[&x], true, false);
    let leaked = grads[0].multiply(&mask).abs().max().double_value(&[]);
    assert_eq!(leaked, 0.0, "a masked voxel's output depends on its own raw value");
    // The U-Net does use a voxel's own value where it is not masked.
    let keep = mask.neg() + 1.0;
    let unmasked_sum = out.multiply(&keep).sum(Kind::Float);
    let grads = Tensor::run_backward(&[unmasked_sum], &[&x], false, false);
    assert!(grads[0].multiply(&keep).abs().sum(Kind::Float).double_value(&[]) > 0.0);
}

/// The training report's blind prediction: each voxel from its surroundings, never from itself.
#[test]
fn the_blind_prediction_of_a_voxel_never_sees_its_own_value() {
    let (model, x) = model_and_patch(5, [1, 1, 8, 16, 16]);
    let x = x.set_requires_grad(true);
    let prediction = blind_prediction(&model, &x).unwrap();
    for (t, y, xx) in [(3, 5, 7), (0, 0, 0), (7, 15, 14), (4, 8, 9)] {
        let one = prediction.get(0).get(0).get(t).get(y).get(xx);
        let grad = Tensor::run_backward(&[one], &[&x], true, false).remove(0);
        let own = grad.get(0).get(0).get(t).get(y).get(xx).double_value(&[]);
        assert_eq!(own, 0.0, "voxel ({t}, {y}, {xx}) sees itself");
        assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0, "it sees its surroundings");
    }
}

#[test]
fn a_short_masked_training_denoises_and_its_model_runs_as_a_plain_u_net() {
    let dir = tempfile::tempdir().unwrap();
    let (noisy, truth, model) =
        (dir.path().join("noisy.tif"), dir.path().join("truth.tif"), dir.path().join("m.safetensors"));
    #[rustfmt::skip]
    deepcad_ok(&["simulate", "-o", p(&noisy), "--truth", p(&truth), "--width", "64", "--height", "64", "--frames", "160",
        "--neurons", "10", "--photons", "2", "--seed", "3"]);
    #[rustfmt::skip]
    deepcad_ok(&["train", p(&noisy), "-o", p(&model), "--method", "masked", "--init", "random", "--epochs", "3",
        "--patch-t", "16", "--patch-xy", "32", "--patches-per-epoch", "24", "--seed", "1", "--device", "cpu"]);
    let masked = Model::load(&model, Device::Cpu).unwrap();
    assert_eq!(masked.metadata.method, SelfSupervision::Masked);
    assert_eq!(masked.metadata.training.settings["method"], "masked", "the settings record the method that ran");
    assert!(masked.hybrid.is_none(), "a masked model is the plain U-Net");

    let denoised = dir.path().join("d.tif");
    deepcad_ok(&["denoise", p(&noisy), "--model", p(&model), "-o", p(&denoised), "--float32", "--device", "cpu"]);
    let (raw, clean, out) = (read_movie(&noisy), read_movie(&truth), read_movie(&denoised));
    let (snr_raw, snr_out) = (metrics::snr_db(&raw, &clean).unwrap(), metrics::snr_db(&out, &clean).unwrap());
    eprintln!("masked, 3 short epochs: SNR raw {snr_raw:.2} dB, denoised {snr_out:.2} dB");
    assert!(snr_out > snr_raw + 3.0, "denoised {snr_out:.2} dB vs raw {snr_raw:.2} dB");

    // The same weights as an interlaced model denoise identically, in the engine and in --compat.
    let as_interlaced = {
        let mut m = Model::load(&model, Device::Cpu).unwrap();
        m.metadata = m.metadata.clone().with_method(SelfSupervision::Interlaced);
        m
    };
    let [t, h, w] = [32, 32, 32];
    let movie: Vec<f32> = raw[..t * h * w].to_vec();
    let engine = |m: &Model| {
        let mut source = InMemoryMovie::new("m", w, h, t, SampleType::F32, movie.clone()).unwrap();
        denoise_source_to_memory(m, &mut source, &DenoiseSettings::default(), &mut Silent).unwrap().0
    };
    assert_eq!(engine(&masked), engine(&as_interlaced));
    let compat = CompatSettings::new(OfficialPipeline::DeepcadRt, Some([16, 16, 16]), None, None).unwrap();
    let official = |m: &Model| denoise_official(m, &movie, [t, h, w], &compat, &mut Silent).unwrap();
    assert_eq!(official(&masked), official(&as_interlaced));
}

#[test]
fn the_built_in_model_fine_tuned_masked_keeps_its_u_net_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (noisy, model) = (dir.path().join("noisy.tif"), dir.path().join("m.safetensors"));
    #[rustfmt::skip]
    deepcad_ok(&["simulate", "-o", p(&noisy), "--width", "48", "--height", "48", "--frames", "96", "--neurons", "4",
        "--photons", "2", "--seed", "5"]);
    #[rustfmt::skip]
    let out = deepcad_logged(&["train", p(&noisy), "-o", p(&model), "--method", "masked", "--epochs", "1",
        "--patch-t", "16", "--patch-xy", "32", "--patches-per-epoch", "4", "--seed", "1", "--device", "cpu"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("method masked: the model's U-Net"), "{}", text(&out));
    assert_eq!(Model::read_metadata(&model).unwrap().method, SelfSupervision::Masked);
    let info = text(&deepcad(&["info", p(&model)]));
    assert!(info.lines().any(|l| l.starts_with("method:") && l.ends_with("masked")), "{info}");
}
