//! Where training patches come from (deepcad-spec §1.2): a grid of origins in y/x stepping by
//! `int(p·(1 − overlap))`, and in time a stride chosen so that the grid holds about the requested
//! number of patches. Each patch is a window of `2·patch_t` raw frames. Pure arithmetic, no torch.
//!
//! Fixes over the reference: no division by zero when one window per position suffices
//! (`s_num ≤ 1`), a stride of at least one frame, and every shortfall or excess reported as a
//! warning instead of happening silently. Inputs smaller than the patch shrink it to the largest
//! multiple of 8 that fits (with a warning), or fail with a message naming the file.

use crate::model::ALIGNMENT;
use crate::{Error, Result};

/// The size of one input as training sees it (`frames` already truncated by `max_frames`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceShape {
    pub name: String,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
}

/// One training pair: raw frames `[t0, t0 + 2·patch_t)` of `source`, pixels `[y0, y0 + patch_y)`
/// × `[x0, x0 + patch_x)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Patch {
    pub source: usize,
    pub t0: usize,
    pub y0: usize,
    pub x0: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchPlan {
    /// The patch actually used, `[t, y, x]` (smaller than asked when an input is too small).
    pub patch: [usize; 3],
    pub patches: Vec<Patch>,
    /// Shrunk patches, fewer or more patches than asked: for the user, not errors.
    pub warnings: Vec<String>,
}

/// Lays out the patch grid over every source. `patch` is `[t, y, x]`.
pub fn plan_patches(
    shapes: &[SourceShape],
    patch: [usize; 3],
    overlap: f64,
    patches_per_epoch: usize,
) -> Result<PatchPlan> {
    if shapes.is_empty() {
        return Err(Error::usage("no training input: give at least one movie"));
    }
    let mut warnings = Vec::new();
    let patch = fit_patch(shapes, patch, &mut warnings)?;
    let [pt, py, px] = patch;
    let gap_y = ((py as f64 * (1.0 - overlap)) as usize).max(1);
    let gap_x = ((px as f64 * (1.0 - overlap)) as usize).max(1);

    let mut patches = Vec::new();
    for (source, shape) in shapes.iter().enumerate() {
        let h_num = (shape.height - py) / gap_y + 1;
        let w_num = (shape.width - px) / gap_x + 1;
        // Windows wanted per grid position in this source (the reference's `s_num`).
        let s_num = patches_per_epoch.div_ceil(h_num * w_num * shapes.len());
        let span = shape.frames - 2 * pt;
        let t_origins: Vec<usize> = if s_num <= 1 || span == 0 {
            vec![0]
        } else {
            let gap_t = (span / (s_num - 1)).max(1);
            (0..=span / gap_t).map(|k| k * gap_t).collect()
        };
        for &t0 in &t_origins {
            for i in 0..h_num {
                for j in 0..w_num {
                    patches.push(Patch { source, t0, y0: i * gap_y, x0: j * gap_x });
                }
            }
        }
    }

    let n = patches.len();
    if n < patches_per_epoch {
        warnings.push(format!(
            "the inputs hold only {n} distinct training patches of {pt}×{py}×{px} (t×y×x) with overlap {overlap}, \
             fewer than the {patches_per_epoch} asked per epoch; an epoch will have {n} patches \
             (use more or longer movies, a smaller patch or a larger overlap for more)"
        ));
    } else if n > patches_per_epoch + patches_per_epoch / 4 {
        warnings.push(format!(
            "the patch grid gives {n} patches per epoch, more than the {patches_per_epoch} asked: every \
             y/x grid position of every input gets at least one window (use a smaller overlap for fewer)"
        ));
    }
    Ok(PatchPlan { patch, patches, warnings })
}

/// Shrinks each axis of `patch` to fit the smallest input (to the largest multiple of 8 that fits).
fn fit_patch(shapes: &[SourceShape], patch: [usize; 3], warnings: &mut Vec<String>) -> Result<[usize; 3]> {
    let fits = |available: usize| available / ALIGNMENT * ALIGNMENT;
    let mut fitted = patch;
    // Time: a window needs 2·patch_t frames.
    let shortest = shapes.iter().min_by_key(|s| s.frames).expect("at least one source");
    let t_fit = fits(shortest.frames / 2);
    if t_fit < ALIGNMENT {
        return Err(Error::usage(format!(
            "{}: {} frames are too few to train on: a training window takes 2 × patch_t frames with patch_t \
             at least {ALIGNMENT}, so at least {} frames are needed (use a longer recording{})",
            shortest.name,
            shortest.frames,
            2 * ALIGNMENT,
            if shapes.len() > 1 { " or leave this file out" } else { "" }
        )));
    }
    if t_fit < patch[0] {
        warnings.push(format!(
            "{}: {} frames are fewer than the 2 × {} a training window needs; using patch_t = {t_fit} instead",
            shortest.name, shortest.frames, patch[0]
        ));
        fitted[0] = t_fit;
    }
    for axis in [1, 2] {
        let (name, size): (&str, fn(&SourceShape) -> usize) =
            if axis == 1 { ("height", |s| s.height) } else { ("width", |s| s.width) };
        let smallest = shapes.iter().min_by_key(|s| size(s)).expect("at least one source");
        let fit = fits(size(smallest));
        if fit < ALIGNMENT {
            return Err(Error::usage(format!(
                "{}: {name} {} pixels is too small to train on (at least {ALIGNMENT} pixels are needed)",
                smallest.name,
                size(smallest)
            )));
        }
        if fit < patch[axis] {
            warnings.push(format!(
                "{}: {name} {} pixels is smaller than the patch ({}); using {fit} instead",
                smallest.name,
                size(smallest),
                patch[axis]
            ));
            fitted[axis] = fit;
        }
    }
    Ok(fitted)
}
