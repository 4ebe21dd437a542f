//! Writing a grayscale TIFF movie one frame at a time. Frames go to a hidden temporary file beside
//! the destination (`.<name>.partial-<pid>-<n>`); only `finish()` with every frame written flushes,
//! fsyncs and renames it, so the final name never holds a partial movie. Dropping an unfinished
//! writer (error, cancel, panic) deletes the temporary file.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tiff::encoder::colortype::{self, ColorType};
use tiff::encoder::{Rational, TiffEncoder, TiffKind, TiffKindBig, TiffKindStandard, TiffValue};
use tiff::tags::Tag;

use super::imagej::{to_rational, ImageJMetadata};
use super::sample::{FrameData, SampleType};
use super::tiff_errors::from_tiff;
use crate::error::{Error, Result};

/// Classic TIFF (offsets up to 4 GB, opens everywhere) or BigTIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputKind {
    /// Classic unless the file would exceed about 3.9 GB.
    #[default]
    Auto,
    Classic,
    Big,
}

/// Above this estimated size `Auto` switches to BigTIFF (margin below the 4 GiB offset limit).
const AUTO_BIG_THRESHOLD: u64 = 3_900_000_000;
/// Room per page for its directory and tags in the size estimate.
const PAGE_OVERHEAD: u64 = 1024;

/// Numbers temporary files uniquely within this process.
static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The encoder writes through this handle while the writer keeps another, so that after the
/// encoder is gone we can still flush and fsync and see any error (BufWriter's drop hides them).
#[derive(Clone)]
struct SharedFile(Arc<Mutex<BufWriter<File>>>);

impl SharedFile {
    fn lock(&self) -> std::sync::MutexGuard<'_, BufWriter<File>> {
        // A poisoned lock only means a panic happened mid-write; the file is discarded anyway.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.lock().flush()
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.lock().seek(pos)
    }
}

enum Encoder {
    Classic(TiffEncoder<SharedFile, TiffKindStandard>),
    Big(TiffEncoder<SharedFile, TiffKindBig>),
}

/// Tags every page carries.
struct PageTags {
    /// ImageJ description, written on the first page only (where ImageJ looks for it).
    description: String,
    x_resolution: (u32, u32),
    y_resolution: (u32, u32),
    resolution_unit: u16,
}

/// A TIFF stack being written frame by frame.
pub struct StackWriter {
    final_path: PathBuf,
    temp_path: PathBuf,
    file: SharedFile,
    encoder: Option<Encoder>,
    width: usize,
    height: usize,
    frames: usize,
    sample_type: SampleType,
    tags: PageTags,
    written: usize,
    failed: bool,
    finished: bool,
}

impl std::fmt::Debug for StackWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackWriter")
            .field("final_path", &self.final_path)
            .field("temp_path", &self.temp_path)
            .field("written", &self.written)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl StackWriter {
    /// Starts writing `frames` frames of `width x height` samples to `path`.
    pub fn create(
        path: &Path,
        width: usize,
        height: usize,
        frames: usize,
        sample_type: SampleType,
        metadata: &ImageJMetadata,
        kind: OutputKind,
    ) -> Result<StackWriter> {
        if width == 0 || height == 0 || frames == 0 {
            return Err(Error::usage(format!(
                "{}: cannot write a {width}x{height} movie of {frames} frames; every axis needs at least 1",
                path.display()
            )));
        }
        if u32::try_from(width).is_err() || u32::try_from(height).is_err() {
            return Err(Error::Limits(format!(
                "{}: {width}x{height} exceeds TIFF's 4294967295-pixel side limit",
                path.display()
            )));
        }
        let name = path.file_name().ok_or_else(|| {
            Error::usage(format!(
                "{}: the output path must name a file",
                path.display()
            ))
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };

        let description = metadata.to_description(frames);
        let frame_bytes = (width as u64) * (height as u64) * sample_type.bytes() as u64;
        let estimate = frame_bytes
            .saturating_add(PAGE_OVERHEAD)
            .saturating_mul(frames as u64)
            .saturating_add(description.len() as u64 + 4096);
        let big = match kind {
            OutputKind::Big => true,
            OutputKind::Auto => estimate > AUTO_BIG_THRESHOLD,
            OutputKind::Classic if estimate >= u64::from(u32::MAX) => {
                return Err(Error::Limits(format!(
                    "{}: about {} bytes do not fit a classic TIFF (4 GB limit); write BigTIFF instead",
                    path.display(),
                    estimate
                )))
            }
            OutputKind::Classic => false,
        };

        let temp_path = dir.join(format!(
            ".{}.partial-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let raw = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .map_err(|e| Error::io(&temp_path, e))?;
        let file = SharedFile(Arc::new(Mutex::new(BufWriter::with_capacity(1 << 20, raw))));

        let cal = &metadata.calibration;
        let tags = PageTags {
            description,
            x_resolution: to_rational(1.0 / cal.pixel_width),
            y_resolution: to_rational(1.0 / cal.pixel_height),
            resolution_unit: match cal.unit.as_str() {
                "inch" => 2,
                "cm" => 3,
                _ => 1,
            },
        };
        let mut writer = StackWriter {
            final_path: path.to_path_buf(),
            temp_path,
            file: file.clone(),
            encoder: None,
            width,
            height,
            frames,
            sample_type,
            tags,
            written: 0,
            failed: false,
            finished: false,
        };
        let header = if big {
            TiffEncoder::new_big(file).map(Encoder::Big)
        } else {
            TiffEncoder::new(file).map(Encoder::Classic)
        };
        // On error `writer` drops here and removes the temporary file.
        writer.encoder =
            Some(header.map_err(|e| from_tiff(&writer.temp_path, "writing the TIFF header", e))?);
        Ok(writer)
    }

    /// Appends one frame (`width * height` values), converted to the output sample type:
    /// rounded half away from zero, clipped to the type's range, NaN written as 0.
    pub fn write_frame(&mut self, frame: &[f32]) -> Result<()> {
        self.check_length(frame.len())?;
        self.write_frame_raw(&FrameData::from_f32(frame, self.sample_type))
    }

    /// Appends one frame already in the output sample type.
    pub fn write_frame_raw(&mut self, frame: &FrameData) -> Result<()> {
        if frame.sample_type() != self.sample_type {
            return Err(Error::usage(format!(
                "{}: the output is {} but the frame holds {} samples",
                self.final_path.display(),
                self.sample_type,
                frame.sample_type()
            )));
        }
        self.check_length(frame.len())?;
        if self.failed {
            return Err(Error::usage(format!(
                "{}: an earlier write failed; this output is abandoned",
                self.final_path.display()
            )));
        }
        if self.written >= self.frames {
            return Err(Error::usage(format!(
                "{}: the movie was declared with {} frames and all of them are already written",
                self.final_path.display(),
                self.frames
            )));
        }
        let first = self.written == 0;
        let (w, h) = (self.width as u32, self.height as u32);
        let tags = &self.tags;
        let result = match self.encoder.as_mut().expect("encoder lives until finish") {
            Encoder::Classic(e) => write_any(e, w, h, frame, tags, first),
            Encoder::Big(e) => write_any(e, w, h, frame, tags, first),
        };
        match result {
            Ok(()) => {
                self.written += 1;
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(from_tiff(
                    &self.final_path,
                    &format!("writing frame {}", self.written),
                    e,
                ))
            }
        }
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> usize {
        self.written
    }

    /// Completes the file: checks every declared frame was written, flushes, fsyncs and renames
    /// the temporary file to the final name. On any error the temporary file is removed.
    pub fn finish(mut self) -> Result<()> {
        if self.failed {
            return Err(Error::usage(format!(
                "{}: an earlier write failed; nothing was saved",
                self.final_path.display()
            )));
        }
        if self.written != self.frames {
            return Err(Error::usage(format!(
                "{}: only {} of {} frames were written; nothing was saved",
                self.final_path.display(),
                self.written,
                self.frames
            )));
        }
        drop(self.encoder.take());
        {
            let mut file = self.file.lock();
            file.flush().map_err(|e| Error::io(&self.temp_path, e))?;
            file.get_ref()
                .sync_all()
                .map_err(|e| Error::io(&self.temp_path, e))?;
        }
        std::fs::rename(&self.temp_path, &self.final_path)
            .map_err(|e| Error::io(&self.final_path, e))?;
        self.finished = true;
        sync_parent_dir(&self.final_path);
        Ok(())
    }

    fn check_length(&self, len: usize) -> Result<()> {
        let expected = self.width * self.height;
        if len != expected {
            return Err(Error::usage(format!(
                "{}: a frame has {len} values but the output is {}x{} ({expected} values)",
                self.final_path.display(),
                self.width,
                self.height
            )));
        }
        Ok(())
    }
}

impl Drop for StackWriter {
    fn drop(&mut self) {
        if !self.finished {
            drop(self.encoder.take());
            // Best effort: a leftover hidden `.partial` file is harmless and recognisable.
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// Writes a whole movie (`frames * height * width` values, time first) in one call.
pub fn write_stack(
    path: &Path,
    info_like: (usize, usize, usize),
    sample_type: SampleType,
    metadata: &ImageJMetadata,
    data: &[f32],
) -> Result<()> {
    let (width, height, frames) = info_like;
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(frames));
    if expected != Some(data.len()) {
        return Err(Error::usage(format!(
            "{}: {} values given for a {width}x{height} movie of {frames} frames",
            path.display(),
            data.len()
        )));
    }
    let mut writer = StackWriter::create(
        path,
        width,
        height,
        frames,
        sample_type,
        metadata,
        OutputKind::Auto,
    )?;
    for frame in data.chunks_exact(width * height) {
        writer.write_frame(frame)?;
    }
    writer.finish()
}

fn write_any<K: TiffKind>(
    encoder: &mut TiffEncoder<SharedFile, K>,
    width: u32,
    height: u32,
    frame: &FrameData,
    tags: &PageTags,
    first: bool,
) -> tiff::TiffResult<()> {
    match frame {
        FrameData::U8(v) => {
            write_page::<K, colortype::Gray8>(encoder, width, height, v, tags, first)
        }
        FrameData::U16(v) => {
            write_page::<K, colortype::Gray16>(encoder, width, height, v, tags, first)
        }
        FrameData::I16(v) => {
            write_page::<K, colortype::GrayI16>(encoder, width, height, v, tags, first)
        }
        FrameData::F32(v) => {
            write_page::<K, colortype::Gray32Float>(encoder, width, height, v, tags, first)
        }
    }
}

fn write_page<K: TiffKind, C: ColorType>(
    encoder: &mut TiffEncoder<SharedFile, K>,
    width: u32,
    height: u32,
    data: &[C::Inner],
    tags: &PageTags,
    first: bool,
) -> tiff::TiffResult<()>
where
    [C::Inner]: TiffValue,
{
    let mut image = encoder.new_image::<C>(width, height)?;
    let dir = image.encoder();
    if first {
        dir.write_tag(Tag::ImageDescription, tags.description.as_str())?;
    }
    dir.write_tag(
        Tag::XResolution,
        Rational {
            n: tags.x_resolution.0,
            d: tags.x_resolution.1,
        },
    )?;
    dir.write_tag(
        Tag::YResolution,
        Rational {
            n: tags.y_resolution.0,
            d: tags.y_resolution.1,
        },
    )?;
    dir.write_tag(Tag::ResolutionUnit, tags.resolution_unit)?;
    image.write_data(data)
}

/// Makes the rename itself durable; failure only weakens crash safety, so it is not reported.
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(handle) = File::open(dir) {
            let _ = handle.sync_all();
        }
    }
}
