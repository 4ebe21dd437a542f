//! What the U-Net architecture costs, computed from its widths without building it: parameters
//! (bundle checks) and FLOPs per voxel (the benchmarks' GFLOP/s).

use crate::geometry::LEVELS;

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

    #[test]
    fn forward_flops_match_the_reference_harness() {
        // eval/deepcad_reference.py flops_per_voxel(16).
        assert!((forward_flops_per_voxel(16) - 113290.875).abs() < 1e-6);
    }
}
