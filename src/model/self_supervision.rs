//! How a model learns without clean data, and what that means for inference: which network it
//! has, how far it sees in time, and so the halo its tiles need.
//!
//! Interlaced (DeepCAD): a 3-D U-Net predicts the odd frames of a patch from its even frames. An
//! event shorter than the frame spacing is not in the input, so it is averaged out (issue 23).
//!
//! Hybrid: the same U-Net as a context branch that sees only frames of the other parity, plus a
//! blind-spot branch on the current frame that sees every pixel of it except the one it predicts
//! (SUPPORT's principle; `blind_spot.rs`, `hybrid.rs`). A fast event is then visible through the
//! current frame's neighbouring pixels, while the output at a pixel still never depends on that
//! pixel's own noise.
//!
//! Masked (Noise2Void's principle in 3-D): the same U-Net sees consecutive frames, with a few
//! voxels of each patch replaced by the mean of their unmasked neighbours in the same frame, and
//! learns to predict those voxels' raw values (`train/masked_voxels.rs`). Every frame is in the
//! input, so a fast event shows through the current frame's neighbouring pixels; denoising is the
//! plain U-Net on the whole movie, exactly as for an interlaced model.

use crate::geometry::{DEFAULT_HALO, RECEPTIVE_FIELD_RADIUS};
use crate::vocabulary::Vocabulary;

/// The self-supervision a model was trained with; denoising follows it. Bundles written before it
/// existed carry none and are interlaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SelfSupervision {
    /// Odd frames predicted from even frames (and the other way round): DeepCAD and DeepCAD-RT.
    #[default]
    Interlaced,
    /// Interlaced context plus a blind-spot branch on the current frame.
    Hybrid,
    /// The plain U-Net on consecutive frames, trained to predict masked voxels.
    Masked,
}

/// The words every door uses (`--method`, settings JSON, bundle metadata), in the order they list them.
impl Vocabulary for SelfSupervision {
    const WHAT: &'static str = "self-supervision method";
    const WORDS: &'static [(Self, &'static str)] = &[
        (SelfSupervision::Interlaced, "interlaced"),
        (SelfSupervision::Hybrid, "hybrid"),
        (SelfSupervision::Masked, "masked"),
    ];
}
crate::spelled!(SelfSupervision);

impl SelfSupervision {
    /// The bundle's `architecture`: a deepcad that predates the hybrid network refuses a hybrid
    /// bundle by this name ("architecture ... is unknown") instead of failing on its extra tensors.
    pub fn architecture(self) -> &'static str {
        match self {
            SelfSupervision::Interlaced | SelfSupervision::Masked => INTERLACED_ARCHITECTURE,
            SelfSupervision::Hybrid => HYBRID_ARCHITECTURE,
        }
    }

    /// Whether denoising is the plain U-Net on consecutive frames (as the official pipelines and
    /// bioimage.io packages run it), whatever the training taught it.
    pub fn denoises_with_plain_unet(self) -> bool {
        match self {
            SelfSupervision::Interlaced | SelfSupervision::Masked => true,
            SelfSupervision::Hybrid => false,
        }
    }

    /// How far an output frame sees in time, in frames. The hybrid's context U-Net runs on one
    /// parity of the movie, where one of its steps is two frames: frame `t` reads the other
    /// parity's frames `t ± 1 + 2k` for `|k| ≤` [`RECEPTIVE_FIELD_RADIUS`], so up to `2·51 + 1`.
    pub fn temporal_receptive_field_radius(self) -> usize {
        match self {
            SelfSupervision::Interlaced | SelfSupervision::Masked => RECEPTIVE_FIELD_RADIUS,
            SelfSupervision::Hybrid => 2 * RECEPTIVE_FIELD_RADIUS + 1,
        }
    }

    /// The halo tiled inference keeps, `[t, y, x]`: each receptive-field radius rounded up to a
    /// multiple of 4, so `tile − 2·halo` stays a multiple of 8. Spatially the hybrid sees no
    /// further than the U-Net (the blind-spot stack reaches 31 pixels, the U-Net 51).
    pub fn halo(self) -> [usize; 3] {
        let time = self.temporal_receptive_field_radius().div_ceil(4) * 4;
        [time, DEFAULT_HALO, DEFAULT_HALO]
    }

    /// Parameters beyond the U-Net's.
    pub fn extra_parameters(self) -> usize {
        match self {
            SelfSupervision::Interlaced | SelfSupervision::Masked => 0,
            SelfSupervision::Hybrid => super::hybrid::hybrid_parameter_count(),
        }
    }
}

/// The `architecture` of a plain U-Net bundle: interlaced (every bundle written before the hybrid
/// existed) and masked ones, whose networks are the same.
pub const INTERLACED_ARCHITECTURE: &str = "deepcad-unet3d";
/// The `architecture` of a hybrid bundle. `-c8`: 8 features per blind-spot layer; experimental
/// hybrid bundles written with 16 (before the branch was made cheaper) are refused by this name.
pub const HYBRID_ARCHITECTURE: &str = "deepcad-unet3d-hybrid-blind-spot-c8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halos_cover_the_receptive_field_and_keep_tiles_aligned() {
        for &(method, word) in SelfSupervision::WORDS {
            let halo = method.halo();
            assert!(halo[0] >= method.temporal_receptive_field_radius());
            assert!(halo[1] >= RECEPTIVE_FIELD_RADIUS && halo[2] >= RECEPTIVE_FIELD_RADIUS);
            assert!(halo.iter().all(|h| h % 4 == 0));
            assert_eq!(word.parse::<SelfSupervision>().unwrap(), method);
        }
        assert_eq!(SelfSupervision::Interlaced.halo(), [DEFAULT_HALO; 3]);
        assert_eq!(SelfSupervision::Masked.halo(), [DEFAULT_HALO; 3]);
        assert_eq!(SelfSupervision::Hybrid.halo()[0], 104);
    }
}
