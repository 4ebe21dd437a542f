//! The blind-spot branch of the hybrid network (SUPPORT's principle, our own code): a stack of
//! per-frame "hole" convolutions that sees every pixel of the current frame within 31 pixels
//! except the one it predicts.
//!
//! Layer `d` (d = 0..5) is a `3×3` convolution of each frame on its own (a 3-D convolution with a
//! `1×3×3` kernel, run as a 2-D one over a batch of frames: oneDNN has fast kernels for dilated 2-D
//! convolutions in float32 and bfloat16, and libtorch sent the 3-D form to slow native ones),
//! dilation `2^d`, zero padding `2^d`, and its centre tap forced to zero by a fixed multiplicative
//! mask (the centre weight exists, so the layout is a plain convolution's, but it never acts and
//! never learns). Before every layer `d ≥ 1` the raw frame is added again, scaled
//! per channel (`x ← h + s_d·frame`), so deep layers still see the frame sharply. Every layer's
//! features (after ReLU) go to the hybrid head, a 1×1×1 map (`hybrid.rs`).
//!
//! Why the output at pixel `p` never depends on the frame's pixel `p`: a dependence is a path
//! that enters at some layer `e` (the input of layer 0, or the frame added before layer `e ≥ 1`)
//! and passes layers `e, e+1, …, d` (the head reads layer `d`'s output; it is pointwise, and it
//! never reads a layer's input, so every path passes at least one layer). Layer `j` moves it by
//! `2^j·δ_j` with `δ_j ∈ {−1, 0, 1}² \ {(0, 0)}` (the centre tap is masked; zero padding only
//! removes taps; ReLU, bias and scales are pointwise). Take an axis where `δ_e ≠ 0`: along it the
//! total offset is `2^e·δ_e + Σ_{j>e} 2^j·δ_j = 2^e·(odd + even)`, an odd multiple of `2^e`, never 0.
//! So every path from the frame moves by a nonzero offset. (It needs each later dilation to be an
//! even multiple of every earlier one, which powers of two are.) The kernels are one frame deep, so
//! nothing crosses between frames either.

use tch::{nn, Device, Kind, Tensor};

use crate::Result;

/// Features per layer. 8, not 16: the stack's cost is mostly moving its feature maps (a layer
/// writes `4·C` bytes per voxel, read again by the next layer and by the head), so halving `C`
/// about halves the branch's time and quarters its multiply-adds (examples/hybrid_timing.rs:
/// denoising went from 1.4–2.0× interlaced's time per frame to the numbers in the README).
pub const BLIND_CHANNELS: i64 = 8;
/// Dilation of each layer, in pixels: powers of two (see the module's proof).
pub const BLIND_DILATIONS: [i64; 5] = [1, 2, 4, 8, 16];
/// How far the stack sees from the blind pixel: the sum of the dilations. It stays within the
/// U-Net's receptive field, so the hybrid needs no larger spatial halo.
pub const BLIND_SPOT_REACH: usize = 31;
const _: () = {
    let mut sum = 0;
    let mut d = 0;
    while d < BLIND_DILATIONS.len() {
        sum += BLIND_DILATIONS[d];
        d += 1;
    }
    assert!(sum as usize == BLIND_SPOT_REACH);
    assert!(BLIND_SPOT_REACH <= crate::geometry::RECEPTIVE_FIELD_RADIUS);
};

/// One hole convolution: weight `[C_out, C_in, 3, 3]` (centre masked at use) and bias.
#[derive(Debug)]
struct HoleConv {
    weight: Tensor,
    bias: Tensor,
    dilation: i64,
}

impl HoleConv {
    /// PyTorch's default convolution initialisation, uniform in ±1/√fan_in, with the fan-in the
    /// taps that act (8 per input channel, not 9).
    fn new(p: &nn::Path, c_in: i64, c_out: i64, dilation: i64) -> Self {
        let bound = 1.0 / ((8 * c_in) as f64).sqrt();
        let init = nn::Init::Uniform { lo: -bound, up: bound };
        HoleConv { weight: p.var("weight", &[c_out, c_in, 3, 3], init), bias: p.var("bias", &[c_out], init), dilation }
    }

    /// `x`: `[frames, C_in, H, W]` → `[frames, C_out, H, W]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let weight = self.weight.f_mul(&hole_mask(self.weight.device())?)?;
        frame_conv(x, &weight, &self.bias, self.dilation)
    }
}

/// `[1, 1, 3, 3]` ones with a zero centre, made where the weights are (they may move device).
/// Masked-voxel training sums a voxel's ring of neighbours with it too.
pub(crate) fn hole_mask(device: Device) -> Result<Tensor> {
    let mut values = [1f32; 9];
    values[4] = 0.0;
    Ok(Tensor::f_from_slice(&values)?.f_reshape([1, 1, 3, 3])?.f_to_device(device)?)
}

/// A stride-1 2-D convolution of a batch of frames (`[frames, C_in, H, W]`) with zero padding
/// `dilation·(k−1)/2`, in the input's precision: mixed-precision training casts the float32
/// master weights differentiably per call. Pointwise kernels (`k = 1`) serve the hybrid head.
pub(super) fn frame_conv(x: &Tensor, weight: &Tensor, bias: &Tensor, dilation: i64) -> Result<Tensor> {
    let padding = dilation * (weight.size()[3] - 1) / 2;
    let (weight, bias) = if x.kind() == weight.kind() {
        (weight.shallow_clone(), bias.shallow_clone())
    } else {
        (weight.f_to_kind(x.kind())?, bias.f_to_kind(x.kind())?)
    };
    if x.kind() == Kind::Float && x.device() == Device::Cpu && !x.requires_grad() && !weight.requires_grad() {
        // Inference: always oneDNN. libtorch picks by batch, kernel and thread count, so a tile's
        // last bits could otherwise depend on how the movie was cut or how many cores ran it.
        let weight = weight.f_contiguous()?;
        return Ok(x.f_mkldnn_convolution(&weight, Some(&bias), [padding; 2], [1, 1], [dilation; 2], 1)?);
    }
    Ok(x.f_conv2d(&weight, Some(&bias), [1, 1], [padding; 2], [dilation; 2], 1)?)
}

/// The stack of hole convolutions.
#[derive(Debug)]
pub struct BlindSpotStack {
    layers: Vec<HoleConv>,
    /// `s_d` for layers `d ≥ 1` (index `d − 1`), `[C]` each.
    frame_scales: Vec<Tensor>,
}

impl BlindSpotStack {
    /// Variables `layers.{d}.weight|bias` and `frame_scales.{d}` (d ≥ 1) under `p`.
    pub fn new(p: &nn::Path) -> Self {
        let layers = BLIND_DILATIONS
            .iter()
            .enumerate()
            .map(|(d, &dilation)| {
                let c_in = if d == 0 { 1 } else { BLIND_CHANNELS };
                HoleConv::new(&(p / "layers" / d), c_in, BLIND_CHANNELS, dilation)
            })
            .collect();
        // Scale 1: each layer starts by seeing the frame as strongly as its own input did.
        let frame_scales =
            (1..BLIND_DILATIONS.len()).map(|d| (p / "frame_scales").ones(&d.to_string(), &[BLIND_CHANNELS])).collect();
        BlindSpotStack { layers, frame_scales }
    }

    /// Runs the stack on `frame` (`[frames, 1, H, W]`, each frame on its own) and hands each
    /// layer's features (`[frames, C, H, W]`, after ReLU) to `each` as soon as they exist, so a
    /// caller that folds them into a sum never holds more than two layers at once.
    pub fn for_each_layer(&self, frame: &Tensor, each: &mut dyn FnMut(usize, &Tensor) -> Result<()>) -> Result<()> {
        let mut previous: Option<Tensor> = None;
        for (d, layer) in self.layers.iter().enumerate() {
            let input = match previous.take() {
                None => frame.shallow_clone(),
                Some(h) => {
                    let scale = self.frame_scales[d - 1].f_to_kind(frame.kind())?.f_view([1, BLIND_CHANNELS, 1, 1])?;
                    // h + frame·s in one pass over the features.
                    h.f_addcmul(frame, &scale)?
                }
            };
            let features = layer.forward(&input)?.f_relu_()?;
            drop(input);
            each(d, &features)?;
            previous = Some(features);
        }
        Ok(())
    }
}

/// Parameters of the stack: the convolutions (centre weights included: they are stored) and the
/// frame scales.
pub fn blind_spot_parameter_count() -> usize {
    let c = BLIND_CHANNELS as usize;
    let layers: usize = (0..BLIND_DILATIONS.len()).map(|d| (if d == 0 { 1 } else { c }) * c * 9 + c).sum();
    layers + (BLIND_DILATIONS.len() - 1) * c
}
