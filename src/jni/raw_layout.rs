//! Where the frames of a TIFF the engine wrote lie in the file, so Fiji can open it as a virtual
//! stack of raw planes (`FileInfoVirtualStack`): ImageJ's own TIFF reader does not read BigTIFF,
//! which long outputs are, but raw planes at known offsets open the same way in both.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use tiff::decoder::Decoder;
use tiff::tags::Tag;

use crate::{Error, Result};

/// Byte offset of frame 0's pixels, checked to be followed by every other frame back to back
/// (pages 0 and 1 checked; the writer lays all pages out alike).
pub fn contiguous_data_offset(path: &Path, frames: usize, frame_bytes: u64) -> Result<u64> {
    let odd = |what: String| Error::format(path, format!("{what}; cannot open it as a virtual stack"));
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut decoder = Decoder::new(BufReader::new(file)).map_err(|e| odd(format!("not a readable TIFF ({e})")))?;
    let page_extent = |decoder: &mut Decoder<BufReader<File>>| -> Result<(u64, u64)> {
        let offsets: Vec<u64> = decoder.find_tag_unsigned_vec(Tag::StripOffsets).ok().flatten().unwrap_or_default();
        let counts: Vec<u64> = decoder.find_tag_unsigned_vec(Tag::StripByteCounts).ok().flatten().unwrap_or_default();
        let (Some(&first), true) = (offsets.first(), offsets.len() == counts.len()) else {
            return Err(odd("a page has no strips".into()));
        };
        // Strips follow each other within the page.
        let mut end = first;
        for (&offset, &count) in offsets.iter().zip(&counts) {
            if offset != end {
                return Err(odd("a page's strips are not contiguous".into()));
            }
            end += count;
        }
        Ok((first, end - first))
    };
    let (first, bytes) = page_extent(&mut decoder)?;
    if bytes != frame_bytes {
        return Err(odd(format!("page 1 holds {bytes} bytes, not {frame_bytes}")));
    }
    if frames > 1 {
        decoder.next_image().map_err(|e| odd(format!("page 2 is unreadable ({e})")))?;
        let (second, _) = page_extent(&mut decoder)?;
        if second != first + frame_bytes {
            return Err(odd("its pages are not stored back to back".into()));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{ImageJMetadata, OutputKind, SampleType, StackWriter};

    /// Classic and BigTIFF outputs: the offset found is where frame t's samples really are.
    #[test]
    fn offsets_point_at_each_frame_in_classic_and_big_tiff() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [OutputKind::Classic, OutputKind::Big] {
            let path = dir.path().join(format!("{kind:?}.tif"));
            let (w, h, frames) = (5, 3, 4);
            let meta = ImageJMetadata { frames, ..Default::default() };
            let mut writer = StackWriter::create(&path, w, h, frames, SampleType::U16, &meta, kind).unwrap();
            for t in 0..frames {
                let frame: Vec<f32> = (0..w * h).map(|i| (1000 * t + i) as f32).collect();
                writer.write_frame(&frame).unwrap();
            }
            writer.finish().unwrap();
            let frame_bytes = (w * h * 2) as u64;
            let offset = contiguous_data_offset(&path, frames, frame_bytes).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            for t in 0..frames {
                let at = (offset + t as u64 * frame_bytes) as usize;
                for i in 0..w * h {
                    let v = u16::from_le_bytes([bytes[at + 2 * i], bytes[at + 2 * i + 1]]);
                    assert_eq!(v as usize, 1000 * t + i, "{kind:?} frame {t} sample {i}");
                }
            }
            assert!(contiguous_data_offset(&path, frames, frame_bytes + 2).is_err());
        }
    }
}
