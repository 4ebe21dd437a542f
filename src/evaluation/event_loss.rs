//! A reference-free signal of lost events (issue 23): how much of the raw movie's fast,
//! cell-sized transient power the denoiser left in its residual `raw − denoised`.
//!
//! A transient is fast in time and shared by the pixels of a cell; pixel noise is neither shared
//! between pixels nor between frames. So, after a temporal high-pass `h(t) = x(t) − (x(t−1) +
//! x(t+1))/2` (which removes the slow signal and anything static), the mean product of two
//! different pixels of one [`POOL`]×[`POOL`] box, `h(p)·h(q)`, is zero for white noise and the fast
//! signal's power where a cell covers both: the "coherent fast power" `C` (pooling every pair of
//! a box, not one offset, makes it stable on small movies). Then `event loss = C(residual) /
//! C(raw)`: about 0 when the residual is noise (the events stayed in the output), about 1 when
//! the fast transients went into the residual, `a²` when a share `a` of each was smoothed away.
//!
//! Limits: the high-pass is one frame wide, so any temporal averaging over 3 or more frames already
//! reads as a loss near 1 for an indicator faster than the frame spacing; and a denoiser that
//! averages the noise in space leaves a residual whose neighbouring pixels are anti-correlated,
//! which reads as a negative loss (it keeps fast, cell-sized content, noise included).

use serde::Serialize;

/// Side of the boxes whose pixel pairs are multiplied: about a neuron's size.
pub const POOL: usize = 5;

/// The event-loss signal of one output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EventLoss {
    /// `C(residual) / C(raw)`: the share of the raw movie's fast, cell-sized transient power that
    /// is in the residual (≈ 0: events kept; towards 1: events smoothed away). `None` when the
    /// raw movie has no measurable fast coherent power (`C(raw) ≤ 0`: no fast events to lose).
    pub fast_event_loss: Option<f64>,
    /// `C(raw)` over the raw movie's high-passed power: how much of its fast variation is
    /// cell-sized signal rather than pixel noise (the denominator's reliability).
    pub raw_fast_coherence: f64,
    /// `C(raw)` itself (squared movie units): pooling several movies or patches weighs each
    /// loss by it, so a patch without cells (tiny `C(raw)`, an unstable ratio) weighs little.
    pub raw_fast_coherent_power: f64,
}

/// The event-loss signal of `denoised` against `raw` (`frames × height × width`, frame-major).
/// Movies of fewer than 3 frames or smaller than the offset give `None` for the loss.
pub fn event_loss(raw: &[f32], denoised: &[f32], width: usize, height: usize) -> EventLoss {
    let (raw_coherent, raw_power) = fast_coherent_power(raw, None, width, height);
    let (residual_coherent, _) = fast_coherent_power(raw, Some(denoised), width, height);
    let fast_event_loss = (raw_coherent > 0.0).then(|| residual_coherent / raw_coherent);
    let raw_fast_coherence = if raw_power > 0.0 { raw_coherent / raw_power } else { 0.0 };
    EventLoss { fast_event_loss, raw_fast_coherence, raw_fast_coherent_power: raw_coherent }
}

/// `(C, P)`: the mean of `h(p)·h(q)` over frames and the distinct pixel pairs of every
/// [`POOL`]-sided box inside the frame, and the mean of `h(p)²`, where `h` is the temporal
/// high-pass of `movie` (minus `subtract`, when given). Per box, `Σ_{p≠q} h(p)·h(q) = (Σ h)² − Σ h²`.
fn fast_coherent_power(movie: &[f32], subtract: Option<&[f32]>, width: usize, height: usize) -> (f64, f64) {
    let frame_len = width * height;
    let frames = movie.len().checked_div(frame_len).unwrap_or(0);
    if frames < 3 || width < POOL || height < POOL {
        return (0.0, 0.0);
    }
    let value = |i: usize| -> f64 { movie[i] as f64 - subtract.map_or(0.0, |s| s[i] as f64) };
    let mut high = vec![0f64; frame_len];
    // Integral images of h and h² with a zero first row and column.
    let (mut sum, mut squares) = (vec![0f64; (width + 1) * (height + 1)], vec![0f64; (width + 1) * (height + 1)]);
    let (mut coherent, mut power, mut boxes) = (0f64, 0f64, 0usize);
    for t in 1..frames - 1 {
        let (before, now, after) = ((t - 1) * frame_len, t * frame_len, (t + 1) * frame_len);
        for (p, h) in high.iter_mut().enumerate() {
            *h = value(now + p) - 0.5 * (value(before + p) + value(after + p));
            power += *h * *h;
        }
        integrate(&high, width, height, &mut sum, &mut squares);
        let row = width + 1;
        let box_sum = |table: &[f64], y: usize, x: usize| {
            table[(y + POOL) * row + x + POOL] - table[y * row + x + POOL] - table[(y + POOL) * row + x]
                + table[y * row + x]
        };
        for y in 0..=height - POOL {
            for x in 0..=width - POOL {
                coherent += box_sum(&sum, y, x).powi(2) - box_sum(&squares, y, x);
                boxes += 1;
            }
        }
    }
    let pairs = (POOL * POOL * (POOL * POOL - 1)) as f64;
    (coherent / (boxes as f64 * pairs), power / ((frames - 2) * frame_len) as f64)
}

/// Fills `sum` and `squares` (`(height+1)×(width+1)`) with the integral images of `h` and `h²`.
fn integrate(h: &[f64], width: usize, height: usize, sum: &mut [f64], squares: &mut [f64]) {
    let row = width + 1;
    for y in 0..height {
        let (mut line, mut line_squares) = (0f64, 0f64);
        for x in 0..width {
            let v = h[y * width + x];
            line += v;
            line_squares += v * v;
            sum[(y + 1) * row + x + 1] = sum[y * row + x + 1] + line;
            squares[(y + 1) * row + x + 1] = squares[y * row + x + 1] + line_squares;
        }
    }
}
