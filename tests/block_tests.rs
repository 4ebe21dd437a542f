//! Block jobs across processes, as a SLURM array or Spark runs them: separate `deepcad` processes
//! (one thread each, started together) each denoise one block into one shared Zarr array, and the
//! union equals a single process's whole-movie output bit for bit. Finished blocks are not
//! redone, a broken one is rewritten, and a job that does not match the prepared plan is refused.
use std::path::Path;
use std::process::Command;

use deepcad::model::precision::InferencePrecision;

use crate::util::{deepcad, p, text};

fn run_blocks(input: &Path, output: &Path, blocks: &[usize], count: usize) {
    let children: Vec<_> = blocks
        .iter()
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_deepcad"))
                .args([
                    "denoise",
                    p(input),
                    "--model",
                    "default",
                    "-o",
                    p(output),
                    "--block",
                    &format!("{i}/{count}"),
                    "--threads",
                    "1",
                    "--quiet",
                ])
                .output()
        })
        .collect();
    for (i, child) in blocks.iter().zip(children) {
        let out = child.unwrap();
        assert!(out.status.success(), "block {i}: {}", text(&out));
    }
}

/// Every file under `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn blocks_from_separate_processes_equal_the_whole_movie_bit_for_bit_and_rerun_safely() {
    let dir = tempfile::tempdir().unwrap();
    let movie = dir.path().join("movie.tif");
    let out =
        deepcad(&["simulate", "-o", p(&movie), "--width", "48", "--height", "40", "--frames", "330", "--photons", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let (whole, blocks) = (dir.path().join("whole.zarr"), dir.path().join("blocks.zarr"));
    // The reference: one process, every core, the default tile.
    let out = deepcad(&["denoise", p(&movie), "--model", "default", "-o", p(&whole)]);
    assert!(out.status.success(), "{}", text(&out));

    let plan = deepcad(&["denoise", p(&movie), "--model", "default", "-o", p(&blocks), "--blocks", "3"]);
    assert!(plan.status.success() && text(&plan).contains("block    2: frames"), "{}", text(&plan));
    assert!(!blocks.exists(), "listing the plan creates nothing");
    let status = deepcad(&["status", p(&blocks)]);
    assert_eq!(status.status.code(), Some(2), "no output yet: {}", text(&status));

    run_blocks(&movie, &blocks, &[2, 0], 3);
    let status = deepcad(&["status", p(&blocks)]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    assert!(text(&status).contains("2 of 3 blocks done") && text(&status).contains("missing: 1"), "{}", text(&status));
    run_blocks(&movie, &blocks, &[1], 3);
    assert_eq!(deepcad(&["status", p(&blocks)]).status.code(), Some(0));
    let same = deepcad(&["compare", p(&whole), p(&blocks)]);
    assert_eq!(same.status.code(), Some(0), "blocks vs whole movie: {}", text(&same));
    assert!(text(&same).contains("identical"), "{}", text(&same));

    // Re-running a finished block changes nothing.
    let before = snapshot(&blocks);
    run_blocks(&movie, &blocks, &[1], 3);
    assert!(before == snapshot(&blocks), "a finished block was rewritten");

    // A block that died half-way (no marker, a damaged shard) is rewritten whole by its re-run.
    std::fs::remove_file(blocks.join("deepcad_blocks/1-of-3.done")).unwrap();
    let (name, bytes) = before.iter().filter(|(n, _)| n.starts_with("c/")).nth(before.len() / 3).unwrap().clone();
    std::fs::write(blocks.join(&name), &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(deepcad(&["status", p(&blocks)]).status.code(), Some(3));
    // Which block owns the damaged shard is the plan's business: re-run every block, as a driver would.
    std::fs::remove_dir_all(blocks.join("deepcad_blocks")).unwrap();
    run_blocks(&movie, &blocks, &[0, 1, 2], 3);
    assert_eq!(deepcad(&["compare", p(&whole), p(&blocks)]).status.code(), Some(0), "after the repair");
    // The markers record each run's time; the array itself is byte for byte the first one.
    let array_files = |files: Vec<(String, Vec<u8>)>| {
        files.into_iter().filter(|(n, _)| !n.starts_with("deepcad_blocks")).collect::<Vec<_>>()
    };
    assert!(array_files(before) == array_files(snapshot(&blocks)), "the repaired array is byte for byte the first one");
}

#[test]
fn block_jobs_that_do_not_match_the_prepared_output_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let movie = dir.path().join("movie.tif");
    assert!(deepcad(&["simulate", "-o", p(&movie), "--width", "24", "--height", "24", "--frames", "240"])
        .status
        .success());
    let blocks = dir.path().join("blocks.zarr");
    let prepared =
        deepcad(&["denoise", p(&movie), "--model", "default", "-o", p(&blocks), "--blocks", "2", "--prepare"]);
    assert!(prepared.status.success() && blocks.join("zarr.json").is_file(), "{}", text(&prepared));
    let input_before = std::fs::read(&movie).unwrap();

    let cases: [(&[&str], &str); 5] = [
        (&["--block", "0/3"], "prepared for 2 blocks"),
        (&["--block", "2/2"], "block 2 of 2 does not exist"),
        (&["--block", "one/2"], "not a whole number"),
        (&["--block", "0/99"], "99 blocks asked"),
        (&["--block", "0/2", "--compat", "deepcad-rt"], "cannot be used with"),
    ];
    for (flags, expected) in cases {
        let output = if flags[1] == "0/99" { dir.path().join("other.zarr") } else { blocks.clone() };
        let mut args = vec!["denoise", p(&movie), "--model", "default", "-o", p(&output)];
        args.extend_from_slice(flags);
        let out = deepcad(&args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{flags:?}: expected '{expected}' in {}", text(&out));
    }
    // Every block runs in the precision the plan recorded: a job asking for another one is refused.
    let planned = deepcad::infer::blocks::recorded_plan(&blocks).unwrap().precision.expect("the plan records it");
    let other = if planned == InferencePrecision::Float32 { "bfloat16" } else { "float32" };
    let before = snapshot(&blocks);
    let mismatched = deepcad(&[
        "denoise",
        p(&movie),
        "--model",
        "default",
        "-o",
        p(&blocks),
        "--block",
        "0/2",
        "--precision",
        other,
    ]);
    assert_eq!(mismatched.status.code(), Some(2), "{}", text(&mismatched));
    assert!(text(&mismatched).contains("recorded when the output was prepared"), "{}", text(&mismatched));
    assert!(before == snapshot(&blocks), "a refused block job changed the shared output");
    let tiff_out =
        deepcad(&["denoise", p(&movie), "--model", "default", "-o", p(&dir.path().join("x.tif")), "--block", "0/2"]);
    assert_eq!(tiff_out.status.code(), Some(2));
    assert!(text(&tiff_out).contains("name the output .zarr"), "{}", text(&tiff_out));
    let into_input = deepcad(&["denoise", p(&movie), "--model", "default", "-o", p(&movie), "--block", "0/2"]);
    assert_eq!(into_input.status.code(), Some(2), "{}", text(&into_input));
    assert_eq!(std::fs::read(&movie).unwrap(), input_before, "the input is untouched");
    // Another movie of the same shape is refused before it writes a frame, and status is unmoved.
    let other = dir.path().join("other.tif");
    let made =
        deepcad(&["simulate", "-o", p(&other), "--width", "24", "--height", "24", "--frames", "240", "--seed", "9"]);
    assert!(made.status.success(), "{}", text(&made));
    let before = snapshot(&blocks);
    let mixed = deepcad(&["denoise", p(&other), "--model", "default", "-o", p(&blocks), "--block", "1/2"]);
    assert_eq!(mixed.status.code(), Some(2), "{}", text(&mixed));
    assert!(text(&mixed).contains("another movie of the same shape"), "{}", text(&mixed));
    assert!(before == snapshot(&blocks), "a refused block job changed the shared output");
    assert!(text(&deepcad(&["status", p(&blocks)])).contains("0 of 2 blocks done"));
    let not_blocks = dir.path().join("plain.zarr");
    assert!(deepcad(&["convert", p(&movie), "-o", p(&not_blocks)]).status.success());
    let status = deepcad(&["status", p(&not_blocks)]);
    assert_eq!(status.status.code(), Some(2));
    assert!(text(&status).contains("not a block output"), "{}", text(&status));
}
