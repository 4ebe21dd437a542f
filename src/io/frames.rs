//! Movies as sources of frames, for training and denoising alike: a trait object, so files stream
//! from disk frame by frame and the JNI layer can hand over an in-memory ImagePlus through the
//! same door.

use super::{NonFinite, SampleType, StackReader};
use crate::{Error, Result};

/// A movie that can be read one frame (`width·height` values, row-major) at a time, in any order.
pub trait FrameSource {
    /// Shown in messages and recorded in the bundle (a path for files).
    fn name(&self) -> String;
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    fn frames(&self) -> usize;
    fn sample_type(&self) -> SampleType;
    /// Reads frame `t` into `out` (`width·height` values).
    fn read_frame(&mut self, t: usize, out: &mut [f32]) -> Result<()>;
    /// Frame `t` without a copy, for sources that already hold it in memory (no cache needed).
    fn borrow_frame(&self, _t: usize) -> Option<&[f32]> {
        None
    }
    /// Bytes this source may hold while reading one frame, besides the caller's buffer: by
    /// default one decoded frame of samples. Memory budgets add it before anything is read, so a
    /// file that declares a huge frame is refused instead of exhausting memory.
    fn read_bytes(&self) -> usize {
        self.width().saturating_mul(self.height()).saturating_mul(self.sample_type().bytes())
    }
}

/// A movie held in memory, `T×H×W` row-major (e.g. an ImagePlus passed through JNI).
#[derive(Debug, Clone)]
pub struct InMemoryMovie {
    name: String,
    width: usize,
    height: usize,
    frames: usize,
    sample_type: SampleType,
    data: Vec<f32>,
}

impl InMemoryMovie {
    /// Checks that `data` holds exactly `frames·height·width` finite values.
    pub fn new(
        name: impl Into<String>,
        width: usize,
        height: usize,
        frames: usize,
        sample_type: SampleType,
        data: Vec<f32>,
    ) -> Result<InMemoryMovie> {
        let name = name.into();
        if width == 0 || height == 0 || frames == 0 {
            return Err(Error::usage(format!(
                "{name}: movie has a zero-sized axis ({width}×{height}, {frames} frames)"
            )));
        }
        let expected = width.checked_mul(height).and_then(|n| n.checked_mul(frames));
        if expected != Some(data.len()) {
            return Err(Error::usage(format!(
                "{name}: {} values given for a {width}×{height} movie of {frames} frames (expected {})",
                data.len(),
                expected.map_or_else(|| "more than memory holds".to_string(), |n| n.to_string())
            )));
        }
        if let Some(bad) = NonFinite::find(&data, width, height) {
            return Err(Error::usage(format!("{name}: {}", bad.input_message(0))));
        }
        Ok(InMemoryMovie { name, width, height, frames, sample_type, data })
    }

    fn frame(&self, t: usize) -> Result<&[f32]> {
        let len = self.width * self.height;
        self.data.get(t * len..(t + 1) * len).ok_or_else(|| {
            Error::usage(format!("{}: frame index {t} is outside its {} frames", self.name, self.frames))
        })
    }
}

impl FrameSource for InMemoryMovie {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn frames(&self) -> usize {
        self.frames
    }
    fn sample_type(&self) -> SampleType {
        self.sample_type
    }
    fn read_frame(&mut self, t: usize, out: &mut [f32]) -> Result<()> {
        let frame = self.frame(t)?;
        if out.len() != frame.len() {
            return Err(Error::usage(format!(
                "{}: buffer of {} values for a frame of {}",
                self.name,
                out.len(),
                frame.len()
            )));
        }
        out.copy_from_slice(frame);
        Ok(())
    }
    fn borrow_frame(&self, t: usize) -> Option<&[f32]> {
        self.frame(t).ok()
    }
    /// Already in memory: reading allocates nothing.
    fn read_bytes(&self) -> usize {
        0
    }
}

/// A TIFF stack read frame by frame from disk.
#[derive(Debug)]
pub struct FileMovie(pub StackReader);

impl FrameSource for FileMovie {
    fn name(&self) -> String {
        self.0.info().path.display().to_string()
    }
    fn width(&self) -> usize {
        self.0.info().width
    }
    fn height(&self) -> usize {
        self.0.info().height
    }
    fn frames(&self) -> usize {
        self.0.info().frames
    }
    fn sample_type(&self) -> SampleType {
        self.0.info().sample_type
    }
    fn read_frame(&mut self, t: usize, out: &mut [f32]) -> Result<()> {
        self.0.read_frame(t, out)
    }
}
