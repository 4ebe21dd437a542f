//! Which format a movie path names, from the path alone: a folder holding Zarr metadata, or a
//! name ending in `.zarr`, is Zarr; anything else is TIFF. Kept apart so that listing inputs and
//! checking outputs need nothing of the formats themselves.

use std::path::Path;

/// Whether `path` names a Zarr movie: a folder holding Zarr metadata (`zarr.json` for v3,
/// `.zarray` for v2), or any path ending in `.zarr` (an output to be created).
pub fn is_zarr(path: &Path) -> bool {
    has_zarr_metadata(path) || path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zarr"))
}

/// A folder that holds a Zarr array's metadata.
pub fn has_zarr_metadata(path: &Path) -> bool {
    path.join("zarr.json").is_file() || path.join(".zarray").is_file()
}
