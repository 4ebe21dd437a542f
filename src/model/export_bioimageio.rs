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

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tch::{CModule, Device, Kind, Tensor};

use super::bundle::{Model, Normalization};
use crate::geometry::{ALIGNMENT, LEVELS};
use crate::io::{write_preview_png, Panel};
use crate::{Error, Result};

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
    let as_zip = output.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if output.exists() && !options.overwrite {
        return Err(Error::usage(format!(
            "{} already exists; choose another output, or allow replacing it",
            output.display()
        )));
    }
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::usage(format!("output folder {} does not exist; create it first", parent.display())));
    }
    let halo = model.metadata.halo;
    let min_size = package_minimum_size(model);
    let test = match &options.test_input {
        Some(movie) => {
            check_test_movie(movie, min_size)?;
            movie.clone()
        }
        None => default_test_movie(&model.metadata.normalization, min_size),
    };

    let staging = hidden_sibling(output, "staging");
    std::fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
    let built = build_package(model, &staging, &test, min_size, options);
    let outcome = built.and_then(|(files, err)| {
        if as_zip {
            let temp_zip = hidden_sibling(output, "zip");
            let zipped = zip_folder(&staging, &temp_zip, &files).and_then(|_| replace(&temp_zip, output, options.overwrite));
            if zipped.is_err() {
                let _ = std::fs::remove_file(&temp_zip);
            }
            let _ = std::fs::remove_dir_all(&staging);
            zipped.map(|_| (files, err))
        } else {
            replace(&staging, output, options.overwrite).map(|_| (files, err))
        }
    });
    if staging.exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    let (files, max_relative_difference) = outcome?;
    Ok(ExportReport { output: output.to_path_buf(), files, max_relative_difference, test_shape: test.shape, min_size, halo })
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
    let values = (0..shape.iter().product::<usize>()).map(|_| (offset + scale * noise.sample(&mut rng)) as f32).collect();
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
    let reloaded = CModule::load(&weights_path).map_err(|e| Error::model(&weights_path, format!("traced module does not reload: {e}")))?;
    let traced_output = reloaded.forward_ts(&[&input])?;
    let err = max_relative_difference(&traced_output, &engine_output)?;
    if !(err <= REPRODUCTION_TOLERANCE) {
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
    for name in [WEIGHTS_FILE, TEST_INPUT_FILE, TEST_OUTPUT_FILE, SAMPLE_INPUT_FILE, SAMPLE_OUTPUT_FILE, COVER_FILE, DOCUMENTATION_FILE] {
        files.push((name.to_string(), sha256_file(&dir.join(name))?));
    }
    let hashes: HashMap<&str, &str> = files.iter().map(|(n, h)| (n.as_str(), h.as_str())).collect();
    let rdf = rdf_text(model, min_size, options, &hashes);
    crate::io::write_file_atomically(&dir.join(RDF_FILE), rdf.as_bytes())?;
    Ok((files, err))
}

/// The engine's answer: normalise, the bundle's network, denormalise (as `deepcad denoise` does on
/// one whole tile, with the per-tensor mean for stack-mean models).
fn engine_forward(model: &Model, input: &Tensor) -> Result<Tensor> {
    let device = model.device();
    let x = input.f_to_device(device)?;
    let y = normalised_forward(&model.metadata.normalization, &x, &|x| model.net.forward(x))?;
    Ok(y.f_to_device(Device::Cpu)?)
}

/// `(x - offset) / scale`, the network, and back. A fixed offset is a scalar (a constant in the
/// trace); a stack-mean model's offset is the mean of `x`, computed inside the traced graph.
fn normalised_forward(normalization: &Normalization, x: &Tensor, net: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    match *normalization {
        Normalization::Fixed { offset, scale } => {
            let y = net(&x.f_sub_scalar(offset)?.f_div_scalar(scale)?)?;
            Ok(y.f_mul_scalar(scale)?.f_add_scalar(offset)?)
        }
        Normalization::StackMean { scale_factor } => {
            let mean = x.f_mean_dim(&[1i64, 2, 3, 4][..], true, Kind::Float)?;
            let y = net(&x.f_sub(&mean)?.f_div_scalar(scale_factor)?)?;
            Ok(y.f_mul_scalar(scale_factor)?.f_add(&mean)?)
        }
        Normalization::StackMin { normalize_factor } => {
            let min = x.f_amin(&[1i64, 2, 3, 4][..], true)?;
            let y = net(&x.f_sub(&min)?.f_div_scalar(normalize_factor)?)?;
            Ok(y.f_mul_scalar(normalize_factor)?.f_add(&min)?)
        }
        Normalization::PerMovie => {
            // The tensor's own mean and (population) standard deviation, as `deepcad denoise`
            // measures them on the whole movie.
            let dims = &[1i64, 2, 3, 4][..];
            let mean = x.f_mean_dim(dims, true, Kind::Float)?;
            let centred = x.f_sub(&mean)?;
            let std = centred.f_square()?.f_mean_dim(dims, true, Kind::Float)?.f_sqrt()?.f_clamp_min(1e-6)?;
            let y = net(&centred.f_div(&std)?)?;
            Ok(y.f_mul(&std)?.f_add(&mean)?)
        }
    }
}

/// Traces the normalised network on CPU with detached copies of the weights (tracing parameters
/// that require grad yields a file that does not load, see toolchain.md) and saves it.
fn trace_and_save(model: &Model, example: &Tensor, path: &Path) -> Result<()> {
    let weights: HashMap<String, Tensor> = model
        .vs
        .variables()
        .into_iter()
        .map(|(name, var)| Ok((name, var.f_detach()?.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?.copy())))
        .collect::<Result<_>>()?;
    let normalization = model.metadata.normalization.clone();
    let mut failure: Option<Error> = None;
    let mut closure = |inputs: &[Tensor]| -> Vec<Tensor> {
        let run = || -> Result<Tensor> {
            normalised_forward(&normalization, &inputs[0], &|x| traceable_unet(&weights, x))
        };
        match run() {
            Ok(y) => vec![y],
            Err(e) => {
                failure = Some(e);
                vec![inputs[0].shallow_clone()]
            }
        }
    };
    let module = CModule::create_by_tracing("DeepCadUNet3d", "forward", &[example.shallow_clone()], &mut closure)?;
    if let Some(e) = failure {
        return Err(e);
    }
    module.save(path).map_err(|e| Error::model(path, format!("cannot save TorchScript: {e}")))
}

/// The DeepCAD 3-D U-Net (same weights and operations as `UNet3d::forward`) without reading any
/// tensor size, so the trace stays valid for every input size that is a multiple of 8.
fn traceable_unet(w: &HashMap<String, Tensor>, x: &Tensor) -> Result<Tensor> {
    let conv = |name: &str, x: &Tensor, padding: i64| -> Result<Tensor> {
        let weight = w.get(&format!("{name}.weight")).ok_or_else(|| Error::Usage(format!("model has no weight {name}")))?;
        let bias = w.get(&format!("{name}.bias"));
        Ok(x.f_conv3d(weight, bias, [1, 1, 1], [padding; 3], [1, 1, 1], 1)?)
    };
    let double_conv = |block: &str, x: &Tensor| -> Result<Tensor> {
        let h = conv(&format!("{block}.basic_module.SingleConv1.conv"), x, 1)?.f_relu()?;
        Ok(conv(&format!("{block}.basic_module.SingleConv2.conv"), &h, 1)?.f_relu()?)
    };
    let mut skips = Vec::with_capacity(LEVELS);
    let mut h = double_conv("Generator.encoders.0", x)?;
    for i in 1..LEVELS {
        let pooled = h.f_max_pool3d([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false)?;
        skips.push(h);
        h = double_conv(&format!("Generator.encoders.{i}"), &pooled)?;
    }
    for j in 0..LEVELS - 1 {
        let skip = skips.pop().expect("one skip per decoder level");
        let up = h.f_upsample_nearest3d_vec(None::<&[i64]>, &[2.0, 2.0, 2.0][..])?;
        h = double_conv(&format!("Generator.decoders.{j}"), &Tensor::f_cat(&[&skip, &up], 1)?)?;
    }
    conv("Generator.final_conv", &h, 0)
}

fn max_relative_difference(a: &Tensor, b: &Tensor) -> Result<f64> {
    let diff = a.f_sub(b)?.f_abs()?.f_max()?.f_double_value(&[])?;
    let scale = b.f_abs()?.f_max()?.f_double_value(&[])?.max(1e-12);
    Ok(diff / scale)
}

/// NumPy `.npy` version 1.0, little-endian float32, C order.
pub fn write_npy(path: &Path, values: &[f32], shape: &[i64]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in '\n'.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * values.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    crate::io::write_file_atomically(path, &bytes)
}

fn write_sample_tiff(path: &Path, [t, h, w]: [usize; 3], values: &[f32]) -> Result<()> {
    let metadata = crate::io::ImageJMetadata { frames: t, hyperstack: true, ..Default::default() };
    crate::io::write_stack(path, (w, h, t), crate::io::SampleType::F32, &metadata, values)
}

/// Middle frame of the test input beside the same frame denoised (about 2:1, as bioimage.io asks).
fn write_cover(path: &Path, test: &TestMovie, output: &[f32]) -> Result<()> {
    let [t, h, w] = test.shape;
    let frame = (t / 2) * h * w..(t / 2 + 1) * h * w;
    let zoom = (256 / h.max(1)).clamp(1, 4);
    write_preview_png(
        path,
        &[
            Panel { pixels: &test.values[frame.clone()], width: w, height: h },
            Panel { pixels: &output[frame], width: w, height: h },
        ],
        zoom,
    )
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("strings always serialise")
}

fn package_name(model: &Model, options: &ExportOptions) -> String {
    options.name.clone().unwrap_or_else(|| format!("DeepCAD 3D U-Net denoiser (base width {})", model.metadata.base_width))
}

fn package_description(options: &ExportOptions) -> String {
    options.description.clone().unwrap_or_else(|| {
        "Self-supervised denoising of fluorescence time-lapse movies (DeepCAD / DeepCAD-RT 3-D U-Net); takes and returns raw intensities".to_string()
    })
}

const CITATIONS: [(&str, &str); 2] = [
    (
        "Li, X. et al. Reinforcing neuron extraction and spike inference in calcium imaging using deep self-supervised denoising. Nat. Methods 18, 1395-1400 (2021).",
        "10.1038/s41592-021-01225-0",
    ),
    (
        "Li, X. et al. Real-time denoising enables high-sensitivity fluorescence time-lapse imaging beyond the shot-noise limit. Nat. Biotechnol. 41, 282-292 (2023).",
        "10.1038/s41587-022-01450-8",
    ),
];

fn rdf_text(model: &Model, min_size: [usize; 3], options: &ExportOptions, hashes: &HashMap<&str, &str>) -> String {
    let halo = model.metadata.halo;
    let mut authors = options.authors.clone();
    if authors.is_empty() {
        authors.push("deepcad user".to_string());
    }
    let first_axis = |input: bool| -> String {
        let size = if input {
            format!("        size: {{min: {}, step: {ALIGNMENT}}}\n", min_size[0])
        } else {
            format!("        size: {{tensor_id: raw, axis_id: {}}}\n        halo: {}\n", temporal_id(options), halo[0])
        };
        match options.temporal_axis {
            TemporalAxis::Time => format!("      - type: time\n        id: time\n{size}"),
            TemporalAxis::Z => format!("      - type: space\n        id: z\n{size}"),
        }
    };
    let space_axis = |id: &str, i: usize, input: bool| -> String {
        if input {
            format!("      - type: space\n        id: {id}\n        size: {{min: {}, step: {ALIGNMENT}}}\n", min_size[i])
        } else {
            format!("      - type: space\n        id: {id}\n        size: {{tensor_id: raw, axis_id: {id}}}\n        halo: {}\n", halo[i])
        }
    };
    let tensor = |id: &str, input: bool, description: &str, file: &str, sample: &str| -> String {
        format!(
            "  - id: {id}\n    description: {}\n    axes:\n      - type: batch\n      - type: channel\n        channel_names: [{id}]\n{}{}{}    test_tensor:\n      source: {file}\n      sha256: {}\n    sample_tensor:\n      source: {sample}\n      sha256: {}\n    data:\n      type: float32\n",
            quoted(description),
            first_axis(input),
            space_axis("y", 1, input),
            space_axis("x", 2, input),
            hashes[file],
            hashes[sample],
        )
    };
    let mut text = String::new();
    text.push_str("# BioImage Model Zoo model description written by deepcad export-bioimageio\n");
    text.push_str("type: model\n");
    text.push_str(&format!("format_version: {SPEC_FORMAT_VERSION}\n"));
    text.push_str(&format!("name: {}\n", quoted(&package_name(model, options))));
    text.push_str(&format!("description: {}\n", quoted(&package_description(options))));
    text.push_str("authors:\n");
    for author in &authors {
        text.push_str(&format!("  - name: {}\n", quoted(author)));
    }
    text.push_str("cite:\n");
    for (citation, doi) in CITATIONS {
        text.push_str(&format!("  - text: {}\n    doi: {doi}\n", quoted(citation)));
    }
    text.push_str(&format!("license: {}\n", options.license.as_deref().unwrap_or("MIT")));
    text.push_str(&format!("documentation: {DOCUMENTATION_FILE}\n"));
    text.push_str(&format!("covers:\n  - {COVER_FILE}\n"));
    text.push_str("tags: [denoising, self-supervised, fluorescence, calcium-imaging, time-lapse, 3d, unet, deepcad, pytorch]\n");
    text.push_str(&format!("inputs:\n{}", tensor("raw", true, "Raw fluorescence movie in its own intensity units (normalisation is inside the model); time, y and x multiples of 8", TEST_INPUT_FILE, SAMPLE_INPUT_FILE)));
    text.push_str(&format!("outputs:\n{}", tensor("denoised", false, "Denoised movie, same size and intensity units; crop the halo of each tile", TEST_OUTPUT_FILE, SAMPLE_OUTPUT_FILE)));
    text.push_str("weights:\n  torchscript:\n");
    text.push_str(&format!("    source: {WEIGHTS_FILE}\n    sha256: {}\n", hashes[WEIGHTS_FILE]));
    text.push_str(&format!("    pytorch_version: \"{LIBTORCH_VERSION}\"\n"));
    text.push_str(&format!("    comment: {}\n", quoted(&format!("traced with libtorch {LIBTORCH_VERSION} by {}", super::bundle::software_version()))));
    text
}

fn temporal_id(options: &ExportOptions) -> &'static str {
    match options.temporal_axis {
        TemporalAxis::Time => "time",
        TemporalAxis::Z => "z",
    }
}

fn documentation_text(model: &Model, min_size: [usize; 3], options: &ExportOptions) -> String {
    let m = &model.metadata;
    let normalisation = match m.normalization {
        Normalization::Fixed { offset, scale } => format!(
            "fixed statistics from training: the model computes `(x - {offset}) / {scale}`, runs the network and maps back with `y * {scale} + {offset}`"
        ),
        Normalization::PerMovie => "the movie's own statistics: `(x - mean(x)) / std(x)`, the network, and back with `y * std(x) + mean(x)`, where mean and (population) standard deviation are those of the tensor passed to the model (`deepcad denoise` measures them on up to 256 frames spread over the whole movie, so tiled results can differ slightly)".to_string(),
        Normalization::StackMin { normalize_factor } => format!(
            "the 2021 DeepCAD-RT convention: `(x - min(x)) / {normalize_factor}` and back (the minimum added back), where `min(x)` is the minimum of the tensor passed to the model (of each tile when a consumer tiles; `deepcad denoise` uses the whole stack)"
        ),
        Normalization::StackMean { scale_factor } => format!(
            "DeepCAD-RT's convention: `(x - mean(x)) / {scale_factor}` and back, where `mean(x)` is the mean of the tensor passed to the model (of each tile when a consumer tiles; `deepcad denoise` uses the whole stack, so tiled results can differ slightly)"
        ),
    };
    let time = match options.temporal_axis {
        TemporalAxis::Time => "`time`",
        TemporalAxis::Z => "`z` (it is time; declared as a space axis for consumers that tile only space axes)",
    };
    let citations: String = CITATIONS.iter().map(|(c, doi)| format!("- {c} https://doi.org/{doi}\n")).collect();
    format!(
        "# {name}\n\n{description}\n\n\
## What it does\n\
A 3-D U-Net (DeepCAD / DeepCAD-RT architecture, base width {f}, {p} parameters) trained self-supervised on \
interlaced frames of a fluorescence movie. It convolves over time, y and x together.\n\n\
## Input and output\n\
- Tensor layout `batch, channel, time, y, x` (one channel); the first spatial axis is {time}.\n\
- Raw intensities in, denoised intensities out (float32); normalisation is part of the model: {normalisation}.\n\
- Every spatial size must be a multiple of 8, at least {min:?} (`t, y, x`).\n\
- Halo {halo:?} (`t, y, x`): when tiling, overlap tiles and discard that many voxels at each tile edge; \
voxels nearer the border are influenced by zero padding.\n\n\
## Weights\n\
TorchScript traced from Rust with libtorch {LIBTORCH_VERSION} (`deepcad export-bioimageio`). No `pytorch_state_dict` \
is included. Runtimes older than the one that wrote the archive may refuse to load it.\n\n\
## Validation\n\
On export, the saved TorchScript was reloaded and run on `test_input.npy`; it reproduces the engine's output \
(`test_output.npy`) within a relative error of {tolerance:e}. This is a check of faithful export, not of \
denoising quality: judge that on your own data (compare against a temporal average and inspect traces).\n\n\
## Training\n\
Origin: {origin}; epochs completed: {epochs}; software: {software}.\n\n\
## Citation\n{citations}",
        name = package_name(model, options),
        description = package_description(options),
        f = m.base_width,
        p = m.parameters,
        min = min_size,
        halo = m.halo,
        origin = if m.training.origin.is_empty() { "unknown" } else { &m.training.origin },
        epochs = m.training.epochs_completed,
        software = m.training.software,
        tolerance = REPRODUCTION_TOLERANCE,
    )
}

fn hidden_sibling(output: &Path, purpose: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "package".into());
    output.with_file_name(format!(".{name}.{purpose}-{}-{n}", std::process::id()))
}

/// Moves the finished `source` to `target`; an existing target (allowed only with overwrite) is
/// moved aside first and deleted only after the new one is in place.
fn replace(source: &Path, target: &Path, overwrite: bool) -> Result<()> {
    let mut aside = None;
    if target.exists() {
        if !overwrite {
            return Err(Error::usage(format!("{} already exists; choose another output, or allow replacing it", target.display())));
        }
        let old = hidden_sibling(target, "old");
        std::fs::rename(target, &old).map_err(|e| Error::io(target, e))?;
        aside = Some(old);
    }
    if let Err(e) = std::fs::rename(source, target) {
        if let Some(old) = &aside {
            let _ = std::fs::rename(old, target);
        }
        return Err(Error::io(target, e));
    }
    if let Some(old) = aside {
        let removed = if old.is_dir() { std::fs::remove_dir_all(&old) } else { std::fs::remove_file(&old) };
        removed.map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

fn zip_folder(dir: &Path, zip_path: &Path, files: &[(String, String)]) -> Result<()> {
    let file = std::fs::File::create(zip_path).map_err(|e| Error::io(zip_path, e))?;
    let mut writer = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let names = std::iter::once(RDF_FILE).chain(files.iter().map(|(n, _)| n.as_str()));
    for name in names {
        let bytes = std::fs::read(dir.join(name)).map_err(|e| Error::io(dir.join(name), e))?;
        writer.start_file(name, options).map_err(|e| Error::format(zip_path, e.to_string()))?;
        writer.write_all(&bytes).map_err(|e| Error::io(zip_path, e))?;
    }
    let file = writer.finish().map_err(|e| Error::format(zip_path, e.to_string()))?;
    file.sync_all().map_err(|e| Error::io(zip_path, e))
}
