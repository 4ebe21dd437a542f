//! Denoising precision (`model::precision`): bfloat16 runs where the CPU computes it natively, is
//! refused clearly where it does not, stays close to float32 and repeats bit for bit.
use deepcad::infer::{denoise_source_to_memory, DenoiseSettings};
use deepcad::io::{InMemoryMovie, SampleType};
use deepcad::model::precision::InferencePrecision;
use deepcad::model::{Model, BUILT_IN_MODEL};
use deepcad::progress::Silent;
use deepcad::simulate::{SimulationConfig, Simulator};
use tch::Device;

/// A small simulated two-photon movie (noisy counts), `[t, h, w]` = 24×48×40.
fn simulated_movie() -> (usize, usize, usize, Vec<f32>) {
    let (t, h, w) = (24, 48, 40);
    let sim =
        Simulator::new(&SimulationConfig { width: w, height: h, frames: t, seed: 5, ..Default::default() }).unwrap();
    let (mut clean, mut noisy) = (vec![0f32; w * h], vec![0f32; w * h]);
    let mut data = Vec::with_capacity(t * h * w);
    for f in 0..t {
        sim.frame(f, &mut clean, &mut noisy);
        data.extend_from_slice(&noisy);
    }
    (t, h, w, data)
}

fn denoise(model: &Model, precision: InferencePrecision) -> deepcad::Result<Vec<f32>> {
    let (t, h, w, data) = simulated_movie();
    let mut movie = InMemoryMovie::new("sim", w, h, t, SampleType::F32, data).unwrap();
    let settings = DenoiseSettings { precision, ..Default::default() };
    denoise_source_to_memory(model, &mut movie, &settings, &mut Silent).map(|(values, _)| values)
}

#[test]
fn bfloat16_denoising_is_close_to_float32_and_repeats_bit_for_bit_or_is_refused_by_name() {
    let model = Model::load(std::path::Path::new(BUILT_IN_MODEL), Device::Cpu).unwrap();
    if !deepcad::device::has_native_bfloat16(Device::Cpu) {
        let error = denoise(&model, InferencePrecision::Bfloat16).unwrap_err().to_string();
        assert!(error.contains("bfloat16") && error.contains("float32"), "{error}");
        return;
    }
    let float32 = denoise(&model, InferencePrecision::Float32).unwrap();
    let first = denoise(&model, InferencePrecision::Bfloat16).unwrap();
    let second = denoise(&model, InferencePrecision::Bfloat16).unwrap();
    assert!(first.iter().zip(&second).all(|(a, b)| a.to_bits() == b.to_bits()), "two bfloat16 runs differ");
    // Against float32: a small error relative to the output's spread (bfloat16 keeps 8 bits).
    let mean = float32.iter().map(|&v| v as f64).sum::<f64>() / float32.len() as f64;
    let spread = (float32.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / float32.len() as f64).sqrt();
    let rms = (first.iter().zip(&float32).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>()
        / float32.len() as f64)
        .sqrt();
    assert!(rms > 0.0, "bfloat16 gave exactly float32's numbers: it did not run in bfloat16");
    assert!(rms < 0.02 * spread, "bfloat16 differs from float32 by rms {rms}, against a spread of {spread}");
}

#[test]
#[ignore = "needs a CPU with native bfloat16 (AVX512-BF16 or AMX): scripts/test.sh runs --ignored bf16_native_ where /proc/cpuinfo lists one"]
fn bf16_native_a_bfloat16_run_plans_larger_tiles_within_the_same_memory_budget() {
    assert!(
        deepcad::device::has_native_bfloat16(Device::Cpu),
        "this CPU has no native bfloat16, which this test needs"
    );
    let model = Model::load(std::path::Path::new(BUILT_IN_MODEL), Device::Cpu).unwrap();
    let bfloat16 = deepcad::model::precision::inference_model(&model, InferencePrecision::Bfloat16).unwrap().unwrap();
    let movie = InMemoryMovie::new("long", 160, 160, 400, SampleType::U16, vec![0.0; 400 * 160 * 160]).unwrap();
    let settings = DenoiseSettings { max_memory_bytes: 512 << 20, ..Default::default() };
    let tile_voxels = |model: &Model| -> usize {
        deepcad::infer::plan_blocks(model, &movie, 1, &settings).unwrap().tile.iter().product()
    };
    let (float32, bf16) = (tile_voxels(&model), tile_voxels(&bfloat16));
    // Its activations take about 0.6 of float32's bytes, so a larger tile fits the same budget.
    assert!(bf16 > float32, "bfloat16 tile {bf16} voxels, float32 {float32}");
}

#[test]
fn a_bfloat16_run_leaves_later_float32_runs_unchanged() {
    // A host (Fiji) runs many denoisings in one process: a bfloat16 run must not change what a
    // later float32 run (an official pipeline always runs in float32) computes.
    let model = Model::load(std::path::Path::new(BUILT_IN_MODEL), Device::Cpu).unwrap();
    let (t, h, w, data) = simulated_movie();
    let official = || {
        let compat = deepcad::infer::official_pipeline::CompatSettings::new(
            deepcad::infer::official_pipeline::OfficialPipeline::DeepcadRt,
            Some([16, 32, 32]),
            Some(0.5),
            None,
        )
        .unwrap();
        let settings = DenoiseSettings { compat: Some(compat), ..Default::default() };
        let mut movie = InMemoryMovie::new("sim", w, h, t, SampleType::F32, data.clone()).unwrap();
        deepcad::infer::denoise_source_to_memory(&model, &mut movie, &settings, &mut Silent).unwrap().0
    };
    let before = official();
    let after_float32 = {
        denoise(&model, InferencePrecision::Float32).unwrap();
        official()
    };
    assert!(before == after_float32, "a float32 run changed a later official run");
    if deepcad::device::has_native_bfloat16(Device::Cpu) {
        denoise(&model, InferencePrecision::Bfloat16).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let settings = deepcad::train::TrainSettings {
            patch: [16, 32, 32],
            base_width: 16,
            epochs: 1,
            patches_per_epoch: 4,
            normalization: deepcad::train::NormalizationChoice::PerMovie,
            ..crate::train_loop_tests::small_settings()
        };
        let mut sources = crate::train_loop_tests::simulated(60, 32, 2);
        deepcad::train::train(
            &mut sources,
            &settings,
            &dir.path().join("m.safetensors"),
            None,
            Device::Cpu,
            &mut Silent,
        )
        .unwrap();
        let after = official();
        let worst = before.iter().zip(&after).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(before == after, "a bfloat16 run changed a later official run by up to {worst}");
    }
}
