//! Neural activity of the simulated somata: Poisson spike trains, and the ΔF/F each train causes
//! through the calcium indicator (its kinetics in `indicator.rs`), saturating like GCaMP.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{uniform, Indicator};

/// Largest ΔF/F a neuron can reach (indicator saturation).
const MAX_DFF: (f64, f64) = (1.5, 3.0);
/// Calcium (in single-spike peaks) at which ΔF/F is half of its maximum: one spike gives a third.
const HALF_SATURATION: f64 = 2.0;

/// Homogeneous Poisson spike times over `[0, duration)` at a per-neuron rate drawn in `rates`
/// (Hz). A rate of 0 gives no spikes (the first interval is infinite).
pub(super) fn spike_train(rng: &mut ChaCha8Rng, rates: (f64, f64), duration_s: f64) -> Vec<f64> {
    let rate = uniform(rng, rates);
    let mut times = Vec::new();
    let mut now = 0.0;
    loop {
        now += -(1.0 - rng.random::<f64>()).ln() / rate;
        if now >= duration_s {
            return times;
        }
        times.push(now);
    }
}

/// ΔF/F per frame: each spike adds a double-exponential calcium kernel (the indicator's rise and
/// decay, peak 1), and the indicator saturates as a Michaelis–Menten curve of calcium.
pub(super) fn calcium_trace(
    rng: &mut ChaCha8Rng,
    indicator: Indicator,
    spikes: &[f64],
    frames: usize,
    frame_rate_hz: f64,
) -> Vec<f32> {
    let decay = uniform(rng, indicator.decay_time_s());
    let max_dff = uniform(rng, MAX_DFF);
    // Drawn last and only when it varies, so GCaMP6s traces use the random stream as they always did.
    let rise = match indicator.rise_time_s() {
        (low, high) if low == high => low,
        range => uniform(rng, range),
    };
    let kernel = |dt: f64| (-dt / decay).exp() - (-dt / rise).exp();
    let peak_time = (decay / rise).ln() * decay * rise / (decay - rise);
    let peak = kernel(peak_time);
    let dt = 1.0 / frame_rate_hz;
    let (keep_slow, keep_fast) = ((-dt / decay).exp(), (-dt / rise).exp());

    // Two decaying states sampled at frame times; the kernel is their difference. Each spike
    // enters at the first frame time after it, already decayed by the sub-frame delay.
    let (mut slow, mut fast) = (0.0f64, 0.0f64);
    let mut next_spike = 0;
    (0..frames)
        .map(|t| {
            let now = t as f64 * dt;
            slow *= keep_slow;
            fast *= keep_fast;
            while next_spike < spikes.len() && spikes[next_spike] <= now {
                let delay = now - spikes[next_spike];
                slow += (-delay / decay).exp();
                fast += (-delay / rise).exp();
                next_spike += 1;
            }
            let calcium = ((slow - fast) / peak).max(0.0);
            (max_dff * calcium / (calcium + HALF_SATURATION)) as f32
        })
        .collect()
}
