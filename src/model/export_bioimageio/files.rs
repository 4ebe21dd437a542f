//! The package's files: NumPy test tensors, sample TIFFs, the cover, SHA-256 hashes, and the zip,
//! built beside the target and moved into place only when complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{TestMovie, RDF_FILE};
use crate::io::{write_preview_png, OutputForm, Panel};
use crate::{Error, Result};

/// NumPy `.npy` version 1.0, little-endian float32, C order.
pub fn write_npy(path: &Path, values: &[f32], shape: &[i64]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in '\n'.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * values.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    crate::io::write_file_atomically(path, &bytes)
}

pub(super) fn write_sample_tiff(path: &Path, [t, h, w]: [usize; 3], values: &[f32]) -> Result<()> {
    let metadata = crate::io::ImageJMetadata { frames: t, hyperstack: true, ..Default::default() };
    crate::io::write_stack(path, (w, h, t), crate::io::SampleType::F32, &metadata, values)
}

/// Middle frame of the test input beside the same frame denoised (about 2:1, as bioimage.io asks).
pub(super) fn write_cover(path: &Path, test: &TestMovie, output: &[f32]) -> Result<()> {
    let [t, h, w] = test.shape;
    let frame = (t / 2) * h * w..(t / 2 + 1) * h * w;
    let zoom = (256 / h.max(1)).clamp(1, 4);
    write_preview_png(
        path,
        &[
            Panel { pixels: &test.values[frame.clone()], width: w, height: h },
            Panel { pixels: &output[frame], width: w, height: h },
        ],
        zoom,
    )
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

pub(super) fn hidden_sibling(output: &Path, purpose: &str) -> PathBuf {
    crate::io::partial_sibling(output, purpose)
}

/// Moves the finished `source` to `target`; an existing target (allowed only with overwrite) is
/// moved aside first and deleted only after the new one is in place.
pub(super) fn replace(source: &Path, target: &Path, form: OutputForm, overwrite: bool) -> Result<()> {
    let mut aside = None;
    crate::io::check_replaceable(target, form)?;
    if target.exists() {
        if !overwrite {
            return Err(Error::usage(format!(
                "{} already exists; choose another output, or allow replacing it",
                target.display()
            )));
        }
        let old = hidden_sibling(target, "old");
        std::fs::rename(target, &old).map_err(|e| Error::io(target, e))?;
        aside = Some(old);
    }
    if let Err(e) = std::fs::rename(source, target) {
        if let Some(old) = &aside {
            let _ = std::fs::rename(old, target);
        }
        return Err(Error::io(target, e));
    }
    if let Some(old) = aside {
        let removed = if old.is_dir() { std::fs::remove_dir_all(&old) } else { std::fs::remove_file(&old) };
        removed.map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

pub(super) fn zip_folder(dir: &Path, zip_path: &Path, files: &[(String, String)]) -> Result<()> {
    let file = std::fs::File::create(zip_path).map_err(|e| Error::io(zip_path, e))?;
    let mut writer = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let names = std::iter::once(RDF_FILE).chain(files.iter().map(|(n, _)| n.as_str()));
    for name in names {
        let bytes = std::fs::read(dir.join(name)).map_err(|e| Error::io(dir.join(name), e))?;
        writer.start_file(name, options).map_err(|e| Error::format(zip_path, e.to_string()))?;
        writer.write_all(&bytes).map_err(|e| Error::io(zip_path, e))?;
    }
    let file = writer.finish().map_err(|e| Error::format(zip_path, e.to_string()))?;
    file.sync_all().map_err(|e| Error::io(zip_path, e))
}
