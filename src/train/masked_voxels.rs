//! Masked-voxel self-supervision (issue 23; Noise2Void's principle in 3-D, our own code).
//!
//! A patch of consecutive frames goes in whole, except a random few voxels ([`MASKED_FRACTION`]),
//! each replaced by the mean of its unmasked neighbours in the same frame (the 3×3 ring around it).
//! The loss compares the output with the raw movie at those voxels only. A masked voxel's own
//! value reaches the input nowhere (neither at its place nor through a neighbour's replacement,
//! which reads unmasked voxels only), and its noise is independent of every other voxel's, so the
//! network cannot learn to copy it: it learns the voxel's expected value from its surroundings.
//! Unlike interlaced training, those surroundings include the current frame, so a transient
//! shorter than the frame spacing stays visible through the cell's other pixels.
//!
//! At inference nothing is masked: the plain U-Net runs on the whole movie.

use rand::Rng;
use tch::{Kind, Tensor};

use crate::model::blind_spot::hole_mask;
use crate::model::Model;
use crate::Result;

/// Share of the voxels masked in each patch (N2V masks about 0.2–2 % in 2-D). More loss voxels per
/// step matter in a short training: on the spike suite's fast movies at 1 photon, 60-s models with
/// 1/8 reached 0.5–0.8 dB more SNR than with 1/32 at the same spike r, and 1/4 no more than 1/8
/// (docs/evaluation/experiments.md, "Masked-voxel training").
pub const MASKED_FRACTION: f64 = 1.0 / 8.0;

/// Fills `mask` with 1 at about [`MASKED_FRACTION`] of the places, drawn from `rng`, else 0; at
/// least one place is masked, so the loss is defined.
pub fn draw_mask(rng: &mut impl Rng, mask: &mut [f32]) {
    let mut any = false;
    for m in mask.iter_mut() {
        let masked = rng.random_bool(MASKED_FRACTION);
        any |= masked;
        *m = if masked { 1.0 } else { 0.0 };
    }
    if !any && !mask.is_empty() {
        let place = rng.random_range(0..mask.len());
        mask[place] = 1.0;
    }
}

/// `x` (`[N, 1, T, H, W]`) with every voxel where `mask` is 1 replaced by the mean of the unmasked
/// voxels of its 3×3 ring in the same frame (0 when none is unmasked).
pub fn masked_input(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let keep = mask.f_neg()?.f_add_scalar(1.0)?;
    // The blind-spot stack's 3×3 hole, one frame deep.
    let ring = hole_mask(x.device())?.f_unsqueeze(2)?.f_to_kind(x.kind())?;
    let sum_of = |v: &Tensor| v.f_conv3d::<Tensor>(&ring, None, [1, 1, 1], [0, 1, 1], [1, 1, 1], 1);
    let kept = x.f_mul(&keep)?;
    let neighbour_sum = sum_of(&kept)?;
    let neighbours = sum_of(&keep)?.f_clamp_min(1.0)?;
    let fill = neighbour_sum.f_div(&neighbours)?;
    Ok(kept.f_add(&fill.f_mul(mask)?)?)
}

/// The prediction of every voxel of `x` (`[N, 1, T, H, W]`) from its surroundings alone, as the
/// training teaches it: four passes, each masking one class of a 2×2 pixel grid (so no masked
/// voxel has a masked ring neighbour), each voxel taken from the pass that masked it. The residual
/// `x − prediction` is then independent of each voxel's own noise, as an interlaced model's residual
/// on the other parity is, for the training report's checks. (Each pass masks a quarter of the
/// pixels, in every frame alike, where training masked a random eighth: a small difference in
/// what the network sees, and a deterministic one, so the checks of two epochs compare.)
pub fn blind_prediction(model: &Model, x: &Tensor) -> Result<Tensor> {
    let size = x.size();
    let (rows, columns) = (size[3], size[4]);
    let row_parity = Tensor::f_arange(rows, (Kind::Int64, x.device()))?.f_remainder(2)?.f_view([1, 1, 1, rows, 1])?;
    let column_parity =
        Tensor::f_arange(columns, (Kind::Int64, x.device()))?.f_remainder(2)?.f_view([1, 1, 1, 1, columns])?;
    let class = row_parity.f_mul_scalar(2)?.f_add(&column_parity)?;
    let mut prediction = x.f_zeros_like()?;
    for c in 0..4 {
        let mask = class.f_eq(c)?.f_to_kind(x.kind())?.f_expand(size.as_slice(), false)?.f_contiguous()?;
        let out = model.pair_forward(&masked_input(x, &mask)?, x)?;
        prediction = prediction.f_add(&out.f_mul(&mask)?)?;
    }
    Ok(prediction)
}

/// The mean squared error (and, for `with_l1`, the mean of it and the mean absolute error) of
/// `out` against `target` over the voxels where `mask` is 1.
pub fn masked_loss(out: &Tensor, target: &Tensor, mask: &Tensor, with_l1: bool) -> Result<Tensor> {
    let count = mask.f_sum(Kind::Float)?.f_clamp_min(1.0)?;
    let error = out.f_sub(target)?.f_mul(mask)?;
    let l2 = error.f_square()?.f_sum(Kind::Float)?.f_div(&count)?;
    if !with_l1 {
        return Ok(l2);
    }
    let l1 = error.f_abs()?.f_sum(Kind::Float)?.f_div(&count)?;
    Ok(l1.f_add(&l2)?.f_mul_scalar(0.5)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::Device;

    /// Whether `a` and `b` agree within float32 rounding.
    fn close(a: &Tensor, b: &Tensor) -> bool {
        a.size() == b.size() && (a - b).abs().max().double_value(&[]) < 1e-6
    }

    #[test]
    fn masks_about_the_planned_share_and_never_none() {
        let mut values = vec![0f32; 1 << 16];
        draw_mask(&mut ChaCha8Rng::seed_from_u64(3), &mut values);
        let share = values.iter().sum::<f32>() as f64 / values.len() as f64;
        assert!((share - MASKED_FRACTION).abs() < 0.01, "masked share {share}");
        let mut tiny = vec![0f32; 2];
        for seed in 0..50 {
            draw_mask(&mut ChaCha8Rng::seed_from_u64(seed), &mut tiny);
            assert!(tiny.iter().sum::<f32>() >= 1.0);
        }
    }

    #[test]
    fn unmasked_voxels_pass_and_masked_ones_take_their_ring_mean() {
        let shape = [1, 1, 2, 5, 5];
        let x = Tensor::rand(shape, (Kind::Float, Device::Cpu));
        let mask = Tensor::zeros(shape, (Kind::Float, Device::Cpu));
        let _ = mask.get(0).get(0).get(1).get(2).get(2).fill_(1.0);
        let out = masked_input(&x, &mask).unwrap();
        let keep = mask.neg() + 1.0;
        assert!(close(&out.multiply(&keep), &x.multiply(&keep)));
        let ring = x.get(0).get(0).get(1).narrow(0, 1, 3).narrow(1, 1, 3);
        let expected = (ring.sum(Kind::Float) - x.get(0).get(0).get(1).get(2).get(2)) / 8.0;
        assert!(close(&out.get(0).get(0).get(1).get(2).get(2), &expected));
    }

    #[test]
    fn the_loss_counts_masked_voxels_only() {
        let shape = [1, 1, 2, 4, 4];
        let target = Tensor::zeros(shape, (Kind::Float, Device::Cpu));
        let out = Tensor::ones(shape, (Kind::Float, Device::Cpu)) * 3.0;
        let mask = Tensor::zeros(shape, (Kind::Float, Device::Cpu));
        let _ = mask.get(0).get(0).get(0).get(1).fill_(1.0); // 4 voxels
        let _ = out.get(0).get(0).get(1).fill_(100.0); // unmasked: must not count
        assert!((masked_loss(&out, &target, &mask, false).unwrap().double_value(&[]) - 9.0).abs() < 1e-6);
        assert!((masked_loss(&out, &target, &mask, true).unwrap().double_value(&[]) - 6.0).abs() < 1e-6);
    }
}
