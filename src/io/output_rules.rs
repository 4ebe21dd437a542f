//! The rules every output of every command and door follows, kept in one place: an output is never
//! one of the run's inputs, never replaces an existing file unless the user allowed it, and never
//! replaces anything but its own kind: a device node, FIFO or socket at an output path (for example
//! `/dev/null`) is refused even when replacing is allowed, and so is a file where a folder output
//! (a Zarr array, a bioimage.io package folder) would go, or a folder where a file would. Two
//! outputs of one run may not share a path (the second would replace the first).
//!
//! Commands check all their outputs with [`check_outputs`] before any work; every writer checks
//! its own path again with [`check_replaceable`] when it starts and just before it renames its
//! finished temporary file into place, because another program may have put something there
//! meanwhile.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::same_file;
use crate::error::{Error, Result};

/// What an output is on disk, and so the only thing it may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputForm {
    /// A regular file: a TIFF movie, a model bundle, a `.zip`, a report.
    File,
    /// A folder written as a whole (a bioimage.io package folder).
    Folder,
    /// A Zarr array (a folder with Zarr metadata).
    Zarr,
}

impl OutputForm {
    /// A movie output's form from its name: `.zarr` is a Zarr array, anything else a TIFF file.
    pub fn of_movie(path: &Path) -> OutputForm {
        if super::zarr::is_zarr(path) {
            OutputForm::Zarr
        } else {
            OutputForm::File
        }
    }

    fn noun(self) -> &'static str {
        match self {
            OutputForm::File => "a regular file",
            OutputForm::Folder => "a folder",
            OutputForm::Zarr => "a Zarr folder",
        }
    }
}

/// Checks every output of one run before any work: each may be written (its folder exists and
/// accepts files), is none of `inputs` (by any name), is absent or of its own form (replaced only
/// with `overwrite`), and no two outputs share a path.
pub fn check_outputs(outputs: &[(&Path, OutputForm)], inputs: &[PathBuf], overwrite: bool) -> Result<()> {
    for (i, &(path, form)) in outputs.iter().enumerate() {
        check_location(path, form, inputs)?;
        if !overwrite && exists(path) {
            return Err(Error::usage(format!(
                "{}: already exists and is never replaced unless asked; choose another name, or allow replacing existing files",
                path.display()
            )));
        }
        if let Some(&(earlier, _)) = outputs[..i].iter().find(|(other, _)| same_location(other, path)) {
            return Err(Error::usage(format!(
                "{}: is given for two outputs of this run ({} and {}); give each output its own name",
                path.display(),
                earlier.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

/// An existing `path` must be of `form` to be replaced: a device, FIFO or socket never is, nor a
/// folder where a file goes or a file where a folder goes. Absent paths pass. Symbolic links are
/// judged by what they point to (renaming over one replaces the link, not its target).
pub fn check_replaceable(path: &Path, form: OutputForm) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        // Absent, or a dangling link that renaming replaces harmlessly.
        return Ok(());
    };
    let fits = match form {
        OutputForm::File => meta.is_file(),
        OutputForm::Folder => meta.is_dir() && !super::zarr::has_zarr_metadata(path),
        OutputForm::Zarr => meta.is_dir() && (super::zarr::has_zarr_metadata(path) || is_empty_dir(path)),
    };
    if fits {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{}: exists and is {}, but this output is {}; an output only ever replaces its own kind, so choose another name",
        path.display(),
        describe(&meta, path),
        form.noun()
    )))
}

/// Refuses a movie output (TIFF file or Zarr array, by its name) that is one of the inputs
/// (inputs are never modified), that exists as something else, or that cannot be created.
pub fn check_output_path(output: &Path, inputs: &[PathBuf]) -> Result<()> {
    check_location(output, OutputForm::of_movie(output), inputs)
}

/// The output's folder must exist and accept a new file (probed by creating and removing one),
/// the output must be none of `inputs` (by any name: `./`, symbolic or hard link), and anything
/// already at its path must be of `form`.
fn check_location(output: &Path, form: OutputForm, inputs: &[PathBuf]) -> Result<()> {
    let name = output
        .file_name()
        .ok_or_else(|| Error::usage(format!("{}: the output path must name a file", output.display())))?;
    let dir = output_folder(output).canonicalize().map_err(|_| {
        Error::usage(format!(
            "{}: the output folder {} does not exist; create it first",
            output.display(),
            output_folder(output).display()
        ))
    })?;
    if !dir.is_dir() {
        return Err(Error::usage(format!("{}: {} is not a folder", output.display(), dir.display())));
    }
    let resolved = dir.join(name);
    for input in inputs {
        if same_file(&resolved, input) || same_file(output, input) {
            return Err(Error::usage(format!(
                "{}: the output is the input {}; choose another output name (inputs are never overwritten)",
                output.display(),
                input.display()
            )));
        }
    }
    check_replaceable(output, form)?;
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

/// Refuses, before any work, an output of about `bytes` that cannot fit in the free space of its
/// folder's file system, saying how much is needed (a run that fills the disk after hours helps
/// nobody). Where free space cannot be read, the run goes ahead and a full disk is reported then.
pub fn check_free_space(output: &Path, bytes: u64) -> Result<()> {
    let Some(free) = free_bytes(output_folder(output)) else {
        return Ok(());
    };
    if bytes <= free {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{}: the output needs about {} but its folder's disk has {} free; free some space or choose another folder",
        output.display(),
        human_bytes(bytes),
        human_bytes(free)
    )))
}

fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut stats = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
        // SAFETY: a NUL-terminated path and a buffer of the right type, filled on success.
        let status = unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) };
        if status != 0 {
            return None;
        }
        // SAFETY: statvfs succeeded, so the structure is filled.
        let stats = unsafe { stats.assume_init() };
        Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.0} kB", (b as f64 / 1024.0).ceil()),
    }
}

fn output_folder(output: &Path) -> &Path {
    match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Whether two output paths (which may not exist yet) name one place: same folder, same name, or
/// one existing file under two names.
fn same_location(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| output_folder(p).canonicalize().ok().zip(p.file_name()).map(|(d, n)| d.join(n));
    match (resolve(a), resolve(b)) {
        (Some(x), Some(y)) if x == y => true,
        _ => same_file(a, b),
    }
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

fn describe(meta: &std::fs::Metadata, path: &Path) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        if super::zarr::has_zarr_metadata(path) {
            "a Zarr array"
        } else {
            "a folder"
        }
    } else if meta.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}
