//! Shared test helpers.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The team's shared folder: beside the repository (as in CI's clean clone), overridable with
/// DEEPCAD_SHARED.
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DEEPCAD_SHARED") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("shared")
}

/// Runs the `deepcad` binary quietly.
pub fn deepcad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deepcad")).args(args).arg("--quiet").output().expect("run deepcad")
}

/// Runs the CLI with its log (for checks of what it says it chose).
pub fn deepcad_logged(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deepcad")).args(args).output().expect("run deepcad")
}

/// Standard output and error together, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs the `deepcad` binary quietly and fails the test, with its output, unless it succeeds.
pub fn deepcad_ok(args: &[&str]) {
    let out = deepcad(args);
    assert!(out.status.success(), "deepcad {args:?} failed: {}", text(&out));
}

/// A movie file's values as float32, frame after frame.
pub fn read_movie(path: &Path) -> Vec<f32> {
    deepcad::io::read_stack(path, &deepcad::io::ReadOptions::default()).unwrap().1
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A randomly initialised model whose weights depend only on `seed`. `tch::manual_seed` plus
/// `Model::new` is not enough: the tests of this binary run in parallel and share libtorch's
/// global generator, so two models "seeded alike" could differ and an equality test flake.
/// Weights are uniform in ±1/√fan_in (PyTorch's default scale), biases in ±0.05.
pub fn seeded_model(metadata: deepcad::model::ModelMetadata, seed: u64) -> deepcad::model::Model {
    use rand::{Rng, SeedableRng};
    let model = deepcad::model::Model::new(metadata, tch::Device::Cpu).unwrap();
    let mut variables: Vec<(String, tch::Tensor)> = model.vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    tch::no_grad(|| {
        for (_, mut variable) in variables {
            let shape = variable.size();
            let count = shape.iter().product::<i64>() as usize;
            let bound = if shape.len() > 1 { 1.0 / ((count as f64 / shape[0] as f64).sqrt()) } else { 0.05 };
            let values: Vec<f32> = (0..count).map(|_| rng.random_range(-bound..bound) as f32).collect();
            variable.copy_(&tch::Tensor::from_slice(&values).reshape(&shape).to_kind(variable.kind()));
        }
    });
    model
}
