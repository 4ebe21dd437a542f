//! Training DeepCAD models (deepcad-spec §1.2, §3): pairs of even/odd frames from windows of
//! `2·patch_t` raw frames on a patch grid, 16-fold augmentation, mean squared error (see [`Loss`]) with Adam
//! (β 0.9, 0.999) on a warm-up + cosine schedule, a held-out validation loss, and a bundle written after every epoch.
//! Deviations from the reference are documented on [`TrainSettings`] and [`train`].

pub mod augment;
pub mod masked_voxels;
pub mod model_checks;
mod output_checks;
mod pair_loss;
pub mod pair_reader;
pub mod patch_grid;
mod run_preparation;
pub mod settings;
mod starting_model;
pub mod trainer;
pub mod training_inputs;
pub mod validation_split;

pub use augment::{Augmentation, Dihedral};
pub use model_checks::ModelChecks;
pub use patch_grid::{plan_patches, Patch, PatchPlan, SourceShape};
pub use settings::{
    best_bundle_path, Init, Loss, NormalizationChoice, Precision, Schedule, TrainReport, TrainSettings, CLI_ORIGIN,
    DEFAULT_LEARNING_RATE, EPOCHS_UNTIL_TIME_BUDGET,
};
pub use trainer::train;
pub use training_inputs::open_training_inputs;
pub use validation_split::split_validation;
