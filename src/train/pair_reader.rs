//! Builds training pairs straight from the sources, reading only the frames a window needs: the
//! even frames of a `2·patch_t` window become the input and the odd ones the target (or the other
//! way round when augmentation swaps them), cropped, transformed and normalised in one pass. Masked
//! training reads half a window's frames in a row instead.
//! Frames read from disk are kept in a bounded cache, so small data sets are decoded once and a
//! 20 GB folder never needs more than the budget.

use std::collections::{HashMap, VecDeque};

use super::augment::Augmentation;
use super::patch_grid::Patch;
use crate::io::FrameSource;
use crate::Result;

/// Memory the frame cache may hold.
pub const FRAME_CACHE_BYTES: usize = 512 << 20;

/// Recently read frames, evicted first-in first-out once `capacity_bytes` is reached.
struct FrameCache {
    frames: HashMap<(usize, usize), Vec<f32>>,
    order: VecDeque<(usize, usize)>,
    held_bytes: usize,
    capacity_bytes: usize,
    /// For frames too large to cache at all.
    scratch: Vec<f32>,
}

impl FrameCache {
    fn new(capacity_bytes: usize) -> Self {
        FrameCache {
            frames: HashMap::new(),
            order: VecDeque::new(),
            held_bytes: 0,
            capacity_bytes,
            scratch: Vec::new(),
        }
    }

    fn get(&mut self, source: &mut dyn FrameSource, index: usize, t: usize) -> Result<&[f32]> {
        let key = (index, t);
        let len = source.width() * source.height();
        let bytes = len * std::mem::size_of::<f32>();
        if !self.frames.contains_key(&key) {
            if bytes > self.capacity_bytes {
                self.scratch.resize(len, 0.0);
                source.read_frame(t, &mut self.scratch)?;
                return Ok(&self.scratch);
            }
            let mut buffer = Vec::new();
            while self.held_bytes + bytes > self.capacity_bytes {
                let oldest = self.order.pop_front().expect("held bytes imply cached frames");
                buffer = self.frames.remove(&oldest).expect("order and map agree");
                self.held_bytes -= buffer.len() * std::mem::size_of::<f32>();
            }
            buffer.resize(len, 0.0);
            source.read_frame(t, &mut buffer)?;
            self.held_bytes += bytes;
            self.order.push_back(key);
            self.frames.insert(key, buffer);
        }
        Ok(&self.frames[&key])
    }
}

/// Reads patches of a fixed size `[t, y, x]` as normalised `(x − offset) / scale` pairs, with one
/// `(offset, scale)` for every source or each source's own (per-movie normalisation).
pub struct PairReader {
    patch: [usize; 3],
    /// `(offset, 1/scale)`: one entry applies to every source, otherwise one per source.
    affines: Vec<(f32, f32)>,
    cache: FrameCache,
}

impl PairReader {
    /// The same `(x − offset) / scale` for every source.
    pub fn new(patch: [usize; 3], offset: f64, scale: f64) -> PairReader {
        Self::with_cache(patch, offset, scale, FRAME_CACHE_BYTES)
    }

    pub fn with_cache(patch: [usize; 3], offset: f64, scale: f64, cache_bytes: usize) -> PairReader {
        Self::per_source_with_cache(patch, &[(offset, scale)], cache_bytes)
    }

    /// Source `i` normalised with `affines[i] = (offset, scale)`.
    pub fn per_source(patch: [usize; 3], affines: &[(f64, f64)]) -> PairReader {
        Self::per_source_with_cache(patch, affines, FRAME_CACHE_BYTES)
    }

    fn per_source_with_cache(patch: [usize; 3], affines: &[(f64, f64)], cache_bytes: usize) -> PairReader {
        let affines = affines.iter().map(|&(offset, scale)| (offset as f32, (1.0 / scale) as f32)).collect();
        PairReader { patch, affines, cache: FrameCache::new(cache_bytes) }
    }

    /// The patch `[t, y, x]` of every pair.
    pub fn patch(&self) -> [usize; 3] {
        self.patch
    }

    /// `(offset, scale)` of `source`: a normalised value `v` is `v·scale + offset` in its units.
    pub fn normalization(&self, source: usize) -> (f64, f64) {
        let (offset, inv_scale) = self.affine(source);
        (offset as f64, 1.0 / inv_scale as f64)
    }

    fn affine(&self, source: usize) -> (f32, f32) {
        self.affines[if self.affines.len() == 1 { 0 } else { source }]
    }

    /// Values in one volume of a pair (`t·y·x`).
    pub fn volume_len(&self) -> usize {
        self.patch.iter().product()
    }

    /// Fills `input` and `target` (`volume_len()` values each, `[t][y'][x']` with `(y', x')` the
    /// transformed plane) from `patch`'s window.
    pub fn read_pair(
        &mut self,
        sources: &mut [Box<dyn FrameSource>],
        patch: &Patch,
        augmentation: Augmentation,
        input: &mut [f32],
        target: &mut [f32],
    ) -> Result<()> {
        let pt = self.patch[0];
        let plane = self.patch[1] * self.patch[2];
        for k in 0..2 * pt {
            let to_input = (k % 2 == 0) != augmentation.swap;
            let volume = if to_input { &mut *input } else { &mut *target };
            let out = &mut volume[(k / 2) * plane..(k / 2 + 1) * plane];
            self.read_plane(sources, patch, patch.t0 + k, augmentation, out)?;
        }
        Ok(())
    }

    /// Fills `volume` (`volume_len()` values) with `patch_t` consecutive frames of `patch`'s window,
    /// for masked-voxel training: its first half, or its second when augmentation swaps (so both
    /// halves of every window are used over the epochs).
    pub fn read_consecutive(
        &mut self,
        sources: &mut [Box<dyn FrameSource>],
        patch: &Patch,
        augmentation: Augmentation,
        volume: &mut [f32],
    ) -> Result<()> {
        let pt = self.patch[0];
        let plane = self.patch[1] * self.patch[2];
        let first = patch.t0 + if augmentation.swap { pt } else { 0 };
        for k in 0..pt {
            self.read_plane(sources, patch, first + k, augmentation, &mut volume[k * plane..(k + 1) * plane])?;
        }
        Ok(())
    }

    /// Movie frame `t`'s crop for `patch`, transformed and normalised, into `out` (one plane).
    fn read_plane(
        &mut self,
        sources: &mut [Box<dyn FrameSource>],
        patch: &Patch,
        t: usize,
        augmentation: Augmentation,
        out: &mut [f32],
    ) -> Result<()> {
        let [_, py, px] = self.patch;
        let dihedral = augmentation.dihedral;
        let (oh, ow) = dihedral.output_size(py, px);
        let (offset, inv_scale) = self.affine(patch.source);
        let source = &mut sources[patch.source];
        let width = source.width();
        let frame: &[f32] = if source.borrow_frame(t).is_some() {
            source.borrow_frame(t).expect("checked above")
        } else {
            self.cache.get(source.as_mut(), patch.source, t)?
        };
        for i in 0..oh {
            for j in 0..ow {
                let (y, x) = dihedral.source(i, j, py, px);
                let v = frame[(patch.y0 + y) * width + patch.x0 + x];
                out[i * ow + j] = (v - offset) * inv_scale;
            }
        }
        Ok(())
    }
}
