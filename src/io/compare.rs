//! Two movies compared voxel by voxel, streaming (any formats): how a cluster run is checked
//! against a single-process run, or a re-encoded archive against its source.

use std::path::Path;

use serde::Serialize;

use super::{open_movie, ReadOptions};
use crate::Result;

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// `[t, y, x]` of each, or `None` when they match.
    pub shapes: Option<([usize; 3], [usize; 3])>,
    pub voxels: u64,
    /// Voxels whose |difference| exceeds the tolerance.
    pub differing: u64,
    pub max_abs_difference: f64,
    /// The first frame holding a differing voxel.
    pub first_differing_frame: Option<usize>,
}

impl Comparison {
    pub fn equal(&self) -> bool {
        self.shapes.is_none() && self.differing == 0
    }
}

/// Compares `a` and `b` frame by frame; voxels differing by more than `tolerance` are counted.
pub fn compare_movies(a: &Path, b: &Path, tolerance: f64) -> Result<Comparison> {
    let (mut a, mut b) =
        (open_movie(a, &ReadOptions::default())?.source, open_movie(b, &ReadOptions::default())?.source);
    let shape_a = [a.frames(), a.height(), a.width()];
    let shape_b = [b.frames(), b.height(), b.width()];
    if shape_a != shape_b {
        return Ok(Comparison {
            shapes: Some((shape_a, shape_b)),
            voxels: 0,
            differing: 0,
            max_abs_difference: f64::NAN,
            first_differing_frame: None,
        });
    }
    let plane = shape_a[1] * shape_a[2];
    let mut frame_a = crate::allocation::zeroed_f32(plane, "one frame")?;
    let mut frame_b = crate::allocation::zeroed_f32(plane, "one frame")?;
    let mut result = Comparison {
        shapes: None,
        voxels: (shape_a[0] * plane) as u64,
        differing: 0,
        max_abs_difference: 0.0,
        first_differing_frame: None,
    };
    for t in 0..shape_a[0] {
        a.read_frame(t, &mut frame_a)?;
        b.read_frame(t, &mut frame_b)?;
        for (&x, &y) in frame_a.iter().zip(&frame_b) {
            // Bit equality first, so tolerance 0 means identical bits (also telling 0.0 from -0.0).
            if x.to_bits() == y.to_bits() {
                continue;
            }
            let difference = (x as f64 - y as f64).abs();
            result.max_abs_difference = result.max_abs_difference.max(difference);
            if tolerance == 0.0 || difference > tolerance {
                result.differing += 1;
                result.first_differing_frame.get_or_insert(t);
            }
        }
    }
    Ok(result)
}
