//! The network and the model bundle (weights + everything inference needs) live together.

pub mod pth;
pub mod reference_architecture;
pub mod reference_params;
pub mod unet3d;

pub use crate::geometry::{ALIGNMENT, LEVELS};
pub use unet3d::{forward_flops_per_voxel, parameter_count, UNet3d, ROUTE_SMALL_CONVOLUTIONS_TO_ONEDNN};
pub mod built_in;
pub mod bundle;
pub mod export_bioimageio;
pub mod import;
pub mod load;

pub use built_in::BUILT_IN_MODEL;
pub use bundle::{EpochRecord, Model, ModelMetadata, Normalization, SourceRecord, TrainingRecord, MAX_PATCH};
