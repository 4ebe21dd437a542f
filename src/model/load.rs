//! Opening a model file, whichever kind the user hands us: our safetensors bundle, or an official
//! DeepCAD / DeepCAD-RT `.pth` checkpoint imported on the fly. Kept apart from the bundle format
//! so that `bundle` knows nothing of the import, which builds on it.

use std::path::Path;

use tch::Device;

use super::bundle::{Model, ModelMetadata};
use super::import::import_reference_checkpoint;
use crate::Result;

impl Model {
    /// Reads only the metadata (cheap; for `deepcad info` and validation before a long run).
    pub fn read_metadata(path: &Path) -> Result<ModelMetadata> {
        if is_reference_checkpoint(path) {
            // Same rule as `load`: a .pth is imported, so `info` describes what `load` would use.
            return Ok(import_reference_checkpoint(path, None, Device::Cpu)?.metadata);
        }
        Model::read_bundle_metadata(path)
    }

    /// The metadata of a bundle whose every weight has been checked as loading checks it (dtype,
    /// shape, finite, in range): what `info` reports, so it never calls a broken model OK.
    pub fn read_validated_metadata(path: &Path) -> Result<ModelMetadata> {
        Ok(Model::load(path, Device::Cpu)?.metadata)
    }

    /// Loads a bundle; an official DeepCAD `.pth` checkpoint is imported on the fly.
    pub fn load(path: &Path, device: Device) -> Result<Model> {
        if is_reference_checkpoint(path) {
            return import_reference_checkpoint(path, None, device);
        }
        Model::load_bundle(path, device)
    }
}

/// Official DeepCAD / DeepCAD-RT checkpoints are recognised by their `.pth` extension.
fn is_reference_checkpoint(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("pth")
}
