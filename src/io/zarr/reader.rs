//! A Zarr array read as a movie, a slab of frames at a time: one read decodes every chunk a slab
//! touches once, and the slab stays for the frames that follow (training samples and denoising
//! both read frames in runs). The slab is at most one inner chunk deep and about 32 MB.

use std::ops::Range;
use std::path::{Path, PathBuf};

use zarrs::array::{Array, ArrayShardedExt, ArraySubset};
use zarrs::filesystem::FilesystemStore;

use super::{open_store, read_movie_attributes, zarr_error};
use crate::io::{FrameSource, ImageJMetadata, NonFinite, ReadOptions, SampleType};
use crate::{Error, Result};

/// Frames held by one slab: about this many bytes of `f32`.
const SLAB_BYTES: usize = 32 << 20;

pub struct ZarrMovie {
    path: PathBuf,
    array: Array<FilesystemStore>,
    frames: usize,
    height: usize,
    width: usize,
    /// `Some(c)`: a `(t, c, y, x)` array read at channel `c`.
    channel: Option<usize>,
    sample_type: SampleType,
    metadata: ImageJMetadata,
    slab_frames: usize,
    /// Decoded bytes of one stored chunk: a read may decode a whole chunk it only partly needs.
    chunk_bytes: usize,
    slab: Vec<f32>,
    slab_range: Range<usize>,
}

impl std::fmt::Debug for ZarrMovie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrMovie")
            .field("path", &self.path)
            .field("shape", &[self.frames, self.height, self.width])
            .finish_non_exhaustive()
    }
}

impl ZarrMovie {
    /// Opens the array at `path` (Zarr v3, or v2). A 4-D array is `(t, c, y, x)` and needs
    /// `options.channel`; `options.slice` has no meaning here and is refused.
    pub fn open(path: &Path, options: &ReadOptions) -> Result<ZarrMovie> {
        if !path.is_dir() {
            return Err(Error::usage(format!(
                "{}: no Zarr array there (a Zarr movie is a folder with zarr.json)",
                path.display()
            )));
        }
        let array =
            Array::open(open_store(path)?, "/").map_err(|e| zarr_error(path, "not a readable Zarr array", e))?;
        let sample_type = sample_type_of(path, &array)?;
        let shape: Vec<usize> = array.shape().iter().map(|&v| v as usize).collect();
        if options.slice.is_some() {
            return Err(Error::usage(format!(
                "{}: a Zarr movie has no Z slices to choose from; leave the slice out",
                path.display()
            )));
        }
        let names = dimension_names(&array);
        let (frames, height, width, channel) = match (shape.as_slice(), options.channel) {
            (&[t, h, w], None | Some(0)) => (t, h, w, None),
            (&[_, _, _], Some(c)) => {
                return Err(Error::usage(format!(
                    "{}: has one channel; channel C{} (index {c} counting from 0) does not exist",
                    path.display(),
                    c + 1
                )))
            }
            (&[t, c, h, w], Some(k)) if k < c => (t, h, w, Some(k)),
            (&[_, c, _, _], k) => {
                let asked = k.map_or("no channel was chosen".to_string(), |k| {
                    format!("channel C{} (index {k} counting from 0) does not exist", k + 1)
                });
                return Err(Error::usage(format!(
                    "{}: has {c} channels (axes {names}) and {asked}; choose a channel, C1 to C{c} as Fiji numbers them (index 0 to {} counting from 0)",
                    path.display(),
                    c.saturating_sub(1)
                )));
            }
            _ => {
                return Err(Error::unsupported(
                    path,
                    format!("has {} axes {names}; a movie needs (t, y, x) or (t, c, y, x)", shape.len()),
                ));
            }
        };
        if frames == 0 || height == 0 || width == 0 {
            return Err(Error::format(path, format!("the array has a zero-sized axis {shape:?}")));
        }
        let chunk_frames = array
            .effective_subchunk_shape()
            .map(|s| s[0].get() as usize)
            .or_else(|| array.chunk_shape(&vec![0; shape.len()]).ok().map(|s| s[0].get() as usize))
            .unwrap_or(1);
        let slab_frames = chunk_frames.clamp(1, (SLAB_BYTES / (height * width * 4)).max(1));
        let chunk_bytes = array
            .effective_subchunk_shape()
            .or_else(|| array.chunk_shape(&vec![0; shape.len()]).ok())
            .map_or(0, |s| s.iter().fold(sample_type.bytes(), |acc, v| acc.saturating_mul(v.get() as usize)));
        let metadata = read_movie_attributes(array.attributes(), frames);
        Ok(ZarrMovie {
            path: path.to_path_buf(),
            array,
            frames,
            height,
            width,
            channel,
            sample_type,
            metadata,
            slab_frames,
            chunk_bytes,
            slab: Vec::new(),
            slab_range: 0..0,
        })
    }

    /// A warning when chunks of the array are absent: Zarr reads them as the fill value, which is
    /// right for data written sparsely on purpose but is usually a copy that stopped half-way or a
    /// shape declared beyond the data. Counts the chunk files present (bounded by what is on disk)
    /// against the chunk grid.
    pub fn missing_chunks_warning(&self) -> Option<String> {
        let expected: u128 = self.array.chunk_grid_shape().iter().map(|&n| n as u128).product();
        let stored = stored_chunk_files(&self.path) as u128;
        if stored >= expected {
            return None;
        }
        let share = 100.0 * (expected - stored) as f64 / expected as f64;
        let most = if stored * 2 < expected { "most of the movie is missing: " } else { "" };
        Some(format!(
            "{}: {most}{} of {} chunk files are absent ({share:.1} %) and read as the fill value ({}); if the array was copied or written by another program, check that it finished",
            self.path.display(),
            expected - stored,
            expected,
            if self.array.fill_value().as_ne_bytes().iter().all(|&b| b == 0) { "zero" } else { "the array's fill value" }
        ))
    }

    /// Reads only the first `frames` frames (at most the array's): for an array another program is
    /// still writing, whose later frames may not be complete. Drops the held slab, so no frame past
    /// the limit is ever decoded.
    pub fn limit_frames(&mut self, frames: usize) {
        self.frames = self.frames.min(frames);
        self.slab = Vec::new();
        self.slab_range = 0..0;
    }

    /// Calibration, frame interval and description lines from the array's attributes.
    pub fn metadata(&self) -> &ImageJMetadata {
        &self.metadata
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn subset(&self, frames: Range<usize>) -> ArraySubset {
        let (h, w) = (self.height as u64, self.width as u64);
        let t = frames.start as u64..frames.end as u64;
        match self.channel {
            None => ArraySubset::new_with_ranges(&[t, 0..h, 0..w]),
            Some(c) => ArraySubset::new_with_ranges(&[t, c as u64..c as u64 + 1, 0..h, 0..w]),
        }
    }

    fn load_slab(&mut self, t: usize) -> Result<()> {
        let start = t / self.slab_frames * self.slab_frames;
        let range = start..(start + self.slab_frames).min(self.frames);
        let subset = self.subset(range.clone());
        let read_error = |e: zarrs::array::ArrayError| {
            zarr_error(
                &self.path,
                &format!(
                    "frames {}..{} cannot be read (a chunk file of the array is damaged or incomplete; copy the array again from its source, or re-run what wrote it)",
                    range.start, range.end
                ),
                e,
            )
        };
        let values: Vec<f32> = match self.sample_type {
            SampleType::U8 => self
                .array
                .retrieve_array_subset::<Vec<u8>>(&subset)
                .map_err(read_error)?
                .into_iter()
                .map(f32::from)
                .collect(),
            SampleType::U16 => self
                .array
                .retrieve_array_subset::<Vec<u16>>(&subset)
                .map_err(read_error)?
                .into_iter()
                .map(f32::from)
                .collect(),
            SampleType::I16 => self
                .array
                .retrieve_array_subset::<Vec<i16>>(&subset)
                .map_err(read_error)?
                .into_iter()
                .map(f32::from)
                .collect(),
            SampleType::F32 => self.array.retrieve_array_subset::<Vec<f32>>(&subset).map_err(read_error)?,
        };
        if let Some(bad) = NonFinite::find(&values, self.width, self.height) {
            return Err(Error::format(&self.path, bad.input_message(range.start)));
        }
        self.slab = values;
        self.slab_range = range;
        Ok(())
    }
}

impl FrameSource for ZarrMovie {
    fn name(&self) -> String {
        self.path.display().to_string()
    }
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn frames(&self) -> usize {
        self.frames
    }
    fn sample_type(&self) -> SampleType {
        self.sample_type
    }
    /// A slab as stored samples and as `f32`, and one decoded chunk.
    fn read_bytes(&self) -> usize {
        let slab = self.slab_frames.saturating_mul(self.height).saturating_mul(self.width);
        slab.saturating_mul(self.sample_type.bytes() + 4).saturating_add(self.chunk_bytes)
    }
    fn read_frame(&mut self, t: usize, out: &mut [f32]) -> Result<()> {
        let plane = self.height * self.width;
        if t >= self.frames || out.len() != plane {
            return Err(Error::usage(format!(
                "{}: frame {t} of {} into a buffer of {} values (a frame holds {plane})",
                self.path.display(),
                self.frames,
                out.len()
            )));
        }
        if !self.slab_range.contains(&t) {
            self.load_slab(t)?;
        }
        let i = t - self.slab_range.start;
        out.copy_from_slice(&self.slab[i * plane..(i + 1) * plane]);
        Ok(())
    }
}

/// Chunk (or shard) files under a Zarr array's folder: everything but metadata and our block
/// markers.
fn stored_chunk_files(root: &Path) -> u64 {
    let mut count = 0u64;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if path.is_dir() {
                if !(folder == root && name == super::BLOCK_MARKER_FOLDER) {
                    folders.push(path);
                }
            } else if !matches!(name.as_str(), "zarr.json" | ".zarray" | ".zattrs" | ".zgroup" | ".zmetadata") {
                count += 1;
            }
        }
    }
    count
}

fn sample_type_of(path: &Path, array: &Array<FilesystemStore>) -> Result<SampleType> {
    super::sample_type_of(array.data_type()).ok_or_else(|| {
        Error::unsupported(
            path,
            format!(
                "holds {} samples; movies must be uint8, uint16, int16 or float32 (convert the array first)",
                array
                    .metadata()
                    .to_string_pretty()
                    .lines()
                    .find(|l| l.contains("data_type"))
                    .map(str::trim)
                    .unwrap_or("other")
            ),
        )
    })
}

fn dimension_names(array: &Array<FilesystemStore>) -> String {
    match array.dimension_names() {
        Some(names) => {
            format!("({})", names.iter().map(|n| n.as_deref().unwrap_or("?")).collect::<Vec<_>>().join(", "))
        }
        None => "(unnamed)".into(),
    }
}
