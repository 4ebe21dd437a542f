//! Choosing input files and checking an output path before any work starts. Inputs are
//! recognised by their first bytes, not their names: a stray text file in a data folder (the
//! original DeepCAD crashed on one) is skipped with a warning instead of failing the run.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file or a Zarr array gives `[path]`; a folder gives its TIFF files (by magic bytes, not
/// recursive) and Zarr arrays sorted by name, plus one warning per entry skipped. Hidden entries
/// (starting with '.') are ignored silently: they include our own unfinished `.partial` outputs.
pub fn list_movie_inputs(path: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() || super::movie_format::has_zarr_metadata(path) {
        return Ok((vec![path.to_path_buf()], Vec::new()));
    }
    let mut entries: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        entries.push(entry.path());
    }
    entries.sort();

    let mut inputs = Vec::new();
    let mut warnings = Vec::new();
    for entry in entries {
        if super::movie_format::has_zarr_metadata(&entry) {
            inputs.push(entry);
            continue;
        }
        if entry.is_dir() {
            warnings.push(format!("{}: skipped (a folder; subfolders are not searched)", entry.display()));
            continue;
        }
        match has_tiff_magic(&entry) {
            Ok(true) => inputs.push(entry),
            Ok(false) => {
                let named_tiff = entry
                    .extension()
                    .map(|e| e.eq_ignore_ascii_case("tif") || e.eq_ignore_ascii_case("tiff"))
                    .unwrap_or(false);
                let why = if named_tiff { "named like a TIFF but its content is not TIFF" } else { "not a TIFF file" };
                warnings.push(format!("{}: skipped ({why})", entry.display()));
            }
            Err(e) => warnings.push(format!("{}: skipped (cannot be read: {e})", entry.display())),
        }
    }
    if inputs.is_empty() {
        return Err(Error::usage(format!("{}: the folder holds no TIFF files or Zarr movies", path.display())));
    }
    Ok((inputs, warnings))
}

/// Opens an input for reading only if it is a regular file: a folder, FIFO, socket or device
/// (`/dev/zero`) gets an error naming it, never a hang or an endless read.
pub fn open_regular_file(path: &Path) -> Result<File> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::usage(format!("{}: is a folder, not a file", path.display())));
    }
    if !meta.is_file() {
        return Err(Error::usage(format!(
            "{}: is not a regular file (a device, FIFO or socket); pass a file",
            path.display()
        )));
    }
    File::open(path).map_err(|e| Error::io(path, e))
}

fn has_tiff_magic(path: &Path) -> std::io::Result<bool> {
    let mut head = [0u8; 4];
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file (a device, FIFO or socket)"));
    }
    let mut file = File::open(path)?;
    let mut read = 0;
    while read < head.len() {
        let n = file.read(&mut head[read..])?;
        if n == 0 {
            return Ok(false);
        }
        read += n;
    }
    Ok(matches!(&head, b"II*\0" | b"MM\0*" | b"II+\0" | b"MM\0+"))
}

/// Whether two paths name the same existing file: by canonical path, or (on Unix) by device and
/// inode, which also catches hard links.
pub fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(ca), Ok(cb)) = (a.canonicalize(), b.canonicalize()) {
        if ca == cb {
            return true;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    false
}
