//! Evaluation: baselines, regions, reference-free residual checks, and `deepcad score`.

use std::path::Path;
use std::process::Command;

use deepcad::evaluation::{
    best_baseline, event_loss, footprints_from_labels, gaussian_3d, labels_from_footprints, residual_checks, score,
    BaselineFamily, BaselineKind, Criterion,
};
use deepcad::io::{read_stack, ReadOptions};
use deepcad::metrics::{snr_db, trace_correlations};
use deepcad::simulate::{simulate, Indicator, SimulationConfig, Simulator};

fn small_movie(photons: f64) -> (SimulationConfig, Vec<f32>, Vec<f32>) {
    let config =
        SimulationConfig { width: 48, height: 40, frames: 120, neurons: 6, photons, seed: 3, ..Default::default() };
    let (clean, noisy) = simulate(&config).unwrap();
    (config, clean, noisy)
}

#[test]
fn gaussian_3d_keeps_a_constant_movie_and_shrinks_white_noise() {
    let (w, h, t) = (20, 16, 30);
    let flat = vec![7.5f32; w * h * t];
    let out = gaussian_3d(&flat, w, h, 2.0, 1.0).unwrap();
    assert!(out.iter().all(|&v| (v - 7.5).abs() < 1e-4), "borders must be renormalised, not darkened");

    // Deterministic pseudo-noise with unit variance; a σt 2, σxy 1 Gaussian averages ≈ 2·√π·2·(2·√π·1)² ≈ 89 voxels.
    let noise: Vec<f32> = (0..w * h * t).map(|i| ((i as f32 * 12.9898).sin() * 43758.547).fract() * 3.4641).collect();
    let var = |m: &[f32]| {
        let mean = m.iter().map(|&v| v as f64).sum::<f64>() / m.len() as f64;
        m.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / m.len() as f64
    };
    let ratio = var(&gaussian_3d(&noise, w, h, 2.0, 1.0).unwrap()) / var(&noise);
    assert!(ratio < 0.05, "noise variance kept {ratio}");
    assert!(gaussian_3d(&noise, w, h, 0.0, 1.0).is_err());
    assert!(gaussian_3d(&noise[..100], w, h, 1.0, 1.0).is_err());
}

#[test]
fn best_baselines_beat_raw_and_report_their_setting() {
    let (config, clean, noisy) = small_movie(2.0);
    let raw_snr = snr_db(&noisy, &clean).unwrap();
    for family in BaselineFamily::ALL {
        let best = best_baseline(&noisy, &clean, config.width, config.height, family, Criterion::Snr).unwrap();
        let snr = snr_db(&best.movie, &clean).unwrap();
        assert!(snr > raw_snr + 5.0, "{family:?} {:?}: {snr} dB vs raw {raw_snr}", best.kind);
        // Best means best: no other candidate of the family scores higher.
        let other = match best.kind {
            BaselineKind::MovingAverage { .. } => {
                deepcad::metrics::temporal_moving_average(&noisy, config.width, config.height, 3)
            }
            BaselineKind::Gaussian3d { .. } => gaussian_3d(&noisy, config.width, config.height, 1.0, 0.5),
        }
        .unwrap();
        assert!(snr >= snr_db(&other, &clean).unwrap());
    }
}

#[test]
fn the_trace_criterion_picks_the_width_with_the_best_neuron_traces() {
    let (config, clean, noisy) = small_movie(2.0);
    let simulator = Simulator::new(&config).unwrap();
    let neurons = simulator.footprints().to_vec();
    let median = |movie: &[f32]| {
        deepcad::metrics::median(&trace_correlations(movie, &clean, config.width, config.height, &neurons).unwrap())
            .unwrap()
    };
    let best = best_baseline(
        &noisy,
        &clean,
        config.width,
        config.height,
        BaselineFamily::MovingAverage,
        Criterion::TraceCorrelation(&neurons),
    )
    .unwrap();
    let chosen = median(&best.movie);
    for window in deepcad::evaluation::MOVING_AVERAGE_WINDOWS {
        let other = deepcad::metrics::temporal_moving_average(&noisy, config.width, config.height, window).unwrap();
        assert!(chosen >= median(&other), "window {window} has better traces than the chosen {:?}", best.kind);
    }
}

#[test]
fn labels_round_trip_to_footprints_and_bad_labels_are_named() {
    let config = SimulationConfig { width: 64, height: 48, frames: 2, neurons: 5, seed: 1, ..Default::default() };
    let simulator = Simulator::new(&config).unwrap();
    let labels = labels_from_footprints(simulator.footprints(), 64 * 48, 0.5);
    let footprints = footprints_from_labels(&labels, 64, 48).unwrap();
    assert!(!footprints.is_empty() && footprints.len() <= 5);
    for (n, footprint) in footprints.iter().enumerate() {
        for &(index, weight) in &footprint.pixels {
            assert_eq!(labels[index], (n + 1) as f32);
            assert_eq!(weight, 1.0);
        }
    }
    let labelled: usize = footprints.iter().map(|f| f.pixels.len()).sum();
    assert_eq!(labelled, labels.iter().filter(|&&v| v > 0.0).count());

    let mut bad = labels.clone();
    bad[70] = 2.5;
    let message = footprints_from_labels(&bad, 64, 48).unwrap_err().to_string();
    assert!(message.contains("pixel 70") && message.contains("2.5"), "{message}");
    assert!(footprints_from_labels(&labels, 48, 48).is_err());
}

#[test]
fn residual_checks_tell_noise_from_removed_signal_and_memorised_frames() {
    let (config, clean, noisy) = small_movie(5.0);
    let (w, h) = (config.width, config.height);
    // The perfect denoiser removes exactly the Poisson–Gaussian noise: white, variance = gain·intensity + floor.
    let perfect = residual_checks(&noisy, &clean, w, h, Some(60)).unwrap();
    assert!(perfect.lag1_autocorrelation.abs() < 0.03, "{perfect:?}");
    assert!((perfect.noise_gain - config.gain).abs() < 0.2 * config.gain, "{perfect:?}");
    assert!(perfect.variance_intensity_correlation > 0.9, "{perfect:?}");
    let held = perfect.held_out.as_ref().unwrap();
    assert!((held.ratio - 1.0).abs() < 0.1, "{held:?}");

    // A "denoiser" that returns each pixel's temporal mean removes the transients too: they stay
    // in the residual, which is then correlated in time.
    let frame_len = w * h;
    let frames = noisy.len() / frame_len;
    let mut mean = vec![0f32; frame_len];
    for frame in noisy.chunks_exact(frame_len) {
        mean.iter_mut().zip(frame).for_each(|(m, &v)| *m += v / frames as f32);
    }
    let flat: Vec<f32> = mean.iter().copied().cycle().take(noisy.len()).collect();
    let oversmoothed = residual_checks(&noisy, &flat, w, h, None).unwrap();
    assert!(oversmoothed.lag1_autocorrelation > perfect.lag1_autocorrelation + 0.05, "{oversmoothed:?}");

    // A model that memorised its first 60 frames (returns them raw) has no residual there.
    let mut memorised = clean.clone();
    memorised[..60 * frame_len].copy_from_slice(&noisy[..60 * frame_len]);
    let checks = residual_checks(&noisy, &memorised, w, h, Some(60)).unwrap();
    assert!(checks.held_out.unwrap().ratio > 10.0);
    assert!(residual_checks(&noisy, &clean, w, h, Some(frames)).is_err());
}

#[test]
fn scorecard_of_the_truth_is_perfect_and_of_raw_is_not() {
    let (config, clean, noisy) = small_movie(2.0);
    let simulator = Simulator::new(&config).unwrap();
    let (w, h) = (config.width, config.height);
    let neurons = footprints_from_labels(&labels_from_footprints(simulator.footprints(), w * h, 0.5), w, h).unwrap();
    let perfect = score(&clean, &clean, w, h, &neurons).unwrap();
    assert!(perfect.snr_db.is_infinite() && (perfect.ssim - 1.0).abs() < 1e-9 && (perfect.pearson - 1.0).abs() < 1e-9);
    let raw = score(&noisy, &clean, w, h, &neurons).unwrap();
    assert!(raw.snr_db < 5.0 && raw.ssim < 0.6 && raw.pearson < 0.9, "{raw:?}");
    assert_eq!(raw.trace_correlations.len(), neurons.len());
    assert!(raw.trace_correlation_median.unwrap() < 1.0);
}

fn deepcad(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deepcad")).args(args).arg("--quiet").current_dir(dir).output().unwrap()
}

#[test]
fn score_command_ranks_raw_baselines_and_truth_and_names_mismatched_files() {
    let dir = tempfile::tempdir().unwrap();
    let sim = deepcad(
        &[
            "simulate",
            "-o",
            "raw.tif",
            "--truth",
            "truth.tif",
            "--labels",
            "labels.tif",
            "--width",
            "48",
            "--height",
            "40",
            "--frames",
            "90",
            "--neurons",
            "5",
            "--photons",
            "2",
        ],
        dir.path(),
    );
    assert!(sim.status.success(), "{}", String::from_utf8_lossy(&sim.stderr));
    let (labels_info, labels) = read_stack(&dir.path().join("labels.tif"), &ReadOptions::default()).unwrap();
    assert_eq!((labels_info.width, labels_info.height, labels_info.frames), (48, 40, 1));
    assert!(labels.iter().any(|&v| v > 0.0));

    let out = deepcad(
        &[
            "score",
            "--raw",
            "raw.tif",
            "--truth",
            "truth.tif",
            "--labels",
            "labels.tif",
            "--baselines",
            "--held-out-from",
            "45",
            "--json",
            "scores.json",
            "perfect=truth.tif",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("scores.json")).unwrap()).unwrap();
    let entries = report["entries"].as_array().unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["raw", "moving_average", "moving_average_for_traces", "gaussian_3d", "gaussian_3d_for_traces", "perfect"]
    );
    let snr = |i: usize| entries[i]["scores"]["snr_db"].as_f64();
    assert!(snr(1).unwrap() > snr(0).unwrap() + 3.0 && snr(3).unwrap() > snr(0).unwrap() + 3.0);
    // Chosen for traces: never worse on traces than the SNR choice of the same family.
    let trace = |i: usize| entries[i]["scores"]["trace_correlation_median"].as_f64().unwrap();
    assert!(trace(2) >= trace(1) && trace(4) >= trace(3));
    assert_eq!(snr(5), None, "an exact estimate scores +∞ (null in JSON)");
    assert!(entries[0]["residual"].is_null() && entries[5]["residual"]["held_out"]["ratio"].is_f64());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("SNR dB") && table.contains("perfect"), "{table}");

    // A movie of another size is refused, naming the file.
    let other =
        deepcad(&["simulate", "-o", "small.tif", "--width", "32", "--height", "32", "--frames", "90"], dir.path());
    assert!(other.status.success());
    let out = deepcad(&["score", "--raw", "raw.tif", "--truth", "truth.tif", "small.tif"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("small.tif"));
    // Baselines need the truth to pick their width.
    let out = deepcad(&["score", "--raw", "raw.tif", "--baselines", "truth.tif"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

/// The reference-free event-loss signal (issue 23) reads how much of the fast transients an output
/// smoothed away, which is what costs spike inference: the truth as output (only noise removed)
/// loses nothing; outputs that replace a share `a` of the truth by its 9-frame mean (each
/// transient's peak smeared by `a`, as an interlaced denoiser does) lose more as `a` grows,
/// about `a²` of the fast power, so their spike r falls in the same order; the raw movie itself
/// loses nothing.
#[test]
fn event_loss_grows_with_the_transients_a_denoiser_smooths_away() {
    let config = SimulationConfig {
        width: 64,
        height: 64,
        frames: 300,
        neurons: 12,
        photons: 5.0,
        frame_rate_hz: 15.0,
        indicator: Indicator::Fast,
        seed: 5,
        ..Default::default()
    };
    let (clean, noisy) = simulate(&config).unwrap();
    let (w, h) = (config.width, config.height);
    let loss = |output: &[f32]| event_loss(&noisy, output, w, h).fast_event_loss.unwrap();

    let kept = loss(&clean);
    assert!(kept.abs() < 0.1, "truth as output: {kept}");
    let smeared = deepcad::metrics::temporal_moving_average(&clean, w, h, 9).unwrap();
    let mut previous = kept;
    for share in [0.5f32, 0.75, 1.0] {
        let output: Vec<f32> = clean.iter().zip(&smeared).map(|(c, s)| (1.0 - share) * c + share * s).collect();
        let lost = loss(&output);
        assert!(lost > previous + 0.1, "share {share} smoothed away: loss {lost} after {previous}");
        previous = lost;
    }
    assert!((previous - 1.0).abs() < 0.2, "fully smoothed: {previous}");

    let checks = event_loss(&noisy, &noisy, w, h);
    assert_eq!(checks.fast_event_loss, Some(0.0));
    assert!(checks.raw_fast_coherence > 0.0 && checks.raw_fast_coherence < 0.5, "{checks:?}");
}
