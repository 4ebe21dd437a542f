//! ImageJ's layout for stacks over 4 GB: a single page whose description announces `images=N`,
//! with all N images stored uncompressed back to back from that page's one strip. Where such a
//! run starts, and how a frame of it is decoded without the TIFF decoder.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;

use crate::error::{Error, Result};
use crate::io::sample::SampleType;

/// Where frame pixels live.
pub(super) enum Storage {
    /// One TIFF page per image (the normal case).
    Pages,
    /// ImageJ's layout for stacks over 4 GB: one IFD, and all images stored back to back after
    /// its single strip (`images=N` in the description says how many).
    Contiguous { first_offset: u64, little_endian: bool },
}

/// Start of ImageJ's back-to-back image data: the single page must be uncompressed and stored in
/// one contiguous run of strips holding exactly one frame.
pub(super) fn contiguous_start(
    path: &Path,
    decoder: &mut Decoder<BufReader<File>>,
    chunks: &[(u64, u64)],
    frame_bytes: u64,
) -> Result<u64> {
    let compression: u64 = decoder.find_tag_unsigned(Tag::Compression).ok().flatten().unwrap_or(1);
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

pub(super) fn decode_raw(raw: &[u8], sample_type: SampleType, little_endian: bool) -> DecodingResult {
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
