//! Which movie a shared block output was made from, recorded so that a block job handed another
//! movie of the same shape is refused instead of writing its frames into the output: its shape,
//! sample type and the pixels of its first, middle and last frames, hashed. Paths are not part of
//! it on purpose: cluster nodes may mount the same file under different paths.

use sha2::{Digest, Sha256};

use crate::io::FrameSource;
use crate::Result;

/// SHA-256 (hex) of the movie's shape, sample type and three of its frames.
pub fn input_fingerprint(source: &mut dyn FrameSource) -> Result<String> {
    let (frames, width, height) = (source.frames(), source.width(), source.height());
    let mut hash = Sha256::new();
    for extent in [frames, height, width] {
        hash.update((extent as u64).to_le_bytes());
    }
    hash.update(source.sample_type().to_string().as_bytes());
    let mut frame = crate::allocation::zeroed_f32(width * height, "one frame")?;
    let mut sampled = vec![0, frames / 2, frames.saturating_sub(1)];
    sampled.dedup();
    for t in sampled {
        source.read_frame(t, &mut frame)?;
        for value in &frame {
            hash.update(value.to_le_bytes());
        }
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
