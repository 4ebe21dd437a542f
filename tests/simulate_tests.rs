//! The synthetic calcium movie (`simulate`) and the quality measures (`metrics`).

use deepcad::simulate::{simulate, Footprint, SimulationConfig, Simulator};
use deepcad::{metrics, Error};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn small(seed: u64, photons: f64) -> SimulationConfig {
    SimulationConfig { width: 48, height: 40, frames: 90, neurons: 6, photons, seed, ..Default::default() }
}

fn render(sim: &Simulator, t: usize) -> (Vec<f32>, Vec<f32>) {
    let mut clean = vec![0.0; sim.frame_len()];
    let mut noisy = vec![0.0; sim.frame_len()];
    sim.frame(t, &mut clean, &mut noisy);
    (clean, noisy)
}

fn assert_usage<T: std::fmt::Debug>(result: Result<T, Error>, needle: &str) {
    match result {
        Err(Error::Usage(message)) => assert!(message.contains(needle), "message {message:?} lacks {needle:?}"),
        other => panic!("expected a usage error mentioning {needle:?}, got {other:?}"),
    }
}

fn white_noise(n: usize, sigma: f64, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            (sigma * z) as f32
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

// ---------------------------------------------------------------- simulation

#[test]
fn frames_depend_only_on_seed_and_index() {
    let config = small(7, 5.0);
    let forward = Simulator::new(&config).unwrap();
    let backward = Simulator::new(&config).unwrap();
    let in_order: Vec<_> = (0..config.frames).map(|t| render(&forward, t)).collect();
    for t in (0..config.frames).rev() {
        assert_eq!(render(&backward, t), in_order[t], "frame {t} changed with rendering order");
    }
    // The parallel whole-movie path renders the very same frames.
    let (clean, noisy) = simulate(&config).unwrap();
    let frame_len = forward.frame_len();
    for (t, (c, n)) in in_order.iter().enumerate() {
        assert_eq!(&clean[t * frame_len..(t + 1) * frame_len], &c[..]);
        assert_eq!(&noisy[t * frame_len..(t + 1) * frame_len], &n[..]);
    }
}

#[test]
fn different_seeds_give_different_movies() {
    let a = Simulator::new(&small(1, 5.0)).unwrap();
    let b = Simulator::new(&small(2, 5.0)).unwrap();
    assert_ne!(a.footprints(), b.footprints());
    let (clean_a, noisy_a) = render(&a, 10);
    let (clean_b, noisy_b) = render(&b, 10);
    assert_ne!(clean_a, clean_b);
    assert_ne!(noisy_a, noisy_b);
    // Consecutive frames of one movie carry fresh noise, not a repeated pattern.
    let (_, next) = render(&a, 11);
    let differing = noisy_a.iter().zip(&next).filter(|(x, y)| x != y).count();
    assert!(differing > noisy_a.len() / 2, "only {differing} pixels differ between frames");
}

#[test]
fn clean_is_the_expected_value_of_noisy() {
    let config = SimulationConfig { width: 64, height: 64, frames: 60, neurons: 8, photons: 3.0, ..Default::default() };
    let (clean, noisy) = simulate(&config).unwrap();
    // Per pixel: E[noisy] = clean, Var[noisy] = gain·(clean − offset) + read_noise² (Poisson × gain + Gaussian).
    let mut bias = 0.0;
    let mut variance_ratio = 0.0;
    for (&c, &n) in clean.iter().zip(&noisy) {
        let expected_variance = config.gain * (c as f64 - config.offset) + config.read_noise.powi(2);
        let residual = n as f64 - c as f64;
        bias += residual / expected_variance.sqrt();
        variance_ratio += residual * residual / expected_variance;
    }
    let count = clean.len() as f64;
    let (bias, variance_ratio) = (bias / count, variance_ratio / count);
    // Standardised residuals: their mean has standard error 1/√count ≈ 0.002.
    assert!(bias.abs() < 0.01, "noisy is biased against clean by {bias} standard deviations");
    assert!((variance_ratio - 1.0).abs() < 0.03, "noise variance is {variance_ratio} × the model's");
}

#[test]
fn fewer_photons_mean_lower_snr() {
    let snr: Vec<f64> = [50.0, 5.0, 0.5, 0.1]
        .iter()
        .map(|&photons| {
            let (clean, noisy) = simulate(&small(3, photons)).unwrap();
            metrics::snr_db(&noisy, &clean).unwrap()
        })
        .collect();
    assert!(
        snr[0] > snr[1] + 3.0 && snr[1] > snr[2] + 3.0 && snr[2] > snr[3],
        "SNR over photons 50, 5, 0.5, 0.1: {snr:?}"
    );
    // 0.1 photons per soma pixel is far below the read noise: the raw movie is mostly noise.
    assert!(snr[3] < -10.0, "SNR at 0.1 photons is {} dB", snr[3]);
}

#[test]
fn somata_stand_well_above_the_noise_floor_at_five_photons() {
    for seed in 0..4 {
        let config = small(seed, 5.0);
        let sim = Simulator::new(&config).unwrap();
        let (clean, _) = render(&sim, 0);
        let background = clean.iter().map(|&v| v as f64).fold(f64::INFINITY, f64::min);
        for (n, footprint) in sim.footprints().iter().enumerate() {
            let soma_peak = footprint.pixels.iter().map(|&(p, _)| clean[p] as f64).fold(f64::MIN, f64::max);
            assert!(
                soma_peak - config.offset > 4.0 * config.read_noise && soma_peak > background + 3.0 * config.read_noise,
                "seed {seed} neuron {n}: soma peak {soma_peak} counts, dimmest pixel {background}, offset {}",
                config.offset
            );
        }
    }
}

#[test]
fn spikes_cause_transients_in_trace_and_movie() {
    let config = SimulationConfig { frames: 600, ..small(5, 5.0) };
    let sim = Simulator::new(&config).unwrap();
    let (clean, _) = simulate(&config).unwrap();
    let frame_len = sim.frame_len();
    let mut checked = 0;
    for n in 0..config.neurons {
        let spikes = sim.spike_times(n);
        let trace: Vec<f32> = (0..config.frames).map(|t| sim.trace(n, t)).collect();
        let Some(&first) = spikes.first() else { continue };
        let first_frame = (first * config.frame_rate_hz).ceil() as usize;
        if first_frame + 15 >= config.frames {
            continue;
        }
        // At rest before the first spike, a clear transient within half a second after it.
        assert!(trace[..first_frame].iter().all(|&v| v == 0.0), "neuron {n} is active before its first spike");
        let peak = trace[first_frame..first_frame + 15].iter().cloned().fold(0.0, f32::max);
        assert!(peak > 0.2, "neuron {n}: peak ΔF/F {peak} after the spike at {first} s");
        assert!(trace.iter().all(|&v| (0.0..=3.0).contains(&v)), "neuron {n}: ΔF/F outside the indicator's range");

        // The transient is visible in the clean movie over the footprint.
        let footprint = &sim.footprints()[n];
        let weighted: Vec<f32> = (0..config.frames)
            .map(|t| footprint.pixels.iter().map(|&(p, w)| w * clean[t * frame_len + p]).sum::<f32>())
            .collect();
        let r = metrics::pearson(&weighted, &trace).unwrap();
        assert!(r > 0.7, "neuron {n}: footprint signal correlates with its trace at only {r}");
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} neurons spiked early enough to check");
}

#[test]
fn configuration_errors_name_the_value() {
    assert_usage(Simulator::new(&SimulationConfig { width: 0, ..Default::default() }), "width is 0");
    assert_usage(Simulator::new(&SimulationConfig { frames: 0, ..Default::default() }), "frames is 0");
    assert_usage(Simulator::new(&SimulationConfig { photons: 0.0, ..Default::default() }), "photons is 0");
    assert_usage(Simulator::new(&SimulationConfig { photons: f64::NAN, ..Default::default() }), "photons is NaN");
    assert_usage(Simulator::new(&SimulationConfig { photons: 1e12, ..Default::default() }), "photons is 1000000000000");
    assert_usage(Simulator::new(&SimulationConfig { gain: -1.0, ..Default::default() }), "gain is -1");
    assert_usage(Simulator::new(&SimulationConfig { read_noise: -2.0, ..Default::default() }), "read noise is -2");
    assert_usage(Simulator::new(&SimulationConfig { frame_rate_hz: 0.0, ..Default::default() }), "frame rate");
    let huge = SimulationConfig { neurons: 1 << 20, frames: 1 << 20, ..Default::default() };
    assert!(matches!(Simulator::new(&huge), Err(Error::Limits(_))));
    let too_big_to_hold =
        SimulationConfig { width: 4096, height: 4096, frames: 1000, neurons: 0, ..Default::default() };
    assert!(matches!(simulate(&too_big_to_hold), Err(Error::Limits(_))));
}

#[test]
fn background_only_and_tiny_movies_work() {
    let config = SimulationConfig { width: 3, height: 2, frames: 4, neurons: 2, ..Default::default() };
    let (clean, noisy) = simulate(&config).unwrap();
    assert_eq!((clean.len(), noisy.len()), (24, 24));
    assert!(clean.iter().all(|&v| v.is_finite() && v as f64 > config.offset));
    let empty = SimulationConfig { neurons: 0, ..small(9, 5.0) };
    let sim = Simulator::new(&empty).unwrap();
    assert!(sim.footprints().is_empty());
    assert!(render(&sim, 3).0.iter().all(|&v| v as f64 > empty.offset));
}

// ---------------------------------------------------------------- metrics

#[test]
fn identical_movies_score_perfectly() {
    let (clean, _) = simulate(&small(11, 5.0)).unwrap();
    assert_eq!(metrics::snr_db(&clean, &clean).unwrap(), f64::INFINITY);
    assert_eq!(metrics::invariant_snr_db(&clean, &clean).unwrap(), f64::INFINITY);
    assert_eq!(metrics::psnr_db(&clean, &clean).unwrap(), f64::INFINITY);
    assert!((metrics::pearson(&clean, &clean).unwrap() - 1.0).abs() < 1e-12);
    assert!((metrics::mean_ssim(&clean, &clean, 48, 40).unwrap() - 1.0).abs() < 1e-9);
}

#[test]
fn snr_of_known_white_noise_matches_theory() {
    let n = 200_000;
    let truth: Vec<f32> = (0..n).map(|i| 50.0 + 10.0 * (i as f32 * 0.001).sin() + (i % 17) as f32).collect();
    let sigma = 4.0;
    let noise = white_noise(n, sigma, 1);
    let estimate: Vec<f32> = truth.iter().zip(&noise).map(|(t, e)| t + e).collect();

    let truth_mean = truth.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let truth_variance = truth.iter().map(|&v| (v as f64 - truth_mean).powi(2)).sum::<f64>() / n as f64;
    let expected = 10.0 * (truth_variance / (sigma * sigma)).log10();
    let snr = metrics::snr_db(&estimate, &truth).unwrap();
    assert!((snr - expected).abs() < 0.2, "SNR {snr} dB, expected {expected} dB");

    let (low, high) = truth.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let expected_psnr = 20.0 * ((high - low) as f64 / sigma).log10();
    let psnr = metrics::psnr_db(&estimate, &truth).unwrap();
    assert!((psnr - expected_psnr).abs() < 0.2, "PSNR {psnr} dB, expected {expected_psnr} dB");

    // A flat estimate at the truth's mean is exactly 0 dB by this convention.
    let flat = vec![truth_mean as f32; n];
    assert!(metrics::snr_db(&flat, &truth).unwrap().abs() < 1e-3);
}

#[test]
fn invariant_snr_ignores_gain_and_offset() {
    let (clean, noisy) = simulate(&small(12, 2.0)).unwrap();
    let rescaled: Vec<f32> = noisy.iter().map(|v| v * 3.0 + 7.0).collect();
    let plain = metrics::snr_db(&noisy, &clean).unwrap();
    let plain_rescaled = metrics::snr_db(&rescaled, &clean).unwrap();
    let invariant = metrics::invariant_snr_db(&noisy, &clean).unwrap();
    let invariant_rescaled = metrics::invariant_snr_db(&rescaled, &clean).unwrap();
    assert!((invariant - invariant_rescaled).abs() < 1e-3, "{invariant} vs {invariant_rescaled}");
    assert!(plain_rescaled < plain - 20.0, "rescaling should wreck plain SNR: {plain} → {plain_rescaled}");
    // The best affine fit can only help.
    assert!(invariant >= plain - 1e-9);
}

#[test]
fn pearson_of_known_series() {
    let a: Vec<f32> = (0..100).map(|i| (i as f32 * 0.3).sin()).collect();
    let negated: Vec<f32> = a.iter().map(|v| -2.0 * v + 1.0).collect();
    assert!((metrics::pearson(&a, &negated).unwrap() + 1.0).abs() < 1e-9);
    assert_eq!(metrics::pearson(&a, &vec![5.0; 100]).unwrap(), 0.0);
    let noisy: Vec<f32> = a.iter().zip(white_noise(100, 0.5, 3)).map(|(x, e)| x + e).collect();
    let r = metrics::pearson(&a, &noisy).unwrap();
    assert!(r > 0.5 && r < 1.0, "r = {r}");
}

#[test]
fn ssim_falls_as_noise_grows() {
    let (clean, _) = simulate(&small(13, 5.0)).unwrap();
    let mut previous = 1.0;
    for sigma in [1.0, 5.0, 25.0] {
        let noisy: Vec<f32> = clean.iter().zip(white_noise(clean.len(), sigma, 4)).map(|(c, e)| c + e).collect();
        let ssim = metrics::mean_ssim(&noisy, &clean, 48, 40).unwrap();
        assert!(ssim < previous && ssim > -1.0, "SSIM {ssim} at σ = {sigma}, previous {previous}");
        previous = ssim;
    }
    // Frames smaller than the 11×11 window still give a perfect score for identical data.
    let tiny = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    assert!((metrics::mean_ssim(&tiny, &tiny, 3, 2).unwrap() - 1.0).abs() < 1e-9);
}

#[test]
fn moving_average_of_known_frames() {
    // Three 1×1 frames: 0, 3, 6.
    let movie = [0.0f32, 3.0, 6.0];
    assert_eq!(metrics::temporal_moving_average(&movie, 1, 1, 1).unwrap(), movie);
    assert_eq!(metrics::temporal_moving_average(&movie, 1, 1, 3).unwrap(), [1.5, 3.0, 4.5]);
    // Even windows take the extra frame after t.
    assert_eq!(metrics::temporal_moving_average(&movie, 1, 1, 2).unwrap(), [1.5, 4.5, 6.0]);
    // A window longer than the movie averages everything.
    assert_eq!(metrics::temporal_moving_average(&movie, 1, 1, 9).unwrap(), [3.0, 3.0, 3.0]);
    // Pixels are averaged independently.
    let two_pixels = [0.0f32, 10.0, 2.0, 20.0];
    assert_eq!(metrics::temporal_moving_average(&two_pixels, 2, 1, 2).unwrap(), [1.0, 15.0, 2.0, 20.0]);
}

#[test]
fn moving_average_denoises_the_simulated_movie() {
    let config = small(14, 1.0);
    let sim = Simulator::new(&config).unwrap();
    let (clean, noisy) = simulate(&config).unwrap();
    let averaged = metrics::temporal_moving_average(&noisy, 48, 40, 5).unwrap();
    let raw_snr = metrics::snr_db(&noisy, &clean).unwrap();
    let averaged_snr = metrics::snr_db(&averaged, &clean).unwrap();
    assert!(averaged_snr > raw_snr + 3.0, "moving average: {raw_snr} dB → {averaged_snr} dB");

    let raw_r = metrics::trace_correlations(&noisy, &clean, 48, 40, sim.footprints()).unwrap();
    let averaged_r = metrics::trace_correlations(&averaged, &clean, 48, 40, sim.footprints()).unwrap();
    let perfect = metrics::trace_correlations(&clean, &clean, 48, 40, sim.footprints()).unwrap();
    assert_eq!(raw_r.len(), config.neurons);
    assert!(perfect.iter().all(|&r| (r - 1.0).abs() < 1e-9 || r == 0.0), "{perfect:?}");
    assert!(mean(&averaged_r) > mean(&raw_r), "trace r: raw {raw_r:?}, averaged {averaged_r:?}");
}

#[test]
fn metric_input_errors_are_usage_errors() {
    let a = [1.0f32, 2.0, 3.0, 4.0];
    assert_usage(metrics::snr_db(&a, &a[..3]), "4 values");
    assert_usage(metrics::invariant_snr_db(&[], &[]), "empty");
    assert_usage(metrics::pearson(&[1.0, f32::NAN], &[1.0, 2.0]), "index 1");
    assert_usage(metrics::psnr_db(&[1.0, 2.0], &[f32::INFINITY, 2.0]), "non-finite");
    assert_usage(metrics::mean_ssim(&a, &a, 3, 1), "3×1");
    assert_usage(metrics::mean_ssim(&a, &a, 0, 4), "0×4");
    assert_usage(metrics::temporal_moving_average(&a, 2, 2, 0), "window is 0");
    assert_usage(metrics::temporal_moving_average(&a, 3, 3, 1), "3×3");
    let outside = [Footprint { pixels: vec![(4, 1.0)] }];
    assert_usage(metrics::trace_correlations(&a, &a, 2, 2, &outside), "pixel index 4");
}
