//! One optimisation step's arithmetic: a batch of training pairs, the loss of the network's
//! prediction on them (float32 or mixed bfloat16), its gradients, and the held-out validation loss.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{nn, Kind, Reduction, Tensor};

use super::augment::Augmentation;
use super::masked_voxels::{draw_mask, masked_input, masked_loss};
use super::pair_reader::PairReader;
use super::patch_grid::{Patch, PatchPlan};
use super::settings::Loss;
use crate::io::FrameSource;
use crate::model::{Model, SelfSupervision};
use crate::Result;

/// Fresh gradients of the pair loss in the optimiser's variables; returns the loss.
pub(super) fn loss_and_gradients(
    model: &Model,
    optimizer: &mut nn::Optimizer,
    pairs: &PairBatch<'_>,
    loss: Loss,
    bfloat16: bool,
) -> Result<f64> {
    let loss = pair_loss(model, pairs, loss, bfloat16)?;
    optimizer.zero_grad();
    loss.f_backward()?;
    Ok(loss.f_double_value(&[])?)
}

/// Whether every gradient is finite (one reduction per variable, cheap beside a step).
pub(super) fn gradients_are_finite(vs: &nn::VarStore) -> Result<bool> {
    for variable in vs.trainable_variables() {
        let grad = variable.grad();
        if grad.defined() && grad.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `n` training pairs, each volume `patch` (`[t, y, x]`) long, one after the other. With a
/// `mask` (masked-voxel training), `input` and `target` are the same frames: the masked voxels of
/// the input are replaced and only they count in the loss.
pub(super) struct PairBatch<'a> {
    pub input: &'a [f32],
    pub target: &'a [f32],
    pub mask: Option<&'a [f32]>,
    pub n: usize,
    pub patch: [usize; 3],
}

/// The `loss` (a mean) of the network's output on the pairs' inputs against their targets. With
/// `bfloat16` the network computes in bfloat16 (its float32 weights cast per convolution) and the
/// loss in float32.
fn pair_loss(model: &Model, pairs: &PairBatch<'_>, loss: Loss, bfloat16: bool) -> Result<Tensor> {
    let [t, y, x] = pairs.patch.map(|v| v as i64);
    let shape = [pairs.n as i64, 1, t, y, x];
    let device = model.device();
    let on_device = |values: &[f32]| Tensor::from_slice(values).f_view(shape)?.f_to_device(device);
    let y = on_device(pairs.target)?;
    let mask = pairs.mask.map(on_device).transpose()?;
    let x = match &mask {
        // Masked training: the input is the target's frames with the masked voxels replaced.
        Some(mask) => masked_input(&y, mask)?,
        None => on_device(pairs.input)?,
    };
    let out = if bfloat16 {
        model.pair_forward(&x.f_to_kind(Kind::BFloat16)?, &y.f_to_kind(Kind::BFloat16)?)?.f_to_kind(Kind::Float)?
    } else {
        model.pair_forward(&x, &y)?
    };
    if let Some(mask) = &mask {
        return masked_loss(&out, &y, mask, loss == Loss::L1Mse);
    }
    let l2 = out.f_mse_loss(&y, Reduction::Mean)?;
    match loss {
        Loss::Mse => Ok(l2),
        Loss::L1Mse => Ok(out.f_l1_loss(&y, Reduction::Mean)?.f_add(&l2)?.f_mul_scalar(0.5)?),
    }
}

/// Mean loss over the held-out patches, without augmentation or gradients.
pub(super) fn validation_loss(
    model: &Model,
    sources: &mut [Box<dyn FrameSource>],
    reader: &mut PairReader,
    plan: &PatchPlan,
    validation: &[usize],
    batch: usize,
    loss: Loss,
) -> Result<f64> {
    let volume = reader.volume_len();
    let mut buffers = PairBuffers::new(batch * volume, model.metadata.method);
    let mut sum = 0f64;
    for chunk in validation.chunks(batch) {
        for (b, &index) in chunk.iter().enumerate() {
            // The same mask for a held-out patch every epoch, so its losses compare.
            let mut rng = ChaCha8Rng::seed_from_u64(index as u64);
            buffers.read(reader, sources, &plan.patches[index], Augmentation::NONE, b, &mut rng)?;
        }
        let pairs = buffers.batch(chunk.len(), plan.patch);
        let loss = tch::no_grad(|| pair_loss(model, &pairs, loss, false))?;
        sum += loss.f_double_value(&[])? * chunk.len() as f64;
    }
    Ok(sum / validation.len() as f64)
}

/// Reusable host buffers for a batch of pairs, filled as `method` trains: interleaved frames, or
/// consecutive frames with a freshly drawn voxel mask.
pub(super) struct PairBuffers {
    input: Vec<f32>,
    target: Vec<f32>,
    mask: Option<Vec<f32>>,
}

impl PairBuffers {
    pub fn new(len: usize, method: SelfSupervision) -> Self {
        let mask = (method == SelfSupervision::Masked).then(|| vec![0f32; len]);
        // Masked pairs' inputs are their targets' frames: no buffer of their own.
        let input = if mask.is_some() { Vec::new() } else { vec![0f32; len] };
        PairBuffers { input, target: vec![0f32; len], mask }
    }

    /// Reads `patch` into slot `b`, drawing its mask (if any) from `rng`.
    pub fn read(
        &mut self,
        reader: &mut PairReader,
        sources: &mut [Box<dyn FrameSource>],
        patch: &Patch,
        augmentation: Augmentation,
        b: usize,
        rng: &mut impl rand::Rng,
    ) -> Result<()> {
        let volume = reader.volume_len();
        let slot = b * volume..(b + 1) * volume;
        let y = &mut self.target[slot.clone()];
        match &mut self.mask {
            None => reader.read_pair(sources, patch, augmentation, &mut self.input[slot], y),
            Some(mask) => {
                reader.read_consecutive(sources, patch, augmentation, y)?;
                draw_mask(rng, &mut mask[slot]);
                Ok(())
            }
        }
    }

    /// The first `n` slots as a batch of pairs of volume `patch`.
    pub fn batch(&self, n: usize, patch: [usize; 3]) -> PairBatch<'_> {
        let len = n * patch.iter().product::<usize>();
        let inputs = if self.mask.is_some() { &self.target } else { &self.input };
        PairBatch {
            input: &inputs[..len],
            target: &self.target[..len],
            mask: self.mask.as_ref().map(|m| &m[..len]),
            n,
            patch,
        }
    }
}
