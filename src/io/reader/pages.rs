//! What each page must be for us to read it: one grayscale sample of a type we denoise, a
//! compression the decoder knows, a frame of bounded size, pixel data inside the file; and the
//! page tags the reader keeps (ImageJ description, resolution).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use tiff::decoder::{ifd::Value, ChunkType, Decoder};
use tiff::tags::Tag;

use crate::error::{Error, Result};
use crate::io::sample::SampleType;
use crate::io::tiff_errors::from_tiff;

/// Pixel geometry and type of one page, compared across pages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PageShape {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) sample_type: SampleType,
}

/// Size and sample type of the current page, refusing what we cannot denoise with a hint.
pub(super) fn page_shape(path: &Path, decoder: &mut Decoder<BufReader<File>>, index: usize) -> Result<PageShape> {
    let page = format!("page {}", index + 1);
    let tiff = |e| from_tiff(path, &page, e);
    let (width, height) = decoder.dimensions().map_err(tiff)?;
    if width == 0 || height == 0 {
        return Err(Error::format(path, format!("{page} is {width}x{height} pixels; an image needs at least 1x1")));
    }
    let samples: u64 = decoder.find_tag_unsigned(Tag::SamplesPerPixel).map_err(tiff)?.unwrap_or(1);
    let photometric: Option<u64> = decoder.find_tag_unsigned(Tag::PhotometricInterpretation).map_err(tiff)?;
    let bits: Vec<u64> = decoder.find_tag_unsigned_vec(Tag::BitsPerSample).map_err(tiff)?.unwrap_or_else(|| vec![1]);
    let format: Vec<u64> = decoder.find_tag_unsigned_vec(Tag::SampleFormat).map_err(tiff)?.unwrap_or_else(|| vec![1]);
    let compression: u64 = decoder.find_tag_unsigned(Tag::Compression).map_err(tiff)?.unwrap_or(1);

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
        (64, 3) => {
            return unsupported("samples are 64-bit float; convert to 32-bit (Image > Type > 32-bit) in Fiji".into())
        }
        (16, 3) => {
            return unsupported("samples are 16-bit float; convert to 32-bit float (Image > Type > 32-bit)".into())
        }
        (32 | 64, 1 | 2) => {
            return unsupported(format!(
                "samples are {bits}-bit integers; convert to 32-bit float (Image > Type > 32-bit) or 16-bit in Fiji"
            ))
        }
        (8, 2) => {
            return unsupported("samples are 8-bit signed; convert to 16-bit (Image > Type > 16-bit) in Fiji".into())
        }
        (1, _) => {
            return unsupported("the image is 1-bit (binary); convert to 8-bit (Image > Type > 8-bit) in Fiji".into())
        }
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
    Ok(PageShape { width: width as usize, height: height as usize, sample_type })
}

/// One frame is decoded whole; beyond this a (possibly hostile) header is refused, not allocated.
const MAX_FRAME_BYTES: u64 = 1 << 32;

pub(super) fn frame_bytes(path: &Path, shape: &PageShape) -> Result<u64> {
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

pub(super) fn image_description(decoder: &mut Decoder<BufReader<File>>) -> Option<String> {
    // A description that is not valid text is no ImageJ description: ignore it.
    match decoder.find_tag(Tag::ImageDescription) {
        Ok(Some(Value::Ascii(text))) => Some(text),
        _ => None,
    }
}

/// Pixels per unit along x and y, and the unit named by ResolutionUnit (inch or cm), if present.
pub(super) fn resolution(decoder: &mut Decoder<BufReader<File>>) -> Option<(f64, f64, Option<&'static str>)> {
    let rational = |value: Option<Value>| match value {
        Some(Value::Rational(n, d)) if n > 0 && d > 0 => Some(f64::from(n) / f64::from(d)),
        _ => None,
    };
    let x = rational(decoder.find_tag(Tag::XResolution).ok().flatten())?;
    let y = rational(decoder.find_tag(Tag::YResolution).ok().flatten()).unwrap_or(x);
    let unit = match decoder.find_tag_unsigned::<u64>(Tag::ResolutionUnit).ok().flatten() {
        Some(2) => Some("inch"),
        Some(3) => Some("cm"),
        _ => None,
    };
    Some((x, y, unit))
}

/// (offset, byte count) of every strip or tile of the current page.
pub(super) fn chunk_extents(
    path: &Path,
    decoder: &mut Decoder<BufReader<File>>,
    index: usize,
) -> Result<Vec<(u64, u64)>> {
    let (offsets_tag, counts_tag) = match decoder.get_chunk_type() {
        ChunkType::Strip => (Tag::StripOffsets, Tag::StripByteCounts),
        ChunkType::Tile => (Tag::TileOffsets, Tag::TileByteCounts),
    };
    let page = format!("page {}", index + 1);
    let offsets: Vec<u64> =
        decoder.find_tag_unsigned_vec(offsets_tag).map_err(|e| from_tiff(path, &page, e))?.unwrap_or_default();
    let counts: Vec<u64> =
        decoder.find_tag_unsigned_vec(counts_tag).map_err(|e| from_tiff(path, &page, e))?.unwrap_or_default();
    Ok(offsets.into_iter().zip(counts).collect())
}

pub(super) fn check_chunks_inside(path: &Path, context: &str, chunks: &[(u64, u64)], file_len: u64) -> Result<()> {
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
