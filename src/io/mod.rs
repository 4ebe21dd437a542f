//! TIFF in and out, frame by frame, with no torch. A stack is read one frame at a time by time
//! index (`StackReader`) and written one frame at a time under a temporary name that is renamed
//! only when complete (`StackWriter`). ImageJ hyperstack dimensions and calibration are read from
//! and written to the ImageDescription and X/YResolution, so Fiji reopens outputs as it saved the
//! inputs. Training and denoising take movies as [`FrameSource`]s: a file read frame by frame
//! ([`FileMovie`]) or frames already in memory ([`InMemoryMovie`], e.g. an ImagePlus from Fiji).

mod atomic_file;
mod compare;
mod frames;
mod imagej;
pub mod intensity_statistics;
mod movie_files;
mod movie_format;
mod output_rules;
mod paths;
mod preview;
mod reader;
mod sample;
mod tiff_errors;
mod tiff_layout;
mod writer;
pub mod zarr;

pub use atomic_file::write_file_atomically;
pub use compare::{compare_movies, Comparison};
pub use frames::{FileMovie, FrameSource, InMemoryMovie};
pub use imagej::{Calibration, ImageJMetadata};
pub use movie_files::{open_movie, MovieWriter, OpenedMovie, OutputMovie};
pub use output_rules::{
    check_free_space, check_output_path, check_outputs, check_replaceable, host_name, human_bytes, partial_sibling,
    remove_stale_partials, OutputForm,
};
pub use paths::{list_movie_inputs, open_regular_file, same_file};
pub use preview::{write_preview_png, Panel};
pub use reader::{read_stack, ReadOptions, StackInfo, StackReader};
pub use sample::{FrameData, NonFinite, SampleType};
pub use writer::{write_stack, OutputKind, StackWriter};
pub use zarr::ZarrMovie;
