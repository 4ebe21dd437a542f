//! DeepCAD engine: self-supervised denoising of fluorescence time-lapse movies on libtorch.
//!
//! Rooms (see `shared/design/architecture.md`): `io` (TIFF in/out, frame by frame, no torch),
//! `tiling` (pure tile arithmetic), `model` (network + bundle), `train`, `infer`, `device`,
//! `progress` (one interface for progress and cancellation), `simulate`, `metrics` and `evaluation` (demo
//! data, quality measures, baselines), `jni` (the only unsafe FFI edge).

pub mod error;
pub mod progress;

pub use error::{Error, Result};
pub mod allocation;
pub mod device;
pub mod gpu_info;
pub mod evaluation;
pub mod footprint;
pub mod geometry;
pub mod infer;
pub mod io;
pub mod jni;
pub mod metrics;
pub mod model;
pub mod simulate;
pub mod tiling;
pub mod train;
