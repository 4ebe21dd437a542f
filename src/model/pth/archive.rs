//! The zip side of a torch checkpoint: which folder holds the state dict, its byte order, and
//! reading one entry with its declared size checked (against a limit and against deflate's
//! largest possible ratio) before anything is allocated.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::{Error, Result};

/// Deflate cannot shrink data by more than about 1032:1; a larger claimed ratio is a zip bomb.
const MAX_DEFLATE_RATIO: u64 = 1100;

pub(super) type Archive = zip::ZipArchive<BufReader<File>>;

/// torch names the top folder after the file stem (`archive/` for older versions); data.pkl is
/// the only pickle at depth one.
pub(super) fn archive_prefix(path: &Path, archive: &Archive) -> Result<String> {
    let mut found: Vec<&str> =
        archive.file_names().filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1).collect();
    found.sort_unstable();
    match found.as_slice() {
        [one] => Ok(one[..one.len() - "data.pkl".len()].to_string()),
        [] => Err(Error::model(path, "is a zip archive but holds no <name>/data.pkl; not a torch checkpoint")),
        many => {
            Err(Error::model(path, format!("holds several pickles ({}); expected one state dict", many.join(", "))))
        }
    }
}

pub(super) fn check_byte_order(path: &Path, archive: &mut Archive, prefix: &str) -> Result<()> {
    let name = format!("{prefix}byteorder");
    if archive.index_for_name(&name).is_none() {
        return Ok(()); // written since torch 2.1; before that, always little-endian
    }
    let bytes = read_entry(path, archive, &name, 16)?;
    if String::from_utf8_lossy(&bytes).trim() != "little" {
        return Err(Error::unsupported(
            path,
            "stores big-endian tensors; only little-endian checkpoints are supported",
        ));
    }
    Ok(())
}

pub(super) fn read_entry(path: &Path, archive: &mut Archive, name: &str, limit: u64) -> Result<Vec<u8>> {
    let entry =
        archive.by_name(name).map_err(|e| Error::model(path, format!("cannot open archive entry {name}: {e}")))?;
    let declared = entry.size();
    if declared > limit {
        return Err(Error::model(
            path,
            format!("archive entry {name} claims {declared} bytes, more than the {limit} allowed"),
        ));
    }
    if entry.compression() != zip::CompressionMethod::Stored
        && declared > entry.compressed_size().saturating_mul(MAX_DEFLATE_RATIO)
    {
        return Err(Error::model(path, format!("archive entry {name} claims an impossible compression ratio")));
    }
    let mut bytes = Vec::with_capacity(declared as usize);
    entry
        .take(declared + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::model(path, format!("archive entry {name} is unreadable (truncated or corrupt): {e}")))?;
    if bytes.len() as u64 != declared {
        return Err(Error::model(
            path,
            format!(
                "archive entry {name} holds {} bytes but its header says {declared}; the file is corrupt",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}
