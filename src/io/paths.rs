//! Choosing input files and checking an output path before any work starts. Inputs are
//! recognised by their first bytes, not their names: a stray text file in a data folder (the
//! original DeepCAD crashed on one) is skipped with a warning instead of failing the run.

use std::fs::{File, OpenOptions};
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

/// Refuses an output that is one of the inputs (inputs are never modified) or that cannot be
/// created: its folder must exist and accept a new file (probed by creating and removing one).
pub fn check_output_path(output: &Path, inputs: &[PathBuf]) -> Result<()> {
    let name = output
        .file_name()
        .ok_or_else(|| Error::usage(format!("{}: the output path must name a file", output.display())))?;
    if output.is_dir() && !super::movie_format::is_zarr(output) {
        return Err(Error::usage(format!(
            "{}: the output is a folder; give a file name for the result",
            output.display()
        )));
    }
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = dir.canonicalize().map_err(|_| {
        Error::usage(format!(
            "{}: the output folder {} does not exist; create it first",
            output.display(),
            dir.display()
        ))
    })?;
    if !dir.is_dir() {
        return Err(Error::usage(format!("{}: {} is not a folder", output.display(), dir.display())));
    }
    let resolved = dir.join(name);
    for input in inputs {
        if same_file(&resolved, input) {
            return Err(Error::usage(format!(
                "{}: the output is the input file {}; choose another output name (inputs are never overwritten)",
                output.display(),
                input.display()
            )));
        }
    }
    let probe = dir.join(format!(".deepcad-write-test-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::usage(format!(
            "{}: cannot create files in the output folder {} ({e}); choose a folder you can write to",
            output.display(),
            dir.display()
        ))),
    }
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
