//! The network and the model bundle (weights + everything inference needs) live together.

pub mod blind_spot;
mod channels_last;
mod conv_dispatch;
mod forward;
pub mod hybrid;
pub mod precision;
pub mod pth;
pub mod reference_architecture;
pub mod reference_params;
pub mod self_supervision;
pub mod unet3d;
mod upsampled_conv;

pub use crate::geometry::{ALIGNMENT, LEVELS};
pub use conv_dispatch::LibtorchConvDispatch;
pub use unet3d::{
    forward_flops_per_voxel, parameter_count, slab_bytes_per_voxel, slab_columns, UNet3d, SLAB_SHARE_OF_TILE,
    SLAB_VOXELS,
};
pub mod built_in;
pub mod bundle;
pub mod export_bioimageio;
pub mod import;
pub mod load;

pub use built_in::BUILT_IN_MODEL;
pub use bundle::{EpochRecord, Model, ModelMetadata, Normalization, SourceRecord, TrainingRecord, MAX_PATCH};
pub use forward::{TileMemory, TilePlacement};
pub use hybrid::HybridHead;
pub use self_supervision::SelfSupervision;
