//! The tile plan: pure arithmetic, no torch. Given a volume shape, a tile shape and a halo, it says
//! which region each tile reads and which part of its output is kept.
//!
//! Why it is exact: the network pools three times, so it is shift-equivariant only by multiples of
//! 8. Every tile starts on a multiple of 8 and has a length that is a multiple of 8; a kept voxel
//! lies at least `halo` (≥ the receptive-field radius, 51) inside its tile wherever the tile edge
//! is not the volume edge. Its output therefore equals the whole-volume output. At the volume's far
//! end the volume is conceptually reflect-padded up to a multiple of 8 (and up to the tile length
//! for short axes): reads past the end are mirrored, never out of range, never a zero border.
//! The whole-volume reference is the network applied to that same padded volume, cropped.

use crate::geometry::ALIGNMENT;
pub use crate::geometry::{DEFAULT_HALO, RECEPTIVE_FIELD_RADIUS};

/// One tile along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisTile {
    /// First position read, in padded coordinates (a multiple of 8, never negative).
    pub origin: usize,
    /// Number of positions read (a multiple of 8); positions ≥ the axis length are mirrored.
    pub length: usize,
    /// Kept range in volume coordinates, `[keep_start, keep_end)`.
    pub keep_start: usize,
    pub keep_end: usize,
}

impl AxisTile {
    /// Kept range relative to the tile's own output.
    pub fn keep_local(&self) -> (usize, usize) {
        (self.keep_start - self.origin, self.keep_end - self.origin)
    }
}

pub fn round_up(value: usize, multiple: usize) -> usize {
    value.div_ceil(multiple) * multiple
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

/// Tiles covering one axis of length `len` with tiles of `tile` and `halo` on inner edges.
/// Kept ranges partition `[0, len)` exactly, in order.
pub fn plan_axis(len: usize, tile: usize, halo: usize) -> Result<Vec<AxisTile>, PlanError> {
    if len == 0 {
        return Err(PlanError("axis length is 0".into()));
    }
    if tile == 0 || tile % ALIGNMENT != 0 {
        return Err(PlanError(format!("tile length {tile} must be a positive multiple of {ALIGNMENT}")));
    }
    let padded = round_up(len, ALIGNMENT);
    if padded <= tile {
        // One tile: the whole (padded) axis, kept entirely; no inner edges, so no halo needed.
        return Ok(vec![AxisTile { origin: 0, length: padded, keep_start: 0, keep_end: len }]);
    }
    if tile <= 2 * halo || (tile - 2 * halo) % ALIGNMENT != 0 {
        return Err(PlanError(format!(
            "tile length {tile} must exceed twice the halo ({halo}) by a positive multiple of {ALIGNMENT}"
        )));
    }
    let step = tile - 2 * halo;
    let mut tiles = Vec::new();
    let mut keep_start = 0;
    let mut origin = 0;
    loop {
        if origin + tile >= padded {
            // Last tile: snap to the padded end; its kept part starts where the previous one ended,
            // which is at least `halo` inside it because the snap only moves it backwards.
            let origin = padded - tile;
            tiles.push(AxisTile { origin, length: tile, keep_start, keep_end: len });
            return Ok(tiles);
        }
        let keep_end = (origin + tile - halo).min(len);
        tiles.push(AxisTile { origin, length: tile, keep_start, keep_end });
        if keep_end == len {
            return Ok(tiles);
        }
        keep_start = keep_end;
        origin += step;
    }
}

/// A 3-D tile: one `AxisTile` per axis `[t, y, x]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub axes: [AxisTile; 3],
}

#[derive(Debug, Clone, PartialEq)]
pub struct TilePlan {
    pub shape: [usize; 3],
    pub tile: [usize; 3],
    pub halo: [usize; 3],
    pub per_axis: [Vec<AxisTile>; 3],
}

impl TilePlan {
    pub fn new(shape: [usize; 3], tile: [usize; 3], halo: [usize; 3]) -> Result<TilePlan, PlanError> {
        let names = ["time", "height", "width"];
        let mut per_axis: [Vec<AxisTile>; 3] = Default::default();
        for a in 0..3 {
            per_axis[a] =
                plan_axis(shape[a], tile[a], halo[a]).map_err(|e| PlanError(format!("{} axis: {}", names[a], e.0)))?;
        }
        Ok(TilePlan { shape, tile, halo, per_axis })
    }

    /// Spatial tiles (y, x) of one time block, in row-major order.
    pub fn spatial_tiles(&self) -> impl Iterator<Item = (AxisTile, AxisTile)> + '_ {
        self.per_axis[1].iter().flat_map(move |&y| self.per_axis[2].iter().map(move |&x| (y, x)))
    }

    pub fn tiles(&self) -> impl Iterator<Item = Tile> + '_ {
        self.per_axis[0].iter().flat_map(move |&t| self.spatial_tiles().map(move |(y, x)| Tile { axes: [t, y, x] }))
    }

    pub fn tile_count(&self) -> usize {
        self.per_axis.iter().map(|a| a.len()).product()
    }

    /// Voxels pushed through the network divided by voxels in the volume (tiling overhead).
    pub fn overhead(&self) -> f64 {
        let pushed: f64 = (0..3).map(|a| self.per_axis[a].iter().map(|t| t.length as f64).sum::<f64>()).product();
        pushed / self.shape.iter().map(|&s| s as f64).product::<f64>()
    }
}

/// Maps a padded coordinate onto the volume by mirror reflection (no edge repeat), for any
/// distance past the end: the period is `2·(len−1)`; a length-1 axis always maps to 0.
pub fn reflect_index(i: usize, len: usize) -> usize {
    if len <= 1 {
        return 0;
    }
    let period = 2 * (len - 1);
    let r = i % period;
    if r < len {
        r
    } else {
        period - r
    }
}
