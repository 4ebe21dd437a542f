//! Writing a grayscale TIFF movie one frame at a time. Frames go to a hidden temporary file beside
//! the destination (`.<name>.partial-<host>-<pid>-<n>`); only `finish()` with every frame written adds the
//! page directories, flushes, fsyncs and renames it, so the final name never holds a partial movie.
//! Dropping an unfinished writer (error, cancel, panic) deletes the temporary file. The layout is
//! ImageJ's (see `tiff_layout`), so Fiji opens the result as it would its own file.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::imagej::{to_rational, ImageJMetadata};
use super::sample::{FrameData, SampleType};
use super::tiff_layout::{first_ifd_field, header, Layout};
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
/// A TIFF stack being written frame by frame.
pub struct StackWriter {
    final_path: PathBuf,
    temp_path: PathBuf,
    file: Option<BufWriter<File>>,
    width: usize,
    height: usize,
    frames: usize,
    sample_type: SampleType,
    big: bool,
    description: String,
    x_resolution: (u32, u32),
    y_resolution: (u32, u32),
    resolution_unit: u16,
    /// Reused little-endian bytes of one frame.
    scratch: Vec<u8>,
    /// Byte offset in the file of each frame written so far.
    frame_offsets: Vec<u64>,
    /// Where the next byte goes (the file is written front to back until `finish`).
    position: u64,
    written: usize,
    failed: bool,
    finished: bool,
    /// `Some(what)`: never replace a file at the final path ("what" names the job in messages).
    refuse_existing: Option<&'static str>,
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
        path.file_name()
            .ok_or_else(|| Error::usage(format!("{}: the output path must name a file", path.display())))?;
        super::check_replaceable(path, super::OutputForm::File)?;
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
                    "{}: about {estimate} bytes do not fit a classic TIFF (4 GB limit); write BigTIFF instead",
                    path.display()
                )))
            }
            OutputKind::Classic => false,
        };
        super::output_rules::check_free_space(path, estimate)?;

        let temp_path = super::partial_sibling(path, "partial");
        let raw =
            OpenOptions::new().write(true).create_new(true).open(&temp_path).map_err(|e| writing_failed(path, e))?;
        let cal = &metadata.calibration;
        let mut writer = StackWriter {
            refuse_existing: None,
            final_path: path.to_path_buf(),
            temp_path,
            file: Some(BufWriter::with_capacity(1 << 20, raw)),
            width,
            height,
            frames,
            sample_type,
            big,
            description,
            x_resolution: to_rational(1.0 / cal.pixel_width),
            y_resolution: to_rational(1.0 / cal.pixel_height),
            resolution_unit: match cal.unit.as_str() {
                "inch" => 2,
                "cm" => 3,
                _ => 1,
            },
            scratch: Vec::new(),
            frame_offsets: Vec::new(),
            position: 0,
            written: 0,
            failed: false,
            finished: false,
        };
        // On error `writer` drops here and removes the temporary file.
        let header = header(big);
        let result = writer.file_mut().write_all(&header);
        result.map_err(|e| writing_failed(&writer.final_path, e))?;
        writer.position = header.len() as u64;
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
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        match frame {
            FrameData::U8(v) => bytes.extend_from_slice(v),
            FrameData::U16(v) => v.iter().for_each(|s| bytes.extend_from_slice(&s.to_le_bytes())),
            FrameData::I16(v) => v.iter().for_each(|s| bytes.extend_from_slice(&s.to_le_bytes())),
            FrameData::F32(v) => v.iter().for_each(|s| bytes.extend_from_slice(&s.to_le_bytes())),
        }
        let result = self.file_mut().write_all(&bytes);
        self.scratch = bytes;
        match result {
            Ok(()) => {
                self.frame_offsets.push(self.position);
                self.position += self.scratch.len() as u64;
                self.written += 1;
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(writing_failed(&self.final_path, e))
            }
        }
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> usize {
        self.written
    }

    /// Where the frames written so far lie in the file; final once written (`finish` only adds the
    /// page directories after them and renames the file).
    pub fn frame_offsets(&self) -> &[u64] {
        &self.frame_offsets
    }

    /// Bytes of one frame's samples in the file.
    pub fn frame_bytes(&self) -> u64 {
        (self.width * self.height * self.sample_type.bytes()) as u64
    }

    /// Whether the frames written so far lie back to back from the first one, as a reader of raw
    /// planes at `first + t * frame_bytes` (ImageJ's `FileInfoVirtualStack`) needs.
    pub fn frames_contiguous(&self) -> bool {
        let frame_bytes = self.frame_bytes();
        self.frame_offsets.windows(2).all(|pair| pair[1] == pair[0] + frame_bytes)
    }

    /// Completes the file: checks every declared frame was written, writes the page directories,
    /// flushes, fsyncs and renames the temporary file to the final name. On any error the
    /// temporary file is removed and nothing appears under the final name.
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
        let header_len = header(self.big).len() as u64;
        let frame_bytes = (self.width * self.height * self.sample_type.bytes()) as u64;
        let layout = Layout {
            big: self.big,
            width: self.width as u32,
            height: self.height as u32,
            sample_type: self.sample_type,
            pages: self.frames as u64,
            data_start: header_len,
            description: &self.description,
            x_resolution: self.x_resolution,
            y_resolution: self.y_resolution,
            resolution_unit: self.resolution_unit,
        };
        let file = self.file.as_mut().expect("file lives until finish");
        let completed = (|| -> std::io::Result<()> {
            let first_ifd = layout.write_directories(file, header_len + frame_bytes * self.frames as u64)?;
            file.seek(SeekFrom::Start(first_ifd_field(self.big)))?;
            if self.big {
                file.write_all(&first_ifd.to_le_bytes())?;
            } else {
                let offset = u32::try_from(first_ifd).map_err(|_| std::io::Error::other("classic TIFF past 4 GB"))?;
                file.write_all(&offset.to_le_bytes())?;
            }
            file.flush()?;
            file.get_ref().sync_all()
        })();
        completed.map_err(|e| writing_failed(&self.final_path, e))?;
        drop(self.file.take());
        match self.refuse_existing {
            None => {
                super::check_replaceable(&self.final_path, super::OutputForm::File)?;
                std::fs::rename(&self.temp_path, &self.final_path).map_err(|e| Error::io(&self.final_path, e))?
            }
            Some(job) => self.publish_without_replacing(job)?,
        }
        self.finished = true;
        sync_parent_dir(&self.final_path);
        Ok(())
    }

    /// Never replace a file at the final path: refused now if one exists, and if one appears
    /// while this writer works (another run writing the same path), `finish` fails instead of
    /// replacing it. `job` names the work in messages ("denoising").
    pub fn refuse_existing(mut self, job: &'static str) -> Result<StackWriter> {
        if self.final_path.exists() {
            return Err(self.exists_error(job, "and"));
        }
        self.refuse_existing = Some(job);
        Ok(self)
    }

    fn exists_error(&self, job: &str, how: &str) -> Error {
        Error::usage(format!(
            "{}: already exists {how} {job} never replaces a file unless asked; choose another name, or allow replacing existing files",
            self.final_path.display()
        ))
    }

    /// Links the finished temporary file under the final name, which fails if that name exists
    /// (atomic, unlike check-then-rename), then drops the temporary name. Where the filesystem has
    /// no hard links, a check and a rename (a tiny race window) stand in.
    fn publish_without_replacing(&mut self, job: &str) -> Result<()> {
        match std::fs::hard_link(&self.temp_path, &self.final_path) {
            Ok(()) => {
                std::fs::remove_file(&self.temp_path).map_err(|e| Error::io(&self.temp_path, e))?;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(self.exists_error(job, "(another run wrote it meanwhile; nothing of this run was saved) and"))
            }
            Err(_) if self.final_path.exists() => {
                Err(self.exists_error(job, "(another run wrote it meanwhile; nothing of this run was saved) and"))
            }
            Err(_) => std::fs::rename(&self.temp_path, &self.final_path).map_err(|e| Error::io(&self.final_path, e)),
        }
    }

    fn file_mut(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("file lives until finish")
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
            drop(self.file.take());
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
    let expected = width.checked_mul(height).and_then(|n| n.checked_mul(frames));
    if expected != Some(data.len()) {
        return Err(Error::usage(format!(
            "{}: {} values given for a {width}x{height} movie of {frames} frames",
            path.display(),
            data.len()
        )));
    }
    let mut writer = StackWriter::create(path, width, height, frames, sample_type, metadata, OutputKind::Auto)?;
    for frame in data.chunks_exact(width * height) {
        writer.write_frame(frame)?;
    }
    writer.finish()
}

/// Makes the rename itself durable; failure only weakens crash safety, so it is not reported.
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(handle) = File::open(dir) {
            let _ = handle.sync_all();
        }
    }
}

/// A failed write named by the output the user asked for (the hidden temporary file is removed
/// and means nothing to them), saying that nothing was left under that name.
fn writing_failed(output: &Path, e: std::io::Error) -> Error {
    Error::io(
        output,
        std::io::Error::new(e.kind(), format!("{e}; the output was not written (nothing is left under this name)")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Classic and BigTIFF outputs: the reported offset of frame t is where its samples really are,
    /// the frames lie back to back, and the page directories (what other readers follow) agree.
    #[test]
    fn the_reported_frame_offsets_point_at_each_frame_in_classic_and_big_tiff() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [OutputKind::Classic, OutputKind::Big] {
            let path = dir.path().join(format!("{kind:?}.tif"));
            let (w, h, frames) = (5, 3, 4);
            let meta = ImageJMetadata { frames, ..Default::default() };
            let mut writer = StackWriter::create(&path, w, h, frames, SampleType::U16, &meta, kind).unwrap();
            for t in 0..frames {
                let frame: Vec<f32> = (0..w * h).map(|i| (1000 * t + i) as f32).collect();
                writer.write_frame(&frame).unwrap();
            }
            let offsets = writer.frame_offsets().to_vec();
            let (frame_bytes, contiguous) = (writer.frame_bytes(), writer.frames_contiguous());
            writer.finish().unwrap();
            assert_eq!(frame_bytes, (w * h * 2) as u64);
            assert!(contiguous, "{kind:?}");
            assert_eq!(offsets.len(), frames);
            let bytes = std::fs::read(&path).unwrap();
            for (t, &offset) in offsets.iter().enumerate() {
                assert_eq!(offset, offsets[0] + t as u64 * frame_bytes, "{kind:?} frame {t} back to back");
                let at = offset as usize;
                for i in 0..w * h {
                    let v = u16::from_le_bytes([bytes[at + 2 * i], bytes[at + 2 * i + 1]]);
                    assert_eq!(v as usize, 1000 * t + i, "{kind:?} frame {t} sample {i}");
                }
            }
            // The directories point at the same bytes.
            let file = std::io::BufReader::new(File::open(&path).unwrap());
            let mut decoder = tiff::decoder::Decoder::new(file).unwrap();
            for (t, &offset) in offsets.iter().enumerate() {
                if t > 0 {
                    decoder.next_image().unwrap();
                }
                let strips = decoder.find_tag_unsigned_vec::<u64>(tiff::tags::Tag::StripOffsets).unwrap().unwrap();
                assert_eq!(strips[0], offset, "{kind:?} page {t}");
            }
        }
    }
}
