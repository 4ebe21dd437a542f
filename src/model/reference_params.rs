//! DeepCAD's `para.yaml` sidecar: the flat `key: value` lines a reference training run writes
//! beside its checkpoint, read without a YAML library (nested YAML is refused, not guessed).

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

const MAX_PARAMS_BYTES: u64 = 64 << 10;

/// The flat `key: value` lines of DeepCAD's `para.yaml` sidecar, in file order, values unquoted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferenceParams {
    pub entries: Vec<(String, String)>,
}

impl ReferenceParams {
    pub fn read(path: &Path) -> Result<Self> {
        let file = crate::io::open_regular_file(path)?;
        let mut bytes = Vec::new();
        file.take(MAX_PARAMS_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
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
            if trimmed.trim_start().is_empty() || trimmed.trim_start().starts_with('#') || trimmed == "---" {
                continue;
            }
            if trimmed.starts_with(char::is_whitespace) || trimmed.starts_with('-') {
                return Err(Error::format(
                    path,
                    format!("line {number} is nested YAML ({trimmed:?}); DeepCAD's para.yaml holds flat `key: value` lines only"),
                ));
            }
            let Some((key, value)) = trimmed.split_once(':') else {
                return Err(Error::format(path, format!("line {number} ({trimmed:?}) is not a `key: value` line")));
            };
            let key = key.trim().to_string();
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(Error::format(path, format!("line {number}: key {key:?} appears twice")));
            }
            entries.push((key, unquote(strip_comment(value.trim()))));
        }
        Ok(ReferenceParams { entries })
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get_str(key)?.parse::<f64>().ok().filter(|v| v.is_finite())
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
            return if first == b'\'' { inner.replace("''", "'") } else { inner.to_string() };
        }
    }
    value.to_string()
}
