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
    let (noisy, truth, model, denoised) = (
        dir.path().join("noisy.tif"),
        dir.path().join("truth.tif"),
        dir.path().join("m.safetensors"),
        dir.path().join("d.tif"),
    );
    ok(&[
        "simulate",
        "-o",
        path(&noisy),
        "--truth",
        path(&truth),
        "--width",
        "64",
        "--height",
        "64",
        "--frames",
        "240",
        "--neurons",
        "10",
        "--photons",
        "2",
        "--seed",
        "3",
    ]);
    let before = std::fs::read(&noisy).unwrap();
    let started = std::time::Instant::now();
    ok(&[
        "train",
        path(&noisy),
        "-o",
        path(&model),
        "--epochs",
        "3",
        "--patch-t",
        "32",
        "--patch-xy",
        "32",
        "--patches-per-epoch",
        "60",
        "--seed",
        "1",
        "--device",
        "cpu",
    ]);
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
    eprintln!(
        "training {training:.0} s; SNR raw {snr_raw:.2} dB, 5-frame mean {snr_mean:.2} dB, denoised {snr_ours:.2} dB"
    );
    assert!(snr_ours > snr_raw + 6.0, "denoised {snr_ours:.2} dB vs raw {snr_raw:.2} dB");
    assert!(snr_ours > snr_mean + 2.0, "denoised {snr_ours:.2} dB vs 5-frame mean {snr_mean:.2} dB");

    let info = ok(&["info", path(&model)]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("base width:     16") && text.contains("epoch   3"), "{text}");
}

#[test]
fn the_built_in_model_denoises_without_training() {
    let dir = tempfile::tempdir().unwrap();
    let (noisy, truth, denoised) =
        (dir.path().join("noisy.tif"), dir.path().join("truth.tif"), dir.path().join("d.tif"));
    // Brightness, gain, offset and frame rate unlike any of its training movies.
    ok(&[
        "simulate",
        "-o",
        path(&noisy),
        "--truth",
        path(&truth),
        "--width",
        "64",
        "--height",
        "64",
        "--frames",
        "200",
        "--neurons",
        "10",
        "--photons",
        "1.2",
        "--gain",
        "3.5",
        "--offset",
        "700",
        "--frame-rate",
        "20",
        "--seed",
        "77",
    ]);
    let info = ok(&["info", "default"]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("per_movie") && text.contains("base width:     16"), "{text}");

    let out = Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["denoise", path(&noisy), "--model", "default", "-o", path(&denoised), "--device", "cpu"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Dim data: the automatic output type writes float and says so.
    assert!(stderr(&out).contains("writing 32-bit float"), "{}", stderr(&out));
    let (_, raw) = read_stack(&noisy, &ReadOptions::default()).unwrap();
    let (_, clean) = read_stack(&truth, &ReadOptions::default()).unwrap();
    let (info, result) = read_stack(&denoised, &ReadOptions::default()).unwrap();
    assert_eq!(info.sample_type, deepcad::io::SampleType::F32);
    let mean5 = metrics::temporal_moving_average(&raw, 64, 64, 5).unwrap();
    let (snr_raw, snr_mean, snr_ours) = (
        metrics::snr_db(&raw, &clean).unwrap(),
        metrics::snr_db(&mean5, &clean).unwrap(),
        metrics::snr_db(&result, &clean).unwrap(),
    );
    eprintln!("built-in model: SNR raw {snr_raw:.2} dB, 5-frame mean {snr_mean:.2} dB, denoised {snr_ours:.2} dB");
    assert!(snr_ours > snr_raw + 8.0, "denoised {snr_ours:.2} dB vs raw {snr_raw:.2} dB");
    assert!(snr_ours > snr_mean + 2.0, "denoised {snr_ours:.2} dB vs 5-frame mean {snr_mean:.2} dB");
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
    let out = deepcad(&[
        "denoise",
        path(&text),
        "--model",
        path(&dir.path().join("m.safetensors")),
        "-o",
        path(&dir.path().join("o.tif")),
    ]);
    assert_eq!(out.status.code(), Some(2), "a missing model is bad input");
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
    ok(&[
        "train",
        path(&movie),
        "-o",
        path(&tiny_model),
        "--epochs",
        "1",
        "--patch-t",
        "16",
        "--patch-xy",
        "16",
        "--patches-per-epoch",
        "4",
        "--base-width",
        "4",
        "--device",
        "cpu",
    ]);
    let before = std::fs::read(&movie).unwrap();
    let out = deepcad(&["denoise", path(&movie), "--model", path(&tiny_model), "-o", path(&movie)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("movie.tif"));
    assert_eq!(std::fs::read(&movie).unwrap(), before);

    // Unknown device and bad flag values are usage errors (exit 2).
    let out = deepcad(&[
        "denoise",
        path(&movie),
        "--model",
        path(&tiny_model),
        "-o",
        path(&dir.path().join("x.tif")),
        "--device",
        "tpu",
    ]);
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
    assert!(stderr(&again).contains("allow replacing"), "{}", stderr(&again));
    assert_eq!(std::fs::read(&package).unwrap(), before);
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly_like_other_unix_tools() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("m.safetensors");
    let metadata = deepcad::model::ModelMetadata::new(
        16,
        [64, 64, 64],
        deepcad::model::Normalization::Fixed { offset: 0.0, scale: 1.0 },
    );
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
    let tiny = [
        "--epochs",
        "1",
        "--patch-t",
        "16",
        "--patch-xy",
        "16",
        "--patches-per-epoch",
        "4",
        "--base-width",
        "4",
        "--device",
        "cpu",
    ];
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
    // On the same movie, --epochs is the total: re-running a stopped command finishes that training.
    let resume_to = |total: &str| {
        let mut args = vec!["train", path(&movie), "-o", path(&model), "--resume", path(&model)];
        args.extend_from_slice(&tiny[2..]);
        args.extend_from_slice(&["--epochs", total]);
        ok(&args);
        deepcad::model::Model::read_metadata(&model).unwrap().training.epochs_completed
    };
    assert_eq!(resume_to("3"), 3);
    assert_eq!(resume_to("3"), 3, "nothing left to do");
}

/// Simulates a small movie at `path` (16×16 pixels, 40 frames).
fn small_movie(movie: &Path, seed: &str) {
    ok(&["simulate", "-o", path(movie), "--width", "16", "--height", "16", "--frames", "40", "--seed", seed]);
}

#[test]
fn folder_mode_plans_every_output_and_refuses_collisions_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    let denoise = |args: &[&str]| deepcad(&[&["denoise", "--model", "default", "--device", "cpu"][..], args].concat());

    // d/b.tif and d/b.tiff into d itself with no suffix: b.tif would replace an input.
    small_movie(&d.join("b.tif"), "1");
    small_movie(&d.join("b.tiff"), "2");
    let before = std::fs::read(d.join("b.tif")).unwrap();
    let out = denoise(&[path(&d), "-o", path(&d), "--suffix", ""]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("b.tif") && stderr(&out).contains("would replace the input"), "{}", stderr(&out));
    assert_eq!(std::fs::read(d.join("b.tif")).unwrap(), before, "an input must never change");

    // a.tif, a.tiff and a.TIF: one output name for three movies.
    let e = dir.path().join("e");
    std::fs::create_dir(&e).unwrap();
    for (name, seed) in [("a.tif", "3"), ("a.tiff", "4"), ("a.TIF", "5")] {
        small_movie(&e.join(name), seed);
    }
    let out_dir = dir.path().join("out");
    let out = denoise(&[path(&e), "-o", path(&out_dir)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("would both be written to") && stderr(&out).contains("a-denoised.tif"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(&out_dir).map(|r| r.count()).unwrap_or(0), 0, "nothing may be written");

    // d1/x.tif and d2/x.tif into one folder.
    let (d1, d2) = (dir.path().join("d1"), dir.path().join("d2"));
    std::fs::create_dir(&d1).unwrap();
    std::fs::create_dir(&d2).unwrap();
    small_movie(&d1.join("x.tif"), "6");
    small_movie(&d2.join("x.tif"), "7");
    let out = denoise(&[path(&d1.join("x.tif")), path(&d2.join("x.tif")), "-o", path(&out_dir)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("d1") && stderr(&out).contains("d2"), "{}", stderr(&out));

    // Distinct names: one output each, named <stem>-denoised.tif.
    let out = denoise(&[path(&d1), "-o", path(&out_dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out_dir.join("x-denoised.tif").is_file());
}

#[test]
fn denoise_never_replaces_an_existing_file_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (movie, result) = (dir.path().join("movie.tif"), dir.path().join("result.tif"));
    small_movie(&movie, "1");
    std::fs::write(&result, "precious").unwrap();
    let denoise = |extra: &[&str]| {
        deepcad(
            &[&["denoise", path(&movie), "--model", "default", "-o", path(&result), "--device", "cpu"][..], extra]
                .concat(),
        )
    };
    let out = denoise(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("result.tif") && stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&result).unwrap(), "precious");
    let out = denoise(&["--overwrite"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_stack(&result, &ReadOptions::default()).unwrap().0.frames, 40, "replaced when asked");
    // Simulate keeps the same rule.
    let out = deepcad(&["simulate", "-o", path(&movie), "--width", "16", "--height", "16", "--frames", "40"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Denoises a long movie in a child process and sends it `signals` SIGTERMs, 100 ms apart, once
/// its partial output file exists (so it is past start-up and its handlers are in place, however
/// loaded the machine); returns its output, stderr and the planned output path.
fn denoise_interrupted(signals: usize) -> (std::process::Output, String, tempfile::TempDir, std::path::PathBuf) {
    denoise_interrupted_with(signals, false)
}

/// As [`denoise_interrupted`]; with `reader_gone`, the pipe reading its stderr is closed before
/// the signals (an ssh session that dropped, `2>&1 | head`).
fn denoise_interrupted_with(
    signals: usize,
    reader_gone: bool,
) -> (std::process::Output, String, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (movie, out) = (dir.path().join("long.tif"), dir.path().join("long-denoised.tif"));
    ok(&["simulate", "-o", path(&movie), "--width", "96", "--height", "96", "--frames", "3000"]);
    let child = Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["denoise", path(&movie), "--model", "default", "-o", path(&out), "--device", "cpu"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    let started = std::time::Instant::now();
    let partial_exists =
        || std::fs::read_dir(dir.path()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with('.'));
    while !partial_exists() && started.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if reader_gone {
        drop(child.stderr.take());
    }
    for _ in 0..signals {
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let done = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&done.stderr).into_owned();
    (done, text, dir, out)
}

#[test]
fn sigterm_stops_like_ctrl_c_and_leaves_no_output() {
    let (done, text, dir, out) = denoise_interrupted(1);
    assert_eq!(done.status.code(), Some(130), "{text}");
    assert!(text.contains("cancelled"), "{text}");
    assert!(!out.exists(), "no output under the final name");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "only the movie remains: {leftovers:?}");
}

#[test]
fn sigterm_with_stderr_gone_still_stops_cleanly_and_leaves_no_partial_file() {
    let (done, _, dir, out) = denoise_interrupted_with(1, true);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(done.status.signal(), None, "killed by a signal (SIGPIPE) instead of stopping");
    assert_eq!(done.status.code(), Some(130));
    assert!(!out.exists(), "no output under the final name");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "only the movie remains: {leftovers:?}");
}

#[test]
fn a_later_run_on_the_same_output_removes_what_a_killed_run_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (movie, out) = (dir.path().join("long.tif"), dir.path().join("long-denoised.tif"));
    ok(&["simulate", "-o", path(&movie), "--width", "96", "--height", "96", "--frames", "3000"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["denoise", path(&movie), "--model", "default", "-o", path(&out), "--device", "cpu", "--quiet"])
        .spawn()
        .unwrap();
    let hidden = || -> Vec<String> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    };
    // Killed once its partial file exists (how soon depends on the machine's load).
    let started = std::time::Instant::now();
    while hidden().is_empty() && started.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert_eq!(hidden().len(), 1, "the killed run's partial file: {:?}", hidden());
    // Any later run writing that output proves the writer dead (same host, PID gone) and removes it.
    ok(&["convert", path(&movie), "-o", path(&out)]);
    assert!(out.is_file());
    assert!(hidden().is_empty(), "left behind: {:?}", hidden());
}

#[test]
fn a_second_sigterm_while_stopping_exits_130_at_once_without_crashing() {
    // What SLURM does to a task it cancels while others of its array wait: SIGTERM, then again.
    let (done, text, _dir, out) = denoise_interrupted(2);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(done.status.signal(), None, "killed by a signal (crashed): {text}");
    assert_eq!(done.status.code(), Some(130), "{text}");
    assert!(!out.exists(), "no output under the final name");
}

#[test]
fn a_training_that_diverges_fails_while_working_with_exit_1_and_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let (movie, model) = (dir.path().join("m.tif"), dir.path().join("m.safetensors"));
    small_movie(&movie, "4");
    let out = deepcad(&[
        "train",
        path(&movie),
        "-o",
        path(&model),
        "--learning-rate",
        "1e30",
        "--epochs",
        "1",
        "--patches-per-epoch",
        "4",
        "--patch-t",
        "16",
        "--patch-xy",
        "16",
        "--init",
        "random",
    ]);
    assert_eq!(out.status.code(), Some(1), "valid input, failed while working: {}", stderr(&out));
    assert!(stderr(&out).contains("diverged") && stderr(&out).contains("lower the learning rate"), "{}", stderr(&out));
    assert!(!model.exists(), "no model from a diverged first epoch");
}
