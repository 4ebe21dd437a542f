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
        if super::movie_format::is_zarr(path) {
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
        OutputForm::Folder => meta.is_dir() && !super::movie_format::has_zarr_metadata(path),
        OutputForm::Zarr => meta.is_dir() && (super::movie_format::has_zarr_metadata(path) || is_empty_dir(path)),
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
    remove_stale_partials(output);
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
    // Named like a partial output, so a run killed between creating and removing it leaves
    // nothing that the next run on this output does not remove (remove_stale_partials).
    let probe = dir.join(partial_sibling(output, "probe").file_name().expect("named after the output"));
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
        // The field types differ between platforms (u64 on Linux x86-64), hence the casts.
        #[allow(clippy::unnecessary_cast)]
        Some((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// A size for messages: GB, MB, or kB below a megabyte (never "0 MB").
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.0} kB", (b as f64 / 1024.0).ceil()),
    }
}

/// The hidden sibling an output is built under before it is published:
/// `.<name>.<purpose>-<host>-<pid>-<n>`. The host and process in the name let a later run prove a
/// leftover dead ([`remove_stale_partials`]); every writer names its work in progress this way.
pub fn partial_sibling(output: &Path, purpose: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    output.with_file_name(format!(".{name}.{purpose}-{}-{}-{n}", host_name(), std::process::id()))
}

/// Removes the leftovers of earlier runs on `output` that were killed before they could clean up
/// (SIGKILL, a power cut): hidden siblings named by [`partial_sibling`] whose process is proven
/// gone, that is, written on this host by a PID that no longer runs. Anything else (another
/// host's run on a shared file system, an older name without a host) is left alone. Returns what
/// was removed, for the log.
pub fn remove_stale_partials(output: &Path) -> Vec<PathBuf> {
    let (Some(name), Ok(entries)) = (output.file_name(), std::fs::read_dir(output_folder(output))) else {
        return Vec::new();
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let host = host_name();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let Some((writer_host, pid)) = writer_of(rest) else {
            continue;
        };
        if writer_host != host || pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        let gone = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// `(host, pid)` from `<purpose>-<host>-<pid>-<n>`, the purpose being one word.
fn writer_of(rest: &str) -> Option<(&str, u32)> {
    let (purpose, rest) = rest.split_once('-')?;
    if purpose.is_empty() || !purpose.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let (rest, n) = rest.rsplit_once('-')?;
    let (host, pid) = rest.rsplit_once('-')?;
    n.parse::<u64>().ok()?;
    Some((host, pid.parse().ok()?))
}

fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
        let status = unsafe { libc::kill(pid as libc::pid_t, 0) };
        status == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// This machine's name as file names and records carry it (`/proc/sys/kernel/hostname`).
pub fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    // Kept to characters that are safe in a file name.
    let safe: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_').collect();
    if safe.is_empty() {
        "host".into()
    } else {
        safe
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
        if super::movie_format::has_zarr_metadata(path) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_carry_host_and_process_and_parse_back() {
        let name = partial_sibling(Path::new("/data/out-1.tif"), "partial");
        let file = name.file_name().unwrap().to_string_lossy().into_owned();
        let rest = file.strip_prefix(".out-1.tif.").unwrap();
        assert_eq!(writer_of(rest), Some((host_name().as_str(), std::process::id())));
        assert_eq!(writer_of("partial-123-0"), None, "an older name without a host is not parsed");
    }

    #[test]
    fn only_leftovers_of_dead_processes_on_this_host_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("movie.tif");
        let host = host_name();
        // A PID far above any Linux pid_max is never running.
        let dead = dir.path().join(format!(".movie.tif.partial-{host}-4194999-0"));
        let alive = dir.path().join(format!(".movie.tif.partial-{host}-{}-7", std::process::id()));
        let elsewhere = dir.path().join(".movie.tif.partial-otherhost-4194999-0");
        let legacy = dir.path().join(".movie.tif.partial-4194999-0");
        let zarr = dir.path().join(format!(".movie.tif.staging-{host}-4194999-2"));
        for file in [&dead, &alive, &elsewhere, &legacy] {
            std::fs::write(file, b"x").unwrap();
        }
        std::fs::create_dir(&zarr).unwrap();
        std::fs::write(zarr.join("zarr.json"), b"{}").unwrap();
        let removed = remove_stale_partials(&output);
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(!dead.exists() && !zarr.exists());
        assert!(alive.exists() && elsewhere.exists() && legacy.exists());
    }
}
