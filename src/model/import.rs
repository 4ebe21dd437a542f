//! Turns an official DeepCAD / DeepCAD-RT checkpoint (`.pth`, with its `para.yaml` when present)
//! into our model bundle. The imported model keeps the normalisation it was trained with — the
//! stack's mean subtracted (DeepCAD-RT since 2022) or its minimum (the 2021 release, which trained
//! the official checkpoint) — chosen from `para.yaml`'s keys or by the caller, and recorded in the
//! bundle.

use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

use super::bundle::{Model, ModelMetadata, Normalization, MAX_PATCH};
use super::pth::read_pth;
use super::reference_architecture::check_reference_architecture;
use super::reference_params::ReferenceParams;
use crate::tiling::round_up;
use crate::vocabulary::Vocabulary;
use crate::{Error, Result};

/// The `para.yaml` beside a checkpoint, if there is one.
pub fn sidecar_params(pth: &Path) -> Option<PathBuf> {
    let candidate = pth.with_file_name("para.yaml");
    candidate.is_file().then_some(candidate)
}

/// The normalisation a reference checkpoint was trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceNormalization {
    /// DeepCAD-RT since 2022 (`scale_factor`, `overlap_factor` in para.yaml): `x/scale − mean`.
    StackMean,
    /// DeepCAD / DeepCAD-RT 2021 (`normalize_factor`, `gap_s` in para.yaml): `(x − min)/factor`.
    StackMin,
}

impl Vocabulary for ReferenceNormalization {
    const WHAT: &'static str = "reference normalisation";
    const WORDS: &'static [(Self, &'static str)] =
        &[(ReferenceNormalization::StackMean, "stack-mean"), (ReferenceNormalization::StackMin, "stack-min")];
}
crate::spelled!(ReferenceNormalization);

/// The convention `params` says the checkpoint was trained with, and why; the current one
/// (stack mean) when nothing says otherwise.
fn convention_from_params(params: Option<&ReferenceParams>) -> (ReferenceNormalization, &'static str) {
    let has = |key: &str| params.is_some_and(|p| p.entries.iter().any(|(k, _)| k == key));
    if has("scale_factor") || has("overlap_factor") {
        (
            ReferenceNormalization::StackMean,
            "para.yaml has DeepCAD-RT's scale_factor/overlap_factor: stack mean subtracted",
        )
    } else if has("normalize_factor") || has("gap_s") {
        (
            ReferenceNormalization::StackMin,
            "para.yaml has the 2021 release's normalize_factor/gap_s: stack minimum subtracted",
        )
    } else {
        (
            ReferenceNormalization::StackMean,
            "no para.yaml says otherwise: DeepCAD-RT's current convention, stack mean subtracted",
        )
    }
}

pub fn import_reference_checkpoint(pth: &Path, params: Option<&Path>, device: Device) -> Result<Model> {
    import_reference_checkpoint_as(pth, params, None, device)
}

/// Imports `pth` with the normalisation `convention` (or the one its para.yaml implies).
pub fn import_reference_checkpoint_as(
    pth: &Path,
    params: Option<&Path>,
    convention: Option<ReferenceNormalization>,
    device: Device,
) -> Result<Model> {
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
            Some(v) => Err(Error::model(
                pth,
                format!(
                "para.yaml's {} is {v}; a patch size must be a whole number in 1..={MAX_PATCH} (DeepCAD-RT uses 150)",
                keys[0]
            ),
            )),
        }
    };
    let patch_xy = patch_size(&["patch_x", "img_w", "img_h"])?;
    let patch = [patch_size(&["patch_t", "img_s"])?, patch_xy, patch_xy];
    let (convention, why) = match convention {
        Some(chosen) => (chosen, "chosen at import"),
        None => convention_from_params(params.as_ref()),
    };
    let normalization = match convention {
        ReferenceNormalization::StackMean => Normalization::StackMean { scale_factor },
        ReferenceNormalization::StackMin => Normalization::StackMin { normalize_factor: scale_factor },
    };
    let mut metadata = ModelMetadata::new(base_width, patch, normalization);
    metadata.training.origin = format!("imported from DeepCAD checkpoint {} (normalisation {why})", pth.display());
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
