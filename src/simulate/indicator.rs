//! The calcium indicator's kinetics: how fast a simulated neuron's fluorescence rises after a
//! spike and how long it takes to fall back. Fast indicators are where denoisers that predict a
//! frame from its neighbours are weakest: a transient a few frames long is averaged away.

use crate::vocabulary::Vocabulary;

/// Which calcium indicator the simulated neurons express.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Indicator {
    /// GCaMP6s-like (the simulator's original kinetics): rise 50 ms, decay 0.5–1 s per neuron.
    #[default]
    Gcamp6s,
    /// A fast indicator (GCaMP8f / jGCaMP7f-like): rise 10–20 ms, decay 100–200 ms per neuron.
    Fast,
}

impl Vocabulary for Indicator {
    const WHAT: &'static str = "indicator";
    const WORDS: &'static [(Self, &'static str)] = &[(Indicator::Gcamp6s, "gcamp6s"), (Indicator::Fast, "fast")];
}
crate::spelled!(Indicator);

impl Indicator {
    /// Range of the rise time constant in seconds; each neuron draws its own within it. A range
    /// of one value draws nothing, which keeps GCaMP6s movies identical to those simulated before
    /// indicators could be chosen.
    pub fn rise_time_s(self) -> (f64, f64) {
        match self {
            Indicator::Gcamp6s => (0.05, 0.05),
            Indicator::Fast => (0.010, 0.020),
        }
    }

    /// Range of the decay time constant in seconds; each neuron draws its own within it.
    pub fn decay_time_s(self) -> (f64, f64) {
        match self {
            Indicator::Gcamp6s => (0.5, 1.0),
            Indicator::Fast => (0.100, 0.200),
        }
    }
}
