//! Evaluation of a denoised movie: scores against ground truth, the classical baselines a learned
//! denoiser must beat, and reference-free checks for real data without ground truth.
//!
//! Pure Rust on whole in-memory `f32` movies (`T × H × W`, frame-major); built on [`crate::metrics`].
//! This is the engine side of `deepcad score` and of the evaluation harness in `eval/`.

mod baselines;
mod detail_retention;
mod event_loss;
mod residual_checks;
mod scorecard;

pub use crate::footprint::{footprints_from_labels, labels_from_footprints};
pub use baselines::{
    best_baseline, gaussian_3d, Baseline, BaselineFamily, BaselineKind, Criterion, GAUSSIAN_SIGMAS,
    MOVING_AVERAGE_WINDOWS,
};
pub use detail_retention::{detail_retention, DetailRetention, ScaleRetention, DETAIL_SCALES_PX, HEADLINE_SCALE};
pub use event_loss::{event_loss, EventLoss, POOL as EVENT_LOSS_POOL};
pub use residual_checks::{residual_checks, ResidualChecks};
pub use scorecard::{score, Scorecard};
