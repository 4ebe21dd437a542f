//! The hyperstack view: which channel and slice of an ImageJ XYCZT stack the caller reads over
//! time, checked against the file's dimensions, the page that holds each time point, and the
//! metadata of the single-channel movie that view yields.

use std::path::Path;

use super::ome::PageOrder;
use crate::error::{Error, Result};
use crate::io::imagej::ImageJMetadata;

/// Which part of a hyperstack to read. Indices are 0-based. Serde: the Fiji and Spark doors send
/// it among their settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ReadOptions {
    /// Required when the file has more than one channel.
    pub channel: Option<usize>,
    /// Required when the file has both several slices and several frames.
    pub slice: Option<usize>,
}

/// Maps a time index of the view onto a page (ImageJ's pages are XYCZT, channel fastest; an
/// OME-TIFF states its own order).
#[derive(Debug, Clone, Copy)]
pub(super) struct PageMap {
    order: PageOrder,
    channel: usize,
    slice: usize,
    /// True when time runs along frames, false when along slices (plain stacks).
    pub(super) time_on_frames: bool,
}

impl PageMap {
    pub(super) fn page(&self, t: usize) -> usize {
        let (z, frame) = if self.time_on_frames { (self.slice, t) } else { (t, 0) };
        self.channel * self.order.channel_step + z * self.order.slice_step + frame * self.order.frame_step
    }
}

/// Checks the channel/slice choice against the file's dimensions and builds the page map.
pub(super) fn choose_view(
    path: &Path,
    meta: &ImageJMetadata,
    order: PageOrder,
    options: &ReadOptions,
) -> Result<PageMap> {
    let (channels, slices, frames) = (meta.channels, meta.slices, meta.frames);
    let channel = match options.channel {
        None if channels > 1 => {
            return Err(Error::unsupported(
                path,
                format!(
                    "the file has {channels} channels; choose the channel to denoise (C1 to C{channels} as Fiji \
                     numbers them, index 0 to {} counting from 0) or split the channels first (in Fiji: Image > Color > Split Channels)",
                    channels - 1
                ),
            ))
        }
        None => 0,
        Some(c) if c >= channels => {
            return Err(Error::usage(format!(
                "{}: channel C{} (index {c} counting from 0) does not exist; the file has {channels} channel(s), C1 to C{channels} (index 0 to {})",
                path.display(),
                c + 1,
                channels - 1
            )))
        }
        Some(c) => c,
    };
    let time_on_frames = frames > 1 || slices == 1;
    let slice = match options.slice {
        None if slices > 1 && frames > 1 => {
            return Err(Error::unsupported(
                path,
                format!(
                    "the file has {slices} slices and {frames} frames; choose the slice to denoise over time \
                     (Z1 to Z{slices} as Fiji numbers them, index 0 to {} counting from 0)",
                    slices - 1
                ),
            ))
        }
        None => 0,
        Some(z) if z >= slices => {
            return Err(Error::usage(format!(
                "{}: slice Z{} (index {z} counting from 0) does not exist; the file has {slices} slice(s), Z1 to Z{slices} (index 0 to {})",
                path.display(),
                z + 1,
                slices - 1
            )))
        }
        Some(z) if !time_on_frames => {
            return Err(Error::usage(format!(
                "{}: slice {z} was chosen but this stack has a single frame, so its {slices} slices are the time \
                 axis that gets denoised; leave the slice unset",
                path.display()
            )))
        }
        Some(z) => z,
    };
    Ok(PageMap { order, channel, slice, time_on_frames })
}

/// Metadata describing the single-channel movie the view yields.
pub(super) fn view_metadata(meta: &ImageJMetadata, time_on_frames: bool) -> ImageJMetadata {
    let mut view = meta.clone();
    view.channels = 1;
    if time_on_frames {
        view.slices = 1;
    } else {
        view.frames = 1;
    }
    if meta.channels > 1 {
        // Composite display settings describe the channels we dropped.
        view.extra.retain(|(key, _)| key != "mode" && key != "ranges");
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_channel_fastest_then_slice_then_frame() {
        let map = PageMap { order: PageOrder::imagej(2, 3), channel: 1, slice: 2, time_on_frames: true };
        assert_eq!(map.page(0), 1 + 2 * 2);
        assert_eq!(map.page(4), 1 + 2 * (2 + 3 * 4));
        let plain = PageMap { order: PageOrder::imagej(2, 5), channel: 0, slice: 0, time_on_frames: false };
        assert_eq!(plain.page(3), 2 * 3);
    }
}
