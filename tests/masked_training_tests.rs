//! Masked-voxel training (issue 23): a short training denoises a simulated movie, the bundle
//! records the method, and denoising is the plain U-Net's, so a masked model denoises exactly as
//! the same weights described as interlaced do, in the engine's and the official pipelines' forms.

use deepcad::infer::official_pipeline::{denoise_official, CompatSettings, OfficialPipeline};
use deepcad::infer::{denoise_source_to_memory, DenoiseSettings};
use deepcad::io::{InMemoryMovie, SampleType};
use deepcad::metrics;
use deepcad::model::{Model, SelfSupervision};
use deepcad::progress::Silent;
use tch::Device;

use crate::util::{deepcad, deepcad_logged, deepcad_ok, p, read_movie, text};

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
