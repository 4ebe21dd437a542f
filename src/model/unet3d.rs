//! The DeepCAD / DeepCAD-RT 3-D U-Net (deepcad-spec §2.1), layer for layer.
//!
//! Four levels of widths [f, 2f, 4f, 8f]; each level is two 3×3×3 convolutions (bias, zero padding 1)
//! followed by ReLU, no normalisation layers; max-pool 2 between encoder levels; the decoder upsamples
//! with legacy nearest interpolation to the skip's exact size and concatenates [skip, up]; a linear
//! 1×1×1 head. Variable paths reproduce the reference state-dict names
//! (`Generator.encoders.0.basic_module.SingleConv1.conv.weight`, ...) so checkpoints map one to one.

use std::sync::atomic::{AtomicBool, Ordering};

use tch::{nn, Tensor};

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
        let h = conv(&self.conv1, x, 1)?.f_relu_()?;
        Ok(conv(&self.conv2, &h, 1)?.f_relu_()?)
    }
}

/// Runs in the input's precision, so mixed-precision training can feed bfloat16 activations to a
/// network whose (master) weights stay float32: the weights are cast differentiably per call and
/// their gradients arrive in float32. A float32 input takes the plain path unchanged.
fn conv(layer: &nn::Conv3D, x: &Tensor, padding: i64) -> Result<Tensor> {
    if x.kind() == layer.ws.kind() {
        if is_pointwise_inference_on_cpu(layer, x) {
            // libtorch sends a 1×1×1 convolution to oneDNN only when it runs on more than one
            // thread (`ConvParams::use_mkldnn`), so the head's sums, and the output's last bit,
            // would depend on the thread count: a 1-core block job would differ from a 2-core
            // whole-movie run. Always oneDNN at inference makes them agree bit for bit.
            return Ok(x.f_mkldnn_convolution(&layer.ws, layer.bs.as_ref(), [0, 0, 0], [1, 1, 1], [1, 1, 1], 1)?);
        }
        if padding == 1 && runs_on_native_kernel(x) && ROUTE_SMALL_CONVOLUTIONS_TO_ONEDNN.load(Ordering::Relaxed) {
            return conv_as_batch_of_two(layer, x);
        }
        return Ok(x.f_conv3d(&layer.ws, layer.bs.as_ref(), [1, 1, 1], [padding; 3], [1, 1, 1], 1)?);
    }
    if needs_float32(x) {
        let y = x.f_to_kind(layer.ws.kind())?.f_conv3d(
            &layer.ws,
            layer.bs.as_ref(),
            [1, 1, 1],
            [padding; 3],
            [1, 1, 1],
            1,
        )?;
        return Ok(y.f_to_kind(x.kind())?);
    }
    let weight = layer.ws.f_to_kind(x.kind())?;
    let bias = layer.bs.as_ref().map(|b| b.f_to_kind(x.kind())).transpose()?;
    Ok(x.f_conv3d(&weight, bias.as_ref(), [1, 1, 1], [padding; 3], [1, 1, 1], 1)?)
}

/// Whether libtorch 2.11 would run this float32 3-D convolution on its native im2col kernel
/// instead of oneDNN: batch 1 with N·C·D·H ≤ 20480 (`ConvParams::use_mkldnn`), i.e. the deeper,
/// smaller levels of a 64³ training patch (every level below full resolution) and of inference tiles.
/// There the native kernel ran 2–6× slower than oneDNN on the same shapes (44 vs 246 GFLOP/s for
/// 32→64 channels at 24³, measured on 2 cores).
fn runs_on_native_kernel(x: &Tensor) -> bool {
    let s = x.size();
    x.kind() == tch::Kind::Float
        && x.device() == tch::Device::Cpu
        && s.len() == 5
        && s[0] == 1
        && s[0] * s[1] * s[2] * s[3] <= 20480
        && s[4] >= 4
        && s[4] % 2 == 0
}

/// A float32 1×1×1 convolution on the CPU outside autograd (the network's head at inference).
fn is_pointwise_inference_on_cpu(layer: &nn::Conv3D, x: &Tensor) -> bool {
    x.kind() == tch::Kind::Float
        && x.device() == tch::Device::Cpu
        && layer.ws.size()[2..] == [1, 1, 1]
        // Activations carry no gradient only outside autograd (no-grad inference).
        && !x.requires_grad()
}

/// Off only to measure libtorch's own dispatch against it (`benches/throughput.rs`).
pub static ROUTE_SMALL_CONVOLUTIONS_TO_ONEDNN: AtomicBool = AtomicBool::new(true);

/// The same 3×3×3 zero-padded convolution, computed as a batch of two: the last axis is cut into
/// halves that each carry their one neighbouring column (zeros at the true ends), so libtorch sends
/// it to oneDNN (batch > 1), forward and backward. Exact: every output voxel sees the same 27
/// inputs; only the summation order inside the kernel may differ.
fn conv_as_batch_of_two(layer: &nn::Conv3D, x: &Tensor) -> Result<Tensor> {
    let width = x.size()[4];
    let half = width / 2;
    let padded = x.f_constant_pad_nd([1, 1])?;
    let halves = Tensor::f_cat(&[padded.f_narrow(4, 0, half + 2)?, padded.f_narrow(4, half, half + 2)?], 0)?;
    let y = halves.f_conv3d(&layer.ws, layer.bs.as_ref(), [1, 1, 1], [1, 1, 0], [1, 1, 1], 1)?;
    Ok(Tensor::f_cat(&[y.f_narrow(0, 0, 1)?, y.f_narrow(0, 1, 1)?], 4)?)
}

/// oneDNN's bfloat16 weight gradient of a 3×3×3 convolution is wrong when the input is 2 deep
/// (libtorch 2.11, AVX-512 BF16 kernel): garbage up to 1e38 or NaN in most calls, for 16 to 384
/// input channels, measured against float32 on the same inputs; depths 1 and 3–20, with every height
/// and width tried (1–24), were exact. A 16-frame patch is 2 deep at the bottom level and made training diverge. Volumes
/// with an axis shorter than the kernel are tiny, so they simply run in float32.
fn needs_float32(x: &Tensor) -> bool {
    x.size()[2..].iter().any(|&n| n < 3)
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
        let mut skips: Vec<Tensor> = Vec::with_capacity(LEVELS);
        let mut h = self.encoders[0].forward(x)?;
        for encoder in &self.encoders[1..] {
            let pooled = h.f_max_pool3d([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false)?;
            skips.push(h);
            h = encoder.forward(&pooled)?;
        }
        for decoder in &self.decoders {
            let skip = skips.pop().expect("one skip per decoder level");
            let size = skip.size()[2..].to_vec();
            let up = h.f_upsample_nearest3d(&size, None, None, None)?;
            drop(h); // free the deeper map before the concatenation doubles memory
            let joined = Tensor::f_cat(&[&skip, &up], 1)?;
            drop(up);
            drop(skip);
            h = decoder.forward(&joined)?;
        }
        conv(&self.final_conv, &h, 0)
    }
}

impl UNet3d {
    /// The same function as [`UNet3d::forward`], computed with far less memory: the two
    /// full-resolution stages (first encoder level, last decoder level and the head) run in slabs
    /// of `slab` columns (the last axis), so only the first skip connection (f channels) is ever held at full
    /// resolution instead of ≈5f channels. Exact, not approximate: each slab reads the two extra
    /// rows its two 3×3×3 convolutions need and reproduces zero padding only at the true ends.
    ///
    /// # Shapes
    /// `x`: `[N, 1, T, H, W]` → `[N, 1, T, H, W]`.
    pub fn forward_low_memory(&self, x: &Tensor, slab: i64) -> Result<Tensor> {
        self.forward_low_memory_checked(x, slab, &mut || Ok(()))
    }

    /// [`UNet3d::forward_low_memory`], calling `between_slabs` after every full-resolution slab:
    /// an error from it (a cancelled run) stops the pass there, so a stop request is answered
    /// within a slab instead of a whole tile (tens of seconds for large tiles on one core).
    pub fn forward_low_memory_checked(
        &self,
        x: &Tensor,
        slab: i64,
        between_slabs: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Tensor> {
        let size = x.size();
        let (t, slab) = (size[SLAB_DIM as usize], slab.max(1));
        let f = self.base_width as i64;
        let skip0 = Tensor::f_empty([size[0], f, size[2], size[3], size[4]], (x.kind(), x.device()))?;
        for (a, b) in slabs(t, slab) {
            let rows = double_conv_rows(&self.encoders[0], &|lo, hi| Ok(x.f_narrow(SLAB_DIM, lo, hi - lo)?), t, a, b)?;
            skip0.f_narrow(SLAB_DIM, a, b - a)?.f_copy_(&rows)?;
            between_slabs()?;
        }
        // Levels below full resolution: 1/8 of the voxels, computed as in `forward`.
        let mut skips: Vec<Tensor> = Vec::with_capacity(LEVELS);
        let mut h =
            self.encoders[1].forward(&skip0.f_max_pool3d([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false)?)?;
        for encoder in &self.encoders[2..] {
            let pooled = h.f_max_pool3d([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false)?;
            skips.push(h);
            h = encoder.forward(&pooled)?;
        }
        let deepest = &self.decoders[0];
        let skip = skips.pop().expect("one skip per decoder level");
        let up = h.f_upsample_nearest3d(&skip.size()[2..], None, None, None)?;
        h = deepest.forward(&Tensor::f_cat(&[&skip, &up], 1)?)?;
        drop((skip, up));
        // The two finer decoder levels hold most of the memory: decode them slab by slab.
        for j in 1..LEVELS - 1 {
            let skip =
                if j == LEVELS - 2 { skip0.shallow_clone() } else { skips.pop().expect("one skip per decoder level") };
            let head = (j == LEVELS - 2).then_some(&self.final_conv);
            h = decode_in_slabs(&self.decoders[j], &skip, &h, slab, head, between_slabs)?;
        }
        Ok(h)
    }
}

/// One decoder level (upsample `coarse` to `skip`'s size, concatenate [skip, up], DoubleConv),
/// optionally followed by the 1×1×1 head, computed `slab` columns at a time.
fn decode_in_slabs(
    block: &DoubleConv,
    skip: &Tensor,
    coarse: &Tensor,
    slab: i64,
    head: Option<&nn::Conv3D>,
    between_slabs: &mut dyn FnMut() -> Result<()>,
) -> Result<Tensor> {
    let size = skip.size();
    let (frames, height, t) = (size[2], size[3], size[4]);
    let coarse_t = coarse.size()[SLAB_DIM as usize];
    let joined_rows = |lo: i64, hi: i64| -> Result<Tensor> {
        let sources: Vec<i64> = (lo..hi).map(|d| nearest_source(d, coarse_t, t)).collect();
        let index = Tensor::from_slice(&sources).f_to_device(coarse.device())?;
        let up = coarse.f_index_select(SLAB_DIM, &index)?.f_upsample_nearest3d(
            [frames, height, hi - lo],
            None,
            None,
            None,
        )?;
        Ok(Tensor::f_cat(&[&skip.f_narrow(SLAB_DIM, lo, hi - lo)?, &up], 1)?)
    };
    let channels = if head.is_some() { 1 } else { block.conv2.ws.size()[0] };
    let output = Tensor::f_empty([size[0], channels, frames, height, t], (skip.kind(), skip.device()))?;
    for (a, b) in slabs(t, slab) {
        let rows = double_conv_rows(block, &joined_rows, t, a, b)?;
        let rows = match head {
            Some(head) => conv(head, &rows, 0)?,
            None => rows,
        };
        output.f_narrow(SLAB_DIM, a, b - a)?.f_copy_(&rows)?;
        between_slabs()?;
    }
    Ok(output)
}

/// Slabs run along the last axis (x). libtorch sends a 3-D convolution to oneDNN only when
/// N·C·T·H exceeds 20480 (for batch 1); slicing x keeps T·H whole, so slabs stay on the fast path,
/// where slicing time would fall back to the much slower native kernel.
const SLAB_DIM: i64 = 4;

fn slabs(t: i64, slab: i64) -> impl Iterator<Item = (i64, i64)> {
    (0..t).step_by(slab as usize).map(move |a| (a, (a + slab).min(t)))
}

/// PyTorch's legacy nearest-neighbour source index (`nearest_idx` in UpSample.h).
fn nearest_source(dst: i64, input: i64, output: i64) -> i64 {
    if output == input {
        dst
    } else if output == 2 * input {
        dst >> 1
    } else {
        let scale = input as f32 / output as f32;
        ((dst as f32 * scale).floor() as i64).min(input - 1)
    }
}

/// Columns `[a, b)` (along `SLAB_DIM`) of a `DoubleConv` over a length-`t` input whose rows `[lo, hi)` are
/// produced by `rows`. Zero padding is added only where the slab touches the ends of `[0, t)`,
/// exactly as whole-volume padding would.
fn double_conv_rows(
    block: &DoubleConv,
    rows: &dyn Fn(i64, i64) -> Result<Tensor>,
    t: i64,
    a: i64,
    b: i64,
) -> Result<Tensor> {
    let (lo1, hi1) = ((a - 1).max(0), (b + 1).min(t));
    let input = rows((lo1 - 1).max(0), (hi1 + 1).min(t))?;
    let input = pad_slab_axis(&input, (lo1 == 0) as i64, (hi1 == t) as i64)?;
    let hidden = conv_valid_along_slab_axis(&block.conv1, &input)?.f_relu_()?;
    let hidden = pad_slab_axis(&hidden, (a == 0) as i64, (b == t) as i64)?;
    Ok(conv_valid_along_slab_axis(&block.conv2, &hidden)?.f_relu_()?)
}

fn pad_slab_axis(x: &Tensor, front: i64, back: i64) -> Result<Tensor> {
    if front == 0 && back == 0 {
        return Ok(x.shallow_clone());
    }
    Ok(x.f_constant_pad_nd([front, back, 0, 0, 0, 0])?)
}

fn conv_valid_along_slab_axis(layer: &nn::Conv3D, x: &Tensor) -> Result<Tensor> {
    Ok(x.f_conv3d(&layer.ws, layer.bs.as_ref(), [1, 1, 1], [1, 1, 0], [1, 1, 1], 1)?)
}

/// Multiply-add FLOPs (2 per MAC, plus one add per bias) per output voxel of one forward pass for
/// base width `f`: each level's convolutions weighted by its share of the voxels (1/8 per level).
pub fn forward_flops_per_voxel(base_width: usize) -> f64 {
    let widths: Vec<f64> = (0..LEVELS).map(|i| (base_width << i) as f64).collect();
    let conv = |c_in: f64, c_out: f64, taps: f64| 2.0 * taps * c_in * c_out + c_out;
    let mut total = 0.0;
    for i in 0..LEVELS {
        let c_in = if i == 0 { 1.0 } else { widths[i - 1] };
        let c_mid = (widths[i] / 2.0).max(c_in);
        total += (conv(c_in, c_mid, 27.0) + conv(c_mid, widths[i], 27.0)) / 8f64.powi(i as i32);
    }
    for level in 0..LEVELS - 1 {
        let joined = widths[level] + widths[level + 1];
        total +=
            (conv(joined, widths[level], 27.0) + conv(widths[level], widths[level], 27.0)) / 8f64.powi(level as i32);
    }
    total + conv(widths[0], 1.0, 1.0)
}

/// Parameter count of the architecture for base width `f`, without building it.
pub fn parameter_count(base_width: usize) -> usize {
    let f = base_width;
    let conv = |c_in: usize, c_out: usize, k: usize| c_in * c_out * k * k * k + c_out;
    let widths: Vec<usize> = (0..LEVELS).map(|i| f << i).collect();
    let mut total = 0;
    for i in 0..LEVELS {
        let c_in = if i == 0 { 1 } else { widths[i - 1] };
        let c_mid = (widths[i] / 2).max(c_in);
        total += conv(c_in, c_mid, 3) + conv(c_mid, widths[i], 3);
    }
    for j in 0..LEVELS - 1 {
        let deeper = widths[LEVELS - 1 - j];
        let skip = widths[LEVELS - 2 - j];
        total += conv(skip + deeper, skip, 3) + conv(skip, skip, 3);
    }
    total + conv(widths[0], 1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn a_convolution_run_as_a_batch_of_two_equals_the_plain_one_with_gradients() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = nn::conv3d(vs.root() / "c", 32, 64, 3, nn::ConvConfig { padding: 1, ..Default::default() });
        let x = Tensor::randn([1, 32, 12, 10, 14], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        assert!(runs_on_native_kernel(&x), "the test shape should be one libtorch runs natively");
        let grads = |y: Tensor| {
            let loss = (&y * &y).sum(Kind::Float);
            let g = Tensor::run_backward(&[loss], &[&x, &layer.ws], false, false);
            (y, g[0].shallow_clone(), g[1].shallow_clone())
        };
        let (plain, dx_plain, dw_plain) =
            grads(x.conv3d(&layer.ws, layer.bs.as_ref(), [1, 1, 1], [1, 1, 1], [1, 1, 1], 1));
        let (split, dx_split, dw_split) = grads(conv_as_batch_of_two(&layer, &x).unwrap());
        for (a, b, what) in
            [(plain, split, "output"), (dx_plain, dx_split, "input gradient"), (dw_plain, dw_split, "weight gradient")]
        {
            let error = (&a - &b).abs().max().double_value(&[]) / a.abs().max().double_value(&[]);
            assert!(error < 1e-5, "{what}: relative error {error}");
        }
    }

    #[test]
    fn forward_flops_match_the_reference_harness() {
        // eval/deepcad_reference.py flops_per_voxel(16).
        assert!((forward_flops_per_voxel(16) - 113290.875).abs() < 1e-6);
    }
}
