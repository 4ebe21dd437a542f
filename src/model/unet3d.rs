//! The DeepCAD / DeepCAD-RT 3-D U-Net (deepcad-spec §2.1), layer for layer.
//!
//! Four levels of widths [f, 2f, 4f, 8f]; each level is two 3×3×3 convolutions (bias, zero padding 1)
//! followed by ReLU, no normalisation layers; max-pool 2 between encoder levels; the decoder upsamples
//! with legacy nearest interpolation to the skip's exact size and concatenates [skip, up]; a linear
//! 1×1×1 head. Variable paths reproduce the reference state-dict names
//! (`Generator.encoders.0.basic_module.SingleConv1.conv.weight`, ...) so checkpoints map one to one.

use tch::{nn, Kind, Tensor};

mod architecture_counts;
mod slab_forward;

pub use architecture_counts::{forward_flops_per_voxel, parameter_count};
pub use slab_forward::{slab_bytes_per_voxel, slab_columns, SLAB_SHARE_OF_TILE, SLAB_VOXELS};

use super::channels_last::channels_last;
use super::conv_dispatch::conv;
use super::upsampled_conv::{is_exact_doubling, UpsampledConv};
use crate::geometry::LEVELS;
use crate::Result;

/// Two convolutions each followed by ReLU (pytorch-3dunet's `DoubleConv` with order "cr").
#[derive(Debug)]
struct DoubleConv {
    conv1: nn::Conv3D,
    conv2: nn::Conv3D,
}

impl DoubleConv {
    fn new(p: &nn::Path, c_in: i64, c_mid: i64, c_out: i64) -> Self {
        let config = nn::ConvConfig { padding: 1, ..Default::default() };
        let block = p / "basic_module";
        DoubleConv {
            conv1: nn::conv3d(&block / "SingleConv1" / "conv", c_in, c_mid, 3, config),
            conv2: nn::conv3d(&block / "SingleConv2" / "conv", c_mid, c_out, 3, config),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = conv(x, &self.conv1.ws, self.conv1.bs.as_ref(), 1)?.f_relu_()?;
        self.second(&h)
    }

    fn second(&self, h: &Tensor) -> Result<Tensor> {
        Ok(conv(h, &self.conv2.ws, self.conv2.bs.as_ref(), 1)?.f_relu_()?)
    }

    /// A decoder level: `forward` of [skip, nearest-upsampled `coarse`] joined along channels.
    /// Where the skip is exactly twice the coarse map's size the first convolution is split by its
    /// input channels, and the upsampled half runs on the coarse map (`upsampled_conv`): the
    /// same function in about 40 % of the multiply-adds, with neither the upsampled map nor the
    /// concatenation built.
    fn forward_decoder(&self, skip: &Tensor, coarse: &Tensor) -> Result<Tensor> {
        let fine = skip.size()[2..].to_vec();
        if !is_exact_doubling(&coarse.size()[2..], &fine) {
            let up = coarse.f_upsample_nearest3d(&fine, None, None, None)?;
            return self.forward(&Tensor::f_cat(&[skip, &up], 1)?);
        }
        let (skip_weight, upsampled) = self.split_first_conv(skip.size()[1])?;
        let from_skip = conv(skip, &skip_weight, self.conv1.bs.as_ref(), 1)?;
        let from_coarse = upsampled.forward(coarse)?;
        let h = from_skip.f_add(&from_coarse)?.f_relu_()?;
        drop((from_skip, from_coarse));
        self.second(&h)
    }

    /// The first convolution of a decoder level split by its input channels [skip, upsampled]:
    /// the skip's 3×3×3 weights and the upsampled part as an [`UpsampledConv`].
    fn split_first_conv(&self, skip_channels: i64) -> Result<(Tensor, UpsampledConv)> {
        let weight = &self.conv1.ws;
        let coarse_channels = weight.size()[1] - skip_channels;
        let skip_weight = weight.f_narrow(1, 0, skip_channels)?.f_contiguous()?;
        let upsampled = UpsampledConv::new(&weight.f_narrow(1, skip_channels, coarse_channels)?)?;
        Ok((skip_weight, upsampled))
    }
}

/// The network. Input and output are `[N, 1, T, H, W]` float tensors (time is the first spatial axis).
#[derive(Debug)]
pub struct UNet3d {
    base_width: usize,
    encoders: Vec<DoubleConv>,
    decoders: Vec<DoubleConv>,
    final_conv: nn::Conv3D,
}

impl UNet3d {
    /// Builds the network under `root` (pass `vs.root()`); all variables live under `Generator`.
    pub fn new(root: &nn::Path, base_width: usize) -> Self {
        let g = root / "Generator";
        let f = base_width as i64;
        let widths: Vec<i64> = (0..LEVELS).map(|i| f << i).collect();
        let encoders = (0..LEVELS)
            .map(|i| {
                let c_in = if i == 0 { 1 } else { widths[i - 1] };
                let c_out = widths[i];
                // pytorch-3dunet's encoder DoubleConv: first conv goes to max(out/2, in) channels.
                let c_mid = (c_out / 2).max(c_in);
                DoubleConv::new(&(&g / "encoders" / i), c_in, c_mid, c_out)
            })
            .collect();
        let decoders = (0..LEVELS - 1)
            .map(|j| {
                let deeper = widths[LEVELS - 1 - j];
                let skip = widths[LEVELS - 2 - j];
                DoubleConv::new(&(&g / "decoders" / j), skip + deeper, skip, skip)
            })
            .collect();
        let head = nn::ConvConfig { padding: 0, ..Default::default() };
        let final_conv = nn::conv3d(&g / "final_conv", widths[0], 1, 1, head);
        UNet3d { base_width, encoders, decoders, final_conv }
    }

    /// Zeroes the 1×1×1 head (weights and bias), so a network about to be trained from scratch
    /// starts by predicting the normalised mean, 0. With a random head, the first steps on dim
    /// data, whose gradients are mostly noise, lower the loss fastest by switching every ReLU of
    /// the last level off: the output goes flat and no gradient ever reaches the layers below again.
    /// With a zero head the features are free to learn while the head picks up what correlates
    /// with the target (docs/evaluation/experiments.md: at 0.5 photons, validation loss after one
    /// epoch 0.961 instead of a flat 0.994).
    pub fn zero_head(&mut self) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            let _ = self.final_conv.ws.f_zero_()?;
            if let Some(bias) = self.final_conv.bs.as_mut() {
                let _ = bias.f_zero_()?;
            }
            Ok(())
        })
    }

    pub fn base_width(&self) -> usize {
        self.base_width
    }

    /// # Shapes
    /// `x`: `[N, 1, T, H, W]` → `[N, 1, T, H, W]`. Any size ≥ 1 works (pooling floors, upsampling
    /// restores the skip's exact size), but only multiples of [`ALIGNMENT`] are shift-equivariant.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.entering(x)?;
        let mut skips: Vec<Tensor> = Vec::with_capacity(LEVELS);
        let mut h = self.encoders[0].forward(&x)?;
        for encoder in &self.encoders[1..] {
            let pooled = h.f_max_pool3d([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false)?;
            skips.push(h);
            h = encoder.forward(&pooled)?;
        }
        for decoder in &self.decoders {
            let skip = skips.pop().expect("one skip per decoder level");
            h = decoder.forward_decoder(&skip, &h)?;
        }
        let head = &self.final_conv;
        conv(&head_input(&h, &head.ws)?, &head.ws, head.bs.as_ref(), 0)
    }

    /// The kind the convolutions compute in: their weights' (bfloat16 in a denoising run's
    /// bfloat16 copy of the model, `precision.rs`; float32 otherwise, mixed-precision training too).
    pub fn compute_kind(&self) -> Kind {
        self.encoders[0].conv1.ws.kind()
    }

    /// `x` as the network computes it: a float32 tile entering a bfloat16 copy is cast once here;
    /// anything else (float32, or mixed-precision training's bfloat16 on float32 weights) as it is.
    /// Either way in channels-last order (`channels_last.rs`).
    fn entering(&self, x: &Tensor) -> Result<Tensor> {
        if self.compute_kind() == Kind::BFloat16 && x.kind() == Kind::Float {
            return channels_last(&x.f_to_kind(Kind::BFloat16)?);
        }
        channels_last(x)
    }
}

/// The head's input: a bfloat16 copy's features in its float32 head's kind at inference, so the
/// output is not rounded to bfloat16 (a 16→1 pointwise convolution: negligible work). Activations
/// that carry gradients (mixed-precision training) stay as they are.
fn head_input(h: &Tensor, head_weight: &Tensor) -> Result<Tensor> {
    if h.kind() != head_weight.kind() && !h.requires_grad() {
        return Ok(h.f_to_kind(head_weight.kind())?);
    }
    Ok(h.shallow_clone())
}
