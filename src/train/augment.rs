//! The reference's 16-fold augmentation (deepcad-spec §1.2 step 6): swap input and target with
//! probability ½, and one of the 8 dihedral transforms of the (H, W) plane, applied identically to
//! both volumes. No temporal flip, no intensity change.

use rand::Rng;

/// One of the 8 symmetries of the square: `flip` reverses W first, then the plane is rotated by
/// `quarter_turns` × 90° counter-clockwise (numpy `rot90` over axes (H, W)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dihedral {
    pub quarter_turns: u8,
    pub flip: bool,
}

impl Dihedral {
    pub const IDENTITY: Dihedral = Dihedral { quarter_turns: 0, flip: false };

    /// All 8, in the reference's order: identity, rot ×1..3, flip, flip + rot ×1..3.
    pub fn all() -> [Dihedral; 8] {
        std::array::from_fn(|i| Dihedral { quarter_turns: (i % 4) as u8, flip: i >= 4 })
    }

    /// Whether the transform keeps an `h × w` plane's shape (odd quarter turns swap the axes).
    pub fn keeps_shape(self, h: usize, w: usize) -> bool {
        h == w || self.quarter_turns % 2 == 0
    }

    /// Output plane size for an `h × w` input.
    pub fn output_size(self, h: usize, w: usize) -> (usize, usize) {
        if self.quarter_turns % 2 == 0 {
            (h, w)
        } else {
            (w, h)
        }
    }

    /// For output pixel `(i, j)`, the input pixel `(y, x)` it comes from (input plane `h × w`).
    #[inline]
    pub fn source(self, i: usize, j: usize, h: usize, w: usize) -> (usize, usize) {
        let (y, x) = match self.quarter_turns % 4 {
            0 => (i, j),
            1 => (j, w - 1 - i),
            2 => (h - 1 - i, w - 1 - j),
            _ => (h - 1 - j, i),
        };
        if self.flip {
            (y, w - 1 - x)
        } else {
            (y, x)
        }
    }

    /// Applies the transform to one `h × w` plane (`dst` gets the output size).
    pub fn apply_plane(self, src: &[f32], h: usize, w: usize, dst: &mut [f32]) {
        let (oh, ow) = self.output_size(h, w);
        for i in 0..oh {
            for j in 0..ow {
                let (y, x) = self.source(i, j, h, w);
                dst[i * ow + j] = src[y * w + x];
            }
        }
    }
}

/// How one training pair is augmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augmentation {
    /// Odd frames become the input and even frames the target.
    pub swap: bool,
    pub dihedral: Dihedral,
}

impl Augmentation {
    pub const NONE: Augmentation = Augmentation { swap: false, dihedral: Dihedral::IDENTITY };

    /// Draws a swap and a transform. Non-square patches draw only among the 4 transforms that keep
    /// their shape, so every pair of a batch has the same size (the reference would fail to batch).
    pub fn draw(rng: &mut impl Rng, patch_h: usize, patch_w: usize) -> Augmentation {
        let swap = rng.random_bool(0.5);
        let dihedral = if patch_h == patch_w {
            Dihedral::all()[rng.random_range(0..8)]
        } else {
            let k = rng.random_range(0..4usize);
            Dihedral { quarter_turns: 2 * (k % 2) as u8, flip: k >= 2 }
        };
        Augmentation { swap, dihedral }
    }
}
