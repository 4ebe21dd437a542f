//! "Denoise these files and folders into that folder": one engine call for every door (the CLI's
//! `denoise a.tif dir/ -o out/`, Fiji's "Denoise files"). Every output name is planned before
//! anything is written, so a batch never overwrites one of its inputs or one of its own outputs,
//! and never replaces an existing file unless asked; one bad movie does not stop the others.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{denoise_file_to_file, DenoiseReport, DenoiseSettings};
use crate::io::{list_movie_inputs, ReadOptions};
use crate::model::Model;
use crate::progress::{report, Event, Progress};
use crate::{Error, Result};

/// What a batch reads and writes: `(input, output)` pairs in order, and the entries skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPlan {
    pub jobs: Vec<(PathBuf, PathBuf)>,
    pub warnings: Vec<String>,
}

/// The suffix every door uses by default: `cells.tif` → `cells-denoised.tif` (Fiji's image title
/// convention, `<title>-denoised`).
pub const DEFAULT_SUFFIX: &str = "-denoised";

/// Lists the movies in `inputs` (TIFF files and Zarr arrays, and those inside folders; other entries become
/// warnings) and names each output `<stem><suffix>.tif` (`.zarr` for Zarr inputs) in the folder `output` (created if
/// missing). One input file and an `output` that is not a folder: `output` is the file itself.
///
/// Refused before anything is written, naming both files: two inputs whose outputs would have the
/// same name (`a.tif` and `a.tiff`, or `d1/x.tif` and `d2/x.tif`), an output that is an input
/// (path, `./`, symbolic or hard link) or one of `protected` (the model file), anything at an
/// output path that is not a movie of its format (a device, a FIFO: see
/// [`crate::io::check_replaceable`]) and, unless `overwrite`, an output that already exists.
pub fn plan_batch(
    inputs: &[PathBuf],
    output: &Path,
    suffix: &str,
    protected: &[PathBuf],
    overwrite: bool,
) -> Result<BatchPlan> {
    let mut movies = Vec::new();
    let mut warnings = Vec::new();
    for input in inputs {
        let (files, skipped) = list_movie_inputs(input)?;
        warnings.extend(skipped);
        movies.extend(files);
    }
    // One input that is not a folder (a FIFO too, so that it fails as a file, not as a folder run).
    let is_movie = |p: &Path| !p.is_dir() || crate::io::zarr::has_zarr_metadata(p);
    let output_is_folder = output.is_dir() && !crate::io::zarr::is_zarr(output);
    let single_file_out = movies.len() == 1 && inputs.len() == 1 && is_movie(&inputs[0]) && !output_is_folder;
    let jobs: Vec<(PathBuf, PathBuf)> = if single_file_out {
        vec![(movies[0].clone(), output.to_path_buf())]
    } else {
        if output.is_file() || crate::io::zarr::is_zarr(output) {
            return Err(Error::usage(format!(
                "{}: is a movie, but {} movies need an output folder; give a folder",
                output.display(),
                movies.len()
            )));
        }
        std::fs::create_dir_all(output).map_err(|e| Error::io(output, e))?;
        movies.iter().map(|m| (m.clone(), output.join(output_name(m, suffix)))).collect()
    };
    check_plan(&jobs, overwrite)?;
    for (_, output) in &jobs {
        crate::io::check_output_path(output, protected)?;
    }
    Ok(BatchPlan { jobs, warnings })
}

/// `<stem><suffix>.tif`, or `<stem><suffix>.zarr` for a Zarr input (outputs keep the format).
pub fn output_name(input: &Path, suffix: &str) -> String {
    let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "movie".into());
    let extension = if crate::io::zarr::has_zarr_metadata(input) { "zarr" } else { "tif" };
    format!("{stem}{suffix}.{extension}")
}

fn check_plan(jobs: &[(PathBuf, PathBuf)], overwrite: bool) -> Result<()> {
    // Every input by resolved path and by file identity (hard links), looked up per output.
    let mut inputs_by_location: HashMap<PathBuf, &Path> = HashMap::new();
    let mut inputs_by_identity: HashMap<(u64, u64), &Path> = HashMap::new();
    for (input, _) in jobs {
        inputs_by_location.insert(input.canonicalize().unwrap_or_else(|_| planned_location(input)), input);
        if let Some(id) = file_identity(input) {
            inputs_by_identity.insert(id, input);
        }
    }
    let mut planned: HashMap<PathBuf, &Path> = HashMap::new();
    for (input, output) in jobs {
        let location = planned_location(output);
        let clobbered = inputs_by_location
            .get(&location)
            .or_else(|| file_identity(output).and_then(|id| inputs_by_identity.get(&id)));
        if let Some(other) = clobbered {
            return Err(Error::usage(format!(
                "{}: the output for {} would replace the input {}; choose another output folder or suffix",
                output.display(),
                input.display(),
                other.display()
            )));
        }
        if let Some(first) = planned.insert(location, input) {
            return Err(Error::usage(format!(
                "{} and {} would both be written to {}; denoise them into different folders or give a suffix that tells them apart",
                first.display(),
                input.display(),
                output.display()
            )));
        }
        if !overwrite && output.exists() {
            return Err(Error::usage(format!(
                "{}: already exists (the output for {}) and denoising never replaces a file unless asked; choose another output folder, or allow replacing existing files",
                output.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// Where `path` will be: its folder resolved (symbolic links, `.`), then its name.
fn planned_location(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Device and inode of an existing file (one file under two names has one identity).
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// What a batch did.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub outputs: Vec<DenoiseReport>,
    pub failed: Vec<BatchFailure>,
}

impl BatchReport {
    /// The batch rule every door follows: a batch in which any movie failed fails, naming how many
    /// of how many and where the others were written (`folder`).
    pub fn require_all(self, folder: &Path) -> Result<BatchReport> {
        if self.failed.is_empty() {
            return Ok(self);
        }
        Err(Error::usage(format!(
            "{} of {} movies could not be denoised (see the warnings above); the others were written to {}",
            self.failed.len(),
            self.failed.len() + self.outputs.len(),
            folder.display()
        )))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchFailure {
    pub input: PathBuf,
    pub error: String,
}

/// Runs a plan: each movie streamed into its output. A movie that fails is reported as a warning
/// and the batch goes on (a single job fails directly); cancelling stops at once. The result is
/// an error when no movie could be denoised.
pub fn denoise_batch(
    model: &Model,
    plan: &BatchPlan,
    read_options: &ReadOptions,
    settings: &DenoiseSettings,
    progress: &mut dyn Progress,
) -> Result<BatchReport> {
    for warning in &plan.warnings {
        report(progress, Event::Warning(warning))?;
    }
    let total = plan.jobs.len();
    let mut done = BatchReport { outputs: Vec::new(), failed: Vec::new() };
    for (i, (input, output)) in plan.jobs.iter().enumerate() {
        report(progress, Event::Info(&format!("{}/{total}: {} → {}", i + 1, input.display(), output.display())))?;
        match denoise_file_to_file(model, input, output, read_options, settings, progress) {
            Ok(r) => {
                report(
                    progress,
                    Event::Info(&format!(
                        "{}: {} frames in {:.1} s ({:.1} frames/s)",
                        output.display(),
                        r.frames,
                        r.seconds,
                        r.frames as f64 / r.seconds
                    )),
                )?;
                done.outputs.push(r);
            }
            Err(e) if total > 1 && !matches!(e, Error::Cancelled) => {
                report(progress, Event::Warning(&format!("skipped: {e}")))?;
                done.failed.push(BatchFailure { input: input.clone(), error: e.to_string() });
            }
            Err(e) => return Err(e),
        }
    }
    if done.outputs.is_empty() {
        return Err(Error::usage(format!("none of the {total} movies could be denoised (see the warnings)")));
    }
    Ok(done)
}
