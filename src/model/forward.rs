//! A model's two forward passes, whichever self-supervision it was trained with: on a training
//! pair, and on a denoising tile. Training, the checks after it, and the streaming denoiser call
//! these, so none of them needs to know which network a bundle holds.

use tch::{Device, Tensor};

use super::bundle::Model;
use super::hybrid::{parity_split_context, without_mirrored_pixels};
use super::unet3d::{slab_columns, SLAB_VOXELS};
use crate::{Error, Result};

/// Where a tile lies in the movie: what the hybrid network's parity split and blind spot need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePlacement {
    /// The movie frame of the tile's first frame (even: tiles start on multiples of 8).
    pub first_frame: usize,
    /// Rows and columns of the tile that are movie pixels; those after them are mirrored copies.
    pub real_rows: usize,
    pub real_columns: usize,
}

impl TilePlacement {
    /// Tiles that start at the movie's first frame and hold no mirrored pixels, one per tile of
    /// `tiles` (`[N, 1, L, H, W]`).
    pub fn unmirrored(tiles: &Tensor) -> Vec<TilePlacement> {
        let size = tiles.size();
        let placement = TilePlacement { first_frame: 0, real_rows: size[3] as usize, real_columns: size[4] as usize };
        vec![placement; size[0] as usize]
    }
}

/// How a tile's forward pass holds its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileMemory {
    /// Everything at once (GPUs, small tiles).
    Whole,
    /// The CPU's low-memory pass: about this many voxels per slab of the U-Net's full-resolution
    /// levels (`UNet3d::forward_low_memory`) and per step of the blind-spot branch.
    Slabs { voxels: usize },
}

impl Model {
    /// The prediction of `target` (`[N, 1, T, H, W]`, the frames the loss compares with) from
    /// `input` (the interleaved frames of the other parity, same shape): interlaced models use
    /// `input` alone; hybrid models also read `target`, through their blind spot.
    pub fn pair_forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        let context = self.net.forward(input)?;
        match &self.hybrid {
            None => Ok(context),
            Some(head) => head.forward(&context, target),
        }
    }

    /// The denoised tiles (`[N, 1, L, H, W]` → same shape; one placement per tile, all from one
    /// time block), normalised units in and out. `between_slabs` runs after every slab of the
    /// low-memory pass; an error from it (a stop request) ends the pass there.
    pub fn denoise_tile(
        &self,
        tile: &Tensor,
        placements: &[TilePlacement],
        memory: TileMemory,
        between_slabs: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Tensor> {
        let mut unet_pass = |x: &Tensor| -> Result<Tensor> {
            match memory {
                TileMemory::Slabs { voxels } => {
                    self.net.forward_low_memory_checked(x, slab_columns(&x.size(), voxels), between_slabs)
                }
                TileMemory::Whole => self.net.forward(x),
            }
        };
        let Some(head) = &self.hybrid else {
            return unet_pass(tile);
        };
        let first_frame = placements.first().map_or(0, |p| p.first_frame);
        if placements.iter().any(|p| p.first_frame != first_frame) {
            return Err(Error::usage("tiles denoised together must start on the same frame"));
        }
        let context = parity_split_context(tile, first_frame, &mut unet_pass)?;
        let real: Vec<(usize, usize)> = placements.iter().map(|p| (p.real_rows, p.real_columns)).collect();
        let current = without_mirrored_pixels(tile, &real)?;
        // The blind stack's features for a step cost about as much per voxel as a U-Net slab's.
        let chunk_voxels = match memory {
            TileMemory::Slabs { voxels } => voxels / 2,
            TileMemory::Whole if tile.device() == Device::Cpu => SLAB_VOXELS,
            TileMemory::Whole => SLAB_VOXELS * 4,
        };
        head.forward_in_chunks(&context, &current, chunk_voxels)
    }
}
