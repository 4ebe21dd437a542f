//! The hybrid network: the DeepCAD U-Net as a context branch that sees only frames of the other
//! parity, the blind-spot stack (`blind_spot.rs`) on the current frame, and a 1×1×1 head that joins
//! them: `out = context + W₂·ReLU(W₁·[context, blind features] + b₁) + b₂`.
//!
//! The head predicts a correction to the context's prediction, and its last layer starts at zero,
//! so a fresh hybrid network computes exactly its U-Net's interlaced prediction: training can start
//! from the built-in model (or any interlaced bundle) and only has to learn what the current
//! frame's neighbouring pixels add, such as a transient shorter than the frame spacing.
//!
//! The context is the U-Net's one-channel prediction rather than its f-channel features: the
//! low-memory forward fuses the U-Net's own head into its last decoder slabs and never holds those
//! features for a whole tile, and the U-Net keeps the exact layout of interlaced models.
//!
//! Training (`pair`): context = the even frames of a window, current = its odd frames (or the
//! other way round when augmentation swaps them), target = the current frames. So the context of
//! target frame `k` is the frame just before it (unswapped) or just after it (swapped).
//!
//! Denoising (`parity_split_context`): the U-Net runs on the even frames of a tile and on its odd
//! frames; odd frame `2k+1` takes the even pass's output `k` (context frame `2k`, just before, as in
//! unswapped training), even frame `2k` the odd pass's output `k` (context frame `2k+1`, just after,
//! as in swapped training). No frame is ever in its own context, at inference as in training, and
//! the U-Net sees the frame spacing it was trained on. Two passes over half the frames cost about
//! one pass over all of them; the blind stack adds about a fifth.

use tch::{nn, Tensor};

use super::blind_spot::{blind_spot_parameter_count, frame_conv, BlindSpotStack, BLIND_CHANNELS, BLIND_DILATIONS};
use crate::geometry::ALIGNMENT;
use crate::{Error, Result};

/// Width of the head's hidden layer (8 like the blind-spot stack's: its sum is read and written
/// once per blind-spot layer, so its width costs memory traffic at every layer).
pub const HEAD_CHANNELS: i64 = 8;

/// Channels the head reads: the context's prediction and every blind-spot layer's features.
const HEAD_INPUTS: i64 = 1 + BLIND_DILATIONS.len() as i64 * BLIND_CHANNELS;

/// What a hybrid network has beyond its U-Net: the blind-spot stack and the joining head.
#[derive(Debug)]
pub struct HybridHead {
    blind: BlindSpotStack,
    /// `W₁`, `[HEAD_CHANNELS, HEAD_INPUTS, 1, 1]`, and `b₁`.
    hidden_weight: Tensor,
    hidden_bias: Tensor,
    /// `W₂`, `[1, HEAD_CHANNELS, 1, 1]`, and `b₂`: zero at first.
    output_weight: Tensor,
    output_bias: Tensor,
}

impl HybridHead {
    /// Variables under `p`: `blind.*`, `hidden.weight|bias` (PyTorch's default initialisation,
    /// uniform in ±1/√fan_in) and `output.weight|bias` (zero: see the module).
    pub fn new(p: &nn::Path) -> Self {
        let bound = 1.0 / (HEAD_INPUTS as f64).sqrt();
        let uniform = nn::Init::Uniform { lo: -bound, up: bound };
        let (hidden, output) = (p / "hidden", p / "output");
        HybridHead {
            blind: BlindSpotStack::new(&(p / "blind")),
            hidden_weight: hidden.var("weight", &[HEAD_CHANNELS, HEAD_INPUTS, 1, 1], uniform),
            hidden_bias: hidden.var("bias", &[HEAD_CHANNELS], uniform),
            output_weight: output.zeros("weight", &[1, HEAD_CHANNELS, 1, 1]),
            output_bias: output.zeros("bias", &[1]),
        }
    }

    /// The output for `current` frames (`[N, 1, T, H, W]`) given the context's prediction of
    /// each (same shape, computed without them).
    pub fn forward(&self, context: &Tensor, current: &Tensor) -> Result<Tensor> {
        // One channel in, one out: `[N, 1, T, H, W]` is a batch of N·T frames as it lies.
        let size = current.size();
        let as_frames = |x: &Tensor| -> Result<Tensor> { Ok(x.f_reshape([size[0] * size[2], 1, size[3], size[4]])?) };
        let (context, current) = (as_frames(context)?, as_frames(current)?);
        let part = |from: i64, len: i64| -> Result<Tensor> { Ok(self.hidden_weight.f_narrow(1, from, len)?) };
        let no_bias = self.hidden_bias.f_zeros_like()?;
        // W₁·[context, h₀, …, h₄] summed part by part as the layers appear, so the joined
        // features (41 channels) are never built.
        let mut hidden = frame_conv(&context, &part(0, 1)?, &self.hidden_bias, 1)?;
        self.blind.for_each_layer(&current, &mut |d, features| {
            let from = 1 + d as i64 * BLIND_CHANNELS;
            // In place: the sum is no leaf and addition keeps nothing for the backward pass.
            let _ = hidden.f_add_(&frame_conv(features, &part(from, BLIND_CHANNELS)?, &no_bias, 1)?)?;
            Ok(())
        })?;
        let correction = frame_conv(&hidden.f_relu_()?, &self.output_weight, &self.output_bias, 1)?;
        Ok(context.f_add(&correction)?.f_reshape(size.as_slice())?)
    }

    /// [`HybridHead::forward`] a few frames at a time (every part of it works on each frame
    /// alone, so this is the same function): at most `chunk_voxels` voxels per step, so the
    /// blind-spot features never exist for a whole tile at once.
    pub fn forward_in_chunks(&self, context: &Tensor, current: &Tensor, chunk_voxels: usize) -> Result<Tensor> {
        let size = current.size();
        let frame_voxels = (size[0] * size[3] * size[4]).max(1);
        let frames = size[2];
        let step = (chunk_voxels as i64 / frame_voxels).clamp(1, frames.max(1));
        if step >= frames {
            return self.forward(context, current);
        }
        let output = Tensor::f_empty(size.as_slice(), (current.kind(), current.device()))?;
        for t0 in (0..frames).step_by(step as usize) {
            let n = step.min(frames - t0);
            let part = self.forward(&context.f_narrow(2, t0, n)?, &current.f_narrow(2, t0, n)?)?;
            output.f_narrow(2, t0, n)?.f_copy_(&part)?;
        }
        Ok(output)
    }
}

/// Parameters of [`HybridHead`].
pub fn hybrid_parameter_count() -> usize {
    let (inputs, hidden) = (HEAD_INPUTS as usize, HEAD_CHANNELS as usize);
    blind_spot_parameter_count() + inputs * hidden + hidden + hidden + 1
}

/// The context of every frame of a tile (`[N, 1, L, H, W]`, `L` even) whose first frame is movie
/// frame `first_frame` (even), from two U-Net passes (`unet_pass`), one per parity (see the module).
///
/// Each pass's input is shifted onto the movie's own grid: the U-Net pools three times, so its
/// output depends on where a frame lies modulo 8 in the stream it runs on. Frame `2j` or `2j+1` is
/// index `j` of its parity's stream, so the pass gets `first_frame/2 mod 8` zero frames in front
/// (and zeros after, up to a multiple of 8); a tile then computes what the whole movie computes,
/// given a halo of at least the hybrid's temporal receptive field.
pub fn parity_split_context(
    tile: &Tensor,
    first_frame: usize,
    unet_pass: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let size = tile.size();
    let length = size[2];
    if length % 2 != 0 || first_frame % 2 != 0 {
        return Err(Error::usage(format!(
            "a hybrid model denoises tiles of an even number of frames starting on an even frame (got {length} frames from frame {first_frame})"
        )));
    }
    let half = length / 2;
    let lead = ((first_frame / 2) % ALIGNMENT) as i64;
    let alignment = ALIGNMENT as i64;
    let padded = (lead + half + alignment - 1) / alignment * alignment;
    let mut context_from = |parity: i64| -> Result<Tensor> {
        let frames = tile.f_slice(2, parity, length, 2)?;
        let stream = frames.f_constant_pad_nd([0, 0, 0, 0, lead, padded - lead - half])?;
        Ok(unet_pass(&stream)?.f_narrow(2, lead, half)?)
    };
    // Odd frame 2k+1 ← even pass k; even frame 2k ← odd pass k.
    let from_even = context_from(0)?;
    let from_odd = context_from(1)?;
    Ok(Tensor::f_stack(&[from_odd, from_even], 3)?.f_reshape(size.as_slice())?)
}

/// `tiles` (`[N, 1, L, H, W]`) with, in tile `n`, the rows from `real[n].0` and the columns from
/// `real[n].1` on set to zero. Past the movie's bottom and right edges a tile holds mirrored copies
/// of pixels inside it, and a mirror copy of pixel `p` at an offset the blind stack can reach would
/// show it `p` itself; the stack sees zeros there instead, as at a training patch's edge.
pub fn without_mirrored_pixels(tiles: &Tensor, real: &[(usize, usize)]) -> Result<Tensor> {
    let size = tiles.size();
    let (rows, columns) = (size[3], size[4]);
    let clipped: Vec<(i64, i64)> = real.iter().map(|&(r, c)| ((r as i64).min(rows), (c as i64).min(columns))).collect();
    if clipped.len() != size[0] as usize {
        return Err(Error::usage(format!("{} tile placements for a batch of {} tiles", clipped.len(), size[0])));
    }
    if clipped.iter().all(|&(r, c)| r == rows && c == columns) {
        return Ok(tiles.shallow_clone());
    }
    let mask = Tensor::f_zeros([size[0], 1, 1, rows, columns], (tiles.kind(), tiles.device()))?;
    for (n, &(r, c)) in clipped.iter().enumerate() {
        let _ = mask.f_get(n as i64)?.f_narrow(2, 0, r)?.f_narrow(3, 0, c)?.f_fill_(1.0)?;
    }
    Ok(tiles.f_mul(&mask)?)
}
