//! The arithmetic a denoising run uses: float32, or bfloat16 on devices that compute it natively.
//!
//! A bfloat16 run works on a copy of the model whose 3×3×3 convolution weights are cast once (not
//! per call, as mixed-precision training must): the tile is cast to bfloat16 on entry, every
//! convolution, pooling and upsampling runs in bfloat16 (oneDNN accumulates in float32 inside
//! each convolution), and the 1×1×1 head runs in float32 on the last level's features, so the
//! output is not rounded to bfloat16's 8 bits. A hybrid model's blind-spot branch stays float32.

use tch::{Device, Kind};

use super::bundle::Model;
use crate::vocabulary::Vocabulary;
use crate::{Error, Result};

/// The precision a denoising run asks for, as every door spells it: `auto`, `float32`, `bfloat16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InferencePrecision {
    /// Bfloat16 where the device computes it natively ([`AUTO_USES_BFLOAT16`]), float32 elsewhere.
    #[default]
    Auto,
    Float32,
    /// Bfloat16 where the device computes it natively; elsewhere a clear error (emulated bfloat16
    /// is slower than float32, and a silent fallback would hide that the request was not met).
    Bfloat16,
}

/// Whether `auto` picks bfloat16 on a device with native bfloat16. The gate (≤ 0.05 dB SNR and
/// ≤ 0.001 trace r at every photon level of the harness) was met: at most 0.009 dB, 0.00006 trace r
/// and 0.0006 spike r, built-in and trained models, 50 to 0.5 photons (`eval/precision_cost.py`,
/// docs/evaluation/precision), and the whole test suite passes with it on. (The tensor pool had to
/// go off by default for that: with both on, a later run in the same JVM changed; see
/// `DenoiseSettings::tensor_pool`.)
pub const AUTO_USES_BFLOAT16: bool = true;

impl Vocabulary for InferencePrecision {
    const WHAT: &'static str = "precision";
    const WORDS: &'static [(Self, &'static str)] = &[
        (InferencePrecision::Auto, "auto"),
        (InferencePrecision::Float32, "float32"),
        (InferencePrecision::Bfloat16, "bfloat16"),
    ];
}
crate::spelled!(InferencePrecision);

impl InferencePrecision {
    /// The element kind the network computes in on `device`: `auto` resolved, `bfloat16` refused
    /// where the device lacks native bfloat16.
    pub fn resolve(self, device: Device) -> Result<Kind> {
        let native = crate::device::has_native_bfloat16(device);
        match self {
            InferencePrecision::Float32 => Ok(Kind::Float),
            InferencePrecision::Auto if AUTO_USES_BFLOAT16 && native => Ok(Kind::BFloat16),
            InferencePrecision::Auto => Ok(Kind::Float),
            InferencePrecision::Bfloat16 if native => Ok(Kind::BFloat16),
            InferencePrecision::Bfloat16 => Err(Error::usage(format!(
                "precision bfloat16 needs a device that computes it natively (a CPU with AVX512-BF16 or AMX-BF16, or a CUDA GPU of compute capability 8.0 or newer); {} has none: choose float32 or auto",
                crate::device::device_id(device)
            ))),
        }
    }
}

/// The model a denoising run in `precision` uses: `None` when it is `model` itself (float32), else
/// a copy with bfloat16 convolution weights. The copy holds the weights once more (a few MB).
pub fn inference_model(model: &Model, precision: InferencePrecision) -> Result<Option<Model>> {
    if precision.resolve(model.device())? == Kind::Float {
        return Ok(None);
    }
    let mut copy = Model::new(model.metadata.clone(), model.device())?;
    copy.vs.copy(&model.vs)?;
    tch::no_grad(|| -> Result<()> {
        for (name, mut variable) in copy.vs.variables() {
            if is_cast_for_bfloat16(&name, &variable) {
                // set_data swaps the storage under every handle of this variable (the network's too).
                variable.f_set_data(&variable.f_to_kind(Kind::BFloat16)?)?;
            }
        }
        Ok(())
    })?;
    Ok(Some(copy))
}

/// The U-Net's 3×3×3 convolution weights and biases; not its 1×1×1 head (float32 output) nor a
/// hybrid model's blind-spot branch.
fn is_cast_for_bfloat16(name: &str, variable: &tch::Tensor) -> bool {
    name.starts_with("Generator.") && !name.starts_with("Generator.final_conv") && variable.kind() == Kind::Float
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_round_trips_and_others_are_refused_by_name() {
        for name in InferencePrecision::words() {
            let precision: InferencePrecision = name.parse().unwrap();
            assert_eq!(serde_json::to_value(precision).unwrap(), serde_json::json!(name));
        }
        let error = "half".parse::<InferencePrecision>().unwrap_err().to_string();
        assert!(error.contains("'half'") && error.contains("bfloat16"), "{error}");
        assert_eq!(InferencePrecision::Float32.resolve(Device::Cpu).unwrap(), Kind::Float);
    }
}
