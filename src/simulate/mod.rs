//! A synthetic two-photon calcium movie with ground truth, produced one frame at a time.
//!
//! The scene (built once in [`Simulator::new`]) is: a static baseline brightness with coarse and
//! fine structure, a few smooth neuropil fields whose strength drifts slowly and follows the
//! population activity, and somata with elliptical, nucleus-dimmed footprints whose GCaMP-like
//! ΔF/F traces come from Poisson spike trains (fast rise, exponential decay, saturation).
//!
//! The harder cases for a denoiser are settings of the same scene: a fast [`Indicator`], a low
//! firing rate (sparse, mostly single-spike events) and one-photon-like data (strong background
//! and neuropil, [`ONE_PHOTON_BACKGROUND`], [`ONE_PHOTON_NEUROPIL`]). Their defaults reproduce the
//! original movies bit for bit, so models and results made from simulated data stay reproducible.
//!
//! Every frame is then rendered from the scene alone: its randomness (shot and read noise) comes
//! from a ChaCha stream selected by `(seed, t)`, so frames can be produced in any order, in
//! parallel, and a 256×256×32,000 movie never has to be held in memory.
//!
//! Units: `clean` is the expected value of `noisy`, both in detector counts:
//! `noisy = offset + gain·Poisson(photons·I) + Normal(0, read_noise)` and
//! `clean = offset + gain·photons·I`, where `I` is the scene intensity, scaled so that a bright
//! soma at rest is ≈ 1. `photons` therefore sets the SNR: ≈5 is a typical recording, 0.1 is
//! almost pure shot noise.

mod activity;
mod files;
mod indicator;
mod realism;
pub use files::{write_simulation, SimulationFiles};
pub use indicator::Indicator;
use realism::RealScene;
pub use realism::Realism;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};

pub use crate::footprint::Footprint;
use crate::metrics::gaussian_filter;
use crate::{Error, Result};

/// What to simulate. Defaults: 128×128 pixels, 500 frames at 30 Hz, 30 neurons, 5 photons,
/// gain 2, offset 100, read noise 2 counts, seed 0; GCaMP6s kinetics, 0.5 Hz mean firing rate,
/// two-photon background and neuropil (strengths 1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SimulationConfig {
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    /// Number of somata; 0 gives a background-only movie.
    pub neurons: usize,
    /// Mean detected photons per pixel per frame at the centre of a bright soma at rest; sets the SNR.
    pub photons: f64,
    pub frame_rate_hz: f64,
    /// Standard deviation of the Gaussian read noise, in output counts.
    pub read_noise: f64,
    /// Constant camera/PMT offset added to every pixel, in counts.
    pub offset: f64,
    /// Output counts per detected photon.
    pub gain: f64,
    pub seed: u64,
    /// Calcium indicator kinetics (rise and decay times).
    pub indicator: Indicator,
    /// Mean firing rate in Hz: each neuron fires as a Poisson process at its own rate, drawn
    /// uniformly in 0.4–1.6 × this (0.2–0.8 Hz by default). 0.05 gives sparse, mostly
    /// single-spike events; 0 gives neurons that never fire.
    pub firing_rate_hz: f64,
    /// Strength of the static tissue background, as a multiple of the two-photon default (1);
    /// see [`ONE_PHOTON_BACKGROUND`].
    pub background: f64,
    /// Strength of the neuropil (out-of-focus, activity-following glow), as a multiple of the
    /// two-photon default (1); see [`ONE_PHOTON_NEUROPIL`].
    pub neuropil: f64,
    /// Dendrites, puncta, irregular and overlapping somata, vessel shadows, bleaching and motion
    /// (`Realism::realistic()` for the realistic family); none by default.
    pub realism: Realism,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            width: 128,
            height: 128,
            frames: 500,
            neurons: 30,
            photons: 5.0,
            frame_rate_hz: 30.0,
            read_noise: 2.0,
            offset: 100.0,
            gain: 2.0,
            seed: 0,
            indicator: Indicator::Gcamp6s,
            firing_rate_hz: 0.5,
            background: 1.0,
            neuropil: 1.0,
            realism: Realism::default(),
        }
    }
}

/// A built scene that renders frames of the simulated movie on demand.
#[derive(Debug, Clone)]
pub struct Simulator {
    config: SimulationConfig,
    footprints: Vec<Footprint>,
    /// Resting brightness of each soma, in scene-intensity units.
    brightness: Vec<f32>,
    /// Ground-truth ΔF/F, neuron-major: `traces[n * frames + t]`.
    traces: Vec<f32>,
    /// Spike times of each neuron, in seconds from the first frame.
    spikes: Vec<Vec<f64>>,
    /// Static baseline intensity per pixel.
    baseline: Vec<f32>,
    /// Smooth neuropil fields, each one frame of intensities.
    neuropil_fields: Vec<Vec<f32>>,
    /// Strength of each neuropil field per frame: `neuropil_strength[k * frames + t]`.
    neuropil_strength: Vec<f32>,
    /// The realistic extras, when any is asked for.
    real: Option<RealScene>,
}

// Scene constants. Sizes are in pixels at the usual two-photon sampling (~1 µm/pixel), so a
// larger field of view shows more neurons rather than bigger ones.
const SOMA_DIAMETER_PX: (f64, f64) = (8.0, 14.0);
const SOMA_RESTING_BRIGHTNESS: (f64, f64) = (0.8, 1.2);
/// Each neuron's firing rate, as multiples of the configured mean (0.2–0.8 Hz at the default 0.5;
/// both products are exact in binary, so default spike trains are unchanged).
const FIRING_RATE_SPREAD: (f64, f64) = (0.4, 1.6);
const BASELINE_LEVEL: f64 = 0.12;
const NEUROPIL_LEVEL: f64 = 0.15;
const NEUROPIL_FIELDS: usize = 3;
/// Time constant of the neuropil's slow drift.
const NEUROPIL_DRIFT_S: f64 = 4.0;
/// Background strength of one-photon-like data (widefield, miniscope): out-of-focus fluorescence
/// makes the resting background about as bright as a soma (8 × 0.12 ≈ 1), so a spike's ΔF/F in a
/// soma's mean trace falls from about 0.5 to 0.2 and the background's shot noise dominates.
pub const ONE_PHOTON_BACKGROUND: f64 = 8.0;
/// Neuropil strength of one-photon-like data: the activity-following glow reaches about 0.75 of a
/// resting soma's brightness (5 × 0.15), so neighbouring activity leaks into every trace.
pub const ONE_PHOTON_NEUROPIL: f64 = 5.0;
const MAX_PHOTONS: f64 = 1e9;
/// Traces are O(neurons·frames); refuse scenes whose traces alone would pass 4 GiB.
const MAX_TRACE_VALUES: usize = 1 << 30;
/// [`simulate`] holds two whole movies; beyond this, stream with [`Simulator::frame`].
const MAX_MOVIE_VALUES: usize = 1 << 30;

impl Simulator {
    /// Validates the configuration and builds the scene (footprints, spike trains, traces,
    /// background). Cost O(neurons·frames + width·height).
    pub fn new(config: &SimulationConfig) -> Result<Simulator> {
        validate(config)?;
        let (w, h, frames) = (config.width, config.height, config.frames);
        // The scene uses ChaCha stream 0; frame t uses stream t + 1 (see `frame_rng`).
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(0);

        let mut baseline = baseline_pattern(&mut rng, w, h, config.background);
        let rates = (config.firing_rate_hz * FIRING_RATE_SPREAD.0, config.firing_rate_hz * FIRING_RATE_SPREAD.1);
        let mut footprints = Vec::with_capacity(config.neurons);
        let mut brightness = Vec::with_capacity(config.neurons);
        let mut traces = Vec::with_capacity(config.neurons * frames);
        let mut spikes = Vec::with_capacity(config.neurons);
        let mut centres: Vec<(f64, f64, f64)> = Vec::with_capacity(config.neurons);
        for _ in 0..config.neurons {
            footprints.push(soma_footprint(&mut rng, w, h, &mut centres));
            brightness.push(uniform(&mut rng, SOMA_RESTING_BRIGHTNESS) as f32);
            let train = activity::spike_train(&mut rng, rates, frames as f64 / config.frame_rate_hz);
            traces.extend(activity::calcium_trace(&mut rng, config.indicator, &train, frames, config.frame_rate_hz));
            spikes.push(train);
        }

        // The extras draw from their own streams, after the plain scene, which they leave as it is.
        let real = (config.realism != Realism::default()).then(|| {
            RealScene::build(&config.realism, config.seed, (w, h), &mut footprints, &mut centres, &mut baseline)
        });

        let population: Vec<f64> = (0..frames)
            .map(|t| {
                let total: f64 = (0..config.neurons).map(|n| traces[n * frames + t] as f64).sum();
                total / config.neurons.max(1) as f64
            })
            .collect();
        let neuropil_fields = (0..NEUROPIL_FIELDS).map(|_| neuropil_field(&mut rng, w, h, config.neuropil)).collect();
        let neuropil_strength =
            (0..NEUROPIL_FIELDS).flat_map(|_| neuropil_drift(&mut rng, &population, config.frame_rate_hz)).collect();

        Ok(Simulator {
            config: config.clone(),
            footprints,
            brightness,
            traces,
            spikes,
            baseline,
            neuropil_fields,
            neuropil_strength,
            real,
        })
    }

    pub fn config(&self) -> &SimulationConfig {
        &self.config
    }

    /// Pixels per frame (`width·height`): the length `frame` expects of each buffer.
    pub fn frame_len(&self) -> usize {
        self.config.width * self.config.height
    }

    /// Renders frame `t` into `clean` (expected counts) and `noisy` (one noisy realisation).
    /// The result depends only on the configuration and `t`, not on call order.
    ///
    /// # Panics
    /// If `t >= frames` or a buffer's length is not [`frame_len`](Self::frame_len): both are
    /// programming errors of the caller, like an out-of-range slice index.
    pub fn frame(&self, t: usize, clean: &mut [f32], noisy: &mut [f32]) {
        let frames = self.config.frames;
        assert!(t < frames, "frame {t} requested from a simulation of {frames} frames");
        assert_eq!(clean.len(), self.frame_len(), "clean buffer length must be width·height");
        assert_eq!(noisy.len(), self.frame_len(), "noisy buffer length must be width·height");

        // Scene intensity first, built in `clean`.
        clean.copy_from_slice(&self.baseline);
        for (k, field) in self.neuropil_fields.iter().enumerate() {
            let strength = self.neuropil_strength[k * frames + t];
            clean.iter_mut().zip(field).for_each(|(c, &f)| *c += strength * f);
        }
        for (n, footprint) in self.footprints.iter().enumerate() {
            let level = self.brightness[n] * (1.0 + self.traces[n * frames + t]);
            for &(p, weight) in &footprint.pixels {
                clean[p] += weight * level;
            }
        }

        if let Some(real) = &self.real {
            self.add_realism(real, t, clean);
        }

        let SimulationConfig { photons, gain, offset, read_noise, .. } = self.config;
        let mut rng = frame_rng(self.config.seed, t);
        for (c, y) in clean.iter_mut().zip(noisy.iter_mut()) {
            let expected_photons = photons * *c as f64;
            let detected = sample_poisson(&mut rng, expected_photons);
            let read: f64 = rng.sample(StandardNormal);
            *y = (offset + gain * detected + read_noise * read) as f32;
            *c = (offset + gain * expected_photons) as f32;
        }
    }

    /// Dendrites, vessel shadows, bleaching and motion on frame `t`'s scene intensity.
    fn add_realism(&self, real: &RealScene, t: usize, scene: &mut [f32]) {
        let SimulationConfig { width, height, frames, ref realism, .. } = self.config;
        for (n, dendrite) in &real.dendrites {
            let level = self.brightness[*n] * (1.0 + self.traces[n * frames + t]);
            for &(p, weight) in &dendrite.pixels {
                scene[p] += weight * level;
            }
        }
        if let Some(light) = &real.transmission {
            scene.iter_mut().zip(light).for_each(|(s, &l)| *s *= l);
        }
        if realism.bleaching > 0.0 {
            let left = realism::bleach_factor(realism.bleaching, t, frames);
            scene.iter_mut().for_each(|s| *s *= left);
        }
        if realism.moves() {
            let moved = realism::shifted(scene, (width, height), real.shift(realism, self.config.seed, t, frames));
            scene.copy_from_slice(&moved);
        }
    }

    /// One footprint per neuron, in neuron order.
    pub fn footprints(&self) -> &[Footprint] {
        &self.footprints
    }

    /// Ground-truth ΔF/F of `neuron` at frame `t` (0 at rest, up to the indicator's saturation).
    ///
    /// # Panics
    /// If `neuron >= neurons` or `t >= frames`.
    pub fn trace(&self, neuron: usize, t: usize) -> f32 {
        let SimulationConfig { neurons, frames, .. } = self.config;
        assert!(neuron < neurons && t < frames, "trace({neuron}, {t}) outside {neurons} neurons × {frames} frames");
        self.traces[neuron * frames + t]
    }

    /// Spike times of `neuron`, in seconds from the start of frame 0 (ascending).
    ///
    /// # Panics
    /// If `neuron >= neurons`.
    pub fn spike_times(&self, neuron: usize) -> &[f64] {
        &self.spikes[neuron]
    }
}

/// The whole movie at once, `T×H×W` row-major: `(clean, noisy)`. Frames are rendered on all
/// cores. Refuses movies over 2³⁰ values each (use [`Simulator::frame`] to stream those).
pub fn simulate(config: &SimulationConfig) -> Result<(Vec<f32>, Vec<f32>)> {
    validate(config)?;
    let frame_len = config.width * config.height;
    let total = frame_len.checked_mul(config.frames).filter(|&n| n <= MAX_MOVIE_VALUES).ok_or_else(|| {
        Error::Limits(format!(
            "a {}×{}×{} simulated movie is too large to hold in memory twice (limit {MAX_MOVIE_VALUES} \
                 values per movie); render it frame by frame with Simulator::frame",
            config.width, config.height, config.frames
        ))
    })?;
    let simulator = Simulator::new(config)?;
    let mut clean = vec![0.0f32; total];
    let mut noisy = vec![0.0f32; total];
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(config.frames);
    let frames_per_worker = config.frames.div_ceil(workers);
    let chunk = frames_per_worker * frame_len;
    std::thread::scope(|scope| {
        for (worker, (clean_part, noisy_part)) in clean.chunks_mut(chunk).zip(noisy.chunks_mut(chunk)).enumerate() {
            let simulator = &simulator;
            scope.spawn(move || {
                let pairs = clean_part.chunks_exact_mut(frame_len).zip(noisy_part.chunks_exact_mut(frame_len));
                for (i, (c, n)) in pairs.enumerate() {
                    simulator.frame(worker * frames_per_worker + i, c, n);
                }
            });
        }
    });
    Ok((clean, noisy))
}

fn validate(config: &SimulationConfig) -> Result<()> {
    let SimulationConfig { width, height, frames, neurons, photons, frame_rate_hz, read_noise, offset, gain, .. } =
        *config;
    for (name, value) in [("width", width), ("height", height), ("frames", frames)] {
        if value == 0 {
            return Err(Error::usage(format!("simulation {name} is 0; it must be at least 1")));
        }
    }
    if width.checked_mul(height).is_none() {
        return Err(Error::usage(format!("simulation frame {width}×{height} is too large")));
    }
    let positive = [("photons", photons), ("frame rate (Hz)", frame_rate_hz), ("gain", gain)];
    for (name, value) in positive {
        if !(value.is_finite() && value > 0.0) {
            return Err(Error::usage(format!("simulation {name} is {value}; it must be a finite number above 0")));
        }
    }
    // Far beyond any detector, and past it Poisson sampling loses its meaning.
    if photons > MAX_PHOTONS {
        return Err(Error::usage(format!("simulation photons is {photons}; it must be at most {MAX_PHOTONS}")));
    }
    if !(read_noise.is_finite() && read_noise >= 0.0) {
        return Err(Error::usage(format!("simulation read noise is {read_noise}; it must be finite and at least 0")));
    }
    if !offset.is_finite() {
        return Err(Error::usage(format!("simulation offset is {offset}; it must be a finite number")));
    }
    let non_negative = [
        ("firing rate (Hz)", config.firing_rate_hz),
        ("background strength", config.background),
        ("neuropil strength", config.neuropil),
    ];
    for (name, value) in non_negative {
        if !(value.is_finite() && value >= 0.0) {
            return Err(Error::usage(format!("simulation {name} is {value}; it must be finite and at least 0")));
        }
    }
    config.realism.validate(width, height)?;
    if neurons.checked_mul(frames).is_none_or(|n| n > MAX_TRACE_VALUES) {
        return Err(Error::Limits(format!(
            "{neurons} neurons × {frames} frames of ground-truth traces exceed {MAX_TRACE_VALUES} values; \
             simulate fewer neurons or a shorter movie"
        )));
    }
    Ok(())
}

/// Frame `t`'s random stream: same key as the scene, its own ChaCha stream, so frames are
/// independent of each other and of rendering order.
fn frame_rng(seed: u64, t: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(t as u64 + 1);
    rng
}

fn sample_poisson(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    // Poisson::new rejects a zero mean, whose only outcome is 0.
    match Poisson::new(mean) {
        Ok(poisson) => poisson.sample(rng),
        Err(_) => 0.0,
    }
}

fn uniform(rng: &mut ChaCha8Rng, (low, high): (f64, f64)) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

/// White noise blurred to `sigma` and standardised to mean 0, variance 1 (all zeros if flat).
fn smooth_noise(rng: &mut ChaCha8Rng, w: usize, h: usize, sigma: f64) -> Vec<f64> {
    let noise: Vec<f64> = (0..w * h).map(|_| rng.sample::<f64, _>(StandardNormal)).collect();
    let mut field = gaussian_filter(&noise, w, h, sigma, (3.0 * sigma).ceil() as usize);
    let n = field.len() as f64;
    let mean = field.iter().sum::<f64>() / n;
    let sd = (field.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    let scale = if sd > 0.0 { 1.0 / sd } else { 0.0 };
    field.iter_mut().for_each(|v| *v = (*v - mean) * scale);
    field
}

/// Static tissue brightness: large-scale unevenness plus fine texture, never dark (unless its
/// strength is 0).
fn baseline_pattern(rng: &mut ChaCha8Rng, w: usize, h: usize, strength: f64) -> Vec<f32> {
    // Blur scales are capped so that building a large field of view stays cheap (the blur
    // costs O(pixels·sigma)); beyond ~25 px the pattern only needs to look uneven.
    let coarse = smooth_noise(rng, w, h, (0.15 * w.max(h) as f64).min(24.0));
    let fine = smooth_noise(rng, w, h, 1.5);
    // The strength multiplies the level before anything else: ×1 is exact, so defaults are unchanged.
    let level = BASELINE_LEVEL * strength;
    coarse.iter().zip(&fine).map(|(c, f)| (level * (1.0 + 0.4 * c + 0.25 * f).max(0.2)) as f32).collect()
}

fn neuropil_field(rng: &mut ChaCha8Rng, w: usize, h: usize, strength: f64) -> Vec<f32> {
    let sigma = (0.08 * w.max(h) as f64).clamp(3.0, 12.0);
    let field = smooth_noise(rng, w, h, sigma);
    let level = NEUROPIL_LEVEL * strength;
    field.iter().map(|z| ((1.0 + 0.4 * z).max(0.0) * level / NEUROPIL_FIELDS as f64) as f32).collect()
}

/// Per-frame strength of one neuropil field: a slow unit-variance AR(1) drift plus a share of
/// the population's mean ΔF/F (neuropil is mostly out-of-focus neurites of those cells).
fn neuropil_drift(rng: &mut ChaCha8Rng, population: &[f64], frame_rate_hz: f64) -> Vec<f32> {
    let keep = (-1.0 / (NEUROPIL_DRIFT_S * frame_rate_hz)).exp();
    let innovation = (1.0 - keep * keep).sqrt();
    let mut state: f64 = rng.sample(StandardNormal);
    population
        .iter()
        .map(|&activity| {
            state = keep * state + innovation * rng.sample::<f64, _>(StandardNormal);
            (1.0 + 0.25 * state + 0.5 * activity).max(0.0) as f32
        })
        .collect()
}

/// Elliptical soma with a soft edge and a dimmer nucleus (GCaMP stays out of the nucleus).
/// Centres avoid earlier somata when there is room, so footprints rarely overlap much.
fn soma_footprint(rng: &mut ChaCha8Rng, w: usize, h: usize, centres: &mut Vec<(f64, f64, f64)>) -> Footprint {
    let radius = uniform(rng, SOMA_DIAMETER_PX) / 2.0;
    let elongation = 1.0 + 0.25 * rng.random::<f64>();
    let (semi_a, semi_b) = (radius * elongation.sqrt(), radius / elongation.sqrt());
    let angle = std::f64::consts::PI * rng.random::<f64>();
    let place = |rng: &mut ChaCha8Rng, size: usize| {
        let margin = (radius * 0.6).min(size as f64 / 2.0);
        margin + (size as f64 - 2.0 * margin) * rng.random::<f64>()
    };
    let mut centre = (place(rng, w), place(rng, h));
    for _ in 0..50 {
        let clear = centres.iter().all(|&(x, y, r)| (x - centre.0).hypot(y - centre.1) > 0.9 * (r + radius));
        if clear {
            break;
        }
        centre = (place(rng, w), place(rng, h));
    }
    centres.push((centre.0, centre.1, radius));

    let (sin, cos) = angle.sin_cos();
    let reach = semi_a * 1.5;
    let x_range = (centre.0 - reach).floor().max(0.0) as usize..=((centre.0 + reach).ceil() as usize).min(w - 1);
    let y_range = (centre.1 - reach).floor().max(0.0) as usize..=((centre.1 + reach).ceil() as usize).min(h - 1);
    let mut pixels = Vec::new();
    for y in y_range {
        for x in x_range.clone() {
            let (dx, dy) = (x as f64 + 0.5 - centre.0, y as f64 + 0.5 - centre.1);
            let u = (dx * cos + dy * sin) / semi_a;
            let v = (-dx * sin + dy * cos) / semi_b;
            let r = u.hypot(v);
            let edge = 1.0 / (1.0 + ((r - 1.0) / 0.12).exp());
            let nucleus = 1.0 - 0.5 * (-(r / 0.45).powi(2)).exp();
            let weight = edge * nucleus;
            if weight > 0.02 {
                pixels.push((y * w + x, weight as f32));
            }
        }
    }
    let peak = pixels.iter().map(|&(_, wgt)| wgt).fold(0.0f32, f32::max);
    if peak > 0.0 {
        pixels.iter_mut().for_each(|(_, wgt)| *wgt /= peak);
    }
    Footprint { pixels }
}
