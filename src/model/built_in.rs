//! The built-in general model: `models/default.safetensors`, trained by the project on simulated
//! two-photon movies across photon levels, sizes, frame rates and detectors with per-movie
//! normalisation (`models/train-default.sh`), compiled into the library so every door (CLI, Fiji,
//! JNI) has it without a file. Wherever a model path is asked for, the name [`BUILT_IN_MODEL`]
//! selects it; a file of that name is still reachable as `./default`.

use std::path::Path;

/// The model "path" that selects the built-in model.
pub const BUILT_IN_MODEL: &str = "default";

/// What a user of the built-in model should know (docs/evaluation/real-data: on the dimmest real
/// movie of the thinning benchmark it is 2.7 dB behind a 5-minute fine-tune; elsewhere within 1 dB).
/// Door-neutral: each door adds how to train in its own words.
pub const BUILT_IN_MODEL_HINT: &str = "the built-in model learned from simulated movies only; \
     for detail you can trust, fine-tune on your movie: Train with a time budget";

const BYTES: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/default.safetensors"));

/// The bundle's bytes when `path` names the built-in model.
pub fn built_in_bytes(path: &Path) -> Option<&'static [u8]> {
    (path.as_os_str() == BUILT_IN_MODEL).then_some(BYTES)
}
