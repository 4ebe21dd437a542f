//! Restoring fast events that self-supervised denoising removed (issue 23; opt-in).
//!
//! A network trained to predict a frame from its neighbours cannot see a transient shorter than the
//! frame spacing (a fast indicator at a low frame rate): it stays in the residual `raw − output`,
//! mixed with the noise. Within one frame the noise is white while a neuron's transient is
//! cell-shaped, so a spatial Gaussian of about a soma's radius keeps the transient and shrinks the
//! noise by 1/(4πσ²); a Wiener-like gain `r² / (r² + (k·sd)²)` then passes what stands out of that
//! smoothed noise and damps the rest (sd: the frame's robust spread of the smoothed residual), and
//! the cell map `w` (`cell_map.rs`: 1 on the cells, 0 in the background) keeps it where a neuron can be:
//!
//! `restored = output + w · r · r² / (r² + (k·sd)²)`, with `r = G_σ(raw − output)`.
//!
//! Each frame is restored from itself and its cell map alone, so the result does not depend on
//! tiles or blocks. Measured effect (docs/evaluation/experiments.md, "Event restoration where the
//! cells are"): on fast-indicator movies whole-mask spike r comes close to the raw movie's; on
//! slow indicators at low light it costs SNR and gains little, hence off by default.

use super::cell_map::CellMap;
use crate::allocation::zeroed_f32;
use crate::io::FrameSource;
use crate::metrics::{gaussian_filter, quantile_in_place};
use crate::Result;

/// Spatial Gaussian on the residual, in pixels: about a soma's radius at typical zoom.
pub const EVENT_SIGMA_PX: f64 = 3.0;
/// The Wiener threshold, in robust noise SDs of the smoothed residual. With the cell map keeping
/// noise out of the background, 1 SD gives the SNR 3 SDs gave without it, with more events back.
pub const EVENT_THRESHOLD_SDS: f64 = 1.0;

/// Adds back to `output` (one `width × height` frame) the cell-sized, above-noise part of
/// `raw − output` where `cells` (0 to 1 per pixel) says a cell is (see the module); `output` and
/// `raw` in the same units.
pub fn restore_frame_events(output: &mut [f32], raw: &[f32], cells: &[f32], width: usize, height: usize) {
    debug_assert_eq!(output.len(), width * height);
    debug_assert_eq!(raw.len(), width * height);
    debug_assert_eq!(cells.len(), width * height);
    let residual: Vec<f64> = raw.iter().zip(output.iter()).map(|(&r, &o)| r as f64 - o as f64).collect();
    let radius = (3.0 * EVENT_SIGMA_PX).ceil() as usize;
    let smoothed = gaussian_filter(&residual, width, height, EVENT_SIGMA_PX, radius);
    let sd = robust_spread(&smoothed);
    let floor = (EVENT_THRESHOLD_SDS * sd).powi(2);
    for ((out, &r), &cell) in output.iter_mut().zip(&smoothed).zip(cells) {
        let power = r * r;
        if power > 0.0 {
            *out += (cell as f64 * r * power / (power + floor)) as f32;
        }
    }
}

/// Restores finished frames as the streaming core hands them out, reading each one's raw frame
/// again from the source (both in the movie's counts); its buffers serve the whole run.
pub(super) struct EventRestorer {
    width: usize,
    height: usize,
    raw: Vec<f32>,
    restored: Vec<f32>,
    cells: CellMap,
}

impl EventRestorer {
    pub(super) fn new(width: usize, height: usize) -> Result<EventRestorer> {
        let plane = width * height;
        Ok(EventRestorer {
            width,
            height,
            raw: zeroed_f32(plane, "one frame")?,
            restored: zeroed_f32(plane, "one frame")?,
            cells: CellMap::new(width, height)?,
        })
    }

    /// Frame `t` of `source`, denoised as `denoised`, with its fast events restored.
    pub(super) fn restore(&mut self, source: &mut dyn FrameSource, t: usize, denoised: &[f32]) -> Result<&[f32]> {
        source.read_frame(t, &mut self.raw)?;
        let cells = self.cells.weights(source, t, &self.raw)?;
        self.restored.copy_from_slice(denoised);
        restore_frame_events(&mut self.restored, &self.raw, cells, self.width, self.height);
        Ok(&self.restored)
    }

    /// Frame `t` of `source` leaves unrestored (a live step passed through): only the cell map
    /// takes it in, as a restored frame's would be.
    pub(super) fn observe(&mut self, source: &mut dyn FrameSource, t: usize) -> Result<()> {
        source.read_frame(t, &mut self.raw)?;
        self.cells.weights(source, t, &self.raw).map(|_| ())
    }
}

/// 1.4826 × the median absolute deviation from the median: the SD of Gaussian noise, little moved
/// by the few pixels a transient covers.
fn robust_spread(values: &[f64]) -> f64 {
    let mut scratch = values.to_vec();
    let centre = quantile_in_place(&mut scratch, 0.5);
    scratch.iter_mut().zip(values).for_each(|(s, &v)| *s = (v - centre).abs());
    1.4826 * quantile_in_place(&mut scratch, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIDE: usize = 48;
    /// A cell map that allows events anywhere.
    const EVERYWHERE: [f32; SIDE * SIDE] = [1.0; SIDE * SIDE];

    fn cell(amplitude: f32) -> Vec<f32> {
        (0..SIDE * SIDE)
            .map(|i| {
                let (y, x) = ((i / SIDE) as f32 - 24.0, (i % SIDE) as f32 - 24.0);
                amplitude * (-(y * y + x * x) / (2.0 * 16.0)).exp()
            })
            .collect()
    }

    /// Deterministic white noise of SD about 1.
    fn noise(seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..SIDE * SIDE)
            .map(|_| {
                let mut sum = 0.0;
                for _ in 0..12 {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    sum += (state >> 40) as f32 / (1u64 << 24) as f32;
                }
                sum - 6.0
            })
            .collect()
    }

    #[test]
    fn a_removed_cell_sized_event_comes_back_and_little_noise_does() {
        let event = cell(6.0);
        let mut output = vec![10.0f32; SIDE * SIDE];
        let raw: Vec<f32> = event.iter().zip(noise(1)).map(|(&e, n)| 10.0 + e + n).collect();
        restore_frame_events(&mut output, &raw, &EVERYWHERE, SIDE, SIDE);
        let centre: Vec<usize> = (0..SIDE * SIDE).filter(|&i| event[i] > 3.0).collect();
        let back = centre.iter().map(|&i| output[i] - 10.0).sum::<f32>() / centre.len() as f32;
        let was = centre.iter().map(|&i| event[i]).sum::<f32>() / centre.len() as f32;
        assert!(back > 0.6 * was, "restored {back} of an event of {was}");

        let mut quiet = vec![10.0f32; SIDE * SIDE];
        let raw: Vec<f32> = noise(2).iter().map(|n| 10.0 + n).collect();
        restore_frame_events(&mut quiet, &raw, &EVERYWHERE, SIDE, SIDE);
        let rms = (quiet.iter().map(|&v| (v - 10.0).powi(2)).sum::<f32>() / quiet.len() as f32).sqrt();
        // The smoothed noise alone has an rms of 1/√(4πσ²) ≈ 0.094; the gain must pass less of it.
        assert!(rms < 0.08, "noise added back where nothing happened: rms {rms} (the raw frame's is 1)");
    }

    #[test]
    fn an_output_equal_to_the_raw_frame_is_left_as_it_is() {
        let raw: Vec<f32> = noise(3).iter().zip(cell(4.0)).map(|(n, c)| 5.0 + n + c).collect();
        let mut output = raw.clone();
        restore_frame_events(&mut output, &raw, &EVERYWHERE, SIDE, SIDE);
        assert_eq!(output, raw);
    }

    #[test]
    fn nothing_comes_back_where_the_cell_map_says_background() {
        let event = cell(6.0);
        let raw: Vec<f32> = event.iter().zip(noise(4)).map(|(&e, n)| 10.0 + e + n).collect();
        let mut output = vec![10.0f32; SIDE * SIDE];
        restore_frame_events(&mut output, &raw, &[0.0; SIDE * SIDE], SIDE, SIDE);
        assert!(output.iter().all(|&v| v == 10.0), "a background map let the residual back");
    }

    #[test]
    fn frames_passed_through_keep_later_restored_frames_as_in_a_run_that_restored_them_all() {
        use crate::io::{InMemoryMovie, SampleType};
        let frames = 230; // across two chunks of the cell map
        let data: Vec<f32> = (0..frames as u64).flat_map(|t| noise(t + 10)).map(|n| 10.0 + n).collect();
        let mut movie = InMemoryMovie::new("noise", SIDE, SIDE, frames, SampleType::F32, data).unwrap();
        let denoised = vec![10.0f32; SIDE * SIDE];
        let mut all = EventRestorer::new(SIDE, SIDE).unwrap();
        let mut some = EventRestorer::new(SIDE, SIDE).unwrap();
        for t in 0..frames {
            let expected = all.restore(&mut movie, t, &denoised).unwrap().to_vec();
            if (90..130).contains(&t) {
                some.observe(&mut movie, t).unwrap();
            } else {
                assert!(some.restore(&mut movie, t, &denoised).unwrap() == expected, "frame {t} differs");
            }
        }
    }
}
