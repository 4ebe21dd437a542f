//! Golden interop: the official checkpoint run through our reproductions of both official
//! DeepCAD-RT test pipelines gives the official outputs (fixtures/deepcad-rt-official/pipeline,
//! tolerances from its README), through the real CLI; import picks the normalisation a
//! checkpoint was trained with; and our seamless default is measured against the official output.

use std::path::{Path, PathBuf};
use std::process::Command;

use deepcad::io::{read_stack, ReadOptions, SampleType};
use deepcad::model::import::{import_reference_checkpoint_as, ReferenceNormalization};
use deepcad::model::Normalization;

fn official() -> PathBuf {
    let dir = crate::util::shared_dir().join("fixtures/deepcad-rt-official");
    assert!(dir.join("pipeline/input.tif").is_file(), "fixture {} is missing; set DEEPCAD_SHARED", dir.display());
    dir
}

fn deepcad(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deepcad")).args(args).output().unwrap()
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn read(path: &Path) -> (SampleType, Vec<f32>) {
    let (info, values) = read_stack(path, &ReadOptions::default()).unwrap();
    assert_eq!([info.frames, info.height, info.width], [120, 96, 96], "{}", path.display());
    (info.sample_type, values)
}

/// Largest absolute difference and the fraction of voxels that differ.
fn compare(ours: &[f32], gold: &[f32]) -> (f64, f64) {
    assert_eq!(ours.len(), gold.len());
    let diffs: Vec<f64> = ours.iter().zip(gold).map(|(a, b)| (*a as f64 - *b as f64).abs()).collect();
    (diffs.iter().copied().fold(0.0, f64::max), diffs.iter().filter(|&&d| d > 0.0).count() as f64 / diffs.len() as f64)
}

#[test]
fn both_official_pipelines_are_reproduced_within_the_fixture_tolerance() {
    let fixture = official();
    let (checkpoint, input) = (fixture.join("E_10_Iter_3500.pth"), fixture.join("pipeline/input.tif"));
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    for (convention, bundle) in [("stack-mean", "main.safetensors"), ("stack-min", "early.safetensors")] {
        let out = deepcad(&["import", text(&checkpoint), "--normalization", convention, "-o", text(&path(bundle))]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let run = |bundle: &str, compat: &str, tiling: &[&str], output_type: &str, output: &str| {
        let (bundle, output) = (path(bundle), path(output));
        let mut args =
            vec!["denoise", text(&input), "--model", text(&bundle), "--compat", compat, "--patch", "64,64,64"];
        args.extend_from_slice(tiling);
        args.extend_from_slice(&["--output-type", output_type, "--quiet", "-o", text(&output)]);
        let out = deepcad(&args);
        assert!(out.status.success(), "{compat}: {}", String::from_utf8_lossy(&out.stderr));
        read(&output)
    };
    let main_overlap: &[&str] = &["--overlap", "0.25"];
    let early_gaps: &[&str] = &["--gap", "48,48,48"];

    // deepcad-rt (main): float32 within atol 1e-2; the shipped uint16 within 1 on ≤ 2 % of voxels.
    let (kind, ours) = run("main.safetensors", "deepcad-rt", main_overlap, "float32", "main_f32.tif");
    assert_eq!(kind, SampleType::F32);
    let (_, gold) = read(&fixture.join("pipeline/output_main_float32.tif"));
    let (worst, _) = compare(&ours, &gold);
    eprintln!("deepcad-rt float32: max |ours − official| = {worst:.2e}");
    assert!(worst <= 1e-2, "deepcad-rt float32 differs by {worst}");
    let (kind, ours) = run("main.safetensors", "deepcad-rt", main_overlap, "auto", "main_u16.tif");
    assert_eq!(kind, SampleType::U16);
    let (_, gold) = read(&fixture.join("pipeline/output_main_uint16.tif"));
    let (worst, differing) = compare(&ours, &gold);
    eprintln!("deepcad-rt uint16: max |diff| {worst}, {:.4} % of voxels differ", differing * 100.0);
    assert!(worst <= 1.0 && differing <= 0.02, "deepcad-rt uint16: max {worst}, {differing} of voxels differ");

    // deepcad-rt-2021 (early): float32 within atol 1e-2; the shipped stretch at the README's check values.
    let (_, ours) = run("early.safetensors", "deepcad-rt-2021", early_gaps, "float32", "early_f32.tif");
    let (_, gold) = read(&fixture.join("pipeline/output_early_float32.tif"));
    let (worst, _) = compare(&ours, &gold);
    eprintln!("deepcad-rt-2021 float32: max |ours − official| = {worst:.2e}");
    assert!(worst <= 1e-2, "deepcad-rt-2021 float32 differs by {worst}");
    let (kind, ours) = run("early.safetensors", "deepcad-rt-2021", early_gaps, "auto", "early_u16.tif");
    assert_eq!(kind, SampleType::U16);
    let at = |t: usize, y: usize, x: usize| ours[(t * 96 + y) * 96 + x];
    assert_eq!([at(0, 0, 0), at(31, 48, 70), at(119, 95, 95)], [644.0, 55576.0, 1201.0]);
    let mean = ours.iter().map(|&v| v as f64).sum::<f64>() / ours.len() as f64;
    assert!((mean - 2362.0463831019).abs() < 0.01, "stretched mean {mean}");

    // A mismatched convention is a real algorithm difference, far outside the tolerance.
    let (_, ours) = run("early.safetensors", "deepcad-rt", main_overlap, "float32", "mismatch.tif");
    let (_, gold) = read(&fixture.join("pipeline/output_main_float32.tif"));
    let (same_weights_worst, _) = compare(&ours, &gold);
    assert!(same_weights_worst <= 1e-2, "the pipeline, not the bundle, decides deepcad-rt's normalisation");
    let (_, early_gold) = read(&fixture.join("pipeline/output_early_float32.tif"));
    assert!(compare(&early_gold, &gold).0 > 10.0, "the two official pipelines should disagree");
}

#[test]
fn our_seamless_default_against_the_official_pipeline_has_no_seams() {
    let fixture = official();
    let (checkpoint, input) = (fixture.join("E_10_Iter_3500.pth"), fixture.join("pipeline/input.tif"));
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("main.safetensors");
    let output = dir.path().join("seamless.tif");
    assert!(deepcad(&["import", text(&checkpoint), "-o", text(&bundle)]).status.success());
    let out = deepcad(&[
        "denoise",
        text(&input),
        "--model",
        text(&bundle),
        "--output-type",
        "float32",
        "--quiet",
        "-o",
        text(&output),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, ours) = read(&output);
    let (_, gold) = read(&fixture.join("pipeline/output_main_float32.tif"));
    let plane = 96 * 96;
    // Mean |frame t − frame t−1|, and how far it stands out from the steps either side: at the
    // official pipeline's time seam (frames 0–55 from one tile, 56– from the next) a seam stands
    // out; the movie's own activity (a spike at frame 58) raises the neighbours too.
    let step = |v: &[f32], t: usize| {
        v[t * plane..(t + 1) * plane]
            .iter()
            .zip(&v[(t - 1) * plane..t * plane])
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / plane as f64
    };
    let excess = |v: &[f32], t: usize| step(v, t) - (step(v, t - 1) + step(v, t + 1)) / 2.0;
    let (ours_seam, gold_seam) = (excess(&ours, 56), excess(&gold, 56));
    let mean_abs = ours.iter().zip(&gold).map(|(a, b)| (a - b).abs() as f64).sum::<f64>() / ours.len() as f64;
    let (worst, _) = compare(&ours, &gold);
    eprintln!(
        "seamless default vs official deepcad-rt: mean |diff| {mean_abs:.2}, max {worst:.1}; step at frame 56 above its neighbours: ours {ours_seam:.2}, official {gold_seam:.2} (ours {:.2}, official {:.2})",
        step(&ours, 56),
        step(&gold, 56)
    );
    assert!(gold_seam > 3.0, "the official output should step at its tile border ({gold_seam})");
    assert!(ours_seam < 1.0, "our output steps at frame 56 by {ours_seam} more than its neighbours");
}

#[test]
fn import_picks_the_normalisation_the_checkpoint_was_trained_with() {
    let checkpoint = official().join("E_10_Iter_3500.pth");
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("para.yaml");
    let import = |yaml: &str, choice: Option<ReferenceNormalization>| {
        std::fs::write(&params, yaml).unwrap();
        import_reference_checkpoint_as(&checkpoint, Some(&params), choice, tch::Device::Cpu)
            .unwrap()
            .metadata
            .normalization
    };
    // The 2021 release's sidecar (normalize_factor, gap_s): minimum subtracted.
    assert_eq!(
        import("fmap: 16\ngap_s: 75\nnormalize_factor: 1\n", None),
        Normalization::StackMin { normalize_factor: 1.0 }
    );
    // DeepCAD-RT's (scale_factor, overlap_factor): mean subtracted.
    assert_eq!(
        import("fmap: 16\noverlap_factor: 0.25\nscale_factor: 2\n", None),
        Normalization::StackMean { scale_factor: 2.0 }
    );
    // An explicit choice wins.
    assert_eq!(
        import("fmap: 16\nscale_factor: 1\n", Some(ReferenceNormalization::StackMin)),
        Normalization::StackMin { normalize_factor: 1.0 }
    );
}
