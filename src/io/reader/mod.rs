//! Reading a grayscale TIFF movie one frame at a time. `open` walks the page chain once (checking
//! that every page has the same size and sample type and lies inside the file) and the decoder
//! caches each page's offset, so `read_frame(t)` seeks straight to its page and decodes nothing
//! else: a 50,000-frame movie never has to fit in memory.
//!
//! One file per concept: `header` (the first bytes), `pages` (what every page must be),
//! `hyperstack` (the channel/slice view and its page map) and `contiguous` (ImageJ's
//! back-to-back data for stacks over 4 GB).

mod contiguous;
mod header;
mod hyperstack;
mod ome;
mod pages;

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tiff::decoder::{Decoder, DecodingResult, Limits};

use super::imagej::ImageJMetadata;
use super::sample::{FrameData, NonFinite, SampleType};
use super::tiff_errors::from_tiff;
use crate::error::{Error, Result};
use contiguous::{contiguous_start, decode_raw, Storage};
use header::read_header;
pub use hyperstack::ReadOptions;
use hyperstack::{choose_view, view_metadata, PageMap};
use ome::PageOrder;
use pages::{check_chunks_inside, chunk_extents, frame_bytes, image_description, page_shape, resolution};

/// What a stack (or the chosen channel/slice view of it) holds.
#[derive(Debug, Clone, PartialEq)]
pub struct StackInfo {
    pub path: PathBuf,
    pub width: usize,
    pub height: usize,
    /// Length of the time axis of the view (frames, or slices for a plain stack).
    pub frames: usize,
    pub sample_type: SampleType,
    /// Metadata of the view: channels = 1, the time axis in `frames` (or `slices` for a plain
    /// stack), the input's calibration and extra description lines.
    pub metadata: ImageJMetadata,
    pub bigtiff: bool,
}

/// A TIFF stack opened for random access by time index.
pub struct StackReader {
    info: StackInfo,
    decoder: Decoder<BufReader<File>>,
    storage: Storage,
    map: PageMap,
    buffer: DecodingResult,
}

impl std::fmt::Debug for StackReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackReader").field("info", &self.info).finish_non_exhaustive()
    }
}

impl StackReader {
    pub fn open(path: &Path, options: &ReadOptions) -> Result<StackReader> {
        let mut file = super::open_regular_file(path)?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let header = read_header(path, &mut file, file_len)?;
        file.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;

        let mut decoder = Decoder::new(BufReader::new(file)).map_err(|e| from_tiff(path, "page 1", e))?;
        let shape = page_shape(path, &mut decoder, 0)?;
        let frame_bytes = frame_bytes(path, &shape)?;
        // One frame must fit the decoder's buffer (frame size is capped above, so a hostile header
        // cannot make it allocate more); strip/tile tables of tall images can exceed 1 MiB.
        let mut limits = Limits::default();
        limits.decoding_buffer_size = limits.decoding_buffer_size.max(frame_bytes as usize);
        limits.ifd_value_size = 256 * 1024 * 1024;
        limits.intermediate_buffer_size = 1024 * 1024 * 1024;
        let mut decoder = decoder.with_limits(limits);

        let description = image_description(&mut decoder);
        let (imagej, ome) = described_dimensions(path, description.as_deref())?;
        let resolution = resolution(&mut decoder);

        let first_chunks = chunk_extents(path, &mut decoder, 0)?;
        let mut pages = 1usize;
        while decoder.more_images() {
            let context = format!("page {}", pages + 1);
            decoder.next_image().map_err(|e| from_tiff(path, &context, e))?;
            let this = page_shape(path, &mut decoder, pages)?;
            if this != shape {
                return Err(Error::format(
                    path,
                    format!(
                        "{context} is {}x{} {} but page 1 is {}x{} {}; all pages of a stack must have the same size and type",
                        this.width, this.height, this.sample_type, shape.width, shape.height, shape.sample_type
                    ),
                ));
            }
            check_chunks_inside(path, &context, &chunk_extents(path, &mut decoder, pages)?, file_len)?;
            pages += 1;
        }

        let storage = match &imagej {
            Some(meta) if pages == 1 && meta.page_count() > 1 => {
                let first_offset = contiguous_start(path, &mut decoder, &first_chunks, frame_bytes)?;
                let images = meta.page_count() as u64;
                let needed = first_offset.saturating_add(frame_bytes.saturating_mul(images));
                if needed > file_len {
                    return Err(Error::format(
                        path,
                        format!(
                            "the ImageJ description announces {images} images stored after the first page, which needs \
                             {needed} bytes, but the file has only {file_len}; it is truncated or damaged"
                        ),
                    ));
                }
                pages = meta.page_count();
                Storage::Contiguous { first_offset, little_endian: header.little_endian }
            }
            _ => {
                check_chunks_inside(path, "page 1", &first_chunks, file_len)?;
                Storage::Pages
            }
        };

        let (metadata, order) = file_metadata(path, imagej, ome, pages, resolution)?;
        let map = choose_view(path, &metadata, order, options)?;
        let frames = if map.time_on_frames { metadata.frames } else { metadata.slices };
        let view = view_metadata(&metadata, map.time_on_frames);
        let info = StackInfo {
            path: path.to_path_buf(),
            width: shape.width,
            height: shape.height,
            frames,
            sample_type: shape.sample_type,
            metadata: view,
            bigtiff: header.bigtiff,
        };
        Ok(StackReader { info, decoder, storage, map, buffer: DecodingResult::U8(Vec::new()) })
    }

    pub fn info(&self) -> &StackInfo {
        &self.info
    }

    /// Samples per frame (`width * height`).
    pub fn frame_len(&self) -> usize {
        self.info.width * self.info.height
    }

    /// Reads frame `t` of the view into `out` (`frame_len()` values), converted to `f32`.
    pub fn read_frame(&mut self, t: usize, out: &mut [f32]) -> Result<()> {
        if out.len() != self.frame_len() {
            return Err(Error::usage(format!(
                "read_frame: the output buffer holds {} values but a frame of {} has {}",
                out.len(),
                self.info.path.display(),
                self.frame_len()
            )));
        }
        self.decode(t)?;
        match &self.buffer {
            DecodingResult::U8(v) => out.iter_mut().zip(v).for_each(|(o, &s)| *o = f32::from(s)),
            DecodingResult::U16(v) => out.iter_mut().zip(v).for_each(|(o, &s)| *o = f32::from(s)),
            DecodingResult::I16(v) => out.iter_mut().zip(v).for_each(|(o, &s)| *o = f32::from(s)),
            DecodingResult::F32(v) => {
                check_finite(&self.info, t, v)?;
                out.copy_from_slice(v);
            }
            _ => return Err(self.unexpected_buffer()),
        }
        Ok(())
    }

    /// Reads frame `t` of the view in its stored sample type.
    pub fn read_frame_raw(&mut self, t: usize) -> Result<FrameData> {
        self.decode(t)?;
        // The caller gets the buffer itself; the next read allocates a fresh one.
        let frame = match std::mem::replace(&mut self.buffer, DecodingResult::U8(Vec::new())) {
            DecodingResult::U8(v) => FrameData::U8(v),
            DecodingResult::U16(v) => FrameData::U16(v),
            DecodingResult::I16(v) => FrameData::I16(v),
            DecodingResult::F32(v) => {
                check_finite(&self.info, t, &v)?;
                FrameData::F32(v)
            }
            _ => return Err(self.unexpected_buffer()),
        };
        Ok(frame)
    }

    /// Decodes frame `t` into `self.buffer`, which then holds exactly `frame_len()` samples.
    fn decode(&mut self, t: usize) -> Result<()> {
        if t >= self.info.frames {
            return Err(Error::usage(format!(
                "{}: frame {t} does not exist; the movie has {} frames (0 to {})",
                self.info.path.display(),
                self.info.frames,
                self.info.frames.saturating_sub(1)
            )));
        }
        let page = self.map.page(t);
        let path = self.info.path.clone();
        let context = format!("frame {t} (page {})", page + 1);
        match self.storage {
            Storage::Pages => {
                self.decoder.seek_to_image(page).map_err(|e| from_tiff(&path, &context, e))?;
                self.decoder.read_image_to_buffer(&mut self.buffer).map_err(|e| from_tiff(&path, &context, e))?;
            }
            Storage::Contiguous { first_offset, little_endian } => {
                let n = self.frame_len();
                let bytes = n * self.info.sample_type.bytes();
                let offset = first_offset + (bytes as u64) * page as u64;
                let mut raw = vec![0u8; bytes];
                let reader = self.decoder.inner();
                reader
                    .seek(SeekFrom::Start(offset))
                    .and_then(|_| reader.read_exact(&mut raw))
                    .map_err(|e| from_tiff(&path, &context, e.into()))?;
                self.buffer = decode_raw(&raw, self.info.sample_type, little_endian);
            }
        }
        let len = buffer_len(&self.buffer);
        if len != self.frame_len() {
            return Err(Error::format(
                path,
                format!(
                    "{context}: decoded {len} samples but a {}x{} frame has {}",
                    self.info.width,
                    self.info.height,
                    self.frame_len()
                ),
            ));
        }
        Ok(())
    }

    fn unexpected_buffer(&self) -> Error {
        Error::format(&self.info.path, format!("decoded samples are not {} as page 1 declares", self.info.sample_type))
    }
}

/// Reads the whole view as `frames * height * width` values (row-major, time first).
pub fn read_stack(path: &Path, options: &ReadOptions) -> Result<(StackInfo, Vec<f32>)> {
    let mut reader = StackReader::open(path, options)?;
    let frame_len = reader.frame_len();
    let total = frame_len.checked_mul(reader.info().frames).ok_or_else(|| {
        Error::Limits(format!("{}: the movie is too large to hold in memory at once", path.display()))
    })?;
    let mut data = crate::allocation::zeroed_f32(total, &format!("{} as 32-bit floats", path.display()))?;
    for (t, frame) in data.chunks_exact_mut(frame_len).enumerate() {
        reader.read_frame(t, frame)?;
    }
    Ok((reader.info().clone(), data))
}

fn buffer_len(buffer: &DecodingResult) -> usize {
    match buffer {
        DecodingResult::U8(v) => v.len(),
        DecodingResult::U16(v) => v.len(),
        DecodingResult::I16(v) => v.len(),
        DecodingResult::F32(v) => v.len(),
        DecodingResult::U32(v) => v.len(),
        DecodingResult::U64(v) => v.len(),
        DecodingResult::F16(v) => v.len(),
        DecodingResult::F64(v) => v.len(),
        DecodingResult::I8(v) => v.len(),
        DecodingResult::I32(v) => v.len(),
        DecodingResult::I64(v) => v.len(),
    }
}

fn check_finite(info: &StackInfo, t: usize, frame: &[f32]) -> Result<()> {
    match NonFinite::find(frame, info.width, info.height) {
        Some(bad) => Err(Error::format(&info.path, format!("{} ({} frames)", bad.input_message(t), info.frames))),
        None => Ok(()),
    }
}

/// The dimensions an ImageDescription states: ImageJ's `key=value` lines, or else OME-XML.
fn described_dimensions(
    path: &Path,
    description: Option<&str>,
) -> Result<(Option<ImageJMetadata>, Option<ome::OmeDimensions>)> {
    let imagej = match description.map(ImageJMetadata::parse_description) {
        Some(Err(message)) => return Err(Error::format(path, message)),
        Some(Ok(meta)) => meta,
        None => None,
    };
    let ome = match description.filter(|_| imagej.is_none()).map(ome::parse_ome) {
        Some(Err(message)) => return Err(Error::format(path, message)),
        Some(Ok(dimensions)) => dimensions,
        None => None,
    };
    Ok((imagej, ome))
}

/// The file's hyperstack metadata and page order, checked against its `pages`, with the TIFF
/// resolution tags as calibration where the description gave none.
fn file_metadata(
    path: &Path,
    imagej: Option<ImageJMetadata>,
    ome: Option<ome::OmeDimensions>,
    pages: usize,
    resolution: Option<(f64, f64, Option<&'static str>)>,
) -> Result<(ImageJMetadata, PageOrder)> {
    // OME's physical pixel sizes are the calibration; TIFF's resolution tags only stand in.
    let ome_calibrated = ome.as_ref().is_some_and(|o| o.metadata.calibration.unit != "pixel");
    let which = if ome.is_some() { "OME-XML" } else { "ImageJ" };
    let (mut metadata, order) = match (imagej, ome) {
        (Some(meta), _) => {
            let order = PageOrder::imagej(meta.channels, meta.slices);
            (meta, order)
        }
        (None, Some(ome)) => (ome.metadata, ome.order),
        (None, None) => (ImageJMetadata { frames: pages, ..ImageJMetadata::default() }, PageOrder::imagej(1, 1)),
    };
    if metadata.page_count() != pages {
        return Err(Error::format(
            path,
            format!(
                "the {which} description says channels={} slices={} frames={} ({} images) but the file has {pages} pages \
                 (an OME-TIFF split over several files must be opened in Fiji and saved as one); re-save it in Fiji",
                metadata.channels,
                metadata.slices,
                metadata.frames,
                metadata.page_count()
            ),
        ));
    }
    if let Some((x_per_unit, y_per_unit, unit)) = resolution.filter(|_| !ome_calibrated) {
        metadata.calibration.pixel_width = 1.0 / x_per_unit;
        metadata.calibration.pixel_height = 1.0 / y_per_unit;
        if metadata.calibration.unit == "pixel" {
            if let Some(unit) = unit {
                metadata.calibration.unit = unit.to_string();
            }
        }
    }

    Ok((metadata, order))
}
