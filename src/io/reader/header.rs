//! The first bytes of a TIFF: byte order, classic or BigTIFF, and a first page directory that
//! lies inside the file, checked before the decoder is trusted with it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// What the first bytes of the file say: byte order and classic/BigTIFF.
pub(super) struct Header {
    pub(super) little_endian: bool,
    pub(super) bigtiff: bool,
}

pub(super) fn read_header(path: &Path, file: &mut File, file_len: u64) -> Result<Header> {
    let mut bytes = [0u8; 16];
    let n = (file_len.min(16)) as usize;
    file.read_exact(&mut bytes[..n]).map_err(|e| Error::io(path, e))?;
    let not_tiff = || Error::format(path, "not a TIFF file (it does not start with a TIFF header)");
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
        return Err(Error::format(path, "the file ends inside the TIFF header; it is truncated or empty"));
    }
    let (bigtiff, first_ifd) = match u16_at(2) {
        42 => {
            let b = [bytes[4], bytes[5], bytes[6], bytes[7]];
            (false, u64::from(if little_endian { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }))
        }
        43 if n == 16 => {
            let b: [u8; 8] = bytes[8..16].try_into().expect("8 bytes");
            (true, if little_endian { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) })
        }
        43 => return Err(Error::format(path, "the file ends inside the BigTIFF header; it is truncated")),
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
    Ok(Header { little_endian, bigtiff })
}
