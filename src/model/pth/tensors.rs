//! From the unpickled state dict to tensors: find the weights (also inside a training script's
//! `{'state_dict': …}` wrapper), normalise their names, check every view against its storage and
//! the archive, and copy it out as contiguous, finite float32.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use super::archive::{read_entry, Archive};
use super::pickle_values::{TensorRef, Value};
use crate::{Error, Result};

/// 1 Gi float32 elements (4 GiB), far above DeepCAD (f=64: 16.3 M parameters).
const MAX_TOTAL_ELEMENTS: u64 = 1 << 30;

/// One float32 tensor of a checkpoint, contiguous and row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct PthTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Maps the key spellings found in the wild onto the reference form `Generator.<...>`:
/// `nn.DataParallel` adds `module.`, and RT saves the unwrapped U-Net without `Generator.`.
pub fn normalise_reference_key(key: &str) -> String {
    let mut rest = key;
    while let Some(r) = rest.strip_prefix("module.") {
        rest = r;
    }
    if let Some(r) = rest.strip_prefix("Generator.") {
        rest = r;
        while let Some(r) = rest.strip_prefix("module.") {
            rest = r;
        }
    }
    format!("Generator.{rest}")
}

pub(super) fn state_dict_records(path: &Path, root: &Value) -> Result<Vec<(String, Rc<TensorRef>)>> {
    let Value::Dict(top) = root else {
        return Err(Error::model(
            path,
            format!("holds a pickled {}, not a state dict; save model.state_dict() instead of the model", root.kind()),
        ));
    };
    let all_tensors = !top.is_empty() && top.iter().all(|(_, v)| matches!(v, Value::Tensor(_)));
    // Training scripts often wrap the weights: {'state_dict': {...}, 'epoch': ...}.
    let dict = if all_tensors {
        top.clone()
    } else {
        let nested = top.iter().find_map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Dict(d)) if matches!(&**k, "state_dict" | "model_state_dict") => Some(d.clone()),
            _ => None,
        });
        nested.unwrap_or_else(|| top.clone())
    };
    if dict.is_empty() {
        return Err(Error::model(path, "holds an empty state dict"));
    }
    let mut seen = HashSet::new();
    let mut records = Vec::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let Value::Str(raw) = k else {
            return Err(Error::model(path, format!("state dict key is a {}, not a string", k.kind())));
        };
        let Value::Tensor(t) = v else {
            return Err(Error::model(
                path,
                format!("state dict entry {raw} is a {}, not a tensor; expected a plain model.state_dict()", v.kind()),
            ));
        };
        let name = normalise_reference_key(raw);
        if !seen.insert(name.clone()) {
            return Err(Error::model(
                path,
                format!("tensor {name} appears twice (after dropping module./Generator. prefixes)"),
            ));
        }
        records.push((name, t.clone()));
    }
    Ok(records)
}

pub(super) fn materialise(
    path: &Path,
    archive: &mut Archive,
    prefix: &str,
    records: Vec<(String, Rc<TensorRef>)>,
) -> Result<Vec<PthTensor>> {
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut storage_bytes_total: u64 = 0;
    let mut elements_total: u64 = 0;
    let mut out = Vec::with_capacity(records.len());
    for (name, t) in records {
        let storage = &t.storage;
        if storage.dtype != "Float" {
            return Err(Error::unsupported(
                path,
                format!(
                    "tensor {name} is stored as {}; only float32 checkpoints are supported (convert with model.float() before saving)",
                    storage.dtype
                ),
            ));
        }
        let numel = t.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let numel = numel
            .filter(|&n| n <= MAX_TOTAL_ELEMENTS)
            .ok_or_else(|| Error::model(path, format!("tensor {name} of shape {:?} is impossibly large", t.shape)))?;
        // One past the furthest element the view touches.
        let extent = if numel == 0 {
            0
        } else {
            t.shape
                .iter()
                .zip(&t.stride)
                .try_fold(t.offset.checked_add(1), |acc, (&d, &s)| {
                    Some(acc?.checked_add((d as u64 - 1).checked_mul(s as u64)?))
                })
                .flatten()
                .ok_or_else(|| Error::model(path, format!("tensor {name} has overflowing strides {:?}", t.stride)))?
        };
        if extent > storage.numel {
            return Err(Error::model(
                path,
                format!(
                    "tensor {name} (shape {:?}, offset {}, stride {:?}) reaches element {extent} of storage {} which declares only {} elements",
                    t.shape, t.offset, t.stride, storage.key, storage.numel
                ),
            ));
        }
        if !storages.contains_key(&storage.key) {
            let entry = format!("{prefix}data/{}", storage.key);
            if archive.index_for_name(&entry).is_none() {
                return Err(Error::model(
                    path,
                    format!("tensor {name} refers to storage {entry}, which the archive lacks"),
                ));
            }
            let bytes = read_entry(path, archive, &entry, MAX_TOTAL_ELEMENTS * 4)?;
            storage_bytes_total += bytes.len() as u64;
            storages.insert(storage.key.clone(), bytes);
        }
        let bytes = &storages[&storage.key];
        let needed = extent.saturating_mul(4);
        if (bytes.len() as u64) < needed || (bytes.len() as u64) < storage.numel.saturating_mul(4) {
            return Err(Error::model(
                path,
                format!(
                    "storage {prefix}data/{} holds {} bytes, too few for tensor {name} (needs {} bytes); the file is truncated or corrupt",
                    storage.key,
                    bytes.len(),
                    needed.max(storage.numel.saturating_mul(4))
                ),
            ));
        }
        elements_total += numel;
        // Views sharing one storage are legal (tied weights, slices), but unbounded sharing
        // would multiply a small file into a huge load; twice the stored data is plenty.
        if elements_total * 4 > storage_bytes_total * 2 || elements_total > MAX_TOTAL_ELEMENTS {
            return Err(Error::model(path, "tensors overlap their storages more than the archive size allows"));
        }
        let data = gather(bytes, t.offset as usize, &t.shape, &t.stride, numel as usize);
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::model(
                path,
                format!("tensor {name} holds {} at flat index {i}; the weights are broken", data[i]),
            ));
        }
        out.push(PthTensor { name, shape: t.shape.clone(), data });
    }
    Ok(out)
}

/// Copies a strided view into row-major order; bounds were checked by the caller.
fn gather(bytes: &[u8], offset: usize, shape: &[usize], stride: &[usize], numel: usize) -> Vec<f32> {
    let read = |i: usize| f32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let mut expected = 1usize;
    let mut contiguous = true;
    for (&d, &s) in shape.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            contiguous = false;
        }
        expected *= d;
    }
    if contiguous {
        return (offset..offset + numel).map(read).collect();
    }
    let mut data = Vec::with_capacity(numel);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..numel {
        let at = offset + index.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>();
        data.push(read(at));
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    data
}
