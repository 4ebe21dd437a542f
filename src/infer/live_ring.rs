//! The live stream's recent frames: a bounded ring that reads as a movie of a chosen length, so the
//! streaming core (`stream.rs`) runs on it exactly as it runs on a file.

use std::collections::VecDeque;

use crate::io::{FrameSource, SampleType};
use crate::{Error, Result};

/// Frames `first .. first + len` of the movie so far, oldest first.
pub(super) struct FrameRing {
    frames: VecDeque<Vec<f32>>,
    first: usize,
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) sample_type: SampleType,
    pub(super) name: String,
}

impl FrameRing {
    pub(super) fn new(name: String, width: usize, height: usize, sample_type: SampleType) -> FrameRing {
        FrameRing { frames: VecDeque::new(), first: 0, width, height, sample_type, name }
    }

    /// Frames received so far (the movie's length up to now).
    pub(super) fn arrived(&self) -> usize {
        self.first + self.frames.len()
    }

    pub(super) fn push(&mut self, frame: Vec<f32>) {
        self.frames.push_back(frame);
    }

    /// Forgets frames before `frame` (no later step reads them).
    pub(super) fn forget_before(&mut self, frame: usize) {
        while self.first < frame && !self.frames.is_empty() {
            self.frames.pop_front();
            self.first += 1;
        }
    }

    pub(super) fn frame(&self, t: usize) -> Result<&[f32]> {
        t.checked_sub(self.first).and_then(|i| self.frames.get(i)).map(Vec::as_slice).ok_or_else(|| {
            Error::Torch(format!(
                "{}: live frame {t} is no longer held (frames {}..{} are): a bug in the live schedule",
                self.name,
                self.first,
                self.arrived()
            ))
        })
    }

    /// The frames so far, read as a movie of `frames` frames (at most those arrived).
    pub(super) fn as_movie(&self, frames: usize) -> RingMovie<'_> {
        RingMovie { ring: self, frames: frames.min(self.arrived()) }
    }
}

/// A ring read as a movie that ends after `frames` frames.
pub(super) struct RingMovie<'a> {
    ring: &'a FrameRing,
    frames: usize,
}

impl FrameSource for RingMovie<'_> {
    fn name(&self) -> String {
        self.ring.name.clone()
    }
    fn width(&self) -> usize {
        self.ring.width
    }
    fn height(&self) -> usize {
        self.ring.height
    }
    fn frames(&self) -> usize {
        self.frames
    }
    fn sample_type(&self) -> SampleType {
        self.ring.sample_type
    }
    fn read_frame(&mut self, t: usize, out: &mut [f32]) -> Result<()> {
        out.copy_from_slice(self.ring.frame(t)?);
        Ok(())
    }
    fn borrow_frame(&self, t: usize) -> Option<&[f32]> {
        self.ring.frame(t).ok()
    }
}
