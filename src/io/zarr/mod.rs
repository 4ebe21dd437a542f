//! Zarr v3 movies (and Zarr v2 for reading) through the `zarrs` crate: chunked, sharded and
//! compressed, for archives and cluster work. A movie is one array with axes `(t, y, x)`, or
//! `(t, c, y, x)` with a channel axis; its attributes carry what the TIFF description carries
//! (calibration, frame interval, source). Reading streams a slab of frames at a time; writing
//! buffers one shard row of frames, so memory stays bounded by the chunking, never the movie.

mod attributes;
mod chunking;
mod reader;
mod writer;

/// The folder, inside a block output's array, of the per-block completion markers (not chunks).
pub const BLOCK_MARKER_FOLDER: &str = "deepcad_blocks";

use std::path::Path;

pub use crate::io::movie_format::{has_zarr_metadata, is_zarr};

pub use attributes::{read_movie_attributes, MOVIE_ATTRIBUTE};
pub use chunking::Chunking;
pub use reader::ZarrMovie;
pub use writer::{publish_directory, NewArray, ZarrWriter};

use crate::io::SampleType;
use crate::{Error, Result};
use zarrs::array::{data_type, DataType};
use zarrs::filesystem::FilesystemStore;

/// The store of an existing folder.
pub(crate) fn open_store(path: &Path) -> Result<std::sync::Arc<FilesystemStore>> {
    FilesystemStore::new(path)
        .map(std::sync::Arc::new)
        .map_err(|e| Error::format(path, format!("cannot open as a Zarr store: {e}")))
}

/// A zarrs error on `path`, with what to do.
pub(crate) fn zarr_error(path: &Path, what: &str, error: impl std::fmt::Display) -> Error {
    Error::format(path, format!("{what}: {error}"))
}

/// The Zarr data type a movie of `sample_type` is stored as.
pub(crate) fn data_type_of(sample_type: SampleType) -> DataType {
    match sample_type {
        SampleType::U8 => data_type::uint8(),
        SampleType::U16 => data_type::uint16(),
        SampleType::I16 => data_type::int16(),
        SampleType::F32 => data_type::float32(),
    }
}

/// The movie sample type a Zarr data type holds, if it is one a movie can be.
pub(crate) fn sample_type_of(found: &DataType) -> Option<SampleType> {
    [SampleType::U8, SampleType::U16, SampleType::I16, SampleType::F32].into_iter().find(|&s| data_type_of(s) == *found)
}
