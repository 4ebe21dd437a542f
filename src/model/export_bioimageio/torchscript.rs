//! The TorchScript side of the package: the engine's forward pass it must reproduce, the network
//! written without any size read so one trace serves every input size, and the tracing itself.

use std::collections::HashMap;
use std::path::Path;

use tch::{CModule, Device, Kind, Tensor};

use crate::geometry::LEVELS;
use crate::model::{Model, Normalization};
use crate::{Error, Result};

/// The engine's answer: normalise, the bundle's network, denormalise (as `deepcad denoise` does on
/// one whole tile, with the per-tensor mean for stack-mean models).
pub(super) fn engine_forward(model: &Model, input: &Tensor) -> Result<Tensor> {
    let device = model.device();
    let x = input.f_to_device(device)?;
    let y = normalised_forward(&model.metadata.normalization, &x, &|x| model.net.forward(x))?;
    Ok(y.f_to_device(Device::Cpu)?)
}

/// `(x - offset) / scale`, the network, and back. A fixed offset is a scalar (a constant in the
/// trace); a stack-mean model's offset is the mean of `x`, computed inside the traced graph.
pub(super) fn normalised_forward(
    normalization: &Normalization,
    x: &Tensor,
    net: &dyn Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
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
pub(super) fn trace_and_save(model: &Model, example: &Tensor, path: &Path) -> Result<()> {
    let weights: HashMap<String, Tensor> = model
        .vs
        .variables()
        .into_iter()
        .map(|(name, var)| {
            Ok((name, var.f_detach()?.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?.copy()))
        })
        .collect::<Result<_>>()?;
    let normalization = model.metadata.normalization.clone();
    let mut failure: Option<Error> = None;
    let mut closure = |inputs: &[Tensor]| -> Vec<Tensor> {
        let run =
            || -> Result<Tensor> { normalised_forward(&normalization, &inputs[0], &|x| traceable_unet(&weights, x)) };
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
pub(super) fn traceable_unet(w: &HashMap<String, Tensor>, x: &Tensor) -> Result<Tensor> {
    let conv = |name: &str, x: &Tensor, padding: i64| -> Result<Tensor> {
        let weight =
            w.get(&format!("{name}.weight")).ok_or_else(|| Error::Usage(format!("model has no weight {name}")))?;
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

pub(super) fn max_relative_difference(a: &Tensor, b: &Tensor) -> Result<f64> {
    let diff = a.f_sub(b)?.f_abs()?.f_max()?.f_double_value(&[])?;
    let scale = b.f_abs()?.f_max()?.f_double_value(&[])?.max(1e-12);
    Ok(diff / scale)
}
