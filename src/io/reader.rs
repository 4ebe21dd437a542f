//! Reading a grayscale TIFF movie one frame at a time. `open` walks the page chain once (checking
//! that every page has the same size and sample type and lies inside the file) and the decoder
//! caches each page's offset, so `read_frame(t)` seeks straight to its page and decodes nothing
//! else: a 50,000-frame movie never has to fit in memory.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tiff::decoder::{ifd::Value, ChunkType, Decoder, DecodingResult, Limits};
use tiff::tags::Tag;

use super::imagej::ImageJMetadata;
use super::sample::{FrameData, SampleType};
use super::tiff_errors::from_tiff;
use crate::error::{Error, Result};

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

/// Which part of a hyperstack to read. Indices are 0-based.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Required when the file has more than one channel.
    pub channel: Option<usize>,
    /// Required when the file has both several slices and several frames.
    pub slice: Option<usize>,
}

/// Where frame pixels live.
enum Storage {
    /// One TIFF page per image (the normal case).
    Pages,
    /// ImageJ's layout for stacks over 4 GB: one IFD, and all images stored back to back after
    /// its single strip (`images=N` in the description says how many).
    Contiguous {
        first_offset: u64,
        little_endian: bool,
    },
}

/// Maps a time index of the view onto a page (pages are XYCZT: channel fastest).
#[derive(Debug, Clone, Copy)]
struct PageMap {
    channels: usize,
    slices: usize,
    channel: usize,
    slice: usize,
    /// True when time runs along frames, false when along slices (plain stacks).
    time_on_frames: bool,
}

impl PageMap {
    fn page(&self, t: usize) -> usize {
        let (z, frame) = if self.time_on_frames {
            (self.slice, t)
        } else {
            (t, 0)
        };
        self.channel + self.channels * (z + self.slices * frame)
    }
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
        f.debug_struct("StackReader")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What the first bytes of the file say: byte order and classic/BigTIFF.
struct Header {
    little_endian: bool,
    bigtiff: bool,
}

/// Pixel geometry and type of one page, compared across pages.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PageShape {
    width: usize,
    height: usize,
    sample_type: SampleType,
}

impl StackReader {
    pub fn open(path: &Path, options: &ReadOptions) -> Result<StackReader> {
        let mut file = super::open_regular_file(path)?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let header = read_header(path, &mut file, file_len)?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(path, e))?;

        let mut decoder =
            Decoder::new(BufReader::new(file)).map_err(|e| from_tiff(path, "page 1", e))?;
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
        let imagej = match description
            .as_deref()
            .map(ImageJMetadata::parse_description)
        {
            Some(Err(message)) => return Err(Error::format(path, message)),
            Some(Ok(meta)) => meta,
            None => None,
        };
        let resolution = resolution(&mut decoder);

        let first_chunks = chunk_extents(path, &mut decoder, 0)?;
        let mut pages = 1usize;
        while decoder.more_images() {
            let context = format!("page {}", pages + 1);
            decoder
                .next_image()
                .map_err(|e| from_tiff(path, &context, e))?;
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
            check_chunks_inside(
                path,
                &context,
                &chunk_extents(path, &mut decoder, pages)?,
                file_len,
            )?;
            pages += 1;
        }

        let storage = match &imagej {
            Some(meta) if pages == 1 && meta.page_count() > 1 => {
                let first_offset =
                    contiguous_start(path, &mut decoder, &first_chunks, frame_bytes)?;
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
                Storage::Contiguous {
                    first_offset,
                    little_endian: header.little_endian,
                }
            }
            _ => {
                check_chunks_inside(path, "page 1", &first_chunks, file_len)?;
                Storage::Pages
            }
        };

        let mut metadata = imagej.unwrap_or_else(|| ImageJMetadata {
            frames: pages,
            ..ImageJMetadata::default()
        });
        if metadata.page_count() != pages {
            return Err(Error::format(
                path,
                format!(
                    "the ImageJ description says channels={} slices={} frames={} ({} images) but the file has {pages} pages; \
                     re-save it in Fiji",
                    metadata.channels,
                    metadata.slices,
                    metadata.frames,
                    metadata.page_count()
                ),
            ));
        }
        if let Some((x_per_unit, y_per_unit, unit)) = resolution {
            metadata.calibration.pixel_width = 1.0 / x_per_unit;
            metadata.calibration.pixel_height = 1.0 / y_per_unit;
            if metadata.calibration.unit == "pixel" {
                if let Some(unit) = unit {
                    metadata.calibration.unit = unit.to_string();
                }
            }
        }

        let map = choose_view(path, &metadata, options)?;
        let frames = if map.time_on_frames {
            metadata.frames
        } else {
            metadata.slices
        };
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
        Ok(StackReader {
            info,
            decoder,
            storage,
            map,
            buffer: DecodingResult::U8(Vec::new()),
        })
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
                self.decoder
                    .seek_to_image(page)
                    .map_err(|e| from_tiff(&path, &context, e))?;
                self.decoder
                    .read_image_to_buffer(&mut self.buffer)
                    .map_err(|e| from_tiff(&path, &context, e))?;
            }
            Storage::Contiguous {
                first_offset,
                little_endian,
            } => {
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
        Error::format(
            &self.info.path,
            format!(
                "decoded samples are not {} as page 1 declares",
                self.info.sample_type
            ),
        )
    }
}

/// Reads the whole view as `frames * height * width` values (row-major, time first).
pub fn read_stack(path: &Path, options: &ReadOptions) -> Result<(StackInfo, Vec<f32>)> {
    let mut reader = StackReader::open(path, options)?;
    let frame_len = reader.frame_len();
    let total = frame_len.checked_mul(reader.info().frames).ok_or_else(|| {
        Error::Limits(format!(
            "{}: the movie is too large to hold in memory at once",
            path.display()
        ))
    })?;
    let mut data = crate::allocation::zeroed_f32(total, &format!("{} as 32-bit floats", path.display()))?;
    for (t, frame) in data.chunks_exact_mut(frame_len).enumerate() {
        reader.read_frame(t, frame)?;
    }
    Ok((reader.info().clone(), data))
}

fn read_header(path: &Path, file: &mut File, file_len: u64) -> Result<Header> {
    let mut bytes = [0u8; 16];
    let n = (file_len.min(16)) as usize;
    file.read_exact(&mut bytes[..n])
        .map_err(|e| Error::io(path, e))?;
    let not_tiff = || {
        Error::format(
            path,
            "not a TIFF file (it does not start with a TIFF header)",
        )
    };
    let little_endian = match &bytes[..2.min(n)] {
        b"II" => true,
        b"MM" => false,
        _ => return Err(not_tiff()),
    };
    let u16_at = |i: usize| {
        let b = [bytes[i], bytes[i + 1]];
        if little_endian {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    if n < 8 {
        return Err(Error::format(
            path,
            "the file ends inside the TIFF header; it is truncated or empty",
        ));
    }
    let (bigtiff, first_ifd) = match u16_at(2) {
        42 => {
            let b = [bytes[4], bytes[5], bytes[6], bytes[7]];
            (
                false,
                u64::from(if little_endian {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b)
                }),
            )
        }
        43 if n == 16 => {
            let b: [u8; 8] = bytes[8..16].try_into().expect("8 bytes");
            (
                true,
                if little_endian {
                    u64::from_le_bytes(b)
                } else {
                    u64::from_be_bytes(b)
                },
            )
        }
        43 => {
            return Err(Error::format(
                path,
                "the file ends inside the BigTIFF header; it is truncated",
            ))
        }
        _ => return Err(not_tiff()),
    };
    if first_ifd == 0 {
        return Err(Error::format(path, "the TIFF holds no images (zero pages)"));
    }
    if first_ifd >= file_len {
        return Err(Error::format(
            path,
            format!("the first page directory is at byte {first_ifd} but the file has only {file_len} bytes; it is truncated"),
        ));
    }
    Ok(Header {
        little_endian,
        bigtiff,
    })
}

/// Size and sample type of the current page, refusing what we cannot denoise with a hint.
fn page_shape(
    path: &Path,
    decoder: &mut Decoder<BufReader<File>>,
    index: usize,
) -> Result<PageShape> {
    let page = format!("page {}", index + 1);
    let tiff = |e| from_tiff(path, &page, e);
    let (width, height) = decoder.dimensions().map_err(tiff)?;
    if width == 0 || height == 0 {
        return Err(Error::format(
            path,
            format!("{page} is {width}x{height} pixels; an image needs at least 1x1"),
        ));
    }
    let samples: u64 = decoder
        .find_tag_unsigned(Tag::SamplesPerPixel)
        .map_err(tiff)?
        .unwrap_or(1);
    let photometric: Option<u64> = decoder
        .find_tag_unsigned(Tag::PhotometricInterpretation)
        .map_err(tiff)?;
    let bits: Vec<u64> = decoder
        .find_tag_unsigned_vec(Tag::BitsPerSample)
        .map_err(tiff)?
        .unwrap_or_else(|| vec![1]);
    let format: Vec<u64> = decoder
        .find_tag_unsigned_vec(Tag::SampleFormat)
        .map_err(tiff)?
        .unwrap_or_else(|| vec![1]);
    let compression: u64 = decoder
        .find_tag_unsigned(Tag::Compression)
        .map_err(tiff)?
        .unwrap_or(1);

    let unsupported = |message: String| Err(Error::unsupported(path, format!("{page}: {message}")));
    if samples != 1 {
        let kind = match (photometric, samples) {
            (Some(2), 3) => "RGB".to_string(),
            (Some(2), 4) => "RGBA".to_string(),
            (Some(5), _) => "CMYK".to_string(),
            (Some(6), _) => "YCbCr color".to_string(),
            _ => "multi-sample".to_string(),
        };
        return unsupported(format!(
            "the image is {kind} ({samples} samples per pixel); convert to grayscale (Image > Type > 16-bit) \
             or split channels (Image > Color > Split Channels) in Fiji and denoise each one"
        ));
    }
    if photometric == Some(3) {
        return unsupported(
            "the image is indexed color (palette); convert to grayscale (Image > Type > 8-bit) in Fiji".to_string(),
        );
    }
    let bits = bits.first().copied().unwrap_or(1);
    let format = format.first().copied().unwrap_or(1);
    let sample_type = match (bits, format) {
        (8, 1) => SampleType::U8,
        (16, 1) => SampleType::U16,
        (16, 2) => SampleType::I16,
        (32, 3) => SampleType::F32,
        (64, 3) => return unsupported("samples are 64-bit float; convert to 32-bit (Image > Type > 32-bit) in Fiji".into()),
        (16, 3) => return unsupported("samples are 16-bit float; convert to 32-bit float (Image > Type > 32-bit)".into()),
        (32 | 64, 1 | 2) => {
            return unsupported(format!(
                "samples are {bits}-bit integers; convert to 32-bit float (Image > Type > 32-bit) or 16-bit in Fiji"
            ))
        }
        (8, 2) => return unsupported("samples are 8-bit signed; convert to 16-bit (Image > Type > 16-bit) in Fiji".into()),
        (1, _) => return unsupported("the image is 1-bit (binary); convert to 8-bit (Image > Type > 8-bit) in Fiji".into()),
        _ => {
            return unsupported(format!(
                "samples are {bits}-bit (sample format {format}); only 8-bit, 16-bit and 32-bit float grayscale are \
                 supported; convert with Image > Type in Fiji"
            ))
        }
    };
    // 1 none, 5 LZW, 7 JPEG, 8/32946 Deflate, 32773 PackBits: what the tiff crate decodes.
    if ![1, 5, 7, 8, 32946, 32773].contains(&compression) {
        return unsupported(format!(
            "compression method {compression} is not supported; re-save the file uncompressed (File > Save As > Tiff in Fiji) \
             or with LZW, Deflate or PackBits"
        ));
    }
    Ok(PageShape {
        width: width as usize,
        height: height as usize,
        sample_type,
    })
}

/// One frame is decoded whole; beyond this a (possibly hostile) header is refused, not allocated.
const MAX_FRAME_BYTES: u64 = 1 << 32;

fn frame_bytes(path: &Path, shape: &PageShape) -> Result<u64> {
    (shape.width as u64)
        .checked_mul(shape.height as u64)
        .and_then(|n| n.checked_mul(shape.sample_type.bytes() as u64))
        .filter(|&n| n <= MAX_FRAME_BYTES && usize::try_from(n).is_ok())
        .ok_or_else(|| {
            Error::Limits(format!(
                "{}: a {}x{} {} frame exceeds the 4 GiB per-frame limit; crop or bin the movie first",
                path.display(),
                shape.width,
                shape.height,
                shape.sample_type
            ))
        })
}

fn image_description(decoder: &mut Decoder<BufReader<File>>) -> Option<String> {
    // A description that is not valid text is no ImageJ description: ignore it.
    match decoder.find_tag(Tag::ImageDescription) {
        Ok(Some(Value::Ascii(text))) => Some(text),
        _ => None,
    }
}

/// Pixels per unit along x and y, and the unit named by ResolutionUnit (inch or cm), if present.
fn resolution(decoder: &mut Decoder<BufReader<File>>) -> Option<(f64, f64, Option<&'static str>)> {
    let rational = |value: Option<Value>| match value {
        Some(Value::Rational(n, d)) if n > 0 && d > 0 => Some(f64::from(n) / f64::from(d)),
        _ => None,
    };
    let x = rational(decoder.find_tag(Tag::XResolution).ok().flatten())?;
    let y = rational(decoder.find_tag(Tag::YResolution).ok().flatten()).unwrap_or(x);
    let unit = match decoder
        .find_tag_unsigned::<u64>(Tag::ResolutionUnit)
        .ok()
        .flatten()
    {
        Some(2) => Some("inch"),
        Some(3) => Some("cm"),
        _ => None,
    };
    Some((x, y, unit))
}

/// (offset, byte count) of every strip or tile of the current page.
fn chunk_extents(
    path: &Path,
    decoder: &mut Decoder<BufReader<File>>,
    index: usize,
) -> Result<Vec<(u64, u64)>> {
    let (offsets_tag, counts_tag) = match decoder.get_chunk_type() {
        ChunkType::Strip => (Tag::StripOffsets, Tag::StripByteCounts),
        ChunkType::Tile => (Tag::TileOffsets, Tag::TileByteCounts),
    };
    let page = format!("page {}", index + 1);
    let offsets: Vec<u64> = decoder
        .find_tag_unsigned_vec(offsets_tag)
        .map_err(|e| from_tiff(path, &page, e))?
        .unwrap_or_default();
    let counts: Vec<u64> = decoder
        .find_tag_unsigned_vec(counts_tag)
        .map_err(|e| from_tiff(path, &page, e))?
        .unwrap_or_default();
    Ok(offsets.into_iter().zip(counts).collect())
}

fn check_chunks_inside(
    path: &Path,
    context: &str,
    chunks: &[(u64, u64)],
    file_len: u64,
) -> Result<()> {
    for &(offset, count) in chunks {
        let end = offset.saturating_add(count);
        if end > file_len {
            return Err(Error::format(
                path,
                format!(
                    "{context}: its pixel data ends at byte {end} but the file has only {file_len} bytes; \
                     the file is truncated (was a copy or save interrupted?)"
                ),
            ));
        }
    }
    Ok(())
}

/// Start of ImageJ's back-to-back image data: the single page must be uncompressed and stored in
/// one contiguous run of strips holding exactly one frame.
fn contiguous_start(
    path: &Path,
    decoder: &mut Decoder<BufReader<File>>,
    chunks: &[(u64, u64)],
    frame_bytes: u64,
) -> Result<u64> {
    let compression: u64 = decoder
        .find_tag_unsigned(Tag::Compression)
        .ok()
        .flatten()
        .unwrap_or(1);
    let contiguous = chunks.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0);
    let total: u64 = chunks.iter().map(|c| c.1).sum();
    match chunks.first() {
        Some(&(first, _)) if compression == 1 && contiguous && total == frame_bytes => Ok(first),
        _ => Err(Error::format(
            path,
            "the ImageJ description announces several images but the file has only one page, and that page is not \
             stored the way ImageJ stores large stacks; re-save it in Fiji",
        )),
    }
}

/// Checks the channel/slice choice against the file's dimensions and builds the page map.
fn choose_view(path: &Path, meta: &ImageJMetadata, options: &ReadOptions) -> Result<PageMap> {
    let (channels, slices, frames) = (meta.channels, meta.slices, meta.frames);
    let channel = match options.channel {
        None if channels > 1 => {
            return Err(Error::unsupported(
                path,
                format!(
                    "the file has {channels} channels; choose the channel to denoise \
                     (0 for the first, up to {}) or split the channels first (in Fiji: Image > Color > Split Channels)",
                    channels - 1
                ),
            ))
        }
        None => 0,
        Some(c) if c >= channels => {
            return Err(Error::usage(format!(
                "{}: channel {c} does not exist; the file has {channels} channel(s), numbered 0 to {}",
                path.display(),
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
                     (0 for the first, up to {})",
                    slices - 1
                ),
            ))
        }
        None => 0,
        Some(z) if z >= slices => {
            return Err(Error::usage(format!(
                "{}: slice {z} does not exist; the file has {slices} slice(s), numbered 0 to {}",
                path.display(),
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
    Ok(PageMap {
        channels,
        slices,
        channel,
        slice,
        time_on_frames,
    })
}

/// Metadata describing the single-channel movie the view yields.
fn view_metadata(meta: &ImageJMetadata, time_on_frames: bool) -> ImageJMetadata {
    let mut view = meta.clone();
    view.channels = 1;
    if time_on_frames {
        view.slices = 1;
    } else {
        view.frames = 1;
    }
    if meta.channels > 1 {
        // Composite display settings describe the channels we dropped.
        view.extra
            .retain(|(key, _)| key != "mode" && key != "ranges");
    }
    view
}

fn decode_raw(raw: &[u8], sample_type: SampleType, little_endian: bool) -> DecodingResult {
    macro_rules! convert {
        ($t:ty, $n:expr) => {
            raw.chunks_exact($n)
                .map(|c| {
                    let b: [u8; $n] = c.try_into().expect("chunk size");
                    if little_endian {
                        <$t>::from_le_bytes(b)
                    } else {
                        <$t>::from_be_bytes(b)
                    }
                })
                .collect()
        };
    }
    match sample_type {
        SampleType::U8 => DecodingResult::U8(raw.to_vec()),
        SampleType::U16 => DecodingResult::U16(convert!(u16, 2)),
        SampleType::I16 => DecodingResult::I16(convert!(i16, 2)),
        SampleType::F32 => DecodingResult::F32(convert!(f32, 4)),
    }
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
    if let Some(i) = frame.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(
            &info.path,
            format!(
                "frame {t} (counting from 0, of {}), pixel x={} y={} is {}; neither training nor denoising can use \
                 non-finite values: replace them first (in Fiji: Process > Math > Remove NaNs, or set them to a number)",
                info.frames,
                i % info.width,
                i / info.width,
                frame[i]
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_channel_fastest_then_slice_then_frame() {
        let map = PageMap {
            channels: 2,
            slices: 3,
            channel: 1,
            slice: 2,
            time_on_frames: true,
        };
        assert_eq!(map.page(0), 1 + 2 * 2);
        assert_eq!(map.page(4), 1 + 2 * (2 + 3 * 4));
        let plain = PageMap {
            channels: 2,
            slices: 5,
            channel: 0,
            slice: 0,
            time_on_frames: false,
        };
        assert_eq!(plain.page(3), 2 * 3);
    }
}
