//! The byte layout of the TIFFs we write, which is ImageJ's: header, then every frame's pixels back
//! to back (uncompressed, one strip per page), then the description and all page directories at
//! the end. ImageJ reads only the first directory of a file whose description says `images=N` and
//! takes the N images as contiguous from there, so any gap between frames (as the `tiff` crate's
//! encoder leaves, with a directory after each page) would make Fiji show garbage. Other readers
//! walk the directories, which are all present and correct.

use std::io::{self, Write};

use super::sample::SampleType;

const SHORT: u16 = 3;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;
const ASCII: u16 = 2;
const LONG8: u16 = 16;

/// Everything the directories describe.
pub(crate) struct Layout<'a> {
    pub big: bool,
    pub width: u32,
    pub height: u32,
    pub sample_type: SampleType,
    pub pages: u64,
    /// Offset of the first frame's pixels (just after the header).
    pub data_start: u64,
    /// ImageJ description, written on the first page only (where ImageJ looks for it).
    pub description: &'a str,
    pub x_resolution: (u32, u32),
    pub y_resolution: (u32, u32),
    pub resolution_unit: u16,
}

/// The file header with a zero first-directory offset, patched by `finish` once known.
pub(crate) fn header(big: bool) -> Vec<u8> {
    if big {
        let mut h = b"II\x2b\x00\x08\x00\x00\x00".to_vec();
        h.extend(0u64.to_le_bytes());
        h
    } else {
        b"II\x2a\x00\x00\x00\x00\x00".to_vec()
    }
}

/// Where in the header the first-directory offset lives.
pub(crate) fn first_ifd_field(big: bool) -> u64 {
    if big {
        8
    } else {
        4
    }
}

/// One directory entry before encoding.
enum Value {
    Short(u16),
    /// LONG in classic TIFF, LONG8 in BigTIFF (offsets and byte counts).
    Offset(u64),
    Long(u32),
    /// Data stored elsewhere in the file: type, count, where.
    Elsewhere(u16, u64, u64),
    Rational(u32, u32),
}

impl Layout<'_> {
    fn frame_bytes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * self.sample_type.bytes() as u64
    }

    fn entry_size(&self) -> u64 {
        if self.big {
            20
        } else {
            12
        }
    }

    fn ifd_size(&self, entries: u64) -> u64 {
        if self.big {
            8 + 20 * entries + 8
        } else {
            2 + 12 * entries + 4
        }
    }

    /// Writes the description, the resolution values and every page directory, starting at file
    /// offset `start` (just after the last frame). Returns the offset of the first directory.
    pub(crate) fn write_directories<W: Write>(&self, out: &mut W, start: u64) -> io::Result<u64> {
        let mut pos = start;
        let put = |out: &mut W, bytes: &[u8], pos: &mut u64| -> io::Result<()> {
            out.write_all(bytes)?;
            *pos += bytes.len() as u64;
            Ok(())
        };
        // Directories must start on a word boundary.
        if pos % 2 == 1 {
            put(out, &[0], &mut pos)?;
        }
        let description_at = pos;
        let mut description = self.description.as_bytes().to_vec();
        description.push(0);
        put(out, &description, &mut pos)?;
        if pos % 2 == 1 {
            put(out, &[0], &mut pos)?;
        }
        // Classic TIFF cannot hold a RATIONAL inside an entry; store both once, shared by all pages.
        let rationals_at = pos;
        if !self.big {
            for (n, d) in [self.x_resolution, self.y_resolution] {
                put(out, &n.to_le_bytes(), &mut pos)?;
                put(out, &d.to_le_bytes(), &mut pos)?;
            }
        }

        let first_ifd = pos;
        let first_size = self.ifd_size(self.entries(0, 0, 0, 0).len() as u64);
        let rest_size = self.ifd_size(self.entries(1, 0, 0, 0).len() as u64);
        for page in 0..self.pages {
            let next = if page + 1 == self.pages { 0 } else { first_ifd + first_size + page * rest_size };
            let entries = self.entries(page, description_at, description.len() as u64, rationals_at);
            let mut bytes = Vec::with_capacity((2 + entries.len() as u64 * self.entry_size() + 8) as usize);
            if self.big {
                bytes.extend((entries.len() as u64).to_le_bytes());
            } else {
                bytes.extend((entries.len() as u16).to_le_bytes());
            }
            for (tag, value) in entries {
                self.encode_entry(&mut bytes, tag, value)?;
            }
            if self.big {
                bytes.extend(next.to_le_bytes());
            } else {
                bytes.extend(classic_offset(next)?.to_le_bytes());
            }
            put(out, &bytes, &mut pos)?;
        }
        Ok(first_ifd)
    }

    /// The entries of page `page`, sorted by tag as TIFF requires.
    fn entries(&self, page: u64, description_at: u64, description_len: u64, rationals_at: u64) -> Vec<(u16, Value)> {
        let (bits, format) = match self.sample_type {
            SampleType::U8 => (8, 1),
            SampleType::U16 => (16, 1),
            SampleType::I16 => (16, 2),
            SampleType::F32 => (32, 3),
        };
        let resolution = |which: u64, value: (u32, u32)| {
            if self.big {
                Value::Rational(value.0, value.1)
            } else {
                Value::Elsewhere(RATIONAL, 1, rationals_at + 8 * which)
            }
        };
        let mut entries = vec![
            (256, Value::Long(self.width)),
            (257, Value::Long(self.height)),
            (258, Value::Short(bits)),
            (259, Value::Short(1)), // no compression
            (262, Value::Short(1)), // BlackIsZero
        ];
        if page == 0 {
            entries.push((270, Value::Elsewhere(ASCII, description_len, description_at)));
        }
        entries.extend([
            (273, Value::Offset(self.data_start + page * self.frame_bytes())),
            (277, Value::Short(1)),
            (278, Value::Long(self.height)),
            (279, Value::Offset(self.frame_bytes())),
            (282, resolution(0, self.x_resolution)),
            (283, resolution(1, self.y_resolution)),
            (296, Value::Short(self.resolution_unit)),
            (339, Value::Short(format)),
        ]);
        entries
    }

    fn encode_entry(&self, bytes: &mut Vec<u8>, tag: u16, value: Value) -> io::Result<()> {
        let (kind, count, mut field): (u16, u64, Vec<u8>) = match value {
            Value::Short(v) => (SHORT, 1, v.to_le_bytes().to_vec()),
            Value::Long(v) => (LONG, 1, v.to_le_bytes().to_vec()),
            Value::Offset(v) if self.big => (LONG8, 1, v.to_le_bytes().to_vec()),
            Value::Offset(v) => (LONG, 1, classic_offset(v)?.to_le_bytes().to_vec()),
            Value::Elsewhere(kind, count, at) if self.big => (kind, count, at.to_le_bytes().to_vec()),
            Value::Elsewhere(kind, count, at) => (kind, count, classic_offset(at)?.to_le_bytes().to_vec()),
            Value::Rational(n, d) => (RATIONAL, 1, [n.to_le_bytes(), d.to_le_bytes()].concat()),
        };
        bytes.extend(tag.to_le_bytes());
        bytes.extend(kind.to_le_bytes());
        if self.big {
            bytes.extend(count.to_le_bytes());
            field.resize(8, 0);
        } else {
            bytes.extend(classic_offset(count)?.to_le_bytes());
            field.resize(4, 0);
        }
        bytes.extend(field);
        Ok(())
    }
}

fn classic_offset(value: u64) -> io::Result<u32> {
    u32::try_from(value).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the file grew past 4 GB, the classic TIFF limit; write BigTIFF instead",
        )
    })
}
