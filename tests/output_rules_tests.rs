//! Every subcommand that writes follows the same output rules (src/io/output_rules.rs), walked
//! here command by command as a table: an output path holding a FIFO or a device node (one this
//! test makes in its own folder; never a real one) is refused even with `--overwrite` and is still
//! that node afterwards; an output that is one of the command's inputs is refused and the input is
//! unchanged; an existing file is never replaced without `--overwrite`; and two outputs of one run
//! may not share a path. Each refusal exits 2 (bad request, found before any work) and names the path.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{p, text};
use deepcad::model::{Model, ModelMetadata, Normalization};

/// A command's arguments for a given output path (and whether `--overwrite` is added).
type ArgsFor = Box<dyn Fn(&Path, bool) -> Vec<String>>;

/// A writing command.
struct Writer {
    name: &'static str,
    args: ArgsFor,
    /// Its inputs, each a case "output = this input".
    inputs: Vec<PathBuf>,
}

fn run(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deepcad")).args(args).arg("--quiet").output().expect("run deepcad")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn with_overwrite(mut args: Vec<String>, overwrite: bool) -> Vec<String> {
    if overwrite {
        args.push("--overwrite".into());
    }
    args
}

/// What is at `path`, to compare before and after: its kind, and a regular file's bytes.
fn snapshot(path: &Path) -> (String, Option<Vec<u8>>) {
    match std::fs::symlink_metadata(path) {
        Err(_) => ("absent".into(), None),
        Ok(meta) => {
            let kind = meta.file_type();
            let name = if kind.is_fifo() {
                "fifo"
            } else if kind.is_char_device() {
                "char device"
            } else if kind.is_dir() {
                "folder"
            } else {
                "file"
            };
            (name.into(), kind.is_file().then(|| std::fs::read(path).unwrap()))
        }
    }
}

/// Special files at output paths: a FIFO always; a character device (same numbers as /dev/null)
/// made with mknod in the test's own folder where the user may (root), else skipped with a reason.
fn special_files(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let fifo = dir.join("fifo-out");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut specials = vec![("FIFO", fifo)];
    let node = dir.join("device-out");
    let made = Command::new("mknod").arg(&node).args(["c", "1", "3"]).stderr(std::process::Stdio::null()).status();
    if made.is_ok_and(|s| s.success()) {
        specials.push(("device node", node));
    } else {
        eprintln!("SKIPPED the device-node output cases: mknod needs root (the FIFO cases still run)");
    }
    specials
}

#[test]
fn every_writing_command_refuses_special_files_inputs_and_existing_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let movie = d.join("movie.tif");
    let out = run(&strings(&["simulate", "-o", p(&movie), "--width", "16", "--height", "16", "--frames", "24"]));
    assert!(out.status.success(), "{}", text(&out));
    let model = d.join("model.safetensors");
    tch::manual_seed(3);
    Model::new(
        ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 100.0, scale: 5.0 }),
        tch::Device::Cpu,
    )
    .unwrap()
    .save(&model)
    .unwrap();

    let (m, mv) = (p(&model).to_string(), p(&movie).to_string());
    let writers = vec![
        Writer {
            name: "denoise",
            args: Box::new({
                let (m, mv) = (m.clone(), mv.clone());
                move |o, w| with_overwrite(strings(&["denoise", &mv, "--model", &m, "-o", p(o), "--device", "cpu"]), w)
            }),
            inputs: vec![movie.clone(), model.clone()],
        },
        Writer {
            name: "convert",
            args: Box::new({
                let mv = mv.clone();
                move |o, w| with_overwrite(strings(&["convert", &mv, "-o", p(o)]), w)
            }),
            inputs: vec![movie.clone()],
        },
        Writer {
            name: "train",
            args: Box::new({
                let mv = mv.clone();
                move |o, w| {
                    with_overwrite(
                        strings(&[
                            "train",
                            &mv,
                            "-o",
                            p(o),
                            "--epochs",
                            "1",
                            "--patches-per-epoch",
                            "1",
                            "--device",
                            "cpu",
                        ]),
                        w,
                    )
                }
            }),
            inputs: vec![movie.clone()],
        },
        Writer {
            name: "simulate",
            args: Box::new(|o, w| {
                with_overwrite(strings(&["simulate", "-o", p(o), "--width", "16", "--height", "16"]), w)
            }),
            inputs: vec![],
        },
        Writer {
            name: "simulate --spikes",
            args: Box::new({
                let d = d.clone();
                move |o, w| {
                    let noisy = d.join("sim-noisy.tif");
                    let _ = std::fs::remove_file(&noisy);
                    with_overwrite(
                        strings(&["simulate", "-o", p(&noisy), "--spikes", p(o), "--width", "16", "--height", "16"]),
                        w,
                    )
                }
            }),
            inputs: vec![],
        },
        Writer {
            name: "export-bioimageio (zip)",
            args: Box::new({
                let m = m.clone();
                move |o, w| with_overwrite(strings(&["export-bioimageio", &m, "-o", p(o)]), w)
            }),
            inputs: vec![model.clone()],
        },
        Writer {
            name: "score --json",
            args: Box::new({
                let mv = mv.clone();
                move |o, w| with_overwrite(strings(&["score", &mv, "--raw", &mv, "--json", p(o)]), w)
            }),
            inputs: vec![movie.clone()],
        },
    ];

    let specials = special_files(&d);
    let mut problems = Vec::new();
    let mut cases = 0;
    let mut check = |label: String, args: Vec<String>, path: &Path, names: &str| {
        cases += 1;
        let before = snapshot(path);
        let out = run(&args);
        let after = snapshot(path);
        if out.status.code() != Some(2) {
            problems.push(format!("{label}: exit {:?}, want 2: {}", out.status.code(), text(&out)));
        } else if !text(&out).contains(names) {
            problems.push(format!("{label}: the message does not name {names}: {}", text(&out)));
        }
        if before != after {
            problems.push(format!("{label}: {} was {} and is now {}", path.display(), before.0, after.0));
        }
    };

    for writer in &writers {
        for (what, special) in &specials {
            check(
                format!("{} onto a {what} with --overwrite", writer.name),
                (writer.args)(special, true),
                special,
                p(special),
            );
        }
        for input in &writer.inputs {
            check(
                format!("{} onto its input {}", writer.name, input.display()),
                (writer.args)(input, true),
                input,
                p(input),
            );
        }
        let existing = d.join(format!("existing-{}", writer.name.replace([' ', '(', ')', '-'], "_")));
        let existing = existing.with_extension(if writer.name.contains("zip") { "zip" } else { "tif" });
        std::fs::write(&existing, b"an existing file of the user's").unwrap();
        check(
            format!("{} onto an existing file without --overwrite", writer.name),
            (writer.args)(&existing, false),
            &existing,
            p(&existing),
        );
    }

    // A bioimage.io folder package never replaces a file (the model itself, or any other).
    let model_copy = d.join("model-copy.safetensors");
    std::fs::copy(&model, &model_copy).unwrap();
    check(
        "export-bioimageio (folder) onto a file with --overwrite".into(),
        strings(&["export-bioimageio", &m, "-o", p(&model_copy), "--overwrite"]),
        &model_copy,
        p(&model_copy),
    );
    // Two outputs of one run on one path: refused before anything is written.
    let shared = d.join("twice.tif");
    check(
        "simulate with --truth on its own output".into(),
        strings(&["simulate", "-o", p(&shared), "--truth", p(&shared), "--width", "16", "--height", "16"]),
        &shared,
        p(&shared),
    );
    eprintln!("output rules: {cases} cases over {} writing commands, {} problems", writers.len(), problems.len());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_run_whose_later_output_fails_leaves_none_of_its_outputs() {
    // The truth is written to a folder that disappears mid-run, so its publication fails after the
    // noisy movie was complete: the noisy movie must go too.
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    let noisy = dir.path().join("noisy.tif");
    let truth = gone.join("truth.tif");
    let mut child = Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["simulate", "-q", "-o", p(&noisy), "--truth", p(&truth), "--width", "64", "--height", "64"])
        .args(["--frames", "4000"])
        .spawn()
        .unwrap();
    // Remove the truth's folder (with the run's partial file in it) while frames are being written.
    let started = std::time::Instant::now();
    while std::fs::read_dir(&gone).unwrap().next().is_none() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::remove_dir_all(&gone).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run cannot have succeeded without its truth folder");
    assert!(!noisy.exists(), "the noisy movie of a failed run was left behind");
}

/// `deepcad` as a user whom file permissions bind: as root, without the capabilities that bypass
/// them (setpriv from util-linux drops them from the bounding set); as anyone else, as is.
fn run_bound_by_permissions(args: &[String]) -> std::process::Output {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    let mut command = if root {
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set=-dac_override,-dac_read_search", env!("CARGO_BIN_EXE_deepcad")]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_deepcad"))
    };
    command.args(args).arg("--quiet").output().expect("run deepcad (as root this needs setpriv, from util-linux)")
}

/// An input nobody may read and an output folder nobody may write: every command ends with a
/// message naming the path and what to do, exits 2, and writes nothing anywhere.
#[test]
fn unreadable_inputs_and_read_only_folders_are_refused_with_the_path_and_a_remedy() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let movie = dir.path().join("movie.tif");
    let made = run(&strings(&["simulate", "-o", p(&movie), "--width", "32", "--height", "32", "--frames", "40"]));
    assert!(made.status.success(), "{}", text(&made));
    let secret = dir.path().join("secret.tif");
    std::fs::copy(&movie, &secret).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = |name: &str| dir.path().join(name);
    let train = |input: &Path, output: &Path| {
        strings(&["train", p(input), "-o", p(output), "--epochs", "1", "--patch-t", "8", "--patch-xy", "32"])
    };
    let cases: Vec<(Vec<String>, PathBuf, &str)> = vec![
        (
            strings(&["denoise", p(&secret), "--model", "default", "-o", p(&out("d.tif"))]),
            secret.clone(),
            "permissions",
        ),
        (train(&secret, &out("m.safetensors")), secret.clone(), "permissions"),
        (strings(&["convert", p(&secret), "-o", p(&out("c.tif"))]), secret.clone(), "permissions"),
        (strings(&["score", "--raw", p(&secret), p(&movie)]), secret.clone(), "permissions"),
        (
            strings(&["denoise", p(&movie), "--model", "default", "-o", p(&locked.join("d.tif"))]),
            locked.clone(),
            "write",
        ),
        (train(&movie, &locked.join("m.safetensors")), locked.clone(), "write"),
        (strings(&["convert", p(&movie), "-o", p(&locked.join("c.zarr"))]), locked.clone(), "write"),
        (strings(&["simulate", "-o", p(&locked.join("s.tif"))]), locked.clone(), "write"),
    ];
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    for (args, named, remedy) in &cases {
        let result = run_bound_by_permissions(args);
        let said = text(&result);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {said}");
        assert!(
            said.contains(p(named)) && said.contains(remedy),
            "{args:?} must name {} and say {remedy:?}: {said}",
            p(named)
        );
        let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(after, before, "{args:?} left something behind");
        assert_eq!(std::fs::read_dir(&locked).unwrap().count(), 0, "{args:?} wrote into the read-only folder");
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}
