//! The pickle machine: interprets only the opcodes `torch.save` emits, resolves globals through
//! the allow-list in [`super::pickle_values`], and bounds the stack, marks, memo and copying so
//! that a hostile data.pkl fails fast instead of exhausting memory.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use super::pickle_values::{resolve_global, Global, StorageRef, TensorRef, Value};
use crate::{Error, Result};

/// Nested MARKs; torch nests three deep.
const MAX_MARK_DEPTH: usize = 64;
const MAX_MEMO_ENTRIES: usize = 1 << 20;
/// Entries copied when a memoised list or dict is modified (copy-on-write); bounds the work a
/// hostile pickle can cause by memoising and modifying the same container over and over.
const MAX_COPY_WORK: usize = 50_000_000;
const MAX_DIMS: usize = 5;

pub(super) struct Unpickler<'a> {
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
    pub(super) fn new(path: &'a Path, bytes: &'a [u8]) -> Self {
        Unpickler { path, bytes, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), copy_work: 0 }
    }

    fn err(&self, message: impl std::fmt::Display) -> Error {
        Error::model(self.path, format!("corrupt checkpoint pickle (data.pkl byte {}): {message}", self.pos))
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
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap_or_default()))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }
    fn string(&mut self, len: u64) -> Result<Value> {
        let len = usize::try_from(len).map_err(|_| self.err("string length overflows"))?;
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| self.err("string is not UTF-8"))?;
        Ok(Value::Str(Rc::from(s)))
    }
    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.bytes[self.pos..];
        let end =
            rest.iter().take(256).position(|&b| b == b'\n').ok_or_else(|| self.err("GLOBAL name is not terminated"))?;
        let s = std::str::from_utf8(&rest[..end]).map_err(|_| self.err("GLOBAL name is not UTF-8"))?;
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
        let outer = self.marks.pop().ok_or_else(|| self.err("no MARK to pop to"))?;
        Ok(std::mem::replace(&mut self.stack, outer))
    }
    fn memo_put(&mut self, index: u32) -> Result<()> {
        let top = self.stack.last().cloned().ok_or_else(|| self.err("memoising an empty stack"))?;
        if self.memo.len() >= MAX_MEMO_ENTRIES && !self.memo.contains_key(&index) {
            return Err(self.err("too many memo entries"));
        }
        self.memo.insert(index, top);
        Ok(())
    }
    fn memo_get(&mut self, index: u32) -> Result<()> {
        let v = self.memo.get(&index).cloned().ok_or_else(|| self.err(format!("memo entry {index} does not exist")))?;
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
        let Some(Value::Dict(dict)) = self.stack.last_mut() else { unreachable!("checked above") };
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
        let Some(Value::List(list)) = self.stack.last_mut() else { unreachable!("checked above") };
        Rc::make_mut(list).extend(items);
        Ok(())
    }

    /// Runs the pickle program to its STOP; each opcode goes to the group of opcodes that knows it.
    pub(super) fn run(mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            if op == b'.' {
                return self.pop(); // STOP: the pickled object
            }
            let done = self.structure_op(op)?
                || self.scalar_op(op)?
                || self.memo_op(op)?
                || self.container_op(op)?
                || self.object_op(op)?;
            if !done {
                return Err(self.err(format!("opcode 0x{op:02x} is not one torch.save emits for a state dict")));
            }
        }
    }

    /// Protocol and framing, empty containers, constants and MARK. `false`: not one of these opcodes.
    fn structure_op(&mut self, op: u8) -> Result<bool> {
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
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Strings and numbers. `false`: not one of these opcodes.
    fn scalar_op(&mut self, op: u8) -> Result<bool> {
        match op {
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
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The memo: PUT and GET in their three widths. `false`: not one of these opcodes.
    fn memo_op(&mut self, op: u8) -> Result<bool> {
        match op {
            b'q' => {
                let i = self.u8()?;
                self.memo_put(i.into())?;
            }
            b'r' => {
                let i = self.u32()?;
                self.memo_put(i)?;
            }
            0x94 => {
                let i = u32::try_from(self.memo.len()).map_err(|_| self.err("memo overflow"))?;
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
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Tuples, and filling dicts and lists. `false`: not one of these opcodes.
    fn container_op(&mut self, op: u8) -> Result<bool> {
        match op {
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
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Globals, persistent storages, REDUCE and BUILD. `false`: not one of these opcodes.
    fn object_op(&mut self, op: u8) -> Result<bool> {
        match op {
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
            _ => return Ok(false),
        }
        Ok(true)
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
                let numel =
                    u64::try_from(*numel).map_err(|_| self.err(format!("storage {key} has negative size {numel}")))?;
                Ok(Value::Storage(Rc::new(StorageRef { dtype, key: key.to_string(), numel })))
            }
            _ => Err(self.err("persistent id is not a ('storage', torch.<Type>Storage, key, location, numel) record")),
        }
    }

    fn reduce(&self, callable: &Value, args: &Value) -> Result<Value> {
        let Value::Tuple(args) = args else {
            return Err(self.err(format!("REDUCE arguments are a {}, not a tuple", args.kind())));
        };
        match callable {
            Value::Global(Global::OrderedDict) if args.is_empty() => Ok(Value::Dict(Rc::new(Vec::new()))),
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
        let offset = u64::try_from(offset).map_err(|_| self.err(format!("negative tensor offset {offset}")))?;
        let shape = self.dims(&args[2], "size")?;
        let stride = self.dims(&args[3], "stride")?;
        if shape.len() != stride.len() {
            return Err(self.err(format!("tensor size has {} dims but stride {}", shape.len(), stride.len())));
        }
        if shape.len() > MAX_DIMS {
            return Err(self.err(format!("tensor has {} dimensions; at most {MAX_DIMS} are supported", shape.len())));
        }
        Ok(Value::Tensor(Rc::new(TensorRef { storage: storage.clone(), offset, shape, stride })))
    }

    fn dims(&self, v: &Value, what: &str) -> Result<Vec<usize>> {
        let Value::Tuple(items) = v else {
            return Err(self.err(format!("tensor {what} is a {}, not a tuple", v.kind())));
        };
        items
            .iter()
            .map(|d| match d {
                Value::Int(n) if *n >= 0 => {
                    usize::try_from(*n).map_err(|_| self.err(format!("tensor {what} {n} too large")))
                }
                _ => Err(self.err(format!("tensor {what} holds {d:?}, not a non-negative integer"))),
            })
            .collect()
    }
}
