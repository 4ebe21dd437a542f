//! The model bundle: one `.safetensors` file holding the weights and, in the safetensors header's
//! metadata under the key `deepcad`, a JSON document with everything inference needs (architecture
//! and width, patch and halo, normalisation and its statistics, format version) and how the model was
//! trained (settings, loss history, source files). One file that standard tools can open, and that
//! loading validates before any weight is used.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::hybrid::HybridHead;
use super::self_supervision::SelfSupervision;
use super::unet3d::{parameter_count, UNet3d};
use crate::geometry::{ALIGNMENT, RECEPTIVE_FIELD_RADIUS};
use crate::{Error, Result};

pub const FORMAT_VERSION: u32 = 1;
/// Largest patch side a bundle, a training or an import may ask for (DeepCAD-RT uses 150; our
/// default is 64): far past any real use, and small enough that no size computed from it overflows.
pub const MAX_PATCH: usize = 1024;
pub const ARCHITECTURE: &str = super::self_supervision::INTERLACED_ARCHITECTURE;
const METADATA_KEY: &str = "deepcad";
/// Where a hybrid model's blind-spot branch and head live among its variables (the U-Net keeps
/// the reference's `Generator.*` names, so interlaced weights load into it unchanged).
pub const HYBRID_ROOT: &str = "BlindSpot";

/// How raw intensities are mapped to network units: `x' = (x - offset) / scale`, and back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Normalization {
    /// Statistics fixed at training time and applied unchanged to every input (our default), so a
    /// voxel's output depends only on its neighbourhood, never on the file or piece it came from.
    Fixed { offset: f64, scale: f64 },
    /// DeepCAD-RT's convention for imported checkpoints: divide by `scale_factor`, subtract the mean
    /// of the whole input stack (computed per input file at inference).
    StackMean { scale_factor: f64 },
    /// The 2021 DeepCAD-RT convention (the official checkpoint was trained with it): subtract the
    /// minimum of the whole input stack, divide by `normalize_factor`. Our pipeline adds the minimum
    /// back, so outputs stay in input units; the 2021 pipeline itself (`--compat deepcad-rt-2021`)
    /// does not.
    StackMin { normalize_factor: f64 },
    /// Each movie's own mean and standard deviation (sampled evenly over at most 256 frames),
    /// measured for every training movie and again for every input at inference: for general
    /// models that meet movies of any brightness, gain and offset (the built-in model).
    PerMovie,
}

/// Largest intensity offset or scale, and the inverse of the smallest scale, a bundle may hold: far
/// past any detector, and small enough that normalised float32 values stay finite.
pub const MAX_INTENSITY: f64 = 1e12;

/// Largest weight magnitude accepted at load: trained DeepCAD weights are of order 1; a value
/// this large means a corrupt or tampered file whose output would overflow.
pub const MAX_WEIGHT: f32 = 1e6;

impl Normalization {
    pub fn validate(&self) -> std::result::Result<(), String> {
        match *self {
            Normalization::Fixed { offset, scale } => {
                if !(offset.abs() <= MAX_INTENSITY && (1.0 / MAX_INTENSITY..=MAX_INTENSITY).contains(&scale)) {
                    return Err(format!(
                        "normalisation offset {offset} / scale {scale} is out of range (|offset| ≤ {MAX_INTENSITY:e}, scale in {:e}..={MAX_INTENSITY:e})",
                        1.0 / MAX_INTENSITY
                    ));
                }
            }
            Normalization::StackMean { scale_factor: factor }
            | Normalization::StackMin { normalize_factor: factor } => {
                let scale_factor = factor;
                if !(1.0 / MAX_INTENSITY..=MAX_INTENSITY).contains(&scale_factor) {
                    return Err(format!(
                        "scale_factor {scale_factor} is out of range ({:e}..={MAX_INTENSITY:e})",
                        1.0 / MAX_INTENSITY
                    ));
                }
            }
            Normalization::PerMovie => {}
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub validation_loss: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub path: String,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub sample_type: String,
}

/// How the model came to be. `settings` is the training settings as JSON, so this record need not
/// change whenever a training knob is added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingRecord {
    pub origin: String,
    pub settings: serde_json::Value,
    pub epochs_completed: usize,
    pub history: Vec<EpochRecord>,
    pub best_epoch: Option<usize>,
    pub sources: Vec<SourceRecord>,
    pub device: String,
    pub software: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    pub format_version: u32,
    /// The network: [`ARCHITECTURE`] for interlaced models, the hybrid's own name otherwise
    /// ([`SelfSupervision::architecture`]), always the one `method` implies.
    pub architecture: String,
    /// The self-supervision the model was trained with; denoising follows it. Absent from bundles
    /// written before it existed: those are interlaced.
    #[serde(default)]
    pub method: SelfSupervision,
    pub base_width: usize,
    /// Training patch, `[t, y, x]` (the network input size used in training).
    pub patch: [usize; 3],
    /// Halo that tiled inference keeps around each tile, `[t, y, x]`: the receptive-field radius.
    pub halo: [usize; 3],
    pub normalization: Normalization,
    pub parameters: usize,
    pub training: TrainingRecord,
}

impl ModelMetadata {
    /// An interlaced model's metadata ([`ModelMetadata::with_method`] for another method).
    pub fn new(base_width: usize, patch: [usize; 3], normalization: Normalization) -> Self {
        let method = SelfSupervision::Interlaced;
        ModelMetadata {
            format_version: FORMAT_VERSION,
            architecture: method.architecture().to_string(),
            method,
            base_width,
            patch,
            halo: method.halo(),
            normalization,
            parameters: parameter_count(base_width),
            training: TrainingRecord { software: software_version(), ..Default::default() },
        }
    }

    /// The same metadata for a model trained with `method`: its architecture, halo and
    /// parameter count follow.
    pub fn with_method(self, method: SelfSupervision) -> Self {
        ModelMetadata {
            architecture: method.architecture().to_string(),
            method,
            halo: method.halo(),
            parameters: parameter_count(self.base_width) + method.extra_parameters(),
            ..self
        }
    }

    /// Every check loading needs, with messages that say what is wrong.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "bundle format version {} is not supported by this deepcad (reads version {FORMAT_VERSION}); use a matching deepcad release",
                self.format_version
            ));
        }
        if self.architecture != self.method.architecture() {
            return Err(format!(
                "architecture '{}' is unknown for the {} method (expected '{}')",
                self.architecture,
                self.method,
                self.method.architecture()
            ));
        }
        if self.base_width == 0 || self.base_width > 256 {
            return Err(format!("base width {} is outside 1..=256", self.base_width));
        }
        if self.patch.iter().any(|&p| p == 0 || p % ALIGNMENT != 0 || p > MAX_PATCH) {
            return Err(format!(
                "patch {:?} must be positive multiples of {ALIGNMENT}, at most {MAX_PATCH}",
                self.patch
            ));
        }
        if self.halo.iter().any(|&h| h > 1024) {
            return Err(format!("halo {:?} is implausibly large", self.halo));
        }

        let parameters = parameter_count(self.base_width) + self.method.extra_parameters();
        if self.parameters != parameters {
            return Err(format!(
                "metadata says {} parameters but a {} network of base width {} has {parameters}",
                self.parameters, self.method, self.base_width
            ));
        }
        self.normalization.validate()
    }
}

pub fn software_version() -> String {
    format!("deepcad {}", env!("CARGO_PKG_VERSION"))
}

/// A network with its bundle metadata, on one device.
pub struct Model {
    pub metadata: ModelMetadata,
    pub vs: nn::VarStore,
    /// The U-Net: the whole network of an interlaced model, the context branch of a hybrid one.
    pub net: UNet3d,
    /// A hybrid model's blind-spot branch and joining head (`hybrid.rs`); `None` when interlaced.
    pub hybrid: Option<HybridHead>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("metadata", &self.metadata).finish()
    }
}

impl Model {
    /// A freshly initialised network (PyTorch default init; seed with `tch::manual_seed`).
    pub fn new(metadata: ModelMetadata, device: Device) -> Result<Model> {
        metadata.validate().map_err(Error::usage)?;
        let vs = nn::VarStore::new(device);
        let net = UNet3d::new(&vs.root(), metadata.base_width);
        let hybrid = match metadata.method {
            SelfSupervision::Interlaced | SelfSupervision::Masked => None,
            SelfSupervision::Hybrid => Some(HybridHead::new(&(vs.root() / HYBRID_ROOT))),
        };
        Ok(Model { metadata, vs, net, hybrid })
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// This model as one trained with `method`: the variables both networks have keep their
    /// values (the U-Net's), the others are freshly initialised (seed with `tch::manual_seed`).
    /// An interlaced model becomes a hybrid one that, with its zero-initialised head output,
    /// computes the same prediction until training teaches its blind spot something.
    pub fn with_method(self, method: SelfSupervision) -> Result<Model> {
        if self.metadata.method == method {
            return Ok(self);
        }
        let device = self.device();
        let converted = Model::new(self.metadata.clone().with_method(method), device)?;
        let kept = self.vs.variables();
        tch::no_grad(|| -> Result<()> {
            for (name, mut var) in converted.vs.variables() {
                if let Some(value) = kept.get(&name) {
                    var.f_copy_(value)?;
                }
            }
            Ok(())
        })?;
        Ok(converted)
    }

    /// Reads only a bundle's metadata (cheap). [`Model::read_metadata`] also accepts a `.pth`.
    pub fn read_bundle_metadata(path: &Path) -> Result<ModelMetadata> {
        let bytes = read_bundle_header(path)?;
        parse_metadata(path, &header_metadata(path, &bytes)?)
    }

    /// Loads a safetensors bundle, checking every weight. [`Model::load`] also accepts a `.pth`.
    pub fn load_bundle(path: &Path, device: Device) -> Result<Model> {
        let bytes = read_bundle_bytes(path)?;
        let tensors = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::model(path, format!("not a safetensors model bundle ({e}); choose a model bundle (.safetensors) made by DeepCAD training or by importing a DeepCAD-RT checkpoint")))?;
        let (_, header) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| Error::model(path, e.to_string()))?;
        let metadata = parse_metadata(path, header.metadata())?;
        let mut model = Model::new(metadata, Device::Cpu).map_err(|e| Error::model(path, e.to_string()))?;
        let mut expected = model.vs.variables();
        let mut names: Vec<String> = expected.keys().cloned().collect();
        names.sort();
        for (name, view) in tensors.tensors() {
            let Some(mut var) = expected.remove(&name) else {
                return Err(Error::model(
                    path,
                    format!("unexpected tensor '{name}' for a base-width {} network", model.metadata.base_width),
                ));
            };
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(Error::model(
                    path,
                    format!("tensor '{name}' is {:?}; only float32 weights are supported", view.dtype()),
                ));
            }
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            if shape != var.size() {
                return Err(Error::model(
                    path,
                    format!("tensor '{name}' has shape {shape:?}, expected {:?}", var.size()),
                ));
            }
            let values: Vec<f32> =
                view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::model(path, format!("tensor '{name}' holds a non-finite value at index {i}; the model is corrupt (retrain or use an earlier epoch)")));
            }
            if let Some(i) = values.iter().position(|v| v.abs() > MAX_WEIGHT) {
                return Err(Error::model(path, format!(
                    "tensor '{name}' holds {} at index {i}, beyond any trained weight (|w| ≤ {MAX_WEIGHT:e}); the model is corrupt (retrain or use an earlier epoch)",
                    values[i]
                )));
            }
            let src = Tensor::from_slice(&values).reshape(&shape);
            tch::no_grad(|| var.f_copy_(&src))?;
        }
        if let Some(missing) = names.iter().find(|n| expected.contains_key(*n)) {
            return Err(Error::model(path, format!("tensor '{missing}' is missing; the bundle is incomplete")));
        }
        if device != Device::Cpu {
            model.vs.set_device(device);
        }
        Ok(model)
    }

    /// Writes the bundle atomically: a temporary file beside the target, renamed when complete, so
    /// a crash never leaves a half model under the final name and the previous one stays loadable.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.metadata.validate().map_err(Error::usage)?;
        let json = serde_json::to_string(&self.metadata).map_err(|e| Error::Usage(e.to_string()))?;
        let mut header = HashMap::new();
        header.insert(METADATA_KEY.to_string(), json);
        let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, var) in self.vs.variables() {
            let cpu = var.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?;
            let shape: Vec<usize> = cpu.size().iter().map(|&d| d as usize).collect();
            let values = Vec::<f32>::try_from(cpu.f_flatten(0, -1)?)?;
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            named.push((name, shape, bytes));
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let views: Vec<(String, safetensors::tensor::TensorView)> = named
            .iter()
            .map(|(n, s, b)| {
                let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .map_err(|e| Error::Usage(e.to_string()))?;
                Ok((n.clone(), view))
            })
            .collect::<Result<_>>()?;
        let bytes = safetensors::serialize(views, Some(header)).map_err(|e| Error::model(path, e.to_string()))?;
        crate::io::write_file_atomically(path, &bytes)
    }
}

/// Largest bundle read: a base-width-256 network is ≈ 1 GB of float32 weights.
const MAX_BUNDLE_BYTES: u64 = 2 << 30;
/// Largest safetensors header (names, shapes and our metadata with its training history).
const MAX_HEADER_BYTES: u64 = 64 << 20;

fn read_bundle_bytes(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    if let Some(bytes) = super::built_in::built_in_bytes(path) {
        return Ok(bytes.to_vec());
    }
    let file = crate::io::open_regular_file(path)?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len > MAX_BUNDLE_BYTES {
        return Err(Error::model(
            path,
            format!("{len} bytes is larger than any model bundle ({MAX_BUNDLE_BYTES} at most)"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_BUNDLE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// The bytes of a bundle up to the end of its safetensors header (8-byte length, then JSON), so
/// describing a bundle never reads its weights, and a bogus length is refused before any read.
fn read_bundle_header(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    if let Some(bytes) = super::built_in::built_in_bytes(path) {
        return Ok(bytes.to_vec());
    }
    let mut file = crate::io::open_regular_file(path)?;
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|e| Error::model(path, format!("not a safetensors model bundle (no header: {e})")))?;
    let header_len = u64::from_le_bytes(length);
    if header_len > MAX_HEADER_BYTES {
        return Err(Error::model(path, format!(
            "not a safetensors model bundle (its header claims {header_len} bytes); choose a model bundle (.safetensors) made by DeepCAD training or by importing a DeepCAD-RT checkpoint"
        )));
    }
    let mut bytes = length.to_vec();
    file.take(header_len).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// The `__metadata__` map of a safetensors header (the 8-byte length and the JSON after it).
fn header_metadata(path: &Path, bytes: &[u8]) -> Result<Option<HashMap<String, String>>> {
    let not_a_bundle = |why: String| {
        Error::model(path, format!("not a safetensors model bundle ({why}); choose a model bundle (.safetensors) made by DeepCAD training or by importing a DeepCAD-RT checkpoint"))
    };
    let length = bytes.get(..8).ok_or_else(|| not_a_bundle("too short".into()))?;
    let header_len = u64::from_le_bytes(length.try_into().expect("8 bytes")) as usize;
    let json =
        bytes.get(8..8usize.saturating_add(header_len)).ok_or_else(|| not_a_bundle("truncated header".into()))?;
    #[derive(Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__")]
        metadata: Option<HashMap<String, String>>,
    }
    let header: Header = serde_json::from_slice(json).map_err(|e| not_a_bundle(e.to_string()))?;
    Ok(header.metadata)
}

fn parse_metadata(path: &Path, header: &Option<HashMap<String, String>>) -> Result<ModelMetadata> {
    let json = header.as_ref().and_then(|m| m.get(METADATA_KEY)).ok_or_else(|| {
        Error::model(path, "safetensors file has no 'deepcad' metadata; it was not written by DeepCAD (DeepCAD-RT checkpoints are .pth files: use them directly or import them)")
    })?;
    let metadata: ModelMetadata =
        serde_json::from_str(json).map_err(|e| Error::model(path, format!("metadata is not valid: {e}")))?;
    metadata.validate().map_err(|m| Error::model(path, m))?;
    // Every bundle we write has the full radius; a smaller one was edited by hand.
    let radius = [metadata.method.temporal_receptive_field_radius(), RECEPTIVE_FIELD_RADIUS, RECEPTIVE_FIELD_RADIUS];
    if metadata.halo.iter().zip(radius).any(|(&h, r)| h < r) {
        return Err(Error::model(
            path,
            format!(
                "halo {:?} is smaller than the {} network's receptive-field radius {radius:?} (t, y, x): tiles would show seams",
                metadata.halo, metadata.method
            ),
        ));
    }
    Ok(metadata)
}
