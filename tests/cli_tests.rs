//! The real `deepcad` binary: the end-to-end job and its error contract (messages, exit codes,
//! untouched inputs).
use std::path::Path;
use std::process::{Command, Output};

use deepcad::io::{read_stack, ReadOptions};
use deepcad::metrics;

fn deepcad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deepcad")).args(args).arg("--quiet").output().expect("run deepcad")
}

fn ok(args: &[&str]) -> Output {
    let out = deepcad(args);
    assert!(out.status.success(), "deepcad {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn simulate_train_denoise_beats_raw_and_temporal_mean() {
    let dir = tempfile::tempdir().unwrap();
    let (noisy, truth, model, denoised) =
        (dir.path().join("noisy.tif"), dir.path().join("truth.tif"), dir.path().join("m.safetensors"), dir.path().join("d.tif"));
    ok(&["simulate", "-o", path(&noisy), "--truth", path(&truth), "--width", "64", "--height", "64", "--frames", "240",
        "--neurons", "10", "--photons", "2", "--seed", "3"]);
    let before = std::fs::read(&noisy).unwrap();
    let started = std::time::Instant::now();
    ok(&["train", path(&noisy), "-o", path(&model), "--epochs", "3", "--patch-t", "32", "--patch-xy", "32",
        "--patches-per-epoch", "60", "--seed", "1", "--device", "cpu"]);
    let training = started.elapsed().as_secs_f64();
    ok(&["denoise", path(&noisy), "--model", path(&model), "-o", path(&denoised), "--float32", "--device", "cpu"]);
    assert_eq!(std::fs::read(&noisy).unwrap(), before, "the input must not change");

    let (info, raw) = read_stack(&noisy, &ReadOptions::default()).unwrap();
    let (_, clean) = read_stack(&truth, &ReadOptions::default()).unwrap();
    let (out_info, out) = read_stack(&denoised, &ReadOptions::default()).unwrap();
    assert_eq!(out_info.frames, info.frames);
    let mean5 = metrics::temporal_moving_average(&raw, 64, 64, 5).unwrap();
    let snr_raw = metrics::snr_db(&raw, &clean).unwrap();
    let snr_mean = metrics::snr_db(&mean5, &clean).unwrap();
    let snr_ours = metrics::snr_db(&out, &clean).unwrap();
    eprintln!("training {training:.0} s; SNR raw {snr_raw:.2} dB, 5-frame mean {snr_mean:.2} dB, denoised {snr_ours:.2} dB");
    assert!(snr_ours > snr_raw + 6.0, "denoised {snr_ours:.2} dB vs raw {snr_raw:.2} dB");
    assert!(snr_ours > snr_mean + 2.0, "denoised {snr_ours:.2} dB vs 5-frame mean {snr_mean:.2} dB");

    let info = ok(&["info", path(&model)]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("base width:     16") && text.contains("epoch   3"), "{text}");
}

#[test]
fn bad_inputs_fail_with_the_file_name_and_a_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.tif");
    let out = deepcad(&["train", path(&missing), "-o", path(&dir.path().join("m.safetensors"))]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("missing.tif"), "{}", stderr(&out));

    let text = dir.path().join("notes.tif");
    std::fs::write(&text, "hello, not an image").unwrap();
    let out = deepcad(&["denoise", path(&text), "--model", path(&dir.path().join("m.safetensors")), "-o", path(&dir.path().join("o.tif"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("m.safetensors"), "the missing model is reported first: {}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "hello, not an image");

    // A short movie cannot train a 64-frame patch (needs 128 frames): clear message, no model.
    let short = dir.path().join("short.tif");
    ok(&["simulate", "-o", path(&short), "--width", "32", "--height", "32", "--frames", "10"]);
    let model = dir.path().join("short.safetensors");
    let out = deepcad(&["train", path(&short), "-o", path(&model), "--epochs", "1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("short.tif") && stderr(&out).contains("10"), "{}", stderr(&out));
    assert!(!model.exists());

    // Output equal to input: refused, input intact.
    let tiny_model = dir.path().join("tiny.safetensors");
    let movie = dir.path().join("movie.tif");
    ok(&["simulate", "-o", path(&movie), "--width", "16", "--height", "16", "--frames", "40"]);
    ok(&["train", path(&movie), "-o", path(&tiny_model), "--epochs", "1", "--patch-t", "16", "--patch-xy", "16",
        "--patches-per-epoch", "4", "--base-width", "4", "--device", "cpu"]);
    let before = std::fs::read(&movie).unwrap();
    let out = deepcad(&["denoise", path(&movie), "--model", path(&tiny_model), "-o", path(&movie)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("movie.tif"));
    assert_eq!(std::fs::read(&movie).unwrap(), before);

    // Unknown device and bad flag values are usage errors (exit 2).
    let out = deepcad(&["denoise", path(&movie), "--model", path(&tiny_model), "-o", path(&dir.path().join("x.tif")), "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tpu"));
    let out = deepcad(&["denoise", path(&movie), "--model", path(&tiny_model), "-o", "x.tif", "--tile", "8,8"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_reads_like_a_unix_tool() {
    let out = Command::new(env!("CARGO_BIN_EXE_deepcad")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["train", "denoise", "info", "simulate", "demo", "Quick start"] {
        assert!(text.contains(word), "--help lacks {word}: {text}");
    }
}

#[test]
fn import_and_export_round_trip_through_the_cli() {
    let checkpoint = crate::util::shared_dir().join("fixtures/deepcad-rt-official/E_10_Iter_3500.pth");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("rt.safetensors");
    ok(&["import", path(&checkpoint), "-o", path(&bundle)]);
    let info = ok(&["info", path(&bundle)]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("stack_mean"));
    // `info` on the checkpoint itself describes what every command would load from it.
    let direct = ok(&["info", path(&checkpoint)]);
    let text = String::from_utf8_lossy(&direct.stdout);
    assert!(text.contains("stack_mean") && text.contains("1020337 parameters"), "{text}");
    let package = dir.path().join("rt.zip");
    ok(&["export-bioimageio", path(&bundle), "-o", path(&package)]);
    assert!(package.is_file());
    // A second export without --overwrite is refused and leaves the package as it was.
    let before = std::fs::read(&package).unwrap();
    let again = deepcad(&["export-bioimageio", path(&bundle), "-o", path(&package)]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("overwrite"), "{}", stderr(&again));
    assert_eq!(std::fs::read(&package).unwrap(), before);
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly_like_other_unix_tools() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("m.safetensors");
    let metadata = deepcad::model::ModelMetadata::new(16, [64, 64, 64], deepcad::model::Normalization::Fixed { offset: 0.0, scale: 1.0 });
    deepcad::model::Model::new(metadata, tch::Device::Cpu).unwrap().save(&bundle).unwrap();
    // `deepcad info --json m | head -c 0`: the pipe's reader is gone before anything is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["info", "--json", path(&bundle)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn training_never_writes_over_an_input_or_an_existing_file_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let movie = dir.path().join("movie.tif");
    ok(&["simulate", "-o", path(&movie), "--width", "16", "--height", "16", "--frames", "40"]);
    let before = std::fs::read(&movie).unwrap();
    let tiny = ["--epochs", "1", "--patch-t", "16", "--patch-xy", "16", "--patches-per-epoch", "4", "--base-width", "4", "--device", "cpu"];
    let train = |output: &Path, extra: &[&str]| {
        let mut args = vec!["train", path(&movie), "-o", path(output)];
        args.extend_from_slice(&tiny);
        args.extend_from_slice(extra);
        deepcad(&args)
    };

    // The movie itself, by its name, through `./`, a symbolic link and a hard link: refused, exit 2.
    let symlink = dir.path().join("link.tif");
    std::os::unix::fs::symlink(&movie, &symlink).unwrap();
    let hard = dir.path().join("hard.tif");
    std::fs::hard_link(&movie, &hard).unwrap();
    let dotted = dir.path().join(".").join("movie.tif");
    for output in [&movie, &dotted, &symlink, &hard] {
        for extra in [&[][..], &["--overwrite"][..]] {
            let out = train(output, extra);
            assert_eq!(out.status.code(), Some(2), "{output:?} {extra:?}: {}", stderr(&out));
            assert!(stderr(&out).contains("movie.tif"), "{}", stderr(&out));
        }
    }
    assert_eq!(std::fs::read(&movie).unwrap(), before, "the movie must never change");

    // An existing file that is not the model being resumed: refused unless --overwrite.
    let notes = dir.path().join("notes.safetensors");
    std::fs::write(&notes, "my notes").unwrap();
    let out = train(&notes, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("notes.safetensors") && stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes");
    ok(&[&["train", path(&movie), "-o", path(&notes)][..], &tiny, &["--overwrite"]].concat());
    assert!(deepcad::model::Model::read_metadata(&notes).is_ok(), "replaced by a bundle when asked");

    // A second run to the same model: refused; continuing it in place is allowed (and its .best too).
    let model = dir.path().join("m.safetensors");
    ok(&[&["train", path(&movie), "-o", path(&model)][..], &tiny].concat());
    let out = train(&model, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    ok(&[&["train", path(&movie), "-o", path(&model), "--resume", path(&model)][..], &tiny].concat());
    assert_eq!(deepcad::model::Model::read_metadata(&model).unwrap().training.epochs_completed, 2);
}
