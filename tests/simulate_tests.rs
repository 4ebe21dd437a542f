//! The synthetic calcium movie (`simulate`) and the quality measures (`metrics`).

use deepcad::io::{read_stack, ReadOptions};
use deepcad::simulate::{
    simulate, Footprint, Indicator, Realism, SimulationConfig, Simulator, ONE_PHOTON_BACKGROUND, ONE_PHOTON_NEUROPIL,
};
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
    assert_usage(Simulator::new(&SimulationConfig { firing_rate_hz: -0.1, ..Default::default() }), "firing rate");
    assert_usage(Simulator::new(&SimulationConfig { background: f64::NAN, ..Default::default() }), "background");
    assert_usage(Simulator::new(&SimulationConfig { neuropil: -1.0, ..Default::default() }), "neuropil strength is -1");
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

// ---------------------------------------------------------------- harder movies, true spikes

/// A small movie's fingerprint: spike counts and times, ΔF/F, clean and noisy sums. Pinned to the
/// values the simulator gave before indicators, firing rates and background strengths could be
/// chosen: their defaults must leave every movie (and so the built-in model's recipe) unchanged.
#[test]
fn default_simulation_is_unchanged() {
    let config = SimulationConfig { width: 40, height: 32, frames: 600, neurons: 8, seed: 21, ..Default::default() };
    let sim = Simulator::new(&config).unwrap();
    let (clean, noisy) = simulate(&config).unwrap();
    let spikes: Vec<(usize, f64)> =
        (0..8).map(|n| (sim.spike_times(n).len(), sim.spike_times(n).iter().sum())).collect();
    let pinned = [
        (9, 111.55992627497045),
        (17, 149.8715716012471),
        (10, 95.95775711668568),
        (4, 29.445507494245895),
        (2, 31.255998165633287),
        (15, 182.76437987551952),
        (16, 128.11731824061988),
        (15, 153.39050739833147),
    ];
    for (n, (&(count, sum), &(pinned_count, pinned_sum))) in spikes.iter().zip(&pinned).enumerate() {
        assert_eq!(count, pinned_count, "neuron {n}: spike count changed");
        assert!((sum - pinned_sum).abs() < 1e-9, "neuron {n}: spike times changed ({sum} vs {pinned_sum})");
    }
    let traces: f64 = (0..8).flat_map(|n| (0..600).map(move |t| (n, t))).map(|(n, t)| sim.trace(n, t) as f64).sum();
    let sum = |movie: &[f32]| movie.iter().map(|&v| v as f64).sum::<f64>();
    // Relative 1e-12: a last-bit difference in a libm function may pass, a changed draw may not.
    for (what, value, pinned) in [
        ("ΔF/F", traces, 1988.5182180773782),
        ("clean movie", sum(&clean), 86166181.66875458),
        ("noisy movie", sum(&noisy), 86162981.62358093),
    ] {
        assert!((value / pinned - 1.0).abs() < 1e-12, "{what} changed: sum {value:?}, pinned {pinned:?}");
    }
}

/// The mean of `movie` over each label's mask, per frame: `traces[n][t]` for label n + 1.
fn mask_traces(movie: &[f32], labels: &[f32], neurons: usize) -> Vec<Vec<f64>> {
    let frame_len = labels.len();
    (1..=neurons)
        .map(|label| {
            let mask: Vec<usize> = (0..frame_len).filter(|&p| labels[p] == label as f32).collect();
            movie
                .chunks_exact(frame_len)
                .map(|frame| mask.iter().map(|&p| frame[p] as f64).sum::<f64>() / mask.len().max(1) as f64)
                .collect()
        })
        .collect()
}

/// The spikes CSV (`deepcad simulate --spikes`) as one count per frame per neuron: `counts[n][t]`.
fn read_spikes_csv(path: &std::path::Path, frames: usize, neurons: usize) -> Vec<Vec<u32>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = (1..=neurons).map(|n| format!("neuron_{n}")).collect();
    assert_eq!(lines.next().unwrap(), format!("frame,{}", header.join(",")));
    let mut counts = vec![vec![0u32; frames]; neurons];
    for (t, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!((cells.len(), cells[0].parse::<usize>().unwrap()), (neurons + 1, t), "row {t}: {line}");
        for (n, cell) in cells[1..].iter().enumerate() {
            counts[n][t] = cell.parse().unwrap();
        }
    }
    assert_eq!(counts[0].len(), frames);
    counts
}

#[test]
fn spikes_csv_agrees_with_the_truth_movie() {
    // Sparse firing and no neuropil, so a neuron's mask changes only when that neuron (or a
    // neighbour whose footprint reaches into its mask) fires.
    let dir = tempfile::tempdir().unwrap();
    let [noisy, truth, labels, spikes] =
        ["noisy.tif", "truth.tif", "labels.tif", "spikes.csv"].map(|name| dir.path().join(name));
    let (frames, neurons, seed) = (600, 6, 4);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["simulate", "--quiet", "--width", "64", "--height", "64", "--frames", "600", "--neurons", "6"])
        .args(["--seed", &seed.to_string(), "--firing-rate", "0.05", "--neuropil", "0"])
        .args(
            ["-o", "--truth", "--labels", "--spikes"]
                .iter()
                .zip([&noisy, &truth, &labels, &spikes])
                .flat_map(|(flag, path)| [std::ffi::OsStr::new(flag), path.as_os_str()]),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, truth_movie) = read_stack(&truth, &ReadOptions::default()).unwrap();
    let (_, label_image) = read_stack(&labels, &ReadOptions::default()).unwrap();
    let counts = read_spikes_csv(&spikes, frames, neurons);
    let traces = mask_traces(&truth_movie, &label_image, neurons);

    // The same scene in memory, for the footprints: which masks does another neuron reach into?
    let config = SimulationConfig {
        width: 64,
        height: 64,
        frames,
        neurons,
        seed,
        firing_rate_hz: 0.05,
        neuropil: 0.0,
        ..Default::default()
    };
    let sim = Simulator::new(&config).unwrap();
    let alone: Vec<bool> = (0..neurons)
        .map(|n| {
            let others = sim.footprints().iter().enumerate().filter(|&(m, _)| m != n);
            others.flat_map(|(_, f)| &f.pixels).all(|&(p, _)| label_image[p] != (n + 1) as f32)
        })
        .collect();

    let (mut spikes_checked, mut flat_checked) = (0, 0);
    for n in 0..neurons {
        let trace = &traces[n];
        let range = trace.iter().cloned().fold(f64::MIN, f64::max) - trace.iter().cloned().fold(f64::MAX, f64::min);
        let total: u32 = counts[n].iter().sum();
        // The CSV holds every spike the simulator drew, at the first frame at or after it.
        assert_eq!(total as usize, sim.spike_times(n).len(), "neuron {}: CSV and simulator disagree", n + 1);
        for (t, &count) in counts[n].iter().enumerate() {
            if count == 0 || t == 0 || t + 1 >= frames {
                continue;
            }
            // A spike entering at frame t has fully started rising by frame t + 1.
            let rise = trace[t + 1] - trace[t - 1];
            assert!(rise > 0.1 * range, "neuron {}: spike at frame {t} raises its trace by {rise} only", n + 1);
            spikes_checked += 1;
        }
        if alone[n] {
            // Its own mask rises only in the few frames after one of its listed spikes.
            for t in 1..frames {
                let listed = (t.saturating_sub(6)..=t).any(|s| counts[n][s] > 0);
                assert!(
                    listed || trace[t] <= trace[t - 1],
                    "neuron {}: trace rises at frame {t} with no spike listed before it",
                    n + 1
                );
            }
            if total == 0 {
                assert_eq!(range, 0.0, "neuron {} has no spikes but its truth trace moves", n + 1);
                flat_checked += 1;
            }
        }
    }
    assert!(spikes_checked >= 3, "only {spikes_checked} spikes checked");
    assert!(flat_checked >= 1, "no silent neuron alone in its mask to check (try another seed)");
}

/// Decay time constant (s) of a ΔF/F transient after an isolated spike at `spike` seconds: the
/// log-linear slope of the tail between 20 % and 5 % of the peak, where the indicator's
/// saturation bends it by under 7 %. With the time from spike to peak.
fn measured_kinetics(trace: &[f32], spike: f64, rate: f64) -> (f64, f64) {
    let start = (spike * rate).ceil() as usize;
    let (peak_frame, peak) = trace[start..]
        .iter()
        .enumerate()
        .take_while(|&(i, &v)| i == 0 || v >= trace[start + i - 1])
        .fold((start, 0.0f32), |best, (i, &v)| if v > best.1 { (start + i, v) } else { best });
    let tail: Vec<(f64, f64)> = (peak_frame..trace.len())
        .map(|t| (t as f64 / rate, trace[t] as f64))
        .skip_while(|&(_, v)| v > 0.2 * peak as f64)
        .take_while(|&(_, v)| v > 0.05 * peak as f64)
        .map(|(time, v)| (time, v.ln()))
        .collect();
    assert!(tail.len() >= 4, "tail of {} samples after the spike at {spike} s", tail.len());
    let n = tail.len() as f64;
    let (mean_t, mean_l) = (tail.iter().map(|p| p.0).sum::<f64>() / n, tail.iter().map(|p| p.1).sum::<f64>() / n);
    let slope = tail.iter().map(|&(t, l)| (t - mean_t) * (l - mean_l)).sum::<f64>()
        / tail.iter().map(|&(t, _)| (t - mean_t).powi(2)).sum::<f64>();
    (-1.0 / slope, peak_frame as f64 / rate - spike)
}

#[test]
fn indicators_have_the_stated_kinetics() {
    for (indicator, decay_range, peak_range, quiet_s) in
        [(Indicator::Fast, (0.100, 0.200), (0.02, 0.06), 1.5), (Indicator::Gcamp6s, (0.5, 1.0), (0.11, 0.17), 8.0)]
    {
        // 200 Hz resolves a 100 ms decay; sparse firing leaves isolated spikes to measure.
        let rate = 200.0;
        let config = SimulationConfig {
            width: 32,
            height: 32,
            frames: 24_000,
            neurons: 12,
            frame_rate_hz: rate,
            firing_rate_hz: 0.05,
            indicator,
            ..Default::default()
        };
        let sim = Simulator::new(&config).unwrap();
        let mut measured = 0;
        for n in 0..config.neurons {
            let times = sim.spike_times(n);
            let trace: Vec<f32> = (0..config.frames).map(|t| sim.trace(n, t)).collect();
            for (i, &spike) in times.iter().enumerate() {
                let isolated_before = i == 0 || spike - times[i - 1] > quiet_s;
                let isolated_after = times.get(i + 1).is_none_or(|&next| next - spike > quiet_s);
                if !(isolated_before && isolated_after) || spike + quiet_s > config.frames as f64 / rate {
                    continue;
                }
                let (decay, to_peak) = measured_kinetics(&trace, spike, rate);
                assert!(
                    decay > 0.97 * decay_range.0 && decay < 1.1 * decay_range.1,
                    "{indicator:?} neuron {n}: decay {decay:.3} s, stated {decay_range:?}"
                );
                assert!(
                    to_peak > peak_range.0 && to_peak < peak_range.1,
                    "{indicator:?} neuron {n}: peak {to_peak:.3} s after the spike, expected {peak_range:?}"
                );
                measured += 1;
            }
        }
        assert!(measured >= 5, "{indicator:?}: only {measured} isolated spikes measured");
    }
}

#[test]
fn firing_rate_sets_how_often_neurons_spike() {
    let config = |firing_rate_hz| SimulationConfig {
        width: 32,
        height: 32,
        frames: 3000,
        neurons: 40,
        firing_rate_hz,
        ..Default::default()
    };
    let seconds = 3000.0 / 30.0;
    for rate in [0.05, 2.0] {
        let sim = Simulator::new(&config(rate)).unwrap();
        let spikes: usize = (0..40).map(|n| sim.spike_times(n).len()).sum();
        let measured = spikes as f64 / (40.0 * seconds);
        // Poisson counts over 4000 neuron-seconds: within 25 % of the mean rate.
        assert!((measured / rate - 1.0).abs() < 0.25, "asked {rate} Hz, simulated {measured} Hz");
    }
    let silent = Simulator::new(&config(0.0)).unwrap();
    assert!((0..40).all(|n| silent.spike_times(n).is_empty()));
    assert!((0..40).all(|n| (0..3000).all(|t| silent.trace(n, t) == 0.0)));
}

#[test]
fn background_and_neuropil_strengths_scale_the_scene() {
    // Without neurons, the scene is the background plus the neuropil: each scales linearly.
    let scene = |background, neuropil| {
        let config = SimulationConfig { neurons: 0, background, neuropil, ..small(8, 5.0) };
        let (clean, _) = render(&Simulator::new(&config).unwrap(), 17);
        clean.iter().map(|&v| v as f64 - config.offset).collect::<Vec<f64>>()
    };
    let (background, neuropil) = (scene(1.0, 0.0), scene(0.0, 1.0));
    for (one, strong, factor) in [
        (&background, scene(ONE_PHOTON_BACKGROUND, 0.0), ONE_PHOTON_BACKGROUND),
        (&neuropil, scene(0.0, ONE_PHOTON_NEUROPIL), ONE_PHOTON_NEUROPIL),
    ] {
        assert!(one.iter().filter(|&&v| v > 0.0).count() > one.len() / 2, "the scene is mostly dark");
        for (a, b) in one.iter().zip(&strong) {
            assert!((b - factor * a).abs() <= 1e-4 * factor * a, "{b} is not {factor} × {a}");
        }
    }
    // Nothing at all when both are off.
    assert!(scene(0.0, 0.0).iter().all(|&v| v == 0.0));
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

// ------------------------------------------------------------------ the realistic extras (issue 29)

fn with_realism(base: SimulationConfig, realism: Realism) -> SimulationConfig {
    SimulationConfig { realism, ..base }
}

/// Clean frame `t` minus the offset, in scene photons.
fn clean_photons(sim: &Simulator, t: usize) -> Vec<f64> {
    let c = sim.config();
    render(sim, t).0.iter().map(|&v| (v as f64 - c.offset) / c.gain).collect()
}

#[test]
fn realistic_extras_are_off_by_default_and_each_changes_the_scene_but_not_the_activity() {
    assert_eq!(SimulationConfig::default().realism, Realism::default());
    let base = small(4, 5.0);
    let plain = Simulator::new(&base).unwrap();
    let off = Realism::default();
    let extras = [
        ("dendrites", Realism { dendrites_per_neuron: 2, ..off.clone() }),
        ("puncta", Realism { puncta_per_10k_px: 20.0, ..off.clone() }),
        ("irregular cells", Realism { irregular_cells: true, ..off.clone() }),
        ("vessels", Realism { vessels: 1, ..off.clone() }),
        ("bleaching", Realism { bleaching: 0.5, ..off.clone() }),
        ("drift", Realism { drift_px: 2.0, ..off.clone() }),
        ("jitter", Realism { jitter_px: 0.5, ..off.clone() }),
    ];
    let last = base.frames - 1;
    for (name, realism) in extras {
        let sim = Simulator::new(&with_realism(base.clone(), realism)).unwrap();
        assert_ne!(render(&sim, last).0, render(&plain, last).0, "{name} left the scene as it was");
        for n in 0..base.neurons {
            assert_eq!(sim.spike_times(n), plain.spike_times(n), "{name} changed neuron {n}'s spikes");
        }
    }
}

#[test]
fn realistic_frames_depend_only_on_seed_and_index() {
    let config = with_realism(small(6, 3.0), Realism::realistic());
    let sim = Simulator::new(&config).unwrap();
    let later = render(&sim, 50);
    let earlier = render(&sim, 3);
    assert_eq!(render(&sim, 3), earlier);
    assert_eq!(render(&sim, 50), later);
    let (clean, noisy) = simulate(&config).unwrap();
    let frame = sim.frame_len();
    assert_eq!(clean[50 * frame..51 * frame], later.0[..]);
    assert_eq!(noisy[3 * frame..4 * frame], earlier.1[..]);
}

#[test]
fn bleaching_dims_the_last_frame_by_the_stated_share() {
    let still = SimulationConfig { neurons: 0, neuropil: 0.0, ..small(2, 5.0) };
    let sim = Simulator::new(&with_realism(still.clone(), Realism { bleaching: 0.4, ..Realism::default() })).unwrap();
    let (first, last) = (clean_photons(&sim, 0), clean_photons(&sim, still.frames - 1));
    let ratio = last.iter().sum::<f64>() / first.iter().sum::<f64>();
    assert!((ratio - 0.6).abs() < 1e-3, "last/first brightness {ratio}, expected 0.6");
}

#[test]
fn dendrites_reach_beyond_their_soma_and_share_its_activity() {
    let lone = SimulationConfig { neurons: 1, background: 0.0, neuropil: 0.0, frames: 200, ..small(9, 5.0) };
    let realism = Realism { dendrites_per_neuron: 3, ..Realism::default() };
    let sim = Simulator::new(&with_realism(lone.clone(), realism)).unwrap();
    let soma: std::collections::HashSet<usize> = sim.footprints()[0].pixels.iter().map(|&(p, _)| p).collect();
    let resting = clean_photons(&sim, 0);
    let outside: Vec<usize> = (0..resting.len()).filter(|p| !soma.contains(p) && resting[*p] > 0.5).collect();
    assert!(outside.len() >= 10, "only {} bright pixels outside the soma", outside.len());
    let dendrite_trace: Vec<f32> =
        (0..lone.frames).map(|t| outside.iter().map(|&p| clean_photons(&sim, t)[p]).sum::<f64>() as f32).collect();
    let soma_trace: Vec<f32> = (0..lone.frames).map(|t| sim.trace(0, t)).collect();
    let r = metrics::pearson(&dendrite_trace, &soma_trace).unwrap();
    assert!(r > 0.99, "dendrite brightness follows its soma's ΔF/F with r {r}");
}

#[test]
fn drift_moves_the_field_and_no_drift_keeps_it_still() {
    let still = SimulationConfig { neurons: 0, neuropil: 0.0, width: 64, height: 64, ..small(5, 5.0) };
    let textured = Realism { puncta_per_10k_px: 40.0, ..Realism::default() };
    let centroid_range = |realism: Realism| {
        let sim = Simulator::new(&with_realism(still.clone(), realism)).unwrap();
        let xs: Vec<f64> = (0..still.frames)
            .map(|t| {
                let image = clean_photons(&sim, t);
                let total: f64 = image.iter().sum();
                image.iter().enumerate().map(|(p, v)| (p % still.width) as f64 * v).sum::<f64>() / total
            })
            .collect();
        xs.iter().cloned().fold(f64::MIN, f64::max) - xs.iter().cloned().fold(f64::MAX, f64::min)
    };
    assert!(centroid_range(textured.clone()) < 1e-9);
    let moved = centroid_range(Realism { drift_px: 3.0, ..textured });
    assert!(moved > 0.3 && moved < 6.0, "the centroid moved {moved} px under a 3 px drift");
}

#[test]
fn realism_errors_name_the_value() {
    let base = SimulationConfig::default();
    let bad = |realism: Realism| Simulator::new(&with_realism(base.clone(), realism));
    assert_usage(bad(Realism { bleaching: 1.5, ..Realism::default() }), "bleaching is 1.5");
    assert_usage(bad(Realism { drift_px: f64::NAN, ..Realism::default() }), "drift (pixels) is NaN");
    assert_usage(bad(Realism { jitter_px: 100.0, ..Realism::default() }), "jitter (pixels) is 100");
    assert_usage(bad(Realism { puncta_per_10k_px: -1.0, ..Realism::default() }), "puncta per 10,000 pixels is -1");
}
