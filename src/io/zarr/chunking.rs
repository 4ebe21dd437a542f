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

    /// Parses `t,y,x` chunk shapes given by a user; shards then hold whole frames.
    pub fn from_chunk(chunk: [usize; 3], shape: [usize; 3]) -> crate::Result<Chunking> {
        if chunk.contains(&0) {
            return Err(crate::Error::usage(format!("chunk shape {chunk:?} has a zero; give positive sizes t,y,x")));
        }
        let c = chunk.map(|v| v as u64);
        let [_, h, w] = shape.map(|v| v.max(1) as u64);
        Ok(Chunking { chunk: c, shard: [c[0], h.div_ceil(c[1]) * c[1], w.div_ceil(c[2]) * c[2]] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
