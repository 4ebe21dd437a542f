//! Chooses the tile shape from a memory budget: the shape with the least tiling overhead
//! (voxels pushed through the network per output voxel) whose activations fit the budget.

use crate::model::ALIGNMENT;
use crate::tiling::{round_up, TilePlan};
use crate::{Error, Result};

/// Peak bytes per tile voxel of the low-memory forward on CPU (measured with
/// `examples/probe_forward.rs` at f=16: ≈160 B on a 144³ tile), scaled with the base width.
pub fn bytes_per_voxel(base_width: usize) -> usize {
    (150 * base_width).div_ceil(16).max(48)
}

/// Candidate tile lengths along one axis: the whole padded axis, or `2·halo + 8k`.
fn candidates(len: usize, halo: usize) -> Vec<usize> {
    let padded = round_up(len, ALIGNMENT);
    let mut values = vec![padded];
    let mut tile = 2 * halo + ALIGNMENT;
    while tile < padded {
        values.push(tile);
        tile += ALIGNMENT;
    }
    values
}

pub fn choose_tile(shape: [usize; 3], halo: [usize; 3], max_voxels: usize) -> Result<[usize; 3]> {
    let options: Vec<Vec<usize>> = (0..3).map(|a| candidates(shape[a], halo[a])).collect();
    let mut best: Option<(f64, usize, [usize; 3])> = None;
    for &t in &options[0] {
        for &y in &options[1] {
            for &x in &options[2] {
                let voxels = t * y * x;
                if voxels > max_voxels {
                    continue;
                }
                let Ok(plan) = TilePlan::new(shape, [t, y, x], halo) else { continue };
                let overhead = plan.overhead();
                // Least overhead; among equals, the fewest (largest) tiles.
                let better = match best {
                    None => true,
                    Some((o, v, _)) => overhead < o - 1e-9 || ((overhead - o).abs() <= 1e-9 && voxels > v),
                };
                if better {
                    best = Some((overhead, voxels, [t, y, x]));
                }
            }
        }
    }
    best.map(|(_, _, tile)| tile).ok_or_else(|| {
        let smallest: Vec<usize> = options.iter().map(|o| *o.iter().min().unwrap()).collect();
        Error::Limits(format!(
            "no tile fits the memory budget: the smallest seamless tile {smallest:?} needs {} voxels of activations but the budget allows {max_voxels}; raise --max-memory",
            smallest.iter().product::<usize>()
        ))
    })
}
