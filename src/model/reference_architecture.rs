//! The reference DeepCAD / DeepCAD-RT 3-D U-Net as a list of tensor names and shapes, and the
//! check that a checkpoint's tensors are exactly those (the base width inferred, nothing missing,
//! nothing extra) before the import maps them onto our network.

use std::collections::HashMap;
use std::path::Path;

use super::pth::PthTensor;
use crate::{Error, Result};

/// Every (name, shape) of the reference U-Net (spec §2.1) with base width `f`, in module order.
pub fn reference_shapes(f: usize) -> Vec<(String, Vec<usize>)> {
    let widths = [f, 2 * f, 4 * f, 8 * f];
    let mut shapes = Vec::with_capacity(30);
    let mut conv = |prefix: String, c_out: usize, c_in: usize, k: usize| {
        shapes.push((format!("{prefix}.weight"), vec![c_out, c_in, k, k, k]));
        shapes.push((format!("{prefix}.bias"), vec![c_out]));
    };
    let mut c_in = 1;
    for (level, &c_out) in widths.iter().enumerate() {
        // pytorch-3dunet's encoder DoubleConv: conv1 goes to max(out/2, in).
        let mid = (c_out / 2).max(c_in);
        let block = format!("Generator.encoders.{level}.basic_module");
        conv(format!("{block}.SingleConv1.conv"), mid, c_in, 3);
        conv(format!("{block}.SingleConv2.conv"), c_out, mid, 3);
        c_in = c_out;
    }
    let mut deeper = widths[3];
    for level in 0..3 {
        let skip = widths[2 - level];
        let block = format!("Generator.decoders.{level}.basic_module");
        conv(format!("{block}.SingleConv1.conv"), skip, skip + deeper, 3);
        conv(format!("{block}.SingleConv2.conv"), skip, skip, 3);
        deeper = skip;
    }
    conv("Generator.final_conv".to_string(), 1, f, 1);
    shapes
}

/// The base width `f` of a reference state dict, after checking that its tensors are exactly the
/// 30 of the reference U-Net with that width (same names, same shapes, nothing extra).
pub fn infer_base_width(tensors: &[PthTensor]) -> Result<usize> {
    check_reference_architecture(Path::new("state dict"), tensors)
}

/// As [`infer_base_width`], naming `path` in the errors.
pub fn check_reference_architecture(path: &Path, tensors: &[PthTensor]) -> Result<usize> {
    const PROBE: &str = "Generator.encoders.0.basic_module.SingleConv2.conv.weight";
    let probe = tensors.iter().find(|t| t.name == PROBE).ok_or_else(|| {
        Error::model(path, format!("has no tensor {PROBE}; this is not a DeepCAD/DeepCAD-RT 3-D U-Net state dict"))
    })?;
    let f = match probe.shape.as_slice() {
        [f, ..] if probe.shape.len() == 5 && (1..=4096).contains(f) => *f,
        other => {
            return Err(Error::model(
                path,
                format!("{PROBE} has shape {other:?}; expected [f, f/2, 3, 3, 3] with a base width f of 1..4096"),
            ))
        }
    };
    let expected = reference_shapes(f);
    let mut by_name: HashMap<&str, &PthTensor> = HashMap::new();
    for t in tensors {
        if by_name.insert(t.name.as_str(), t).is_some() {
            return Err(Error::model(path, format!("tensor {} appears twice", t.name)));
        }
    }
    for (name, shape) in &expected {
        match by_name.get(name.as_str()) {
            None => {
                return Err(Error::model(
                    path,
                    format!("misses tensor {name} of the f={f} reference U-Net (expected shape {shape:?})"),
                ))
            }
            Some(t) if t.shape != *shape => {
                return Err(Error::model(
                    path,
                    format!("tensor {name} has shape {:?}; the f={f} reference U-Net needs {shape:?}", t.shape),
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = tensors.iter().find(|t| !expected.iter().any(|(n, _)| *n == t.name)) {
        return Err(Error::model(
            path,
            format!(
                "holds tensor {} which the reference U-Net does not have (norm layers or another architecture?)",
                extra.name
            ),
        ));
    }
    Ok(f)
}
