//! The `simulate` command's flags: the movie, its neurons and indicator, its noise, and the
//! realistic extras (dendrites, puncta, vessels, bleaching, motion) a user can turn on one by one.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct SimulateArgs {
    /// Noisy movie to write (16-bit TIFF).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Also write the noise-free ground truth (32-bit TIFF).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Also write the neurons as a label image (16-bit, 0 = background, n = neuron n), for `deepcad score --labels`.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Also write the true spike trains (CSV: one row per frame, one column per neuron numbered as
    /// in --labels, each cell the spikes whose transient starts at that frame).
    #[arg(long)]
    pub spikes: Option<PathBuf>,
    #[arg(long, default_value_t = 128)]
    pub width: usize,
    #[arg(long, default_value_t = 128)]
    pub height: usize,
    #[arg(long, default_value_t = 500)]
    pub frames: usize,
    #[arg(long, default_value_t = 30)]
    pub neurons: usize,
    /// Mean photons per pixel per frame at a bright soma: 50 bright, 5 typical, 0.5 very noisy.
    #[arg(long, default_value_t = 5.0)]
    pub photons: f64,
    /// Frames per second: sets how many frames a calcium transient lasts (see --indicator).
    #[arg(long, default_value_t = 30.0)]
    pub frame_rate: f64,
    /// Calcium indicator kinetics: gcamp6s (rise 50 ms, decay 0.5–1 s) or fast (GCaMP8f-like: rise
    /// 10–20 ms, decay 100–200 ms), each neuron drawing its own times within the range.
    #[arg(long, default_value_t, value_parser = crate::arg_values::words::<deepcad::simulate::Indicator>())]
    pub indicator: deepcad::simulate::Indicator,
    /// Mean firing rate in Hz: each neuron fires as a Poisson process at its own rate in 0.4–1.6× this.
    /// 0.05 gives sparse, mostly single-spike events.
    #[arg(long, default_value_t = 0.5)]
    pub firing_rate: f64,
    /// One-photon-like data (widefield, miniscope): background ×8 and neuropil ×5 the two-photon
    /// default, so the resting background is about as bright as a soma and a spike's ΔF/F is small.
    #[arg(long)]
    pub one_photon: bool,
    /// Strength of the static tissue background, × the two-photon default [default: 1, or 8 with --one-photon].
    #[arg(long)]
    pub background: Option<f64>,
    /// Strength of the activity-following neuropil, × the two-photon default [default: 1, or 5 with --one-photon].
    #[arg(long)]
    pub neuropil: Option<f64>,
    /// Detector counts per photon.
    #[arg(long, default_value_t = 2.0)]
    pub gain: f64,
    /// Constant detector offset, in counts.
    #[arg(long, default_value_t = 100.0)]
    pub offset: f64,
    /// Standard deviation of the Gaussian read noise, in counts.
    #[arg(long, default_value_t = 2.0)]
    pub read_noise: f64,
    /// Realistic scene: dendrites, puncta, lobed and overlapping somata, vessel shadows, bleaching,
    /// slow drift and small motion, each at a typical strength (the options below override each).
    #[arg(long)]
    pub realistic: bool,
    /// Dendrites per neuron (thin processes as active as their soma) [default: 0, or 3 with --realistic].
    #[arg(long)]
    pub dendrites: Option<usize>,
    /// Small bright puncta per 10,000 pixels [default: 0, or 15 with --realistic].
    #[arg(long)]
    pub puncta: Option<f64>,
    /// Lobed, non-round somata, about a quarter overlapping a neighbour [default: on with --realistic].
    #[arg(long)]
    pub irregular_cells: bool,
    /// Dark blood-vessel shadows crossing the field [default: 0, or 2 with --realistic].
    #[arg(long)]
    pub vessels: Option<usize>,
    /// Share of the brightness bleached away by the last frame, 0–0.9 [default: 0, or 0.15 with --realistic].
    #[arg(long)]
    pub bleaching: Option<f64>,
    /// Peak slow drift of the field, in pixels [default: 0, or 1.5 with --realistic].
    #[arg(long)]
    pub drift: Option<f64>,
    /// Frame-to-frame motion (standard deviation), in pixels [default: 0, or 0.3 with --realistic].
    #[arg(long)]
    pub jitter: Option<f64>,
    /// Replace existing files at the output paths.
    #[arg(long)]
    pub overwrite: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SimulateArgs {
    /// The realistic extras asked for: --realistic's set, each option overriding its part.
    pub fn realism(&self) -> deepcad::simulate::Realism {
        use deepcad::simulate::Realism;
        let base = if self.realistic { Realism::realistic() } else { Realism::default() };
        Realism {
            dendrites_per_neuron: self.dendrites.unwrap_or(base.dendrites_per_neuron),
            puncta_per_10k_px: self.puncta.unwrap_or(base.puncta_per_10k_px),
            irregular_cells: self.irregular_cells || base.irregular_cells,
            vessels: self.vessels.unwrap_or(base.vessels),
            bleaching: self.bleaching.unwrap_or(base.bleaching),
            drift_px: self.drift.unwrap_or(base.drift_px),
            jitter_px: self.jitter.unwrap_or(base.jitter_px),
        }
    }
}
