//! Reads the official DeepCAD / DeepCAD-RT PyTorch checkpoints (`.pth`) without Python and
//! without running anything from the file.
//!
//! `torch.save` writes a zip archive: `<name>/data.pkl` (a pickle describing the state dict),
//! `<name>/data/<key>` (one raw little-endian storage per tensor) and a few small text entries.
//! A pickle is a program for a stack machine, and Python's unpickler will import and call any
//! function it names, so the file is untrusted input. This module interprets only the opcodes
//! `torch.save` emits, resolves only an allow-list of names into inert markers (never code),
//! and checks every size against the archive before it allocates or copies anything.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use crate::{Error, Result};

/// data.pkl of a DeepCAD state dict is about 9 KB whatever the width; 4 MiB is generous.
const MAX_PICKLE_BYTES: u64 = 4 << 20;
/// Nested MARKs; torch nests three deep.
const MAX_MARK_DEPTH: usize = 64;
const MAX_MEMO_ENTRIES: usize = 1 << 20;
/// Entries copied when a memoised list or dict is modified (copy-on-write); bounds the work a
/// hostile pickle can cause by memoising and modifying the same container over and over.
const MAX_COPY_WORK: usize = 50_000_000;
const MAX_DIMS: usize = 5;
/// 1 Gi float32 elements (4 GiB), far above DeepCAD (f=64: 16.3 M parameters).
const MAX_TOTAL_ELEMENTS: u64 = 1 << 30;
/// Deflate cannot shrink data by more than about 1032:1; a larger claimed ratio is a zip bomb.
const MAX_DEFLATE_RATIO: u64 = 1100;
const MAX_PARAMS_BYTES: u64 = 64 << 10;

/// One float32 tensor of a checkpoint, contiguous and row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct PthTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads every tensor of a torch zip-format state dict, in the order the pickle stores them.
/// Names are normalised with [`normalise_reference_key`] (so `module.` prefixes are dropped and a
/// missing `Generator.` prefix is added). Only float32 tensors are accepted.
pub fn read_pth(path: &Path) -> Result<Vec<PthTensor>> {
    let file = crate::io::open_regular_file(path)?;
    let mut magic = [0u8; 2];
    let got = (&file).read(&mut magic).map_err(|e| Error::io(path, e))?;
    if got == 2 && magic[0] == 0x80 && magic[1] <= 5 {
        return Err(Error::unsupported(
            path,
            "this is a legacy (pre-1.6) torch checkpoint, not the zip format; re-save it with a \
             current torch: torch.save(torch.load(old, map_location='cpu'), new)",
        ));
    }
    let file = crate::io::open_regular_file(path)?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| Error::model(path, format!("not a torch checkpoint (zip archive): {e}")))?;

    let prefix = archive_prefix(path, &archive)?;
    check_byte_order(path, &mut archive, &prefix)?;
    let pickle = read_entry(
        path,
        &mut archive,
        &format!("{prefix}data.pkl"),
        MAX_PICKLE_BYTES,
    )?;
    let root = Unpickler::new(path, &pickle).run()?;
    let records = state_dict_records(path, &root)?;
    materialise(path, &mut archive, &prefix, records)
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

/// The flat `key: value` lines of DeepCAD's `para.yaml` sidecar, in file order, values unquoted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferenceParams {
    pub entries: Vec<(String, String)>,
}

impl ReferenceParams {
    pub fn read(path: &Path) -> Result<Self> {
        let file = crate::io::open_regular_file(path)?;
        let mut bytes = Vec::new();
        file.take(MAX_PARAMS_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        if bytes.len() as u64 > MAX_PARAMS_BYTES {
            return Err(Error::format(
                path,
                format!("is larger than {MAX_PARAMS_BYTES} bytes; a DeepCAD para.yaml is a few hundred bytes"),
            ));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::format(path, "is not UTF-8 text; expected DeepCAD's para.yaml"))?;
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut entries: Vec<(String, String)> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let number = number + 1;
            let trimmed = line.trim_end();
            if trimmed.trim_start().is_empty()
                || trimmed.trim_start().starts_with('#')
                || trimmed == "---"
            {
                continue;
            }
            if trimmed.starts_with(char::is_whitespace) || trimmed.starts_with('-') {
                return Err(Error::format(
                    path,
                    format!("line {number} is nested YAML ({trimmed:?}); DeepCAD's para.yaml holds flat `key: value` lines only"),
                ));
            }
            let Some((key, value)) = trimmed.split_once(':') else {
                return Err(Error::format(
                    path,
                    format!("line {number} ({trimmed:?}) is not a `key: value` line"),
                ));
            };
            let key = key.trim().to_string();
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(Error::format(
                    path,
                    format!("line {number}: key {key:?} appears twice"),
                ));
            }
            entries.push((key, unquote(strip_comment(value.trim()))));
        }
        Ok(ReferenceParams { entries })
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get_str(key)?
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
    }

    pub fn get_usize(&self, key: &str) -> Option<usize> {
        self.get_str(key)?.parse::<usize>().ok()
    }
}

fn strip_comment(value: &str) -> &str {
    if value.starts_with('\'') || value.starts_with('"') {
        return value;
    }
    match value.find(" #") {
        Some(i) => value[..i].trim_end(),
        None => value,
    }
}

fn unquote(value: &str) -> String {
    let bytes = value.as_bytes();
    if bytes.len() >= 2 {
        let (first, last) = (bytes[0], bytes[bytes.len() - 1]);
        if first == last && (first == b'\'' || first == b'"') {
            let inner = &value[1..value.len() - 1];
            // YAML single quotes escape a quote by doubling it.
            return if first == b'\'' {
                inner.replace("''", "'")
            } else {
                inner.to_string()
            };
        }
    }
    value.to_string()
}

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
        Error::model(
            path,
            format!("has no tensor {PROBE}; this is not a DeepCAD/DeepCAD-RT 3-D U-Net state dict"),
        )
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
            return Err(Error::model(
                path,
                format!("tensor {} appears twice", t.name),
            ));
        }
    }
    for (name, shape) in &expected {
        match by_name.get(name.as_str()) {
            None => return Err(Error::model(
                path,
                format!(
                    "misses tensor {name} of the f={f} reference U-Net (expected shape {shape:?})"
                ),
            )),
            Some(t) if t.shape != *shape => {
                return Err(Error::model(
                    path,
                    format!(
                        "tensor {name} has shape {:?}; the f={f} reference U-Net needs {shape:?}",
                        t.shape
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = tensors
        .iter()
        .find(|t| !expected.iter().any(|(n, _)| *n == t.name))
    {
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

// ---------------------------------------------------------------------------------------------
// Archive

type Archive = zip::ZipArchive<BufReader<File>>;

/// torch names the top folder after the file stem (`archive/` for older versions); data.pkl is
/// the only pickle at depth one.
fn archive_prefix(path: &Path, archive: &Archive) -> Result<String> {
    let mut found: Vec<&str> = archive
        .file_names()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .collect();
    found.sort_unstable();
    match found.as_slice() {
        [one] => Ok(one[..one.len() - "data.pkl".len()].to_string()),
        [] => Err(Error::model(
            path,
            "is a zip archive but holds no <name>/data.pkl; not a torch checkpoint",
        )),
        many => Err(Error::model(
            path,
            format!(
                "holds several pickles ({}); expected one state dict",
                many.join(", ")
            ),
        )),
    }
}

fn check_byte_order(path: &Path, archive: &mut Archive, prefix: &str) -> Result<()> {
    let name = format!("{prefix}byteorder");
    if archive.index_for_name(&name).is_none() {
        return Ok(()); // written since torch 2.1; before that, always little-endian
    }
    let bytes = read_entry(path, archive, &name, 16)?;
    if String::from_utf8_lossy(&bytes).trim() != "little" {
        return Err(Error::unsupported(
            path,
            "stores big-endian tensors; only little-endian checkpoints are supported",
        ));
    }
    Ok(())
}

fn read_entry(path: &Path, archive: &mut Archive, name: &str, limit: u64) -> Result<Vec<u8>> {
    let entry = archive
        .by_name(name)
        .map_err(|e| Error::model(path, format!("cannot open archive entry {name}: {e}")))?;
    let declared = entry.size();
    if declared > limit {
        return Err(Error::model(
            path,
            format!("archive entry {name} claims {declared} bytes, more than the {limit} allowed"),
        ));
    }
    if entry.compression() != zip::CompressionMethod::Stored
        && declared > entry.compressed_size().saturating_mul(MAX_DEFLATE_RATIO)
    {
        return Err(Error::model(
            path,
            format!("archive entry {name} claims an impossible compression ratio"),
        ));
    }
    let mut bytes = Vec::with_capacity(declared as usize);
    entry
        .take(declared + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Error::model(
                path,
                format!("archive entry {name} is unreadable (truncated or corrupt): {e}"),
            )
        })?;
    if bytes.len() as u64 != declared {
        return Err(Error::model(
            path,
            format!("archive entry {name} holds {} bytes but its header says {declared}; the file is corrupt", bytes.len()),
        ));
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------------------------
// The pickle subset

/// Names a checkpoint may import; each resolves to an inert marker that REDUCE interprets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Global {
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

fn resolve_global(path: &Path, module: &str, name: &str) -> Result<Global> {
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
struct StorageRef {
    dtype: &'static str,
    key: String,
    numel: u64,
}

#[derive(Debug)]
struct TensorRef {
    storage: Rc<StorageRef>,
    offset: u64,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// Containers are shared through `Rc` so BINGET is O(1); the mutable ones are copied on write,
/// which keeps Python's semantics for what torch emits without reference cycles.
#[derive(Debug, Clone)]
enum Value {
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
    fn kind(&self) -> &'static str {
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

struct Unpickler<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stacks saved by MARK; items below a mark are out of reach, as in Python's unpickler.
    marks: Vec<Vec<Value>>,
    memo: HashMap<u32, Value>,
    copy_work: usize,
}

impl<'a> Unpickler<'a> {
    fn new(path: &'a Path, bytes: &'a [u8]) -> Self {
        Unpickler {
            path,
            bytes,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            copy_work: 0,
        }
    }

    fn err(&self, message: impl std::fmt::Display) -> Error {
        Error::model(
            self.path,
            format!(
                "corrupt checkpoint pickle (data.pkl byte {}): {message}",
                self.pos
            ),
        )
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(format!("needs {n} more bytes but the pickle ends"))),
        }
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn string(&mut self, len: u64) -> Result<Value> {
        let len = usize::try_from(len).map_err(|_| self.err("string length overflows"))?;
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| self.err("string is not UTF-8"))?;
        Ok(Value::Str(Rc::from(s)))
    }
    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.bytes[self.pos..];
        let end = rest
            .iter()
            .take(256)
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("GLOBAL name is not terminated"))?;
        let s =
            std::str::from_utf8(&rest[..end]).map_err(|_| self.err("GLOBAL name is not UTF-8"))?;
        self.pos += end + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }
    fn top_mut(&mut self) -> Result<&mut Value> {
        if self.stack.is_empty() {
            return Err(self.err("stack underflow"));
        }
        Ok(self.stack.last_mut().expect("checked non-empty"))
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let outer = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no MARK to pop to"))?;
        Ok(std::mem::replace(&mut self.stack, outer))
    }
    fn memo_put(&mut self, index: u32) -> Result<()> {
        let top = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| self.err("memoising an empty stack"))?;
        if self.memo.len() >= MAX_MEMO_ENTRIES && !self.memo.contains_key(&index) {
            return Err(self.err("too many memo entries"));
        }
        self.memo.insert(index, top);
        Ok(())
    }
    fn memo_get(&mut self, index: u32) -> Result<()> {
        let v = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| self.err(format!("memo entry {index} does not exist")))?;
        self.stack.push(v);
        Ok(())
    }
    fn charge_copy(&mut self, len: usize) -> Result<()> {
        self.copy_work = self.copy_work.saturating_add(len);
        if self.copy_work > MAX_COPY_WORK {
            return Err(self.err("too much container copying; refusing a hostile pickle"));
        }
        Ok(())
    }
    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if items.len() % 2 != 0 {
            return Err(self.err("SETITEMS with an odd number of items"));
        }
        let top = self.top_mut()?;
        let Value::Dict(dict) = top else {
            let kind = top.kind();
            return Err(self.err(format!("SETITEM on a {kind}, not a dict")));
        };
        let shared = Rc::strong_count(dict) > 1;
        let len = dict.len();
        if shared {
            self.charge_copy(len)?;
        }
        let Some(Value::Dict(dict)) = self.stack.last_mut() else {
            unreachable!("checked above")
        };
        let dict = Rc::make_mut(dict);
        let mut items = items.into_iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            dict.push((k, v));
        }
        Ok(())
    }
    fn append_items(&mut self, items: Vec<Value>) -> Result<()> {
        let top = self.top_mut()?;
        let Value::List(list) = top else {
            let kind = top.kind();
            return Err(self.err(format!("APPEND on a {kind}, not a list")));
        };
        let shared = Rc::strong_count(list) > 1;
        let len = list.len();
        if shared {
            self.charge_copy(len)?;
        }
        let Some(Value::List(list)) = self.stack.last_mut() else {
            unreachable!("checked above")
        };
        Rc::make_mut(list).extend(items);
        Ok(())
    }

    fn run(mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(self.err(format!("pickle protocol {proto} is newer than 5")));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME length: a buffering hint only
                }
                b'}' => self.stack.push(Value::Dict(Rc::new(Vec::new()))),
                b']' => self.stack.push(Value::List(Rc::new(Vec::new()))),
                b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
                b'N' => self.stack.push(Value::None),
                0x88 | 0x89 => self.stack.push(Value::Bool),
                b'(' => {
                    if self.marks.len() >= MAX_MARK_DEPTH {
                        return Err(self.err("MARKs nested too deeply"));
                    }
                    let outer = std::mem::take(&mut self.stack);
                    self.marks.push(outer);
                }
                b'X' => {
                    let n = self.u32()?;
                    let v = self.string(n.into())?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = self.u8()?;
                    let v = self.string(n.into())?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = self.u64()?;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                b'q' => {
                    let i = self.u8()?;
                    self.memo_put(i.into())?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i =
                        u32::try_from(self.memo.len()).map_err(|_| self.err("memo overflow"))?;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()?;
                    self.memo_get(i.into())?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(v.into()));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return Err(self.err(format!("integer of {n} bytes is too large")));
                    }
                    let raw = self.take(n)?;
                    let mut buf = [0u8; 8];
                    buf[..n].copy_from_slice(raw);
                    if n > 0 && n < 8 && raw[n - 1] & 0x80 != 0 {
                        buf[n..].fill(0xff); // sign-extend two's complement
                    }
                    self.stack.push(Value::Int(i64::from_le_bytes(buf)));
                }
                b'G' => {
                    self.take(8)?; // a float's value never matters for a state dict
                    self.stack.push(Value::Float);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(self.err("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append_items(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append_items(items)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = resolve_global(self.path, module, name)?;
                    self.stack.push(Value::Global(g));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                        return Err(self.err("STACK_GLOBAL needs two strings"));
                    };
                    let g = resolve_global(self.path, module, name)?;
                    self.stack.push(Value::Global(g));
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent_load(&pid)?;
                    self.stack.push(storage);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(&callable, &args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD sets attributes; torch uses it for the state dict's `_metadata`,
                    // which only records module versions.
                    let _state = self.pop()?;
                    let top = self.top_mut()?;
                    if !matches!(top, Value::Dict(_) | Value::Tensor(_)) {
                        let kind = top.kind();
                        return Err(self.err(format!("BUILD on a {kind}")));
                    }
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                other => {
                    return Err(self.err(format!(
                        "opcode 0x{other:02x} is not one torch.save emits for a state dict"
                    )))
                }
            }
        }
    }

    /// torch's persistent id: ('storage', torch.<Dtype>Storage, key, location, numel).
    fn persistent_load(&self, pid: &Value) -> Result<Value> {
        let Value::Tuple(items) = pid else {
            return Err(self.err(format!("persistent id is a {}, not a tuple", pid.kind())));
        };
        match items.as_slice() {
            [Value::Str(tag), Value::Global(Global::StorageType(dtype)), Value::Str(key), Value::Str(_location), Value::Int(numel)]
                if &**tag == "storage" =>
            {
                let valid_key = !key.is_empty()
                    && key.len() <= 64
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid_key {
                    return Err(self.err(format!("storage key {key:?} is not a plain name")));
                }
                let numel = u64::try_from(*numel).map_err(|_| self.err(format!("storage {key} has negative size {numel}")))?;
                Ok(Value::Storage(Rc::new(StorageRef { dtype, key: key.to_string(), numel })))
            }
            _ => Err(self.err("persistent id is not a ('storage', torch.<Type>Storage, key, location, numel) record")),
        }
    }

    fn reduce(&self, callable: &Value, args: &Value) -> Result<Value> {
        let Value::Tuple(args) = args else {
            return Err(self.err(format!(
                "REDUCE arguments are a {}, not a tuple",
                args.kind()
            )));
        };
        match callable {
            Value::Global(Global::OrderedDict) if args.is_empty() => {
                Ok(Value::Dict(Rc::new(Vec::new())))
            }
            Value::Global(Global::OrderedDict) => Err(self.err("OrderedDict built from arguments")),
            Value::Global(Global::RebuildTensorV2) => self.rebuild_tensor(args),
            Value::Global(Global::RebuildParameter) => match args.first() {
                Some(t @ Value::Tensor(_)) => Ok(t.clone()),
                _ => Err(self.err("_rebuild_parameter without a tensor")),
            },
            other => Err(self.err(format!("REDUCE calls a {}", other.kind()))),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    fn rebuild_tensor(&self, args: &[Value]) -> Result<Value> {
        if !(6..=7).contains(&args.len()) {
            return Err(self.err(format!("_rebuild_tensor_v2 with {} arguments", args.len())));
        }
        let Value::Storage(storage) = &args[0] else {
            return Err(self.err(format!("tensor storage is a {}", args[0].kind())));
        };
        let Value::Int(offset) = args[1] else {
            return Err(self.err("tensor offset is not an integer"));
        };
        let offset = u64::try_from(offset)
            .map_err(|_| self.err(format!("negative tensor offset {offset}")))?;
        let shape = self.dims(&args[2], "size")?;
        let stride = self.dims(&args[3], "stride")?;
        if shape.len() != stride.len() {
            return Err(self.err(format!(
                "tensor size has {} dims but stride {}",
                shape.len(),
                stride.len()
            )));
        }
        if shape.len() > MAX_DIMS {
            return Err(self.err(format!(
                "tensor has {} dimensions; at most {MAX_DIMS} are supported",
                shape.len()
            )));
        }
        Ok(Value::Tensor(Rc::new(TensorRef {
            storage: storage.clone(),
            offset,
            shape,
            stride,
        })))
    }

    fn dims(&self, v: &Value, what: &str) -> Result<Vec<usize>> {
        let Value::Tuple(items) = v else {
            return Err(self.err(format!("tensor {what} is a {}, not a tuple", v.kind())));
        };
        items
            .iter()
            .map(|d| match d {
                Value::Int(n) if *n >= 0 => usize::try_from(*n)
                    .map_err(|_| self.err(format!("tensor {what} {n} too large"))),
                _ => Err(self.err(format!(
                    "tensor {what} holds {d:?}, not a non-negative integer"
                ))),
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// From the unpickled state dict to tensors

fn state_dict_records(path: &Path, root: &Value) -> Result<Vec<(String, Rc<TensorRef>)>> {
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
            (Value::Str(k), Value::Dict(d))
                if matches!(&**k, "state_dict" | "model_state_dict") =>
            {
                Some(d.clone())
            }
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
            return Err(Error::model(
                path,
                format!("state dict key is a {}, not a string", k.kind()),
            ));
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

fn materialise(
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
        let numel = t
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let numel = numel.filter(|&n| n <= MAX_TOTAL_ELEMENTS).ok_or_else(|| {
            Error::model(
                path,
                format!("tensor {name} of shape {:?} is impossibly large", t.shape),
            )
        })?;
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
                .ok_or_else(|| {
                    Error::model(
                        path,
                        format!("tensor {name} has overflowing strides {:?}", t.stride),
                    )
                })?
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
            return Err(Error::model(
                path,
                "tensors overlap their storages more than the archive size allows",
            ));
        }
        let data = gather(
            bytes,
            t.offset as usize,
            &t.shape,
            &t.stride,
            numel as usize,
        );
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::model(
                path,
                format!(
                    "tensor {name} holds {} at flat index {i}; the weights are broken",
                    data[i]
                ),
            ));
        }
        out.push(PthTensor {
            name,
            shape: t.shape.clone(),
            data,
        });
    }
    Ok(out)
}

/// Copies a strided view into row-major order; bounds were checked by the caller.
fn gather(
    bytes: &[u8],
    offset: usize,
    shape: &[usize],
    stride: &[usize],
    numel: usize,
) -> Vec<f32> {
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
