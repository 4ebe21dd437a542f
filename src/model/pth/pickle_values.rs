//! What the restricted unpickler may build: plain values, tensor and storage references (inert
//! records, never code) and the allow-list of globals a `torch.save` state dict names.

use std::path::Path;
use std::rc::Rc;

use crate::{Error, Result};

/// Names a checkpoint may import; each resolves to an inert marker that REDUCE interprets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    /// `torch.<Dtype>Storage`; the payload is the dtype part of the name.
    StorageType(&'static str),
}

const STORAGE_TYPES: &[&str] = &[
    "Float",
    "Double",
    "Half",
    "BFloat16",
    "Long",
    "Int",
    "Short",
    "Char",
    "Byte",
    "Bool",
    "ComplexFloat",
    "ComplexDouble",
    "QInt8",
    "QUInt8",
    "QInt32",
];

pub(super) fn resolve_global(path: &Path, module: &str, name: &str) -> Result<Global> {
    match (module, name) {
        ("collections", "OrderedDict") => return Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => return Ok(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => return Ok(Global::RebuildParameter),
        _ => {}
    }
    if module == "torch" {
        if let Some(dtype) = name.strip_suffix("Storage") {
            if let Some(known) = STORAGE_TYPES.iter().find(|d| **d == dtype) {
                return Ok(Global::StorageType(known));
            }
        }
    }
    Err(Error::model(
        path,
        format!("checkpoint uses {module}.{name}, which is not a tensor; refusing to load untrusted code"),
    ))
}

#[derive(Debug)]
pub(super) struct StorageRef {
    pub(super) dtype: &'static str,
    pub(super) key: String,
    pub(super) numel: u64,
}

#[derive(Debug)]
pub(super) struct TensorRef {
    pub(super) storage: Rc<StorageRef>,
    pub(super) offset: u64,
    pub(super) shape: Vec<usize>,
    pub(super) stride: Vec<usize>,
}

/// Containers are shared through `Rc` so BINGET is O(1); the mutable ones are copied on write,
/// which keeps Python's semantics for what torch emits without reference cycles.
#[derive(Debug, Clone)]
pub(super) enum Value {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<Vec<Value>>),
    Dict(Rc<Vec<(Value, Value)>>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "bool",
            Value::Int(_) => "int",
            Value::Float => "float",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "class or function",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }
}
