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

#[test]
fn hostile_inputs_end_in_clean_errors_that_name_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let movie = d.join("movie.tif");
    let status = Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["simulate", "-q", "-o", &s(&movie), "--width", "16", "--height", "16", "--frames", "40"])
        .status()
        .unwrap();
    assert!(status.success());
    tch::manual_seed(1);
    let good = d.join("good.safetensors");
    Model::new(ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 100.0, scale: 5.0 }), Device::Cpu)
        .unwrap()
        .save(&good)
        .unwrap();
    let out = d.join("out.tif");
    let denoise = |input: &Path, model: &Path| -> Vec<String> {
        ["denoise", &s(input), "--model", &s(model), "-o", &s(&out), "--device", "cpu"].map(String::from).to_vec()
    };
    let mut cases = Vec::new();

    // Not regular files: a FIFO (opening it would block), a device that never ends, a folder named like a file.
    let fifo = d.join("fifo.tif");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    cases.push(Case {
        name: "FIFO as movie",
        args: denoise(&fifo, &good),
        names: s(&fifo),
        inputs: vec![],
        no_output: vec![out.clone()],
    });
    let zero = PathBuf::from("/dev/zero");
    cases.push(Case {
        name: "/dev/zero as model",
        args: ["info", "/dev/zero"].map(String::from).to_vec(),
        names: "/dev/zero".into(),
        inputs: vec![],
        no_output: vec![],
    });
    cases.push(Case {
        name: "/dev/zero as movie",
        args: denoise(&zero, &good),
        names: "/dev/zero".into(),
        inputs: vec![],
        no_output: vec![out.clone()],
    });
    let folder = d.join("folder.tif");
    std::fs::create_dir(&folder).unwrap();
    cases.push(Case {
        name: "folder as model",
        args: denoise(&movie, &folder),
        names: s(&folder),
        inputs: vec![movie.clone()],
        no_output: vec![out.clone()],
    });
    let fifo_model = d.join("fifo.safetensors");
    assert!(Command::new("mkfifo").arg(&fifo_model).status().unwrap().success());
    cases.push(Case {
        name: "FIFO as model",
        args: denoise(&movie, &fifo_model),
        names: s(&fifo_model),
        inputs: vec![movie.clone()],
        no_output: vec![out.clone()],
    });

    // Text and empty files.
    let text = d.join("notes.tif");
    std::fs::write(&text, "not a TIFF").unwrap();
    cases.push(Case {
        name: "text as movie",
        args: denoise(&text, &good),
        names: s(&text),
        inputs: vec![text.clone()],
        no_output: vec![out.clone()],
    });
    let empty = d.join("empty.safetensors");
    std::fs::write(&empty, "").unwrap();
    cases.push(Case {
        name: "empty model",
        args: denoise(&movie, &empty),
        names: s(&empty),
        inputs: vec![movie.clone(), empty.clone()],
        no_output: vec![out.clone()],
    });
    let huge_header = d.join("huge-header.safetensors");
    std::fs::write(&huge_header, u64::MAX.to_le_bytes()).unwrap();
    cases.push(Case {
        name: "header length 2^64-1",
        args: ["info", &s(&huge_header)].map(String::from).to_vec(),
        names: s(&huge_header),
        inputs: vec![huge_header.clone()],
        no_output: vec![],
    });

    // Tampered bundles: out-of-range normalisation, absurd weights, a halo that would show seams.
    type Tamper = Box<dyn Fn(&mut serde_json::Value)>;
    let tampered: [(&str, Tamper, Option<f32>, &str); 4] = [
        ("offset 1e308", Box::new(|j| j["normalization"]["offset"] = 1e308.into()), None, "offset"),
        ("scale 1e-300", Box::new(|j| j["normalization"]["scale"] = 1e-300.into()), None, "scale"),
        ("weight 3e38", Box::new(|_| {}), Some(3e38), "beyond any trained weight"),
        ("halo 8", Box::new(|j| j["halo"] = serde_json::json!([8, 8, 8])), None, "receptive-field radius"),
    ];
    for (i, (name, edit, weight, why)) in tampered.into_iter().enumerate() {
        let bad = d.join(format!("tampered-{i}.safetensors"));
        tampered_bundle(&good, &bad, edit, weight);
        cases.push(Case {
            name,
            args: denoise(&movie, &bad),
            names: why.into(),
            inputs: vec![movie.clone(), bad.clone()],
            no_output: vec![out.clone()],
        });
    }

    // `info` checks the weights as loading does: a NaN weight, and weights stored as float16.
    let nan_weight = d.join("nan-weight.safetensors");
    tampered_bundle(&good, &nan_weight, |_| {}, Some(f32::NAN));
    cases.push(Case {
        name: "info on a NaN weight",
        args: ["info", &s(&nan_weight)].map(String::from).to_vec(),
        names: "non-finite".into(),
        inputs: vec![nan_weight.clone()],
        no_output: vec![],
    });
    let half = d.join("half.safetensors");
    half_precision_bundle(&good, &half);
    cases.push(Case {
        name: "info on float16 weights",
        args: ["info", &s(&half)].map(String::from).to_vec(),
        names: "only float32".into(),
        inputs: vec![half.clone()],
        no_output: vec![],
    });

    // Messages that named nothing the user set: a file given to `status`, an overlap that leaves
    // no step between official tiles.
    cases.push(Case {
        name: "status on a TIFF file",
        args: ["status", &s(&movie)].map(String::from).to_vec(),
        names: format!("{}: is a file", s(&movie)),
        inputs: vec![movie.clone()],
        no_output: vec![],
    });
    cases.push(Case {
        name: "overlap 0.999999",
        args: [denoise(&movie, &good), ["--compat", "deepcad-rt", "--overlap", "0.999999"].map(String::from).to_vec()]
            .concat(),
        names: "overlap factor 0.999999".into(),
        inputs: vec![movie.clone()],
        no_output: vec![out.clone()],
    });

    // Absurd numbers.
    let train_out = d.join("m.safetensors");
    for (name, flag, value, names) in [
        ("threads 3000000000", "--threads", "3000000000", "3000000000"),
        ("threads 2000", "--threads", "2000", "2000"),
        ("patch 2^32", "--patch-t", "4294967296", "4294967296"),
    ] {
        let args =
            ["train", &s(&movie), "-o", &s(&train_out), flag, value, "--device", "cpu"].map(String::from).to_vec();
        cases.push(Case {
            name,
            args,
            names: names.into(),
            inputs: vec![movie.clone()],
            no_output: vec![train_out.clone()],
        });
    }
    // An unwritable model folder is reported before training, not after an epoch.
    let nowhere = PathBuf::from("/proc/deepcad-model.safetensors");
    cases.push(Case {
        name: "unwritable model folder",
        args: ["train", &s(&movie), "-o", &s(&nowhere), "--device", "cpu"].map(String::from).to_vec(),
        names: s(&nowhere),
        inputs: vec![movie.clone()],
        no_output: vec![],
    });

    // para.yaml with a patch of 1e300 beside an official checkpoint.
    let checkpoint = crate::util::shared_dir().join("fixtures/deepcad-rt-official/E_10_Iter_3500.pth");
    if checkpoint.is_file() {
        let folder = d.join("rt");
        std::fs::create_dir(&folder).unwrap();
        let copy = folder.join("E_10_Iter_3500.pth");
        std::fs::copy(&checkpoint, &copy).unwrap();
        std::fs::write(folder.join("para.yaml"), "patch_x: 150\npatch_t: 1e300\nscale_factor: 1\n").unwrap();
        let imported = d.join("rt.safetensors");
        cases.push(Case {
            name: "para.yaml patch_t 1e300",
            args: ["import", &s(&copy), "-o", &s(&imported)].map(String::from).to_vec(),
            names: "patch_t".into(),
            inputs: vec![copy.clone()],
            no_output: vec![imported],
        });
    } else {
        eprintln!("skipped the para.yaml case: {} is missing", checkpoint.display());
    }

    // TIFF structure attacks, written byte by byte: an IFD chain that loops back on itself, and a
    // "decompression bomb" whose one deflate strip claims a 60000×60000 16-bit frame (7.2 GB).
    let ifd_loop = d.join("ifd-loop.tif");
    std::fs::write(&ifd_loop, classic_tiff(1, 1, 1, &[0, 0], 8)).unwrap();
    cases.push(Case {
        name: "IFD chain loops",
        args: denoise(&ifd_loop, &good),
        names: s(&ifd_loop),
        inputs: vec![ifd_loop.clone()],
        no_output: vec![out.clone()],
    });
    let bomb = d.join("bomb.tif");
    let zeros = {
        use std::io::Write;
        // 64 MB of zeros, zlib-compressed to about 64 KB (the claimed frame is 7.2 GB).
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..64 {
            encoder.write_all(&chunk).unwrap();
        }
        encoder.finish().unwrap()
    };
    std::fs::write(&bomb, classic_tiff(60_000, 60_000, 8, &zeros, 0)).unwrap();
    cases.push(Case {
        name: "decompression bomb",
        args: denoise(&bomb, &good),
        names: s(&bomb),
        inputs: vec![bomb.clone()],
        no_output: vec![out.clone()],
    });

    // Two 30000² frames (a few MB on disk, deflated): refused with the memory a frame needs before
    // the statistics pass decodes one (it once aborted the process).
    let huge_frames = d.join("huge-frames.tif");
    std::fs::write(&huge_frames, two_page_tiff(30_000, 30_000, &zeros[..1024])).unwrap();
    cases.push(Case {
        name: "two 30000² frames",
        args: denoise(&huge_frames, &good),
        names: "one 30000×30000 frame needs".into(),
        inputs: vec![huge_frames.clone()],
        no_output: vec![out.clone()],
    });

    // A hostile pickle: a checkpoint whose data.pkl would run `touch` through os.system.
    let marker = d.join("pwned");
    let pickle = format!("cos\nsystem\n(S'touch {}'\ntR.", marker.display());
    let evil = d.join("evil.pth");
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&evil).unwrap());
        zip.start_file("archive/data.pkl", zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(pickle.as_bytes()).unwrap();
        zip.finish().unwrap();
    }
    let evil_out = d.join("evil.safetensors");
    cases.push(Case {
        name: "hostile pickle",
        args: ["import", &s(&evil), "-o", &s(&evil_out)].map(String::from).to_vec(),
        names: s(&evil),
        inputs: vec![evil.clone()],
        no_output: vec![evil_out, marker.clone()],
    });

    // Read-only and full output locations: small tmpfs mounts (root only; skipped otherwise).
    let read_only = d.join("read-only");
    let full = d.join("full");
    let mounted: Vec<PathBuf> = [(&read_only, "ro,size=1m"), (&full, "size=16k")]
        .into_iter()
        .filter_map(|(at, options)| {
            std::fs::create_dir(at).unwrap();
            let ok = Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "tmpfs"])
                .arg(at)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("SKIPPED the {} output location case: mounting a tmpfs needs root", at.display());
            }
            ok.then(|| at.clone())
        })
        .collect();
    let big_movie = d.join("big-movie.tif");
    assert!(Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["simulate", "-q", "-o", &s(&big_movie), "--width", "64", "--height", "64", "--frames", "40"])
        .status()
        .unwrap()
        .success());
    for location in &mounted {
        let target = location.join("denoised.tif");
        let args = ["denoise", &s(&big_movie), "--model", &s(&good), "-o", &s(&target), "--device", "cpu"]
            .map(String::from)
            .to_vec();
        cases.push(Case {
            name: if *location == read_only { "read-only output folder" } else { "full disk" },
            args,
            names: s(&target),
            inputs: vec![big_movie.clone()],
            no_output: vec![target.clone()],
        });
        // libtorch aborted the process when its TorchScript file met a full disk.
        let package = location.join("package.zip");
        cases.push(Case {
            name: if *location == read_only { "export to a read-only folder" } else { "export to a full disk" },
            args: ["export-bioimageio", &s(&good), "-o", &s(&package)].map(String::from).to_vec(),
            names: s(&package),
            inputs: vec![good.clone()],
            no_output: vec![package.clone()],
        });
    }

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
    for location in &mounted {
        let leftovers: Vec<_> = std::fs::read_dir(location).unwrap().flatten().map(|e| e.path()).collect();
        let _ = Command::new("umount").arg(location).status();
        assert!(leftovers.is_empty(), "files left in {}: {leftovers:?}", location.display());
    }
    assert!(problems.is_empty(), "{problems:#?}");
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
