//! The U-Net's low-memory forward: the full-resolution stages run in slabs of columns, so a tile's
//! widest activations never exist whole ([`UNet3d::forward_low_memory`]); same function as
//! [`UNet3d::forward`], far less memory. Its own room because it is an executor, not the network.

use tch::{nn, Kind, Tensor};

use super::{head_input, DoubleConv, UNet3d};
use crate::geometry::LEVELS;
use crate::model::channels_last::{channels_last, empty_channels_last};
use crate::model::conv_dispatch::conv;
use crate::model::upsampled_conv::is_exact_doubling;
use crate::Result;

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
        let x = &self.entering(x)?;
        let size = x.size();
        let (t, slab) = (size[SLAB_DIM as usize], slab.max(1));
        let f = self.base_width as i64;
        let skip0 = empty_channels_last([size[0], f, size[2], size[3], size[4]], (x.kind(), x.device()))?;
        let encoder = &self.encoders[0];
        let input = |lo: i64, hi: i64| -> Result<Tensor> { Ok(x.f_narrow(SLAB_DIM, lo, hi - lo)?) };
        let first_conv =
            |lo: i64, hi: i64| conv_columns(&encoder.conv1.ws, encoder.conv1.bs.as_ref(), &input, t, lo, hi);
        let mut columns = SlidingDoubleConv::new(encoder, &first_conv, t);
        for (a, b) in slabs(t, slab) {
            let rows = columns.next(a, b)?;
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
        h = deepest.forward_decoder(&skip, &h)?;
        drop(skip);
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
/// optionally followed by the 1×1×1 head, computed `slab` columns at a time. Where the skip is
/// exactly twice the coarse map's size, the upsampled half of the first convolution runs on the
/// coarse map (as in [`DoubleConv::forward_decoder`]).
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
    let skip_rows = |lo: i64, hi: i64| -> Result<Tensor> { Ok(skip.f_narrow(SLAB_DIM, lo, hi - lo)?) };
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
        Ok(Tensor::f_cat(&[&skip_rows(lo, hi)?, &up], 1)?)
    };
    let split =
        if is_exact_doubling(&coarse.size()[2..], &size[2..]) { Some(block.split_first_conv(size[1])?) } else { None };
    let first_conv = |lo: i64, hi: i64| -> Result<Tensor> {
        let Some((skip_weight, upsampled)) = &split else {
            return conv_columns(&block.conv1.ws, block.conv1.bs.as_ref(), &joined_rows, t, lo, hi);
        };
        let from_skip = conv_columns(skip_weight, block.conv1.bs.as_ref(), &skip_rows, t, lo, hi)?;
        let c0 = lo / 2;
        let from_coarse = upsampled.columns(coarse, c0, (hi + 1) / 2)?.f_narrow(SLAB_DIM, lo - 2 * c0, hi - lo)?;
        Ok(from_skip.f_add(&from_coarse)?)
    };
    let (channels, kind) = match head {
        Some(head) if head.ws.kind() == Kind::Float => (1, Kind::Float),
        Some(_) => (1, skip.kind()),
        None => (block.conv2.ws.size()[0], skip.kind()),
    };
    let output = empty_channels_last([size[0], channels, frames, height, t], (kind, skip.device()))?;
    let mut columns = SlidingDoubleConv::new(block, &first_conv, t);
    for (a, b) in slabs(t, slab) {
        let rows = columns.next(a, b)?;
        let rows = match head {
            Some(head) => conv(&head_input(&rows, &head.ws)?, &head.ws, head.bs.as_ref(), 0)?,
            None => rows,
        };
        output.f_narrow(SLAB_DIM, a, b - a)?.f_copy_(&rows)?;
        between_slabs()?;
    }
    Ok(output)
}

/// Voxels per slab of the low-memory forward as the denoiser runs it: 32 columns of a 144×144
/// cross-section. oneDNN runs faster on wide slabs (docs/measurements.md), while a slab's
/// activations cost about [`slab_bytes_per_voxel`] per slab voxel.
pub const SLAB_VOXELS: usize = 144 * 144 * 32;

/// Peak bytes of one slab's activations per slab voxel at f = 16 (peak RSS of a 144³ tile rose
/// by ≈ 200 MB from 4- to 32-column slabs; `examples/probe_forward.rs`), scaled with the width
/// above it; narrower networks are not counted as cheaper, since a slab's copies of its input
/// and output do not shrink with the width.
pub fn slab_bytes_per_voxel(base_width: usize) -> usize {
    (320 * base_width).div_ceil(16).max(320)
}

/// A slab holds at most this share of its tile: wider slabs make the low-memory forward hold
/// most of a plain forward's activations.
pub const SLAB_SHARE_OF_TILE: usize = 4;

/// Columns per slab for an input of `shape` (`[N, 1, T, H, W]`) that hold about `slab_voxels`
/// voxels, and at most 1/[`SLAB_SHARE_OF_TILE`] of the input: at least 4 columns.
pub fn slab_columns(shape: &[i64], slab_voxels: usize) -> i64 {
    let cross_section = (shape[0] * shape[2] * shape[3]).max(1);
    let share = shape[4] / SLAB_SHARE_OF_TILE as i64;
    (slab_voxels as i64 / cross_section).min(share).max(4)
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

/// A `DoubleConv` over a length-`t` input computed slab after slab, left to right, given
/// `first_conv(lo, hi)`: columns `[lo, hi)` (along `SLAB_DIM`) of its first convolution before the
/// ReLU. The second convolution of slab `[a, b)` reads hidden columns `[a-1, b+1)`; the two that
/// the previous slab already computed are carried over instead of computed again (at 4-column
/// slabs that recomputation was half again the first convolution's work). The second convolution
/// sees zero padding only where the slab touches the ends of `[0, t)`, exactly as whole-volume
/// padding would.
struct SlidingDoubleConv<'a> {
    block: &'a DoubleConv,
    first_conv: &'a dyn Fn(i64, i64) -> Result<Tensor>,
    t: i64,
    /// Hidden columns (after the ReLU) from the previous slab, and the first column they hold.
    carried: Option<(Tensor, i64)>,
}

impl<'a> SlidingDoubleConv<'a> {
    fn new(block: &'a DoubleConv, first_conv: &'a dyn Fn(i64, i64) -> Result<Tensor>, t: i64) -> Self {
        SlidingDoubleConv { block, first_conv, t, carried: None }
    }

    /// Columns `[a, b)` of the block's output; slabs may come in any order, but consecutive
    /// left-to-right slabs are the ones that reuse columns.
    fn next(&mut self, a: i64, b: i64) -> Result<Tensor> {
        let (lo, hi) = ((a - 1).max(0), (b + 1).min(self.t));
        let hidden = match self.carried.take() {
            Some((carried, start)) if start <= lo && lo < start + carried.size()[SLAB_DIM as usize] => {
                let end = (start + carried.size()[SLAB_DIM as usize]).min(hi);
                let reused = carried.f_narrow(SLAB_DIM, lo - start, end - lo)?;
                if end == hi {
                    reused.f_contiguous()?
                } else {
                    let fresh = (self.first_conv)(end, hi)?.f_relu_()?;
                    Tensor::f_cat(&[&reused, &fresh], SLAB_DIM)?
                }
            }
            _ => (self.first_conv)(lo, hi)?.f_relu_()?,
        };
        // The next slab starts at b, so it reads hidden columns from b-1 on.
        let keep_from = (b - 1).max(lo);
        // A copy, so that the slab's other columns are freed now.
        let carried = hidden.f_narrow(SLAB_DIM, keep_from - lo, hi - keep_from)?.f_contiguous()?;
        self.carried = Some((carried, keep_from));
        let hidden = pad_slab_axis(&hidden, (a == 0) as i64, (b == self.t) as i64)?;
        Ok(conv_valid_along_slab_axis(&self.block.conv2.ws, self.block.conv2.bs.as_ref(), &hidden)?.f_relu_()?)
    }
}

/// Columns `[lo, hi)` of a zero-padded 3×3×3 convolution over a length-`t` input whose columns
/// `[c0, c1)` are produced by `input(c0, c1)`.
fn conv_columns(
    weight: &Tensor,
    bias: Option<&Tensor>,
    input: &dyn Fn(i64, i64) -> Result<Tensor>,
    t: i64,
    lo: i64,
    hi: i64,
) -> Result<Tensor> {
    let read = input((lo - 1).max(0), (hi + 1).min(t))?;
    let read = pad_slab_axis(&read, (lo == 0) as i64, (hi == t) as i64)?;
    conv_valid_along_slab_axis(weight, bias, &read)
}

fn pad_slab_axis(x: &Tensor, front: i64, back: i64) -> Result<Tensor> {
    if front == 0 && back == 0 {
        return Ok(x.shallow_clone());
    }
    Ok(x.f_constant_pad_nd([front, back, 0, 0, 0, 0])?)
}

fn conv_valid_along_slab_axis(weight: &Tensor, bias: Option<&Tensor>, x: &Tensor) -> Result<Tensor> {
    Ok(channels_last(x)?.f_conv3d(&channels_last(weight)?, bias, [1, 1, 1], [1, 1, 0], [1, 1, 1], 1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slabs_hold_about_the_slab_voxels_and_at_most_a_quarter_of_the_tile() {
        assert_eq!(slab_columns(&[1, 1, 144, 144, 144], SLAB_VOXELS), 32);
        // A larger cross-section gets fewer columns for the same voxels.
        assert_eq!(slab_columns(&[1, 1, 304, 128, 128], SLAB_VOXELS), SLAB_VOXELS as i64 / (304 * 128));
        // A thin tile: a quarter of its width, not all of it.
        assert_eq!(slab_columns(&[1, 1, 8, 64, 400], SLAB_VOXELS), 100);
        // Never under 4 columns, and a batch counts in the cross-section.
        assert_eq!(slab_columns(&[1, 1, 8, 8, 8], SLAB_VOXELS), 4);
        assert_eq!(slab_columns(&[2, 1, 144, 144, 144], SLAB_VOXELS), 16);
        assert_eq!(slab_columns(&[1, 1, 144, 144, 144], 0), 4);
    }
}
