//! When a live stream may finish which frames: pure arithmetic over the whole-movie time plan, no
//! torch.
//!
//! The live stream finishes frames in steps that follow the time blocks of `tiling::plan_axis`
//! for a movie of unknown length: step 0 keeps `[0, tile − halo)`, step k ≥ 1 the next `step`
//! frames. Step k runs once `end(k) + look_ahead` frames have arrived, on the movie as if it ended
//! there (frames past it mirrored). With `look_ahead = halo` that truncated movie's plan holds
//! step k's block unchanged (same origin, same length, all its frames real), so the step's frames
//! equal the whole movie's bit for bit, whatever its final length. A shorter look-ahead finishes
//! the step sooner from a mirrored future: the frames are then those of a movie that stopped
//! `look_ahead` frames after the step's last frame.

use std::ops::Range;

use crate::tiling::{plan_axis, AxisTile};

/// The steps of a live stream along time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSchedule {
    /// Time tile (frames read per block): `2·halo + step`.
    pub tile: usize,
    /// Temporal halo of the network (frames each side that a kept frame depends on).
    pub halo: usize,
    /// Frames finished per step after the first (a multiple of 8).
    pub step: usize,
    /// Frames after a step's last frame that must have arrived before it runs (at most `halo`).
    pub look_ahead: usize,
}

impl LiveSchedule {
    /// `look_ahead` beyond the halo is clipped to it (the network sees no further).
    pub fn new(halo: usize, step: usize, look_ahead: usize) -> Result<LiveSchedule, String> {
        let alignment = crate::geometry::ALIGNMENT;
        if step == 0 || step % alignment != 0 {
            return Err(format!("the live step of {step} frames must be a positive multiple of {alignment}"));
        }
        if (2 * halo) % alignment != 0 {
            return Err(format!(
                "a temporal halo of {halo} frames cannot run live (twice it must be a multiple of {alignment})"
            ));
        }
        Ok(LiveSchedule { tile: 2 * halo + step, halo, step, look_ahead: look_ahead.min(halo) })
    }

    /// Whether every finished frame equals the whole-movie output.
    pub fn exact(&self) -> bool {
        self.look_ahead >= self.halo
    }

    /// Frames step `k` finishes.
    pub fn frames(&self, k: usize) -> Range<usize> {
        let end = self.tile - self.halo + k * self.step;
        if k == 0 {
            0..end
        } else {
            end - self.step..end
        }
    }

    /// Frames that must have arrived before step `k` runs: the length of the movie it runs on.
    pub fn needed(&self, k: usize) -> usize {
        self.frames(k).end + self.look_ahead
    }

    /// The most frames that arrive after a frame before it is finished, once past the first step.
    pub fn steady_delay_frames(&self) -> usize {
        self.step - 1 + self.look_ahead
    }

    /// The same for the first step's frames (it waits for a whole block).
    pub fn first_delay_frames(&self) -> usize {
        self.frames(0).end - 1 + self.look_ahead
    }

    /// The most frames that may arrive after `frame` before it is finished.
    pub fn allowed_delay(&self, frame: usize) -> usize {
        if frame < self.frames(0).end {
            self.first_delay_frames()
        } else {
            self.steady_delay_frames()
        }
    }
}

/// The time blocks of a movie of `frames` frames whose kept frames meet `wanted`, and the first
/// frame the first of them keeps; `None` when none does.
pub fn blocks_for(
    frames: usize,
    tile: usize,
    halo: usize,
    wanted: Range<usize>,
) -> Result<Option<(Range<usize>, usize)>, String> {
    let blocks: Vec<AxisTile> = plan_axis(frames, tile, halo).map_err(|e| e.0)?;
    let meets = |b: &AxisTile| b.keep_start < wanted.end && wanted.start < b.keep_end;
    let Some(first) = blocks.iter().position(meets) else {
        return Ok(None);
    };
    let last = blocks.iter().rposition(meets).unwrap_or(first);
    Ok(Some((first..last + 1, blocks[first].keep_start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_partition_time_and_follow_the_whole_movie_blocks() {
        let s = LiveSchedule::new(52, 16, 52).unwrap();
        assert_eq!(s.tile, 120);
        assert_eq!(s.frames(0), 0..68);
        assert_eq!(s.frames(1), 68..84);
        assert_eq!(s.needed(1), 136);
        // With look-ahead = halo, step k's block is block k of the whole movie's plan for any
        // length from `needed(k)` on, and keeps the same frames.
        for total in [136, 137, 143, 144, 500] {
            let whole = plan_axis(total, s.tile, s.halo).unwrap();
            let prefix = plan_axis(s.needed(1), s.tile, s.halo).unwrap();
            assert_eq!(whole[1].origin, prefix[1].origin, "length {total}");
            assert_eq!(whole[1].length, prefix[1].length);
            assert!(whole[1].keep_start == 68 && whole[1].keep_end >= 84);
            assert!(prefix[1].origin + prefix[1].length <= s.needed(1), "all of the block's frames arrived");
        }
    }

    #[test]
    fn a_short_look_ahead_finishes_sooner_and_is_not_exact() {
        let s = LiveSchedule::new(52, 8, 4).unwrap();
        assert!(!s.exact());
        assert_eq!(s.steady_delay_frames(), 11);
        assert_eq!(s.needed(3), s.frames(3).end + 4);
        let (blocks, first_kept) = blocks_for(s.needed(3), s.tile, s.halo, s.frames(3)).unwrap().unwrap();
        assert!(!blocks.is_empty() && first_kept <= s.frames(3).start);
        assert_eq!(LiveSchedule::new(52, 8, 500).unwrap().look_ahead, 52);
        assert!(LiveSchedule::new(52, 12, 52).is_err());
    }
}
