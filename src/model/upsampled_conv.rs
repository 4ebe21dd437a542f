//! A 3×3×3 zero-padded convolution of a map upsampled ×2 by nearest neighbour, computed on the
//! coarse map without upsampling it.
//!
//! Along one axis, output voxel 2i+p of the fine map reads fine voxels 2i+p−1, 2i+p, 2i+p+1, which
//! are coarse voxels (i−1, i, i) for p = 0 and (i, i, i+1) for p = 1: each parity sees a 2-tap
//! kernel (taps summed where they read the same coarse voxel) over the coarse map padded by one.
//! In 3-D that is 8 parity kernels of 2×2×2, run as one convolution with 8× the output channels:
//! 64·(n+1)³ multiply-adds per channel pair where the fine convolution does 27·(2n)³, about 3.4×
//! fewer, and neither the upsampled map nor its concatenation with the skip is ever built. Zero
//! padding of the fine map is zero padding of the coarse map only when the fine size is exactly
//! twice the coarse one (the network's aligned sizes); other sizes take the plain path.

use tch::Tensor;

use super::channels_last::{from_memory_view, memory_view};
use super::conv_dispatch::conv;
use crate::Result;

/// Whether nearest upsampling from `coarse` to `fine` (spatial sizes) doubles every axis exactly.
pub(super) fn is_exact_doubling(coarse: &[i64], fine: &[i64]) -> bool {
    coarse.len() == fine.len() && coarse.iter().zip(fine).all(|(&c, &f)| f == 2 * c)
}

/// `conv3d(upsample_nearest_x2(coarse), weight, padding 1)` without bias, for a 3×3×3 `weight`
/// `[O, C, 3, 3, 3]` prepared once; differentiable in the weight it was made from.
pub(super) struct UpsampledConv {
    /// The 8 parity kernels `[8·O, C, 2, 2, 2]`, parity-major, then output channel.
    parity_weight: Tensor,
    out_channels: i64,
}

impl UpsampledConv {
    pub(super) fn new(weight: &Tensor) -> Result<Self> {
        let size = weight.size();
        // taps[p][a][k]: whether 3-tap k falls on 2-tap a for output parity p.
        #[rustfmt::skip]
        let taps = Tensor::from_slice(&[
            1f32, 0., 0.,   0., 1., 1.,
            1., 1., 0.,     0., 0., 1.,
        ])
        .f_view([2, 2, 3])?
        .f_to_device(weight.device())?;
        // Taps are summed in float32 even for bfloat16 weights (up to 8 taps meet in one parity
        // weight), then rounded once to the weight's kind.
        let weight32 = weight.f_to_kind(tch::Kind::Float)?;
        let combined =
            Tensor::f_einsum("pak,qbl,rcm,oiklm->pqroiabc", &[&taps, &taps, &taps, &weight32], None::<&[i64]>)?
                .f_to_kind(weight.kind())?;
        Ok(UpsampledConv { parity_weight: combined.f_reshape([8 * size[0], size[1], 2, 2, 2])?, out_channels: size[0] })
    }

    /// The whole result.
    ///
    /// # Shapes
    /// `coarse`: `[N, C, T, H, W]` → `[N, O, 2T, 2H, 2W]`.
    pub(super) fn forward(&self, coarse: &Tensor) -> Result<Tensor> {
        self.columns(coarse, 0, coarse.size()[4])
    }

    /// Fine columns (last axis) `[2·c0, 2·c1)` of the result, read from coarse columns
    /// `[c0 − 1, c1 + 1)` with zeros only beyond the coarse map's true ends.
    ///
    /// # Shapes
    /// `coarse`: `[N, C, T, H, W]` → `[N, O, 2T, 2H, 2·(c1 − c0)]`.
    pub(super) fn columns(&self, coarse: &Tensor, c0: i64, c1: i64) -> Result<Tensor> {
        let size = coarse.size();
        let (n, t, h, w) = (size[0], size[2], size[3], size[4]);
        let (lo, hi) = ((c0 - 1).max(0), (c1 + 1).min(w));
        let padded =
            coarse.f_narrow(4, lo, hi - lo)?.f_constant_pad_nd([(c0 == 0) as i64, (c1 == w) as i64, 1, 1, 1, 1])?;
        let columns = c1 - c0;
        let o = self.out_channels;
        // In channels-last memory, [N, T+1, H+1, columns+1, 2, 2, 2, O]: parity (pt, py, px) of
        // output (2t+pt, 2y+py, 2x+px) starts at (pt, py, px).
        let all = memory_view(&conv(&padded, &self.parity_weight, None, 0)?)?
            .f_view(&[n, t + 1, h + 1, columns + 1, 2, 2, 2, o][..])?;
        // [N, T, 2, H, 2, columns, 2, O] is the fine grid's channels-last memory with each axis
        // split into (coarse, parity): each parity is written into its place once (autograd
        // follows the in-place copies).
        let fine = Tensor::f_empty(&[n, t, 2, h, 2, columns, 2, o][..], (all.kind(), all.device()))?;
        for pt in 0..2 {
            for py in 0..2 {
                for px in 0..2 {
                    let one = all.f_select(4, pt)?.f_select(4, py)?.f_select(4, px)?;
                    let one = one.f_narrow(1, pt, t)?.f_narrow(2, py, h)?.f_narrow(3, px, columns)?;
                    fine.f_select(6, px)?.f_select(4, py)?.f_select(2, pt)?.f_copy_(&one)?;
                }
            }
        }
        from_memory_view(&fine.f_view([n, 2 * t, 2 * h, 2 * columns, o])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn equals_the_convolution_of_the_upsampled_map_with_gradients() {
        tch::manual_seed(2);
        let coarse = Tensor::randn([1, 6, 3, 4, 5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let weight = Tensor::randn([5, 6, 3, 3, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let fine_size = [6, 8, 10];
        assert!(is_exact_doubling(&coarse.size()[2..], &fine_size));
        assert!(!is_exact_doubling(&[3, 4, 5], &[7, 8, 10]));
        let run = |y: Tensor| {
            let loss = (&y * &y.sin()).sum(Kind::Float);
            let g = Tensor::run_backward(&[loss], &[&coarse, &weight], false, false);
            [y, g[0].shallow_clone(), g[1].shallow_clone()]
        };
        let up = coarse.upsample_nearest3d(fine_size, None, None, None);
        let plain = run(up.conv3d::<Tensor>(&weight, None, [1, 1, 1], [1, 1, 1], [1, 1, 1], 1));
        let fast = run(UpsampledConv::new(&weight).unwrap().forward(&coarse).unwrap());
        assert_eq!(plain[0].size(), fast[0].size());
        for ((a, b), what) in plain.iter().zip(&fast).zip(["output", "input gradient", "weight gradient"]) {
            let error = (a - b).abs().max().double_value(&[]) / a.abs().max().double_value(&[]);
            assert!(error < 1e-5, "{what}: relative error {error}");
        }
        // Any run of columns equals the same columns of the whole, at the ends and inside.
        let whole = &plain[0];
        let layer = UpsampledConv::new(&weight).unwrap();
        for (c0, c1) in [(0, 1), (0, 2), (1, 3), (2, 5), (4, 5)] {
            let part = layer.columns(&coarse, c0, c1).unwrap();
            let error = (&part - whole.narrow(4, 2 * c0, 2 * (c1 - c0))).abs().max().double_value(&[]);
            assert!(error < 1e-4, "columns {c0}..{c1}: max error {error}");
        }
    }
}
