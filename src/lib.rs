//! DeepCAD engine: self-supervised denoising of fluorescence time-lapse movies on libtorch.
//!
//! Rooms (see `shared/design/architecture.md`): `io` (TIFF and Zarr in/out and frame sources,
//! frame by frame, no torch), `convert` (between those formats), `geometry` (the network's alignment, receptive field and halo as plain
//! numbers), `tiling` (pure tile arithmetic), `model` (network + bundle + reference import),
//! `train`, `infer`, `device`, `progress` (one interface for progress and cancellation),
//! `simulate`, `metrics`, `footprint` and `evaluation` (demo data, quality measures, baselines),
//! `jni` (the JVM's door: its entry points are `extern "C"`, yet it needs no `unsafe` block).
//! `unsafe` lives where a C call has no safe wrapper, each with its SAFETY comment: `tensor_pool`
//! (the C++ allocator), `gpu_info` (the CUDA runtime, typed symbols), `device` (loading libtorch's
//! CUDA part; the CLI's `mallopt`), `io::output_rules` (statvfs, kill(pid, 0)), `io::zarr::writer`
//! (one libc call) and `infer::stream` (a `Send` promise).
//! Rooms depend one way: `tests/module_cycles_tests.rs` fails on
//! any cycle between them or between sibling submodules.

pub mod error;
pub mod progress;

pub use error::{Error, Result};
pub mod allocation;
pub mod convert;
pub mod device;
pub mod evaluation;
pub mod footprint;
pub mod geometry;
pub mod gpu_info;
pub mod infer;
pub mod io;
pub mod jni;
pub mod metrics;
pub mod model;
pub mod simulate;
pub mod tensor_pool;
pub mod tiling;
pub mod train;
pub mod vocabulary;
