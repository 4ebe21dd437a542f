//! Movies on disk whichever their format: TIFF/BigTIFF files and Zarr arrays open as the same
//! frame source and are written through the same writer, chosen by the path (a folder with Zarr
//! metadata, or a name ending in `.zarr`, is Zarr; everything else is TIFF).

use std::path::Path;

use super::zarr::{self, NewArray, ZarrMovie, ZarrWriter};
use super::{FileMovie, FrameSource, ImageJMetadata, OutputKind, ReadOptions, SampleType, StackReader, StackWriter};
use crate::Result;

/// An input movie opened for streaming, with the metadata an output should carry.
pub struct OpenedMovie {
    pub source: Box<dyn FrameSource>,
    pub metadata: ImageJMetadata,
    /// What the caller should pass on to the user (e.g. a Zarr array with absent chunks).
    pub warnings: Vec<String>,
}

/// Opens a TIFF file or a Zarr array (headers checked, no pixels read).
pub fn open_movie(path: &Path, options: &ReadOptions) -> Result<OpenedMovie> {
    if zarr::has_zarr_metadata(path) || (zarr::is_zarr(path) && path.is_dir()) {
        let movie = ZarrMovie::open(path, options)?;
        let metadata = movie.metadata().clone();
        let warnings = movie.missing_chunks_warning().into_iter().collect();
        return Ok(OpenedMovie { source: Box::new(movie), metadata, warnings });
    }
    let reader = StackReader::open(path, options)?;
    let metadata = reader.info().metadata.clone();
    Ok(OpenedMovie { source: Box::new(FileMovie(reader)), metadata, warnings: Vec::new() })
}

/// A movie being written frame by frame, published complete or not at all.
// One writer per output, so boxing the larger variant would save nothing worth an allocation.
#[allow(clippy::large_enum_variant)]
pub enum MovieWriter {
    Tiff(StackWriter),
    Zarr(ZarrWriter),
}

/// What a new output movie holds.
pub struct OutputMovie<'a> {
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub sample_type: SampleType,
    pub metadata: &'a ImageJMetadata,
    /// Where it came from (recorded in Zarr attributes).
    pub source: Option<&'a str>,
    /// Zarr chunk shape `[t, y, x]`; `None` chooses one for time-block work.
    pub chunk: Option<[usize; 3]>,
}

impl MovieWriter {
    /// Starts writing to `path`: Zarr when it ends in `.zarr`, else TIFF. An existing output is
    /// replaced at the end only with `replace`; see [`MovieWriter::refuse_existing`].
    pub fn create(path: &Path, movie: &OutputMovie<'_>, replace: bool) -> Result<MovieWriter> {
        if zarr::is_zarr(path) {
            let array = NewArray {
                width: movie.width,
                height: movie.height,
                frames: movie.frames,
                sample_type: movie.sample_type,
                metadata: movie.metadata,
                source: movie.source,
                chunking: match movie.chunk {
                    Some(chunk) => Some(zarr::Chunking::from_chunk(
                        chunk,
                        [movie.frames, movie.height, movie.width],
                        movie.sample_type.bytes(),
                    )?),
                    None => None,
                },
                attributes: Default::default(),
            };
            return Ok(MovieWriter::Zarr(ZarrWriter::create(path, &array, replace)?));
        }
        if movie.chunk.is_some() {
            return Err(crate::Error::usage(format!(
                "{}: a chunk shape applies to Zarr outputs only (name the output .zarr)",
                path.display()
            )));
        }
        Ok(MovieWriter::Tiff(StackWriter::create(
            path,
            movie.width,
            movie.height,
            movie.frames,
            movie.sample_type,
            movie.metadata,
            OutputKind::Auto,
        )?))
    }

    /// Refuses an existing output now, and never replaces one that appears meanwhile.
    pub fn refuse_existing(self, job: &'static str) -> Result<MovieWriter> {
        Ok(match self {
            MovieWriter::Tiff(w) => MovieWriter::Tiff(w.refuse_existing(job)?),
            MovieWriter::Zarr(w) => MovieWriter::Zarr(w.refuse_existing(job)?),
        })
    }

    /// Bytes the writer buffers at once: a frame of samples (TIFF) or a shard of frames (Zarr).
    pub fn buffer_bytes(&self) -> usize {
        match self {
            MovieWriter::Tiff(w) => w.frame_bytes() as usize,
            MovieWriter::Zarr(w) => w.buffer_bytes(),
        }
    }

    pub fn write_frame(&mut self, frame: &[f32]) -> Result<()> {
        match self {
            MovieWriter::Tiff(w) => w.write_frame(frame),
            MovieWriter::Zarr(w) => w.write_frame(frame),
        }
    }

    pub fn finish(self) -> Result<()> {
        match self {
            MovieWriter::Tiff(w) => w.finish(),
            MovieWriter::Zarr(w) => w.finish(),
        }
    }
}
