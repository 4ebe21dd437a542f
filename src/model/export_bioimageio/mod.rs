//! Export a model bundle as a BioImage Model Zoo package (spec 0.5, `rdf.yaml`), so that bioimage.io
//! consumers (bioimageio.core, deepImageJ / JDLL) can run it.
//!
//! Choices, and why:
//! - **Weights**: TorchScript only, traced from Rust. No `pytorch_state_dict` entry: that format
//!   needs the Python architecture source, which we do not ship.
//! - **Normalisation is baked into the traced module** (`(x - offset)/scale → net → ·scale + offset`),
//!   not declared as `scale_linear` pre/postprocessing: consumers differ in which processing ops they
//!   implement, while the traced graph runs the same everywhere. The package therefore takes and
//!   returns raw intensities. Imported DeepCAD-RT models (stack-mean normalisation) subtract the
//!   mean of *the tensor the consumer passes in*, i.e. of each tile when a consumer tiles; our
//!   engine uses the whole-stack mean, so tiled results can differ slightly from `deepcad denoise`.
//! - **Dynamic sizes**: the tracer records every size read on the Rust side as a constant, so the
//!   traced forward is written here from the weights with scale-factor upsampling (no `size()`
//!   calls). For inputs whose axes are multiples of 8 (which `rdf.yaml` requires) this is exactly
//!   the engine's network; export checks it on the test tensor.
//! - **Axes**: `batch, channel, time, y, x`: the network's first spatial axis is time. Consumers
//!   that only tile `space` axes can be given [`TemporalAxis::Z`] instead (same tensor layout).
//! - **Halo**: every spatial axis of the output carries the bundle's halo (the consumer crops it);
//!   the minimum input size is the smallest multiple of 8 above twice the halo.

//!
//! One file per concern: `torchscript` (the traced network and the engine it must reproduce),
//! `rdf` (`rdf.yaml` and the package README) and `files` (npy, sample TIFFs, cover, hashes,
//! the zip and its atomic placement).

mod files;
mod rdf;
mod torchscript;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::{CModule, Tensor};

use super::bundle::{Model, Normalization};
use crate::geometry::ALIGNMENT;
use crate::io::{check_outputs, OutputForm};
use crate::{Error, Result};
use files::{hidden_sibling, replace, write_cover, write_sample_tiff, zip_folder};
pub use files::{sha256_file, write_npy};
use rdf::{documentation_text, rdf_text};
use torchscript::{engine_forward, max_relative_difference, trace_and_save};

/// The libtorch this crate is pinned to (tch 0.24): the version that writes the TorchScript archive.
pub const LIBTORCH_VERSION: &str = "2.11.0";
/// The bioimage.io model spec version written to `rdf.yaml`.
pub const SPEC_FORMAT_VERSION: &str = "0.5.4";
/// Largest allowed relative difference between the reloaded TorchScript and the engine.
pub const REPRODUCTION_TOLERANCE: f64 = 1e-5;

const WEIGHTS_FILE: &str = "weights_torchscript.pt";
const TEST_INPUT_FILE: &str = "test_input.npy";
const TEST_OUTPUT_FILE: &str = "test_output.npy";
const SAMPLE_INPUT_FILE: &str = "sample_input.tif";
const SAMPLE_OUTPUT_FILE: &str = "sample_output.tif";
const COVER_FILE: &str = "cover.png";
const DOCUMENTATION_FILE: &str = "README.md";
const RDF_FILE: &str = "rdf.yaml";

/// How the network's first spatial axis is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TemporalAxis {
    /// `type: time`: says what the axis is (the default).
    #[default]
    Time,
    /// `type: space, id: z`: for consumers whose tilers only handle space axes.
    Z,
}

/// A raw-intensity movie used as the package's test input, `frames·height·width` values.
#[derive(Debug, Clone)]
pub struct TestMovie {
    pub values: Vec<f32>,
    /// `[t, y, x]`; each axis must be a multiple of 8 and at least the package's minimum size.
    pub shape: [usize; 3],
}

impl TestMovie {
    /// The centre `[t, y, x]` block of a movie file (TIFF), e.g. `shape` = [`package_minimum_size`]:
    /// a real recording makes a far more telling test tensor and cover than random values.
    pub fn from_tiff(path: &Path, shape: [usize; 3]) -> Result<TestMovie> {
        let mut reader = crate::io::StackReader::open(path, &crate::io::ReadOptions::default())?;
        let info = reader.info().clone();
        let available = [info.frames, info.height, info.width];
        if available.iter().zip(shape.iter()).any(|(a, s)| a < s) {
            return Err(Error::usage(format!(
                "{}: movie is {available:?} (t, y, x) but the package's test input needs at least {shape:?}; use a larger recording",
                path.display()
            )));
        }
        let start = [0, 1, 2].map(|i| (available[i] - shape[i]) / 2);
        let mut frame = vec![0f32; info.width * info.height];
        let mut values = Vec::with_capacity(shape.iter().product());
        for t in start[0]..start[0] + shape[0] {
            reader.read_frame(t, &mut frame)?;
            for y in start[1]..start[1] + shape[1] {
                values.extend_from_slice(&frame[y * info.width + start[2]..][..shape[2]]);
            }
        }
        Ok(TestMovie { values, shape })
    }
}

/// Minimum input size `[t, y, x]` the package declares for this model (see [`minimum_size_for_halo`]).
pub fn package_minimum_size(model: &Model) -> [usize; 3] {
    model.metadata.halo.map(minimum_size_for_halo)
}

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Package name; default derived from the architecture and width.
    pub name: Option<String>,
    pub description: Option<String>,
    /// Author names; default "deepcad user" (the spec requires at least one).
    pub authors: Vec<String>,
    /// SPDX licence id of the weights; default MIT.
    pub license: Option<String>,
    pub temporal_axis: TemporalAxis,
    /// Test input; default a seeded random movie of the minimum size in the model's intensity range.
    pub test_input: Option<TestMovie>,
    /// Replace an existing output (only after the new package is complete).
    pub overwrite: bool,
    /// Files the package must never replace (the model it was made from).
    pub protected: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The folder or `.zip` written.
    pub output: PathBuf,
    /// Package files with their sha256 (hex), as listed in `rdf.yaml` (plus `rdf.yaml` itself, unhashed).
    pub files: Vec<(String, String)>,
    /// Max |TorchScript − engine| / max |engine| on the test input, after reloading the saved file.
    pub max_relative_difference: f64,
    pub test_shape: [usize; 3],
    /// Minimum input size per spatial axis `[t, y, x]` (sizes are min + n·8).
    pub min_size: [usize; 3],
    pub halo: [usize; 3],
}

/// Writes the package to `output` (a folder, or a `.zip` file when the name ends in `.zip`).
/// Everything is built in a hidden sibling and renamed into place, so `output` is either absent,
/// the previous content, or the complete package. An existing `output` is an error unless
/// `options.overwrite` is set.
pub fn export_bioimageio(model: &Model, output: &Path, options: &ExportOptions) -> Result<ExportReport> {
    if !model.metadata.method.denoises_with_plain_unet() {
        // The package is one traced network run on whatever tile a bioimage.io runner cuts; a
        // hybrid model needs each tile's place in the movie (the parity of its first frame, where
        // mirror padding starts) to stay blind and seamless, which no package field can carry.
        return Err(Error::usage(format!(
            "export-bioimageio cannot express the {} method's forward pass (its context comes from the other parity's frames and its blind spot needs each tile's place in the movie); only interlaced and masked models can be exported",
            model.metadata.method
        )));
    }
    let as_zip = output.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    let form = if as_zip { OutputForm::File } else { OutputForm::Folder };
    check_outputs(&[(output, form)], &options.protected, options.overwrite)?;
    let halo = model.metadata.halo;
    let min_size = package_minimum_size(model);
    let test = match &options.test_input {
        Some(movie) => {
            check_test_movie(movie, min_size)?;
            movie.clone()
        }
        None => default_test_movie(&model.metadata.normalization, min_size),
    };

    // libtorch aborts the process (an exception in a destructor) when its TorchScript file meets a
    // full disk, so the space is checked first: the weights (TorchScript), the test input and
    // output as .npy and TIFF, the cover, twice for a .zip (the staging folder and the archive).
    let test_bytes = 4 * test.values.len() as u64;
    let package_bytes = 4 * model.metadata.parameters as u64 * 11 / 10 + 4 * test_bytes + (1 << 20);
    crate::io::check_free_space(output, if as_zip { 2 * package_bytes } else { package_bytes })?;
    let staging = hidden_sibling(output, "staging");
    std::fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
    let built = build_package(model, &staging, &test, min_size, options);
    let outcome = built.and_then(|(files, err)| {
        if as_zip {
            let temp_zip = hidden_sibling(output, "zip");
            let zipped = zip_folder(&staging, &temp_zip, &files)
                .and_then(|_| replace(&temp_zip, output, form, options.overwrite));
            if zipped.is_err() {
                let _ = std::fs::remove_file(&temp_zip);
            }
            let _ = std::fs::remove_dir_all(&staging);
            zipped.map(|_| (files, err))
        } else {
            replace(&staging, output, form, options.overwrite).map(|_| (files, err))
        }
    });
    if staging.exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    let (files, max_relative_difference) = outcome?;
    Ok(ExportReport {
        output: output.to_path_buf(),
        files,
        max_relative_difference,
        test_shape: test.shape,
        min_size,
        halo,
    })
}

/// Smallest multiple of 8 that leaves at least one voxel after cropping the halo on both sides
/// (what the spec requires of an output axis with a halo).
pub fn minimum_size_for_halo(halo: usize) -> usize {
    (2 * halo + 1).div_ceil(ALIGNMENT) * ALIGNMENT
}

fn check_test_movie(movie: &TestMovie, min_size: [usize; 3]) -> Result<()> {
    let [t, h, w] = movie.shape;
    if movie.values.len() != t * h * w {
        return Err(Error::usage(format!("test movie has {} values but shape {:?}", movie.values.len(), movie.shape)));
    }
    for (axis, (&size, &min)) in ["t", "y", "x"].iter().zip(movie.shape.iter().zip(min_size.iter())) {
        if size < min || size % ALIGNMENT != 0 {
            return Err(Error::usage(format!(
                "test movie axis {axis} has size {size}; it must be a multiple of {ALIGNMENT} and at least {min} (twice the halo, rounded up); crop or choose a larger region"
            )));
        }
    }
    if let Some(i) = movie.values.iter().position(|v| !v.is_finite()) {
        return Err(Error::usage(format!("test movie holds a non-finite value at index {i}")));
    }
    Ok(())
}

/// A seeded random movie around the model's offset, spread by its scale (raw intensity units).
fn default_test_movie(normalization: &Normalization, shape: [usize; 3]) -> TestMovie {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let (offset, scale) = match *normalization {
        Normalization::Fixed { offset, scale } => (offset, scale),
        Normalization::StackMean { scale_factor } => (scale_factor, scale_factor),
        Normalization::StackMin { normalize_factor } => (normalize_factor, normalize_factor),
        // Any brightness suits a per-movie model; a typical two-photon level.
        Normalization::PerMovie => (100.0, 10.0),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20210901);
    let noise = Normal::new(0.0f64, 1.0).expect("unit normal");
    let values =
        (0..shape.iter().product::<usize>()).map(|_| (offset + scale * noise.sample(&mut rng)) as f32).collect();
    TestMovie { values, shape }
}

/// Writes every file into `dir`; returns the hashed file list and the reproduction error.
fn build_package(
    model: &Model,
    dir: &Path,
    test: &TestMovie,
    min_size: [usize; 3],
    options: &ExportOptions,
) -> Result<(Vec<(String, String)>, f64)> {
    let _no_grad = tch::no_grad_guard();
    let shape5 = [1, 1, test.shape[0] as i64, test.shape[1] as i64, test.shape[2] as i64];
    let input = Tensor::from_slice(&test.values).f_reshape(shape5)?;

    let engine_output = engine_forward(model, &input)?;
    let weights_path = dir.join(WEIGHTS_FILE);
    trace_and_save(model, &input, &weights_path)?;
    let reloaded = CModule::load(&weights_path)
        .map_err(|e| Error::model(&weights_path, format!("traced module does not reload: {e}")))?;
    let traced_output = reloaded.forward_ts(&[&input])?;
    let err = max_relative_difference(&traced_output, &engine_output)?;
    if err.is_nan() || err > REPRODUCTION_TOLERANCE {
        return Err(Error::model(&weights_path, format!(
            "the traced TorchScript differs from the engine by {err:e} (relative) on the test input, above {REPRODUCTION_TOLERANCE:e}; the export is not faithful"
        )));
    }

    let output_values = Vec::<f32>::try_from(engine_output.f_flatten(0, -1)?)?;
    write_npy(&dir.join(TEST_INPUT_FILE), &test.values, &shape5)?;
    write_npy(&dir.join(TEST_OUTPUT_FILE), &output_values, &shape5)?;
    // Sample tensors (for people, read with imageio): the same movies as ImageJ float32 stacks.
    write_sample_tiff(&dir.join(SAMPLE_INPUT_FILE), test.shape, &test.values)?;
    write_sample_tiff(&dir.join(SAMPLE_OUTPUT_FILE), test.shape, &output_values)?;
    write_cover(&dir.join(COVER_FILE), test, &output_values)?;
    let documentation = documentation_text(model, min_size, options);
    crate::io::write_file_atomically(&dir.join(DOCUMENTATION_FILE), documentation.as_bytes())?;

    let mut files = Vec::new();
    for name in [
        WEIGHTS_FILE,
        TEST_INPUT_FILE,
        TEST_OUTPUT_FILE,
        SAMPLE_INPUT_FILE,
        SAMPLE_OUTPUT_FILE,
        COVER_FILE,
        DOCUMENTATION_FILE,
    ] {
        files.push((name.to_string(), sha256_file(&dir.join(name))?));
    }
    let hashes: HashMap<&str, &str> = files.iter().map(|(n, h)| (n.as_str(), h.as_str())).collect();
    let rdf = rdf_text(model, min_size, options, &hashes);
    crate::io::write_file_atomically(&dir.join(RDF_FILE), rdf.as_bytes())?;
    Ok((files, err))
}
