//! Turns an official DeepCAD / DeepCAD-RT checkpoint (`.pth`, with its `para.yaml` when present)
//! into our model bundle. The imported model keeps the reference's normalisation (divide by the
//! scale factor, subtract the input stack's mean), so its results match the reference's.

use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

use super::bundle::{Model, ModelMetadata, Normalization, MAX_PATCH};
use super::pth::{check_reference_architecture, read_pth, ReferenceParams};
use crate::tiling::round_up;
use crate::{Error, Result};

/// The `para.yaml` beside a checkpoint, if there is one.
pub fn sidecar_params(pth: &Path) -> Option<PathBuf> {
    let candidate = pth.with_file_name("para.yaml");
    candidate.is_file().then_some(candidate)
}

pub fn import_reference_checkpoint(pth: &Path, params: Option<&Path>, device: Device) -> Result<Model> {
    let tensors = read_pth(pth)?;
    let base_width = check_reference_architecture(pth, &tensors)?;
    let params = match params.map(Path::to_path_buf).or_else(|| sidecar_params(pth)) {
        Some(p) => Some(ReferenceParams::read(&p)?),
        None => None,
    };
    let get = |keys: &[&str]| params.as_ref().and_then(|p| keys.iter().find_map(|k| p.get_f64(k)));
    if let (Some(p), Some(fmap)) = (&params, params.as_ref().and_then(|p| p.get_usize("fmap"))) {
        if fmap != base_width {
            let _ = p;
            return Err(Error::model(pth, format!("para.yaml says fmap {fmap} but the weights have base width {base_width}; the sidecar belongs to another model")));
        }
    }
    let scale_factor = get(&["scale_factor", "normalize_factor"]).unwrap_or(1.0);
    // para.yaml is user-editable text: every size is checked before any arithmetic on it.
    let patch_size = |keys: &[&str]| -> Result<usize> {
        match get(keys) {
            None => Ok(round_up(150, 8)),
            Some(v) if v.is_finite() && (1.0..=MAX_PATCH as f64).contains(&v) => Ok(round_up(v as usize, 8).max(8)),
            Some(v) => Err(Error::model(pth, format!(
                "para.yaml's {} is {v}; a patch size must be a whole number in 1..={MAX_PATCH} (DeepCAD-RT uses 150)",
                keys[0]
            ))),
        }
    };
    let patch_xy = patch_size(&["patch_x", "img_w", "img_h"])?;
    let patch = [patch_size(&["patch_t", "img_s"])?, patch_xy, patch_xy];
    let mut metadata = ModelMetadata::new(base_width, patch, Normalization::StackMean { scale_factor });
    metadata.training.origin = format!("imported from DeepCAD checkpoint {}", pth.display());
    if let Some(p) = &params {
        let settings: serde_json::Map<String, serde_json::Value> =
            p.entries.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        metadata.training.settings = serde_json::Value::Object(settings);
    }
    let model = Model::new(metadata, Device::Cpu).map_err(|e| Error::model(pth, e.to_string()))?;
    let mut variables = model.vs.variables();
    for tensor in &tensors {
        let Some(var) = variables.get_mut(&tensor.name) else {
            return Err(Error::model(pth, format!("tensor '{}' has no place in the network", tensor.name)));
        };
        let shape: Vec<i64> = tensor.shape.iter().map(|&d| d as i64).collect();
        let source = Tensor::f_from_slice(&tensor.data)?.f_reshape(&shape)?;
        tch::no_grad(|| var.f_copy_(&source))?;
    }
    let mut model = model;
    if device != Device::Cpu {
        model.vs.set_device(device);
    }
    Ok(model)
}
