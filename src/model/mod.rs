//! The network and the model bundle (weights + everything inference needs) live together.

pub mod pth;
pub mod unet3d;

pub use unet3d::{parameter_count, UNet3d, ALIGNMENT};
pub mod bundle;
pub mod import;
pub mod export_bioimageio;

pub use bundle::{EpochRecord, Model, ModelMetadata, Normalization, SourceRecord, TrainingRecord};
