//! Which sample type a denoised movie is written in: the input's, 32-bit float, or the input's
//! unless rounding to it would throw denoised detail away. Every door spells the choice with the
//! same words (`auto`, `input`, `float32`).

use crate::io::SampleType;
use crate::vocabulary::Vocabulary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputType {
    /// The input's sample type unless rounding to it would throw denoised detail away (dim integer
    /// data): see [`OutputType::resolve`].
    #[default]
    Auto,
    /// The input's sample type, rounded and clipped to its range (never wrapped).
    SameAsInput,
    Float32,
}

impl Vocabulary for OutputType {
    const WHAT: &'static str = "output type";
    const WORDS: &'static [(Self, &'static str)] =
        &[(OutputType::Auto, "auto"), (OutputType::SameAsInput, "input"), (OutputType::Float32, "float32")];
}
crate::spelled!(OutputType);

/// Below this spread of the training data (the model's normalisation scale, in counts), integer
/// output is too coarse for the denoised signal: rounding adds 1/12 count² of error, which at
/// 1 photon per pixel (spread ≈ 2.7 counts) cost 3.1 dB and at 5 photons (≈ 5 counts) 0.56 dB,
/// but at 50 photons (≈ 30 counts) only 0.02 dB (docs/evaluation/report.md).
pub const MIN_SPREAD_FOR_INTEGER_OUTPUT: f64 = 16.0;

impl OutputType {
    /// The sample type written for an input of `input` type whose denoised values spread over
    /// `spread` counts per network unit ([`output_spread`](super::output_spread)), and why when
    /// `Auto` chose differently from the input.
    pub fn resolve(self, input: SampleType, spread: Option<f64>) -> (SampleType, Option<String>) {
        match (self, spread) {
            (OutputType::Float32, _) => (SampleType::F32, None),
            (OutputType::Auto, Some(spread)) if input != SampleType::F32 && spread < MIN_SPREAD_FOR_INTEGER_OUTPUT => (
                SampleType::F32,
                Some(format!(
                    "writing 32-bit float: the data spread {spread:.1} counts (under {MIN_SPREAD_FOR_INTEGER_OUTPUT}) is too fine for {input} output, rounding would throw away part of the denoising gain"
                )),
            ),
            _ => (input, None),
        }
    }
}
