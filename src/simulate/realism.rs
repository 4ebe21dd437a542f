//! What real recordings have and the plain scene lacks: dendrites that share their soma's
//! activity, small bright puncta, lobed and overlapping somata, dark vessel shadows, bleaching,
//! slow drift and small frame-to-frame motion. A denoiser trained only on round somata turns
//! neurites and puncta into blobs; these give a model's training data that structure.
//!
//! Every extra is off by default and, when off, draws no random number and touches no pixel, so
//! default movies stay bit-identical. The extras draw from their own ChaCha streams (the scene's
//! is 0, frame t's is t + 1; these count down from the top), never from the plain scene's.

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::footprint::Footprint;
use crate::{Error, Result};

/// The realistic extras; `Realism::default()` is none of them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Realism {
    /// Dendrites per neuron: thin winding processes, as active as their soma (not in the labels).
    pub dendrites_per_neuron: usize,
    /// Small bright static puncta (boutons, ~1–2 px) per 10,000 pixels.
    pub puncta_per_10k_px: f64,
    /// Lobed, non-round somata, about a quarter of them overlapping a neighbour.
    pub irregular_cells: bool,
    /// Dark blood-vessel shadows crossing the field.
    pub vessels: usize,
    /// Share of the brightness bleached away by the last frame (exponential in time), 0–0.9.
    pub bleaching: f64,
    /// Peak slow drift of the whole field, in pixels.
    pub drift_px: f64,
    /// Frame-to-frame motion jitter (standard deviation), in pixels.
    pub jitter_px: f64,
}

impl Default for Realism {
    fn default() -> Self {
        Realism {
            dendrites_per_neuron: 0,
            puncta_per_10k_px: 0.0,
            irregular_cells: false,
            vessels: 0,
            bleaching: 0.0,
            drift_px: 0.0,
            jitter_px: 0.0,
        }
    }
}

impl Realism {
    /// The "realistic" family: every extra at a moderate, typical strength.
    pub fn realistic() -> Realism {
        Realism {
            dendrites_per_neuron: 3,
            puncta_per_10k_px: 15.0,
            irregular_cells: true,
            vessels: 2,
            bleaching: 0.15,
            drift_px: 1.5,
            jitter_px: 0.3,
        }
    }

    pub fn moves(&self) -> bool {
        self.drift_px > 0.0 || self.jitter_px > 0.0
    }

    pub(super) fn validate(&self, width: usize, height: usize) -> Result<()> {
        let limit = width.min(height) as f64 / 4.0;
        let checks = [
            ("puncta per 10,000 pixels", self.puncta_per_10k_px, 0.0, 1000.0),
            ("bleaching", self.bleaching, 0.0, 0.9),
            ("drift (pixels)", self.drift_px, 0.0, limit),
            ("jitter (pixels)", self.jitter_px, 0.0, limit),
            ("dendrites per neuron", self.dendrites_per_neuron as f64, 0.0, 20.0),
            ("vessels", self.vessels as f64, 0.0, 20.0),
        ];
        for (name, value, low, high) in checks {
            if !(value.is_finite() && (low..=high).contains(&value)) {
                return Err(Error::usage(format!("simulation {name} is {value}; it must lie in {low}–{high}")));
            }
        }
        Ok(())
    }
}

/// The scene-level extras, built once from their own random stream.
#[derive(Debug, Clone)]
pub(super) struct RealScene {
    /// (neuron, footprint) of each dendrite; its brightness follows that neuron's soma.
    pub dendrites: Vec<(usize, Footprint)>,
    /// Light let through at each pixel (vessel shadows), when there are vessels.
    pub transmission: Option<Vec<f32>>,
    /// Phases of the slow drift in x and y.
    drift_phase: (f64, f64),
}

/// Brightness of a dendrite at its base relative to its soma.
const DENDRITE_BRIGHTNESS: f32 = 0.6;
const DENDRITE_LENGTH_PX: (f64, f64) = (15.0, 50.0);
const DENDRITE_WIDTH_SIGMA_PX: f64 = 0.7;
const PUNCTUM_SIGMA_PX: (f64, f64) = (0.6, 1.0);
const PUNCTUM_BRIGHTNESS: (f64, f64) = (0.8, 2.0);
const VESSEL_WIDTH_PX: (f64, f64) = (3.0, 7.0);
/// Share of the light a vessel's core blocks.
const VESSEL_DEPTH: f64 = 0.6;
const OVERLAPPING_SHARE: f64 = 0.25;
const SCENE_STREAM: u64 = u64::MAX;

fn scene_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SCENE_STREAM);
    rng
}

/// Frame t's motion stream (counting down below the extras' scene stream).
fn motion_rng(seed: u64, t: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SCENE_STREAM - 1 - t as u64);
    rng
}

fn uniform(rng: &mut ChaCha8Rng, (low, high): (f64, f64)) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

impl RealScene {
    /// Builds the extras: reshapes somata (`footprints`, `centres` = (x, y, radius)) when
    /// irregular, adds puncta to `baseline`, draws dendrites and vessels.
    pub fn build(
        realism: &Realism,
        seed: u64,
        (w, h): (usize, usize),
        footprints: &mut [Footprint],
        centres: &mut [(f64, f64, f64)],
        baseline: &mut [f32],
    ) -> RealScene {
        let mut rng = scene_rng(seed);
        if realism.irregular_cells {
            reshape_somata(&mut rng, (w, h), footprints, centres);
        }
        let puncta = (realism.puncta_per_10k_px * (w * h) as f64 / 1e4).round() as usize;
        for _ in 0..puncta {
            let centre = (uniform(&mut rng, (0.0, w as f64)), uniform(&mut rng, (0.0, h as f64)));
            let sigma = uniform(&mut rng, PUNCTUM_SIGMA_PX);
            let peak = uniform(&mut rng, PUNCTUM_BRIGHTNESS) as f32;
            splat(baseline, (w, h), centre, sigma, |value, weight| *value += peak * weight);
        }
        let mut dendrites = Vec::new();
        for (n, &(x, y, radius)) in centres.iter().enumerate() {
            for _ in 0..realism.dendrites_per_neuron {
                dendrites.push((n, dendrite(&mut rng, (w, h), (x, y), radius)));
            }
        }
        let transmission = (realism.vessels > 0).then(|| {
            let mut light = vec![1f32; w * h];
            for _ in 0..realism.vessels {
                vessel_shadow(&mut rng, (w, h), &mut light);
            }
            light
        });
        let drift_phase = (uniform(&mut rng, (0.0, 2.0 * PI)), uniform(&mut rng, (0.0, 2.0 * PI)));
        RealScene { dendrites, transmission, drift_phase }
    }

    /// The field's shift at frame `t` (x, y in pixels): a slow drift plus jitter.
    pub fn shift(&self, realism: &Realism, seed: u64, t: usize, frames: usize) -> (f64, f64) {
        let phase = 2.0 * PI * t as f64 / frames.max(1) as f64;
        let mut rng = motion_rng(seed, t);
        let jitter = |rng: &mut ChaCha8Rng| realism.jitter_px * rng.sample::<f64, _>(StandardNormal);
        let dx = realism.drift_px * (phase + self.drift_phase.0).sin() + jitter(&mut rng);
        let dy = realism.drift_px * (0.7 * phase + self.drift_phase.1).sin() + jitter(&mut rng);
        (dx, dy)
    }
}

/// Brightness left at frame `t` of `frames` after bleaching.
pub(super) fn bleach_factor(bleaching: f64, t: usize, frames: usize) -> f32 {
    (1.0 - bleaching).powf(t as f64 / (frames.max(2) - 1) as f64) as f32
}

/// `frame` shifted by (dx, dy) pixels, bilinear, edges clamped.
pub(super) fn shifted(frame: &[f32], (w, h): (usize, usize), (dx, dy): (f64, f64)) -> Vec<f32> {
    let sample = |x: f64, y: f64| {
        let x = x.clamp(0.0, (w - 1) as f64);
        let y = y.clamp(0.0, (h - 1) as f64);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
        let row = |y: usize| frame[y * w + x0] * (1.0 - fx) + frame[y * w + x1] * fx;
        row(y0) * (1.0 - fy) + row(y1) * fy
    };
    let mut out = Vec::with_capacity(frame.len());
    for y in 0..h {
        for x in 0..w {
            out.push(sample(x as f64 - dx, y as f64 - dy));
        }
    }
    out
}

/// Applies `f(value, weight)` to pixels near `centre` with a Gaussian weight (3σ reach).
fn splat(image: &mut [f32], (w, h): (usize, usize), centre: (f64, f64), sigma: f64, mut f: impl FnMut(&mut f32, f32)) {
    let reach = 3.0 * sigma;
    let (x0, x1) = ((centre.0 - reach).floor().max(0.0) as usize, ((centre.0 + reach).ceil() as usize).min(w));
    let (y0, y1) = ((centre.1 - reach).floor().max(0.0) as usize, ((centre.1 + reach).ceil() as usize).min(h));
    for y in y0..y1 {
        for x in x0..x1 {
            let d2 = (x as f64 + 0.5 - centre.0).powi(2) + (y as f64 + 0.5 - centre.1).powi(2);
            f(&mut image[y * w + x], (-d2 / (2.0 * sigma * sigma)).exp() as f32);
        }
    }
}

/// Points along a smooth random walk from `start`, heading `angle`, `length` pixels, 0.5 px apart.
fn winding_path(rng: &mut ChaCha8Rng, start: (f64, f64), mut angle: f64, length: f64, wander: f64) -> Vec<(f64, f64)> {
    let mut point = start;
    let steps = (length / 0.5) as usize;
    let mut points = Vec::with_capacity(steps);
    for _ in 0..steps {
        angle += wander * rng.sample::<f64, _>(StandardNormal);
        point = (point.0 + 0.5 * angle.cos(), point.1 + 0.5 * angle.sin());
        points.push(point);
    }
    points
}

fn dendrite(rng: &mut ChaCha8Rng, (w, h): (usize, usize), (x, y): (f64, f64), radius: f64) -> Footprint {
    let angle = uniform(rng, (0.0, 2.0 * PI));
    let length = uniform(rng, DENDRITE_LENGTH_PX);
    let start = (x + radius * angle.cos(), y + radius * angle.sin());
    let path = winding_path(rng, start, angle, length, 0.12);
    let mut image = vec![0f32; w * h];
    for (i, &point) in path.iter().enumerate() {
        // Tapers to half its base brightness.
        let level = DENDRITE_BRIGHTNESS * (1.0 - 0.5 * i as f32 / path.len() as f32);
        splat(&mut image, (w, h), point, DENDRITE_WIDTH_SIGMA_PX, |v, weight| *v = v.max(level * weight));
    }
    Footprint { pixels: image.iter().enumerate().filter(|(_, &v)| v > 0.01).map(|(p, &v)| (p, v)).collect() }
}

fn vessel_shadow(rng: &mut ChaCha8Rng, (w, h): (usize, usize), light: &mut [f32]) {
    // From a point on the left or top edge, across the field.
    let across = rng.random::<bool>();
    let (start, angle) = if across {
        ((0.0, uniform(rng, (0.0, h as f64))), uniform(rng, (-0.5, 0.5)))
    } else {
        ((uniform(rng, (0.0, w as f64)), 0.0), PI / 2.0 + uniform(rng, (-0.5, 0.5)))
    };
    let width = uniform(rng, VESSEL_WIDTH_PX);
    let path = winding_path(rng, start, angle, 1.5 * w.max(h) as f64, 0.04);
    let mut shadow = vec![0f32; w * h];
    for &point in &path {
        splat(&mut shadow, (w, h), point, width / 2.0, |v, weight| *v = v.max(weight));
    }
    light.iter_mut().zip(&shadow).for_each(|(l, &s)| *l *= 1.0 - VESSEL_DEPTH as f32 * s);
}

/// Lobed outlines; about a quarter of the somata moved onto a neighbour so that they overlap.
fn reshape_somata(
    rng: &mut ChaCha8Rng,
    (w, h): (usize, usize),
    footprints: &mut [Footprint],
    centres: &mut [(f64, f64, f64)],
) {
    for n in 0..centres.len() {
        if n > 0 && rng.random::<f64>() < OVERLAPPING_SHARE {
            let (ox, oy, or) = centres[rng.random_range(0..n)];
            let angle = uniform(rng, (0.0, 2.0 * PI));
            let distance = uniform(rng, (0.6, 0.9)) * (or + centres[n].2);
            let x = (ox + distance * angle.cos()).clamp(0.0, w as f64 - 1.0);
            let y = (oy + distance * angle.sin()).clamp(0.0, h as f64 - 1.0);
            centres[n] = (x, y, centres[n].2);
        }
        footprints[n] = lobed_soma(rng, (w, h), centres[n]);
    }
}

/// A soma whose edge radius varies with angle (2nd–4th harmonics), soft edge, dimmer nucleus.
fn lobed_soma(rng: &mut ChaCha8Rng, (w, h): (usize, usize), (cx, cy, radius): (f64, f64, f64)) -> Footprint {
    let lobes: Vec<(f64, f64, f64)> =
        (2..=4).map(|k| (k as f64, uniform(rng, (0.0, 0.15)), uniform(rng, (0.0, 2.0 * PI)))).collect();
    let outline = |theta: f64| 1.0 + lobes.iter().map(|&(k, a, phase)| a * (k * theta + phase).cos()).sum::<f64>();
    let reach = radius * 1.8;
    let mut pixels = Vec::new();
    let (x0, x1) = ((cx - reach).floor().max(0.0) as usize, ((cx + reach).ceil() as usize).min(w - 1));
    let (y0, y1) = ((cy - reach).floor().max(0.0) as usize, ((cy + reach).ceil() as usize).min(h - 1));
    for y in y0..=y1 {
        for x in x0..=x1 {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let r = dx.hypot(dy) / (radius * outline(dy.atan2(dx)));
            let edge = 1.0 / (1.0 + ((r - 1.0) / 0.12).exp());
            let weight = edge * (1.0 - 0.5 * (-(r / 0.45).powi(2)).exp());
            if weight > 0.02 {
                pixels.push((y * w + x, weight as f32));
            }
        }
    }
    let peak = pixels.iter().map(|&(_, v)| v).fold(0.0f32, f32::max);
    if peak > 0.0 {
        pixels.iter_mut().for_each(|(_, v)| *v /= peak);
    }
    Footprint { pixels }
}
