//! A TIFF another program is still appending pages to.
//!
//! A page is complete once the page after it exists, or once the file has stopped growing for a
//! moment (`SETTLE`), or once the writer's end marker is there: the last page may still be
//! receiving its pixels until then.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use deepcad::io::{ReadOptions, StackReader};
use deepcad::Result;

use super::{marker_path, Geometry, GrowingInput};

/// How long the file must stay the same size before its last page counts as complete.
const SETTLE: Duration = Duration::from_millis(300);

/// The TIFF as far as it is written.
pub(super) struct TiffInput {
    path: PathBuf,
    marker: PathBuf,
    options: ReadOptions,
    reader: Option<StackReader>,
    /// File length at the last look, and when it last changed.
    length: u64,
    changed: Instant,
}

impl TiffInput {
    pub(super) fn new(path: &Path, options: ReadOptions) -> TiffInput {
        TiffInput {
            path: path.to_path_buf(),
            marker: marker_path(path),
            options,
            reader: None,
            length: 0,
            changed: Instant::now(),
        }
    }

    fn settled(&self) -> bool {
        self.changed.elapsed() >= SETTLE
    }

    fn ended(&self) -> bool {
        self.marker.exists()
    }
}

impl GrowingInput for TiffInput {
    fn path(&self) -> &Path {
        &self.path
    }

    fn complete_frames(&mut self) -> Result<usize> {
        let length = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if length != self.length {
            self.length = length;
            self.changed = Instant::now();
            // A page mid-write makes the file unreadable for a moment: keep the last good view.
            if let Ok(reader) = StackReader::open(&self.path, &self.options) {
                self.reader = Some(reader);
            }
        } else if self.settled() && self.reader.as_ref().is_none_or(|r| r.info().frames == 0) {
            self.reader = StackReader::open(&self.path, &self.options).ok();
        }
        let pages = self.reader.as_ref().map_or(0, |r| r.info().frames);
        Ok(if self.settled() || self.ended() { pages } else { pages.saturating_sub(1) })
    }

    fn geometry(&self) -> Geometry {
        let info = self.reader.as_ref().expect("a frame is complete").info();
        Geometry { width: info.width, height: info.height, sample_type: info.sample_type }
    }

    fn read_frame(&mut self, t: usize, out: &mut [f32]) -> Result<bool> {
        self.reader.as_mut().expect("frames are complete").read_frame(t, out)?;
        Ok(true)
    }

    fn finished(&self) -> bool {
        self.ended() && self.settled()
    }

    fn idle_for(&self) -> Duration {
        self.changed.elapsed()
    }
}
