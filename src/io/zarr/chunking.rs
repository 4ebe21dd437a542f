//! How a movie is cut into chunks and shards on disk. Shards (the files) hold whole frames, so a
//! time block reads and writes whole files; inner chunks (the units of compression and reading)
//! are tiles of about 4 MB.

use serde::{Deserialize, Serialize};

/// Chunk and shard shapes `[t, y, x]`; the shard is a multiple of the chunk on every axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunking {
    pub chunk: [u64; 3],
    pub shard: [u64; 3],
}

/// An uncompressed inner chunk of about this many bytes.
const CHUNK_BYTES: u64 = 4 << 20;
/// An uncompressed shard of at most about this many bytes (the writer buffers one shard row).
const SHARD_BYTES: u64 = 64 << 20;
/// Spatial chunk edge.
const CHUNK_EDGE: u64 = 256;

impl Chunking {
    /// The default for a `[t, h, w]` movie of `bytes_per_sample`: 256² tiles (the frame if
    /// smaller), as many frames as make about 4 MB, shards of whole frames up to about 64 MB.
    pub fn for_movie(shape: [usize; 3], bytes_per_sample: usize) -> Chunking {
        let [t, h, w] = shape.map(|v| v.max(1) as u64);
        let (cy, cx) = (h.min(CHUNK_EDGE), w.min(CHUNK_EDGE));
        let frame_bytes = h.div_ceil(cy) * cy * w.div_ceil(cx) * cx * bytes_per_sample as u64;
        let frames_per_shard = (SHARD_BYTES / frame_bytes).max(1);
        let ct = (CHUNK_BYTES / (cy * cx * bytes_per_sample as u64)).clamp(1, 64).min(t).min(frames_per_shard);
        let st = (frames_per_shard / ct).max(1) * ct;
        Chunking { chunk: [ct, cy, cx], shard: [st.min(t.div_ceil(ct) * ct), h.div_ceil(cy) * cy, w.div_ceil(cx) * cx] }
    }

    /// The same spatial layout with shards and chunks of `frames` frames along time (block jobs
    /// need shards that never straddle two blocks).
    pub fn with_time_step(self, frames: u64) -> Chunking {
        let frames = frames.max(1);
        Chunking { chunk: [frames, self.chunk[1], self.chunk[2]], shard: [frames, self.shard[1], self.shard[2]] }
    }

    /// A chunk shape `t,y,x` given by a user; shards then hold whole frames. Each axis is cut to
    /// the movie's extent (a larger chunk only stores fill values), and a shard (what the writer
    /// buffers) must stay within [`MAX_USER_SHARD_BYTES`].
    pub fn from_chunk(chunk: [usize; 3], shape: [usize; 3], bytes_per_sample: usize) -> crate::Result<Chunking> {
        if chunk.contains(&0) {
            return Err(crate::Error::usage(format!("chunk shape {chunk:?} has a zero; give positive sizes t,y,x")));
        }
        let extent = shape.map(|v| v.max(1) as u64);
        let c = [0, 1, 2].map(|a| (chunk[a] as u64).min(extent[a]));
        let shard = [c[0], extent[1].div_ceil(c[1]) * c[1], extent[2].div_ceil(c[2]) * c[2]];
        let shard_bytes = shard.iter().fold(bytes_per_sample as u128, |acc, &v| acc * v as u128);
        if shard_bytes > MAX_USER_SHARD_BYTES as u128 {
            return Err(crate::Error::usage(format!(
                "chunk shape {chunk:?}: {} frames of {}x{} per shard would buffer {} MB at once (at most {} MB); give fewer frames per chunk (the first number)",
                shard[0],
                shard[2],
                shard[1],
                shard_bytes >> 20,
                MAX_USER_SHARD_BYTES >> 20
            )));
        }
        Ok(Chunking { chunk: c, shard })
    }
}

/// The most a user's chunk shape may make the writer buffer for one shard.
pub const MAX_USER_SHARD_BYTES: u64 = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_chunks_are_cut_to_the_movie_and_shards_bounded() {
        let c = Chunking::from_chunk([100_000, 100_000, 100_000], [40, 64, 48], 2).unwrap();
        assert_eq!(c.chunk, [40, 64, 48]);
        assert_eq!(c.shard, [40, 64, 48]);
        let c = Chunking::from_chunk([usize::MAX, 8, 8], [40, 64, 48], 2).unwrap();
        assert_eq!(c.chunk, [40, 8, 8]);
        let too_big = Chunking::from_chunk([20_000, 8, 8], [1 << 20, 2048, 2048], 2).unwrap_err().to_string();
        assert!(too_big.contains("fewer frames"), "{too_big}");
        assert!(Chunking::from_chunk([0, 8, 8], [4, 8, 8], 2).is_err());
    }

    #[test]
    fn shards_hold_whole_frames_in_multiples_of_the_chunk() {
        for (shape, bytes) in [([400, 160, 160], 2), ([10, 2048, 2048], 4), ([3, 5, 7], 1), ([100000, 512, 512], 2)] {
            let c = Chunking::for_movie(shape, bytes);
            for a in 0..3 {
                assert!(c.chunk[a] >= 1 && c.shard[a] % c.chunk[a] == 0, "{shape:?}: {c:?}");
            }
            assert!(c.shard[1] >= shape[1] as u64 && c.shard[2] >= shape[2] as u64, "{c:?}");
            assert!(
                c.shard[0] * c.shard[1] * c.shard[2] * bytes as u64
                    <= 2 * SHARD_BYTES.max(c.shard[1] * c.shard[2] * bytes as u64),
                "{c:?}"
            );
        }
    }
}
