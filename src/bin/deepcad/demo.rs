//! `deepcad demo`: the whole job on a built-in example. Simulates a noisy two-photon movie with
//! ground truth, trains briefly, denoises, prints SNR of raw, a 5-frame temporal mean and the
//! denoised movie against the truth, and writes a raw | denoised | truth picture.

use deepcad::infer::{denoise_file_to_file, DenoiseSettings, OutputType};
use deepcad::io::{read_stack, write_preview_png, Panel, ReadOptions};
use deepcad::metrics;
use deepcad::progress::{report, Event, Progress};
use deepcad::simulate::SimulationConfig;
use deepcad::train::{open_training_inputs, TrainSettings};
use deepcad::{Error, Result};

use crate::args::DemoArgs;

pub fn run(a: DemoArgs, progress: &mut dyn Progress) -> Result<()> {
    let device = crate::setup_compute(&a.compute, progress)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let noisy_path = a.out.join("noisy.tif");
    let truth_path = a.out.join("truth.tif");
    let model_path = a.out.join("model.safetensors");
    let denoised_path = a.out.join("denoised.tif");
    let picture_path = a.out.join("demo.png");

    let config = SimulationConfig {
        width: 96,
        height: 96,
        frames: 300,
        neurons: 20,
        photons: a.photons,
        seed: 1,
        ..Default::default()
    };
    report(
        progress,
        Event::Info(&format!(
            "simulating {}×{}×{} frames at {} photons",
            config.width, config.height, config.frames, config.photons
        )),
    )?;
    // The demo folder is the demo's own: a rerun replaces its files.
    deepcad::simulate::write_simulation(
        &config,
        &deepcad::simulate::SimulationFiles {
            noisy: &noisy_path,
            truth: Some(&truth_path),
            labels: None,
            spikes: None,
            overwrite: true,
        },
        progress,
    )?;

    let settings = TrainSettings {
        patch: [32, 64, 64],
        patches_per_epoch: 60,
        epochs: a.epochs,
        overwrite: true,
        ..Default::default()
    };
    let mut sources = open_training_inputs(&noisy_path, progress)?;
    deepcad::train::train(&mut sources, &settings, &model_path, None, device, progress)?;
    let model = deepcad::model::Model::load(&model_path, device)?;
    let denoise = DenoiseSettings { output_type: OutputType::Float32, overwrite: true, ..Default::default() };
    denoise_file_to_file(&model, &noisy_path, &denoised_path, &ReadOptions::default(), &denoise, progress)?;

    let (_, noisy) = read_stack(&noisy_path, &ReadOptions::default())?;
    let (_, truth) = read_stack(&truth_path, &ReadOptions::default())?;
    let (_, denoised) = read_stack(&denoised_path, &ReadOptions::default())?;
    let (w, h) = (config.width, config.height);
    let mean5 = metrics::temporal_moving_average(&noisy, w, h, 5)?;
    println!("SNR against ground truth (dB):");
    println!("  raw                 {:6.2}", metrics::snr_db(&noisy, &truth)?);
    println!("  5-frame mean        {:6.2}", metrics::snr_db(&mean5, &truth)?);
    println!("  denoised (DeepCAD)  {:6.2}", metrics::snr_db(&denoised, &truth)?);
    let frame = config.frames / 2;
    let slice = |v: &[f32]| v[frame * w * h..(frame + 1) * w * h].to_vec();
    let (a1, b1, c1) = (slice(&noisy), slice(&denoised), slice(&truth));
    write_preview_png(
        &picture_path,
        &[
            Panel { pixels: &a1, width: w, height: h },
            Panel { pixels: &b1, width: w, height: h },
            Panel { pixels: &c1, width: w, height: h },
        ],
        3,
    )?;
    println!("picture (raw | denoised | ground truth, frame {frame}): {}", picture_path.display());
    Ok(())
}
