//! One optimisation step's arithmetic: a batch of training pairs, the loss of the network's
//! prediction on them (float32 or mixed bfloat16), its gradients, and the held-out validation loss.

use tch::{nn, Kind, Reduction, Tensor};

use super::augment::Augmentation;
use super::pair_reader::PairReader;
use super::patch_grid::PatchPlan;
use super::settings::Loss;
use crate::io::FrameSource;
use crate::model::Model;
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

/// `n` training pairs, each volume `patch` (`[t, y, x]`) long, one after the other.
pub(super) struct PairBatch<'a> {
    pub input: &'a [f32],
    pub target: &'a [f32],
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
    let x = Tensor::from_slice(pairs.input).f_view(shape)?.f_to_device(device)?;
    let y = Tensor::from_slice(pairs.target).f_view(shape)?.f_to_device(device)?;
    let out = if bfloat16 {
        model.pair_forward(&x.f_to_kind(Kind::BFloat16)?, &y.f_to_kind(Kind::BFloat16)?)?.f_to_kind(Kind::Float)?
    } else {
        model.pair_forward(&x, &y)?
    };
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
    let mut input = vec![0f32; batch * volume];
    let mut target = vec![0f32; batch * volume];
    let mut sum = 0f64;
    for chunk in validation.chunks(batch) {
        for (b, &index) in chunk.iter().enumerate() {
            let (x, y) = (&mut input[b * volume..(b + 1) * volume], &mut target[b * volume..(b + 1) * volume]);
            reader.read_pair(sources, &plan.patches[index], Augmentation::NONE, x, y)?;
        }
        let n = chunk.len();
        let pairs = PairBatch { input: &input[..n * volume], target: &target[..n * volume], n, patch: plan.patch };
        let loss = tch::no_grad(|| pair_loss(model, &pairs, loss, false))?;
        sum += loss.f_double_value(&[])? * n as f64;
    }
    Ok(sum / validation.len() as f64)
}
