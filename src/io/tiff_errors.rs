//! Translates the `tiff` crate's errors into ours, with the file and the page they concern.
//! A short read means the file ends early; that is a broken file (Format), not an I/O failure.

use std::path::Path;

use tiff::{TiffError, TiffFormatError};

use crate::error::Error;

/// `context` says where it happened, e.g. "page 3" or "writing frame 7".
pub(crate) fn from_tiff(path: &Path, context: &str, err: TiffError) -> Error {
    match err {
        TiffError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => Error::format(
            path,
            format!("{context}: the file ends early; it is truncated or damaged (was a copy or save interrupted?)"),
        ),
        TiffError::IoError(io) => Error::io(path, io),
        TiffError::FormatError(TiffFormatError::TiffSignatureNotFound | TiffFormatError::TiffSignatureInvalid) => {
            Error::format(path, "not a TIFF file (it does not start with a TIFF header)")
        }
        TiffError::FormatError(e) => Error::format(
            path,
            format!("{context}: damaged or invalid TIFF ({e}); re-save it in Fiji (File > Save As > Tiff)"),
        ),
        TiffError::UnsupportedError(e) => Error::unsupported(
            path,
            format!("{context}: {e}; re-save it as an uncompressed grayscale TIFF in Fiji (File > Save As > Tiff)"),
        ),
        TiffError::LimitsExceeded | TiffError::IntSizeError => Error::Limits(format!(
            "{}: {context}: the image is larger than this reader's limits ({err})",
            path.display()
        )),
        TiffError::UsageError(e) => Error::format(path, format!("{context}: cannot decode this TIFF ({e})")),
    }
}
