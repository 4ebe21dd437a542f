//! The standing hostile-input suite: inputs a careless or hostile user could hand the CLI, made in
//! the test itself. Every case must end in a clean error (exit 1 or 2, never a panic's 101 or a
//! signal) that names the offending file or value, within a time limit (never a hang), leaving every
//! input byte-identical and nothing under an output's final name. The tally is printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deepcad::model::{Model, ModelMetadata, Normalization};
use tch::Device;

// A hang detector, not a speed test: generous enough for a loaded 2-core CI machine.
const TIME_LIMIT: Duration = Duration::from_secs(300);

/// Cases that fail while working on valid input (README: exit 1); every other case is bad input or
/// a bad request, found before any work (exit 2). A disk too small for the output is now found
/// before any work (the output's size is checked against the free space).
const FAILURES_WHILE_WORKING: &[&str] = &[];

struct Case {
    name: &'static str,
    args: Vec<String>,
    /// Text the error message must contain (the file or the value).
    names: String,
    /// Files that must not change.
    inputs: Vec<PathBuf>,
    /// Paths that must not exist afterwards.
    no_output: Vec<PathBuf>,
}

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    clean_errors: usize,
    crashes: usize,
    hangs: usize,
    unnamed: usize,
    inputs_modified: usize,
    outputs_left: usize,
}

fn hash(path: &Path) -> Option<Vec<u8>> {
    // Regular files only: a FIFO or device is never read by the check itself.
    std::fs::metadata(path).ok().filter(|m| m.is_file()).map(|_| std::fs::read(path).unwrap())
}

fn run_case(case: &Case, tally: &mut Tally) -> Vec<String> {
    let mut problems = Vec::new();
    let before: Vec<Option<Vec<u8>>> = case.inputs.iter().map(|p| hash(p)).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(&case.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start deepcad");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    tally.cases += 1;
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    match status.map(|s| s.code()) {
        None => {
            tally.hangs += 1;
            problems.push(format!("{}: still running after {TIME_LIMIT:?}", case.name));
        }
        Some(Some(code @ (1 | 2))) => {
            tally.clean_errors += 1;
            let want = if FAILURES_WHILE_WORKING.contains(&case.name) { 1 } else { 2 };
            if code != want {
                problems.push(format!("{}: exit {code}, want {want} (README's exit codes): {stderr}", case.name));
            }
            if !stderr.contains(&case.names) {
                tally.unnamed += 1;
                problems.push(format!("{}: the message does not name '{}': {stderr}", case.name, case.names));
            }
        }
        Some(code) => {
            tally.crashes += 1;
            problems.push(format!("{}: exit {code:?} (want 1 or 2): {stderr}", case.name));
        }
    }
    for (path, old) in case.inputs.iter().zip(before) {
        if hash(path) != old {
            tally.inputs_modified += 1;
            problems.push(format!("{}: {} changed", case.name, path.display()));
        }
    }
    for path in &case.no_output {
        if path.exists() {
            tally.outputs_left += 1;
            problems.push(format!("{}: {} was left behind", case.name, path.display()));
        }
    }
    problems
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A valid bundle's bytes rewritten with `edit` applied to its metadata JSON and `weight` (if any)
/// put into its first weight tensor.
fn tampered_bundle(good: &Path, out: &Path, edit: impl Fn(&mut serde_json::Value), weight: Option<f32>) {
    let bytes = std::fs::read(good).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&metadata["deepcad"]).unwrap();
    edit(&mut json);
    metadata.insert("deepcad".into(), json.to_string());
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec())).collect();
    owned.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = weight {
        owned[0].2[..4].copy_from_slice(&w.to_le_bytes());
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, shape, data)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data).unwrap())
        })
        .collect();
    std::fs::write(out, safetensors::serialize(views, Some(metadata)).unwrap()).unwrap();
}

/// A valid bundle with its first tensor stored as float16 (same metadata).
fn half_precision_bundle(good: &Path, out: &Path) {
    let bytes = std::fs::read(good).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = tensors
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec(), safetensors::Dtype::F32))
        .collect();
    owned.sort_by(|a, b| a.0.cmp(&b.0));
    let halved = owned[0].2.len() / 2;
    owned[0].2.truncate(halved);
    owned[0].3 = safetensors::Dtype::F16;
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, shape, data, dtype)| {
            (n.clone(), safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap())
        })
        .collect();
    std::fs::write(out, safetensors::serialize(views, header.metadata().clone()).unwrap()).unwrap();
}

/// What the cases are made from: a small movie, a valid model and the denoised output's path, in
/// a temporary folder that the cases add their own files to.
struct Fixture {
    dir: tempfile::TempDir,
    movie: PathBuf,
    good: PathBuf,
    out: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let movie = dir.path().join("movie.tif");
        simulate(&movie, 16);
        tch::manual_seed(1);
        let good = dir.path().join("good.safetensors");
        let metadata = ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 100.0, scale: 5.0 });
        Model::new(metadata, Device::Cpu).unwrap().save(&good).unwrap();
        let out = dir.path().join("out.tif");
        Fixture { dir, movie, good, out }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `deepcad denoise input --model model` into the fixture's output.
    fn denoise(&self, input: &Path, model: &Path) -> Vec<String> {
        args(&["denoise", &s(input), "--model", &s(model), "-o", &s(&self.out), "--device", "cpu"])
    }

    /// A case that denoises `input` with `model`: the output must not appear.
    fn denoise_case(&self, name: &'static str, input: &Path, model: &Path, names: &str, inputs: &[&Path]) -> Case {
        Case {
            name,
            args: self.denoise(input, model),
            names: names.into(),
            inputs: inputs.iter().map(|p| p.to_path_buf()).collect(),
            no_output: vec![self.out.clone()],
        }
    }
}

/// A simulated 40-frame movie, `width`×`width` pixels.
fn simulate(path: &Path, width: usize) {
    let width = width.to_string();
    let status = Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["simulate", "-q", "-o", &s(path), "--width", &width, "--height", &width, "--frames", "40"])
        .status()
        .unwrap();
    assert!(status.success());
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A case that `info` must refuse.
fn info_case(name: &'static str, model: &Path, names: &str) -> Case {
    Case { name, args: args(&["info", &s(model)]), names: names.into(), inputs: vec![model.into()], no_output: vec![] }
}

/// Every kind of hostile input, each a function that writes its files and returns its cases.
type CaseKind = fn(&Fixture) -> Vec<Case>;
const CASE_KINDS: &[(&str, CaseKind)] = &[
    ("not regular files", not_regular_files),
    ("text and empty files", text_and_empty_files),
    ("tampered bundles", tampered_bundles),
    ("messages that named nothing the user set", unnamed_values),
    ("absurd numbers", absurd_numbers),
    ("para.yaml beside an official checkpoint", para_yaml),
    ("TIFF structure attacks", tiff_structure_attacks),
    ("hostile pickle", hostile_pickle),
];

#[test]
fn hostile_inputs_end_in_clean_errors_that_name_the_culprit() {
    let fixture = Fixture::new();
    let cases: Vec<Case> = CASE_KINDS.iter().flat_map(|(_, make)| make(&fixture)).collect();
    let kinds: Vec<&str> = CASE_KINDS.iter().map(|(kind, _)| *kind).collect();
    eprintln!("kinds: {}", kinds.join(", "));
    assert_clean(&cases);
}

/// Runs every case, prints the tally and fails with every problem found.
fn assert_clean(cases: &[Case]) {
    let mut tally = Tally::default();
    let problems: Vec<String> = cases.iter().flat_map(|c| run_case(c, &mut tally)).collect();
    eprintln!(
        "hostile inputs: {} cases, {} clean errors naming the culprit, {} crashes, {} hangs, {} unnamed, {} inputs modified, {} outputs left",
        tally.cases,
        tally.clean_errors - tally.unnamed,
        tally.crashes,
        tally.hangs,
        tally.unnamed,
        tally.inputs_modified,
        tally.outputs_left
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A FIFO (opening it would block), a device that never ends, a folder named like a file.
fn not_regular_files(f: &Fixture) -> Vec<Case> {
    let fifo = f.path("fifo.tif");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let fifo_model = f.path("fifo.safetensors");
    assert!(Command::new("mkfifo").arg(&fifo_model).status().unwrap().success());
    let folder = f.path("folder.tif");
    std::fs::create_dir(&folder).unwrap();
    let zero = Path::new("/dev/zero");
    vec![
        f.denoise_case("FIFO as movie", &fifo, &f.good, &s(&fifo), &[]),
        Case { no_output: vec![], ..info_case("/dev/zero as model", zero, "/dev/zero") },
        f.denoise_case("/dev/zero as movie", zero, &f.good, "/dev/zero", &[]),
        f.denoise_case("folder as model", &f.movie, &folder, &s(&folder), &[&f.movie]),
        f.denoise_case("FIFO as model", &f.movie, &fifo_model, &s(&fifo_model), &[&f.movie]),
    ]
}

fn text_and_empty_files(f: &Fixture) -> Vec<Case> {
    let text = f.path("notes.tif");
    std::fs::write(&text, "not a TIFF").unwrap();
    let empty = f.path("empty.safetensors");
    std::fs::write(&empty, "").unwrap();
    let huge_header = f.path("huge-header.safetensors");
    std::fs::write(&huge_header, u64::MAX.to_le_bytes()).unwrap();
    vec![
        f.denoise_case("text as movie", &text, &f.good, &s(&text), &[&text]),
        f.denoise_case("empty model", &f.movie, &empty, &s(&empty), &[&f.movie, &empty]),
        info_case("header length 2^64-1", &huge_header, &s(&huge_header)),
    ]
}

/// Out-of-range normalisation, absurd weights, a halo that would show seams; and `info` checking
/// the weights as loading does: a NaN weight, and weights stored as float16.
fn tampered_bundles(f: &Fixture) -> Vec<Case> {
    type Tamper = Box<dyn Fn(&mut serde_json::Value)>;
    let tampered: [(&str, Tamper, Option<f32>, &str); 4] = [
        ("offset 1e308", Box::new(|j| j["normalization"]["offset"] = 1e308.into()), None, "offset"),
        ("scale 1e-300", Box::new(|j| j["normalization"]["scale"] = 1e-300.into()), None, "scale"),
        ("weight 3e38", Box::new(|_| {}), Some(3e38), "beyond any trained weight"),
        ("halo 8", Box::new(|j| j["halo"] = serde_json::json!([8, 8, 8])), None, "receptive-field radius"),
    ];
    let mut cases = Vec::new();
    for (i, (name, edit, weight, why)) in tampered.into_iter().enumerate() {
        let bad = f.path(&format!("tampered-{i}.safetensors"));
        tampered_bundle(&f.good, &bad, edit, weight);
        cases.push(f.denoise_case(name, &f.movie, &bad, why, &[&f.movie, &bad]));
    }
    let nan_weight = f.path("nan-weight.safetensors");
    tampered_bundle(&f.good, &nan_weight, |_| {}, Some(f32::NAN));
    cases.push(info_case("info on a NaN weight", &nan_weight, "non-finite"));
    let half = f.path("half.safetensors");
    half_precision_bundle(&f.good, &half);
    cases.push(info_case("info on float16 weights", &half, "only float32"));
    cases
}

/// A file given to `status`, an overlap that leaves no step between official tiles.
fn unnamed_values(f: &Fixture) -> Vec<Case> {
    let compat = [f.denoise(&f.movie, &f.good), args(&["--compat", "deepcad-rt", "--overlap", "0.999999"])].concat();
    vec![
        Case {
            name: "status on a TIFF file",
            args: args(&["status", &s(&f.movie)]),
            names: format!("{}: is a file", s(&f.movie)),
            inputs: vec![f.movie.clone()],
            no_output: vec![],
        },
        Case {
            args: compat,
            ..f.denoise_case("overlap 0.999999", &f.movie, &f.good, "overlap factor 0.999999", &[&f.movie])
        },
    ]
}

/// Numbers past any use, and an unwritable model folder (reported before training, not after an epoch).
fn absurd_numbers(f: &Fixture) -> Vec<Case> {
    let train_out = f.path("m.safetensors");
    let mut cases: Vec<Case> = [
        ("threads 3000000000", "--threads", "3000000000"),
        ("threads 2000", "--threads", "2000"),
        ("patch 2^32", "--patch-t", "4294967296"),
    ]
    .into_iter()
    .map(|(name, flag, value)| Case {
        name,
        args: args(&["train", &s(&f.movie), "-o", &s(&train_out), flag, value, "--device", "cpu"]),
        names: value.into(),
        inputs: vec![f.movie.clone()],
        no_output: vec![train_out.clone()],
    })
    .collect();
    let nowhere = PathBuf::from("/proc/deepcad-model.safetensors");
    cases.push(Case {
        name: "unwritable model folder",
        args: args(&["train", &s(&f.movie), "-o", &s(&nowhere), "--device", "cpu"]),
        names: s(&nowhere),
        inputs: vec![f.movie.clone()],
        no_output: vec![],
    });
    cases
}

/// para.yaml with a patch of 1e300 beside the official checkpoint (the shared fixture).
fn para_yaml(f: &Fixture) -> Vec<Case> {
    let folder = f.path("rt");
    std::fs::create_dir(&folder).unwrap();
    let copy = folder.join("E_10_Iter_3500.pth");
    std::fs::copy(crate::pth_import_tests::fixture(), &copy).unwrap();
    std::fs::write(folder.join("para.yaml"), "patch_x: 150\npatch_t: 1e300\nscale_factor: 1\n").unwrap();
    let imported = f.path("rt.safetensors");
    vec![Case {
        name: "para.yaml patch_t 1e300",
        args: args(&["import", &s(&copy), "-o", &s(&imported)]),
        names: "patch_t".into(),
        inputs: vec![copy.clone()],
        no_output: vec![imported],
    }]
}

/// Written byte by byte: an IFD chain that loops back on itself; a "decompression bomb" whose one
/// deflate strip claims a 60000×60000 16-bit frame; two 30000² frames, refused with the memory a
/// frame needs before the statistics pass decodes one (it once aborted the process).
fn tiff_structure_attacks(f: &Fixture) -> Vec<Case> {
    let ifd_loop = f.path("ifd-loop.tif");
    std::fs::write(&ifd_loop, classic_tiff(1, 1, 1, &[0, 0], 8)).unwrap();
    let bomb = f.path("bomb.tif");
    let zeros = {
        use std::io::Write;
        // 64 MB of zeros, zlib-compressed to about 64 KB.
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..64 {
            encoder.write_all(&chunk).unwrap();
        }
        encoder.finish().unwrap()
    };
    std::fs::write(&bomb, classic_tiff(60_000, 60_000, 8, &zeros, 0)).unwrap();
    let huge_frames = f.path("huge-frames.tif");
    std::fs::write(&huge_frames, two_page_tiff(30_000, 30_000, &zeros[..1024])).unwrap();
    vec![
        f.denoise_case("IFD chain loops", &ifd_loop, &f.good, &s(&ifd_loop), &[&ifd_loop]),
        f.denoise_case("decompression bomb", &bomb, &f.good, &s(&bomb), &[&bomb]),
        f.denoise_case("two 30000² frames", &huge_frames, &f.good, "one 30000×30000 frame needs", &[&huge_frames]),
    ]
}

/// A checkpoint whose data.pkl would run `touch` through os.system.
fn hostile_pickle(f: &Fixture) -> Vec<Case> {
    let marker = f.path("pwned");
    let pickle = format!("cos\nsystem\n(S'touch {}'\ntR.", marker.display());
    let evil = f.path("evil.pth");
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&evil).unwrap());
        zip.start_file("archive/data.pkl", zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(pickle.as_bytes()).unwrap();
        zip.finish().unwrap();
    }
    let evil_out = f.path("evil.safetensors");
    vec![Case {
        name: "hostile pickle",
        args: args(&["import", &s(&evil), "-o", &s(&evil_out)]),
        names: s(&evil),
        inputs: vec![evil.clone()],
        no_output: vec![evil_out, marker],
    }]
}

/// Read-only and full output locations, as small tmpfs mounts. libtorch once aborted the process
/// when its TorchScript file met a full disk.
#[test]
#[ignore = "mounts tmpfs folders, which needs root; scripts/test.sh runs it as root (--ignored hostile_output_locations)"]
fn hostile_output_locations_read_only_and_full_end_in_clean_errors() {
    let f = Fixture::new();
    let big_movie = f.path("big-movie.tif");
    simulate(&big_movie, 64);
    let mut cases = Vec::new();
    let mut mounted = Vec::new();
    for (folder, options, denoise_name, export_name) in [
        ("read-only", "ro,size=1m", "read-only output folder", "export to a read-only folder"),
        ("full", "size=16k", "full disk", "export to a full disk"),
    ] {
        let location = f.path(folder);
        std::fs::create_dir(&location).unwrap();
        let mount =
            Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(&location).output().unwrap();
        assert!(mount.status.success(), "mounting a tmpfs at {} failed (run as root): {mount:?}", location.display());
        let target = location.join("denoised.tif");
        cases.push(Case {
            name: denoise_name,
            args: args(&["denoise", &s(&big_movie), "--model", &s(&f.good), "-o", &s(&target), "--device", "cpu"]),
            names: s(&target),
            inputs: vec![big_movie.clone()],
            no_output: vec![target.clone()],
        });
        let package = location.join("package.zip");
        cases.push(Case {
            name: export_name,
            args: args(&["export-bioimageio", &s(&f.good), "-o", &s(&package)]),
            names: s(&package),
            inputs: vec![f.good.clone()],
            no_output: vec![package],
        });
        mounted.push(location);
    }
    let mut tally = Tally::default();
    let problems: Vec<String> = cases.iter().flat_map(|c| run_case(c, &mut tally)).collect();
    for location in &mounted {
        let leftovers: Vec<_> = std::fs::read_dir(location).unwrap().flatten().map(|e| e.path()).collect();
        let _ = Command::new("umount").arg(location).status();
        assert!(leftovers.is_empty(), "files left in {}: {leftovers:?}", location.display());
    }
    assert!(problems.is_empty(), "{tally:?}\n{problems:#?}");
}

/// Two pages like [`classic_tiff`]'s (deflate), the second IFD and strip appended after the first.
fn two_page_tiff(width: u32, height: u32, strip: &[u8]) -> Vec<u8> {
    let mut bytes = classic_tiff(width, height, 8, strip, 0);
    let second_at = bytes.len() as u32;
    let second = classic_tiff(width, height, 8, strip, 0);
    let (next_ifd_field, strip_offset_value) = (8 + 2 + 9 * 12, 8 + 2 + 5 * 12 + 8);
    bytes[next_ifd_field..next_ifd_field + 4].copy_from_slice(&second_at.to_le_bytes());
    let mut tail = second[8..].to_vec();
    // Offsets in the appended IFD move by where it now starts (it was at 8).
    let at = strip_offset_value - 8;
    let moved = u32::from_le_bytes(tail[at..at + 4].try_into().unwrap()) + second_at - 8;
    tail[at..at + 4].copy_from_slice(&moved.to_le_bytes());
    bytes.extend_from_slice(&tail);
    bytes
}

/// A little-endian classic TIFF with one IFD: a `width`×`height` 16-bit grey image whose single
/// strip is `strip` under compression `compression` (1 none, 8 deflate), and `next_ifd` as the
/// next-IFD offset (8 points back at this IFD: a loop; 0 ends the chain).
fn classic_tiff(width: u32, height: u32, compression: u16, strip: &[u8], next_ifd: u32) -> Vec<u8> {
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 16),
        (259, 3, compression as u32),
        (262, 3, 1),
        (273, 4, 0), // strip offset, patched below
        (277, 3, 1),
        (278, 4, height),
        (279, 4, strip.len() as u32),
    ];
    let ifd_len = 2 + entries.len() * 12 + 4;
    let data_offset = (8 + ifd_len) as u32;
    let mut bytes = b"II*\0".to_vec();
    bytes.extend_from_slice(&8u32.to_le_bytes());
    bytes.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        let value = if tag == 273 { data_offset } else { value };
        bytes.extend_from_slice(&tag.to_le_bytes());
        bytes.extend_from_slice(&kind.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            bytes.extend_from_slice(&(value as u16).to_le_bytes());
            bytes.extend_from_slice(&[0, 0]);
        } else {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    bytes.extend_from_slice(&next_ifd.to_le_bytes());
    bytes.extend_from_slice(strip);
    bytes
}
