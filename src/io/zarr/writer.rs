//! Writing a movie into a Zarr v3 array, frame by frame: frames are buffered until a shard row is
//! complete, then encoded and stored (zstd inside shards of whole frames). A whole movie is
//! written into a hidden folder beside the destination and renamed only when complete, so the
//! final name never holds a partial array; dropping an unfinished writer deletes the folder.
//! Block jobs instead write their own range of frames into an array that already exists (their
//! shards never overlap another block's), and say they are done with a marker (`infer::blocks`).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use zarrs::array::{codec::ZstdCodec, Array, ArrayBuilder, ArraySubset};
use zarrs::filesystem::FilesystemStore;

use super::attributes::movie_attributes;
use super::{open_store, zarr_error, Chunking};
use crate::io::{FrameData, ImageJMetadata, SampleType};
use crate::{Error, Result};

/// zstd level: fast to write, about as small as level 9 on noisy microscopy data.
const ZSTD_LEVEL: i32 = 3;

enum Target {
    /// A new array in `temp`, renamed to the final path by `finish`.
    Whole { temp: PathBuf, refuse_existing: Option<&'static str>, replace: bool, published: bool },
    /// Frames `range` of an existing array, written in place.
    Region,
}

pub struct ZarrWriter {
    final_path: PathBuf,
    target: Target,
    array: Array<FilesystemStore>,
    width: usize,
    height: usize,
    sample_type: SampleType,
    /// Frames stored at once: the shard depth (whole shards are written, never merged).
    shard_frames: usize,
    /// Frames this writer must write, in order.
    range: Range<usize>,
    buffer: Vec<f32>,
    next: usize,
}

impl std::fmt::Debug for ZarrWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrWriter")
            .field("final_path", &self.final_path)
            .field("range", &self.range)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// A new array's description.
pub struct NewArray<'a> {
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub sample_type: SampleType,
    pub metadata: &'a ImageJMetadata,
    pub source: Option<&'a str>,
    pub chunking: Option<Chunking>,
    /// More attributes (block plans), beside the movie's own.
    pub attributes: Map<String, Value>,
}

impl ZarrWriter {
    /// Starts writing a whole new movie to `path` (published by `finish`). An existing `path` is
    /// replaced at `finish` only when `replace` is set ([`ZarrWriter::refuse_existing`] refuses
    /// it up front).
    pub fn create(path: &Path, array: &NewArray<'_>, replace: bool) -> Result<ZarrWriter> {
        crate::io::check_replaceable(path, crate::io::OutputForm::Zarr)?;
        let temp = hidden_sibling(path, "partial");
        std::fs::create_dir(&temp).map_err(|e| Error::io(path, e))?;
        let built = match build_array(&temp, path, array) {
            Ok(built) => built,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&temp);
                return Err(e);
            }
        };
        let shard_frames = built.chunk_shape(&[0, 0, 0]).map(|s| s[0].get() as usize).unwrap_or(1);
        Ok(ZarrWriter {
            final_path: path.to_path_buf(),
            target: Target::Whole { temp, refuse_existing: None, replace, published: false },
            array: built,
            width: array.width,
            height: array.height,
            sample_type: array.sample_type,
            shard_frames,
            range: 0..array.frames,
            buffer: Vec::new(),
            next: 0,
        })
    }

    /// Creates the array at `path` with no frames yet, for block jobs to fill; many jobs may race
    /// to do this. `Ok(true)`: this call created it; `Ok(false)`: something already exists there
    /// (the caller checks that it is the same plan).
    pub fn create_empty(path: &Path, array: &NewArray<'_>) -> Result<bool> {
        let temp = hidden_sibling(path, "partial");
        std::fs::create_dir(&temp).map_err(|e| Error::io(path, e))?;
        let outcome = build_array(&temp, path, array).and_then(|_| {
            sync_tree(&temp).map_err(|e| Error::io(path, e))?;
            publish_directory(&temp, path, false)
        });
        let _ = std::fs::remove_dir_all(&temp);
        match outcome {
            Ok(()) => Ok(true),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Opens the array at `path` to write its frames `range`, in place. `range` must start on a
    /// shard boundary and end on one or at the last frame, so no other writer shares a shard.
    pub fn region(path: &Path, range: Range<usize>) -> Result<ZarrWriter> {
        let array =
            Array::open(open_store(path)?, "/").map_err(|e| zarr_error(path, "not a writable Zarr array", e))?;
        let shape: Vec<usize> = array.shape().iter().map(|&v| v as usize).collect();
        let &[frames, height, width] = shape.as_slice() else {
            return Err(Error::format(
                path,
                format!("the output array has shape {shape:?}; block jobs need (t, y, x)"),
            ));
        };
        let shard_frames = array.chunk_shape(&[0, 0, 0]).map(|s| s[0].get() as usize).unwrap_or(1);
        let aligned = |f: usize| f % shard_frames == 0 || f == frames;
        if range.end > frames || range.start >= range.end || !aligned(range.start) || !aligned(range.end) {
            return Err(Error::usage(format!(
                "{}: frames {}..{} do not match its shards of {shard_frames} frames ({frames} frames in all)",
                path.display(),
                range.start,
                range.end
            )));
        }
        let sample_type = super::sample_type_of(array.data_type())
            .ok_or_else(|| Error::format(path, "the output array's data type is not one a movie is written in"))?;
        Ok(ZarrWriter {
            final_path: path.to_path_buf(),
            target: Target::Region,
            array,
            width,
            height,
            sample_type,
            shard_frames,
            next: range.start,
            range,
            buffer: Vec::new(),
        })
    }

    /// Never replace an existing file or folder at the final path: checked now, and again when
    /// publishing (a run that appeared meanwhile wins; this one fails and saves nothing).
    pub fn refuse_existing(mut self, job: &'static str) -> Result<ZarrWriter> {
        if let Target::Whole { refuse_existing, replace, .. } = &mut self.target {
            if self.final_path.exists() {
                return Err(Error::usage(format!(
                    "{}: already exists and {job} never replaces it unless asked; choose another output or allow replacing it",
                    self.final_path.display()
                )));
            }
            *refuse_existing = Some(job);
            *replace = false;
        }
        Ok(self)
    }

    pub fn sample_type(&self) -> SampleType {
        self.sample_type
    }

    /// Bytes this writer buffers: one shard of frames as float and as stored samples.
    pub fn buffer_bytes(&self) -> usize {
        let frames = self.shard_frames.min(self.range.end - self.range.start);
        frames.saturating_mul(self.width * self.height).saturating_mul(4 + self.sample_type.bytes())
    }

    /// Appends the next frame (`width·height` values in output units; rounded and clipped to the
    /// sample type like the TIFF writer).
    pub fn write_frame(&mut self, frame: &[f32]) -> Result<()> {
        let plane = self.width * self.height;
        if frame.len() != plane {
            return Err(Error::usage(format!(
                "{}: a frame of {} values for {}×{} frames",
                self.final_path.display(),
                frame.len(),
                self.width,
                self.height
            )));
        }
        if self.next >= self.range.end {
            return Err(Error::usage(format!(
                "{}: more frames than the {} planned",
                self.final_path.display(),
                self.range.end - self.range.start
            )));
        }
        if self.buffer.capacity() == 0 {
            let frames = self.shard_frames.min(self.range.end - self.range.start);
            self.buffer = crate::allocation::with_capacity_f32(frames * plane, "a shard of output frames")?;
        }
        self.buffer.extend_from_slice(frame);
        self.next += 1;
        let buffered = self.buffer.len() / plane;
        if self.next % self.shard_frames == 0 || self.next == self.range.end {
            self.store(self.next - buffered..self.next)?;
        }
        Ok(())
    }

    fn store(&mut self, frames: Range<usize>) -> Result<()> {
        let subset = ArraySubset::new_with_ranges(&[
            frames.start as u64..frames.end as u64,
            0..self.height as u64,
            0..self.width as u64,
        ]);
        let stored = match FrameData::from_f32(&self.buffer, self.sample_type) {
            FrameData::U8(v) => self.array.store_array_subset(&subset, v),
            FrameData::U16(v) => self.array.store_array_subset(&subset, v),
            FrameData::I16(v) => self.array.store_array_subset(&subset, v),
            FrameData::F32(v) => self.array.store_array_subset(&subset, v),
        };
        stored.map_err(|e| match e {
            zarrs::array::ArrayError::StorageError(zarrs::storage::StorageError::IOError(io)) => {
                Error::io(&self.final_path, std::io::Error::new(io.kind(), io.to_string()))
            }
            other => zarr_error(
                &self.final_path,
                &format!("frames {}..{} cannot be written", frames.start, frames.end),
                other,
            ),
        })?;
        self.buffer.clear();
        Ok(())
    }

    /// Checks that every planned frame was written; a whole movie is then flushed to disk and
    /// renamed to its final name.
    pub fn finish(mut self) -> Result<()> {
        if self.next != self.range.end {
            return Err(Error::usage(format!(
                "{}: {} of {} frames written",
                self.final_path.display(),
                self.next - self.range.start,
                self.range.end - self.range.start
            )));
        }
        if let Target::Whole { temp, refuse_existing, replace, published } = &mut self.target {
            sync_tree(temp).map_err(|e| Error::io(&self.final_path, e))?;
            match publish_directory(temp, &self.final_path, *replace) {
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::usage(format!(
                        "{}: appeared while {} ran (another run wrote it meanwhile); nothing of this run was saved",
                        self.final_path.display(),
                        refuse_existing.unwrap_or("this run")
                    )));
                }
                other => other?,
            }
            *published = true;
        }
        Ok(())
    }
}

impl Drop for ZarrWriter {
    fn drop(&mut self) {
        if let Target::Whole { temp, published: false, .. } = &self.target {
            let _ = std::fs::remove_dir_all(temp);
        }
    }
}

fn build_array(dir: &Path, final_path: &Path, new: &NewArray<'_>) -> Result<Array<FilesystemStore>> {
    if new.width == 0 || new.height == 0 || new.frames == 0 {
        return Err(Error::usage(format!("{}: cannot write a movie with a zero-sized axis", final_path.display())));
    }
    let shape = [new.frames, new.height, new.width];
    let chunking = new.chunking.unwrap_or_else(|| Chunking::for_movie(shape, new.sample_type.bytes()));
    let data_type = super::data_type_of(new.sample_type);
    let fill: zarrs::array::FillValue = match new.sample_type {
        SampleType::U8 => 0u8.into(),
        SampleType::U16 => 0u16.into(),
        SampleType::I16 => 0i16.into(),
        SampleType::F32 => 0f32.into(),
    };
    let mut attributes = movie_attributes(new.metadata, new.source);
    attributes.extend(new.attributes.clone());
    let array = ArrayBuilder::new(shape.map(|v| v as u64).to_vec(), chunking.shard.to_vec(), data_type, fill)
        .subchunk_shape(chunking.chunk.to_vec())
        .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(ZSTD_LEVEL, false))])
        .dimension_names(["t", "y", "x"].into())
        .attributes(attributes)
        .build(open_store(dir)?, "/")
        .map_err(|e| zarr_error(final_path, "the array cannot be created", e))?;
    array.store_metadata().map_err(|e| zarr_error(final_path, "the array's metadata cannot be written", e))?;
    Ok(array)
}

/// `.<name>.<what>-<pid>-<n>` beside `path`.
fn hidden_sibling(path: &Path, what: &str) -> PathBuf {
    crate::io::partial_sibling(path, what)
}

/// Renames the finished folder `from` to `to`. Without `replace`, an existing `to` is never
/// touched (atomic on Linux: `renameat2` with `RENAME_NOREPLACE`) and the error's kind is
/// `AlreadyExists`. With it, the old entry (only ever a Zarr array: see
/// [`crate::io::check_replaceable`]) is moved aside first and deleted after.
pub fn publish_directory(from: &Path, to: &Path, replace: bool) -> Result<()> {
    if replace && std::fs::symlink_metadata(to).is_ok() {
        crate::io::check_replaceable(to, crate::io::OutputForm::Zarr)?;
        let aside = hidden_sibling(to, "replaced");
        std::fs::rename(to, &aside).map_err(|e| Error::io(to, e))?;
        let moved = std::fs::rename(from, to);
        if let Err(e) = moved {
            let _ = std::fs::rename(&aside, to);
            return Err(Error::io(to, e));
        }
        let _ = if aside.is_dir() { std::fs::remove_dir_all(&aside) } else { std::fs::remove_file(&aside) };
        return Ok(());
    }
    rename_no_replace(from, to).map_err(|e| Error::io(to, e))
}

#[cfg(target_os = "linux")]
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths; no memory is shared with the kernel beyond the call.
    let rc = unsafe {
        libc::renameat2(libc::AT_FDCWD, from_c.as_ptr(), libc::AT_FDCWD, to_c.as_ptr(), libc::RENAME_NOREPLACE)
    };
    if rc == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EINVAL) {
        // A file system without RENAME_NOREPLACE: check, then rename (a narrow race).
        return rename_checked(from, to);
    }
    Err(error)
}

#[cfg(not(target_os = "linux"))]
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    rename_checked(from, to)
}

fn rename_checked(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
    }
    std::fs::rename(from, to)
}

/// Flushes every file under `dir` to disk, then the folders, so a published array survives a crash.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}
