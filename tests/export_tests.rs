//! BioImage Model Zoo export: package contents, hashes, TorchScript faithfulness at the test size
//! and at other sizes, overwrite refusal, zip output, and (when installed) the official validator.
use std::path::{Path, PathBuf};

use deepcad::model::export_bioimageio::{
    export_bioimageio, minimum_size_for_halo, package_minimum_size, sha256_file, ExportOptions, TemporalAxis, TestMovie,
};
use deepcad::model::{Model, ModelMetadata, Normalization};
use tch::{CModule, Device, Kind, Tensor};

const OFFSET: f64 = 100.0;
const SCALE: f64 = 20.0;

fn small_model(halo: usize) -> Model {
    tch::manual_seed(11);
    let mut metadata = ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: OFFSET, scale: SCALE });
    metadata.halo = [halo; 3];
    Model::new(metadata, Device::Cpu).unwrap()
}

/// The engine's answer computed here, independently of the exporter: normalise, network, back.
fn engine(model: &Model, raw: &Tensor) -> Tensor {
    let _guard = tch::no_grad_guard();
    let y = model.net.forward(&((raw - OFFSET) / SCALE)).unwrap();
    y * SCALE + OFFSET
}

fn max_relative_difference(a: &Tensor, b: &Tensor) -> f64 {
    let diff = (a - b).abs().max().double_value(&[]);
    diff / b.abs().max().double_value(&[]).max(1e-12)
}

/// Minimal `.npy` reader (v1, '<f4', C order), enough to check what the exporter wrote.
fn read_npy(path: &Path) -> (Vec<i64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{}: npy magic/version", path.display());
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0, "header padded to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"), "header {header}");
    let shape_text = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<i64> =
        shape_text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    let values: Vec<f32> =
        bytes[10 + header_len..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    assert_eq!(values.len() as i64, shape.iter().product::<i64>(), "{}: value count", path.display());
    (shape, values)
}

/// `sha256:` value that follows `source: <file>` in rdf.yaml.
fn declared_sha256(rdf: &str, file: &str) -> String {
    let after =
        rdf.split(&format!("source: {file}\n")).nth(1).unwrap_or_else(|| panic!("{file} not listed in rdf.yaml"));
    let line = after.lines().next().unwrap().trim();
    line.strip_prefix("sha256: ").unwrap_or_else(|| panic!("no sha256 after {file}: {line}")).to_string()
}

#[test]
fn minimum_size_leaves_room_for_the_halo_on_both_sides() {
    assert_eq!(minimum_size_for_halo(52), 112);
    assert_eq!(minimum_size_for_halo(12), 32);
    assert_eq!(minimum_size_for_halo(0), 8);
    for halo in 0..100 {
        let m = minimum_size_for_halo(halo);
        assert!(m % 8 == 0 && m > 2 * halo && m - 8 <= 2 * halo, "halo {halo} -> {m}");
    }
}

#[test]
fn exported_package_is_complete_hashed_and_its_torchscript_reproduces_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(12);
    let output = dir.path().join("package");
    let report = export_bioimageio(
        &model,
        &output,
        &ExportOptions { authors: vec!["Test Author".into()], ..Default::default() },
    )
    .unwrap();
    assert_eq!(report.min_size, [32, 32, 32]);
    assert_eq!(report.test_shape, [32, 32, 32]);
    assert!(report.max_relative_difference <= 1e-5, "{}", report.max_relative_difference);

    for name in [
        "rdf.yaml",
        "weights_torchscript.pt",
        "test_input.npy",
        "test_output.npy",
        "sample_input.tif",
        "sample_output.tif",
        "cover.png",
        "README.md",
    ] {
        assert!(output.join(name).is_file(), "{name} missing");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("package")], "no staging folders left behind");

    let rdf = std::fs::read_to_string(output.join("rdf.yaml")).unwrap();
    for key in [
        "type: model\n",
        "format_version: 0.5.",
        "name: ",
        "authors:\n  - name: \"Test Author\"",
        "doi: 10.1038/s41592-021-01225-0",
        "doi: 10.1038/s41587-022-01450-8",
        "license: MIT",
        "documentation: README.md",
        "covers:\n  - cover.png",
        "      - type: time\n        id: time\n        size: {min: 32, step: 8}",
        "      - type: space\n        id: x\n        size: {tensor_id: raw, axis_id: x}\n        halo: 12",
        "        size: {tensor_id: raw, axis_id: time}\n        halo: 12",
        "weights:\n  torchscript:\n    source: weights_torchscript.pt",
        "pytorch_version: \"2.11.0\"",
    ] {
        assert!(rdf.contains(key), "rdf.yaml lacks {key:?}:\n{rdf}");
    }
    assert!(!rdf.contains("pytorch_state_dict"));
    for (name, hash) in &report.files {
        assert_eq!(&sha256_file(&output.join(name)).unwrap(), hash, "{name}");
        if name.ends_with(".npy") || name.ends_with(".pt") || name.ends_with(".tif") {
            assert_eq!(&declared_sha256(&rdf, name), hash, "rdf.yaml hash of {name}");
        }
    }

    let (in_shape, input) = read_npy(&output.join("test_input.npy"));
    let (out_shape, expected) = read_npy(&output.join("test_output.npy"));
    assert_eq!(in_shape, vec![1, 1, 32, 32, 32]);
    assert_eq!(out_shape, in_shape);
    let input = Tensor::from_slice(&input).reshape(&in_shape);
    let expected = Tensor::from_slice(&expected).reshape(&out_shape);
    // The stored output is the engine's, and the reloaded TorchScript reproduces it.
    assert!(max_relative_difference(&engine(&model, &input), &expected) < 1e-6);
    let module = CModule::load(output.join("weights_torchscript.pt")).unwrap();
    let traced = tch::no_grad(|| module.forward_ts(&[&input]).unwrap());
    let err = max_relative_difference(&traced, &expected);
    assert!(err <= 1e-5, "TorchScript vs test output: {err}");
}

#[test]
fn torchscript_follows_the_input_size_instead_of_the_traced_one() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(4);
    let output = dir.path().join("pkg");
    export_bioimageio(&model, &output, &ExportOptions::default()).unwrap();
    let module = CModule::load(output.join("weights_torchscript.pt")).unwrap();
    tch::manual_seed(2);
    for shape in [[1i64, 1, 24, 40, 16], [2, 1, 16, 16, 32]] {
        let raw = Tensor::randn(shape, (Kind::Float, Device::Cpu)) * SCALE + OFFSET;
        let traced = tch::no_grad(|| module.forward_ts(&[&raw]).unwrap());
        assert_eq!(traced.size(), shape.to_vec());
        let err = max_relative_difference(&traced, &engine(&model, &raw));
        assert!(err <= 1e-5, "shape {shape:?}: {err}");
    }
}

#[test]
fn stack_mean_models_subtract_the_mean_of_the_tensor_they_are_given() {
    // Imported DeepCAD-RT checkpoints: (x - mean(x)) / scale_factor, network, back.
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(12);
    let mut metadata = ModelMetadata::new(4, [16, 16, 16], Normalization::StackMean { scale_factor: 30.0 });
    metadata.halo = [4; 3];
    let model = Model::new(metadata, Device::Cpu).unwrap();
    let output = dir.path().join("pkg");
    export_bioimageio(&model, &output, &ExportOptions::default()).unwrap();
    let module = CModule::load(output.join("weights_torchscript.pt")).unwrap();
    for mean in [0.0, 500.0] {
        let raw = Tensor::randn([1, 1, 16, 24, 32], (Kind::Float, Device::Cpu)) * 30.0 + mean;
        let _guard = tch::no_grad_guard();
        let m = raw.mean(Kind::Float);
        let expected = model.net.forward(&((&raw - &m) / 30.0)).unwrap() * 30.0 + &m;
        let traced = module.forward_ts(&[&raw]).unwrap();
        let err = max_relative_difference(&traced, &expected);
        assert!(err <= 1e-5, "mean {mean}: {err}");
    }
}

#[test]
fn existing_output_is_refused_unless_overwrite_and_zip_packages_hold_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(4);
    let zip_path = dir.path().join("model.zip");
    std::fs::write(&zip_path, b"keep me").unwrap();
    let err = export_bioimageio(&model, &zip_path, &ExportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("already exists") && err.contains("model.zip"), "{err}");
    assert_eq!(std::fs::read(&zip_path).unwrap(), b"keep me", "refused export must not touch the file");

    let options = ExportOptions { overwrite: true, temporal_axis: TemporalAxis::Z, ..Default::default() };
    let report = export_bioimageio(&model, &zip_path, &options).unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut names: Vec<String> = archive.file_names().map(String::from).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "README.md",
            "cover.png",
            "rdf.yaml",
            "sample_input.tif",
            "sample_output.tif",
            "test_input.npy",
            "test_output.npy",
            "weights_torchscript.pt"
        ]
    );
    let mut rdf = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("rdf.yaml").unwrap(), &mut rdf).unwrap();
    assert!(rdf.contains("      - type: space\n        id: z\n") && !rdf.contains("type: time"), "{rdf}");
    assert_eq!(report.files.len(), 7);
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "only the zip remains");
}

#[test]
fn test_movie_that_breaks_the_size_rules_is_rejected_with_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(12);
    let movie = TestMovie { values: vec![100.0; 32 * 32 * 20], shape: [32, 32, 20] };
    let err = export_bioimageio(
        &model,
        &dir.path().join("p"),
        &ExportOptions { test_input: Some(movie), ..Default::default() },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("axis x") && err.contains("20") && err.contains("multiple of 8"), "{err}");
    assert!(!dir.path().join("p").exists());
}

#[test]
fn test_input_from_a_tiff_is_its_centre_block_and_too_small_movies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (frames, height, width) = (40usize, 36usize, 50usize);
    let data: Vec<f32> = (0..frames * height * width).map(|i| (i % 1000) as f32).collect();
    let tiff = dir.path().join("movie.tif");
    let metadata = deepcad::io::ImageJMetadata { frames, hyperstack: true, ..Default::default() };
    deepcad::io::write_stack(&tiff, (width, height, frames), deepcad::io::SampleType::F32, &metadata, &data).unwrap();
    let model = small_model(12);
    let shape = package_minimum_size(&model);
    assert_eq!(shape, [32, 32, 32]);
    let movie = TestMovie::from_tiff(&tiff, shape).unwrap();
    let (t0, y0, x0) = (4, 2, 9);
    assert_eq!(movie.values[0], data[t0 * height * width + y0 * width + x0]);
    let last = ((t0 + 31) * height + y0 + 31) * width + x0 + 31;
    assert_eq!(*movie.values.last().unwrap(), data[last]);
    let output = dir.path().join("pkg");
    export_bioimageio(&model, &output, &ExportOptions { test_input: Some(movie.clone()), ..Default::default() })
        .unwrap();
    assert_eq!(read_npy(&output.join("test_input.npy")).1, movie.values);

    let err = TestMovie::from_tiff(&tiff, [48, 32, 32]).unwrap_err().to_string();
    assert!(err.contains("movie.tif") && err.contains("[48, 32, 32]"), "{err}");
}

/// Python interpreter for the validators: DEEPCAD_BIOIMAGEIO_PYTHON or python3. A test asked to run
/// fails when it lacks `module`, so a validation is never reported as passed without running.
fn validator_python(module: &str) -> PathBuf {
    let python =
        std::env::var_os("DEEPCAD_BIOIMAGEIO_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("python3"));
    let probe = std::process::Command::new(&python).args(["-c", &format!("import {module}")]).output();
    assert!(
        matches!(&probe, Ok(out) if out.status.success()),
        "`{} -c \"import {module}\"` failed: set DEEPCAD_BIOIMAGEIO_PYTHON to a Python that has it (`pip install {module}`), as scripts/test.sh does",
        python.display()
    );
    python
}

#[test]
#[ignore = "needs bioimageio.core with torch (pip install bioimageio.core torch): cargo test -- --ignored official_validator with DEEPCAD_BIOIMAGEIO_PYTHON"]
fn official_validator_accepts_the_package() {
    let python = validator_python("bioimageio.core");
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(deepcad::tiling::DEFAULT_HALO);
    let output = dir.path().join("package");
    export_bioimageio(&model, &output, &ExportOptions::default()).unwrap();
    let script = "import sys\nfrom bioimageio.core import test_model\nsummary = test_model(sys.argv[1])\nprint(summary.display() if hasattr(summary, 'display') else summary)\nprint('STATUS', summary.status)\nsys.exit(0 if summary.status == 'passed' else 1)\n";
    let run = std::process::Command::new(&python).args(["-c", script]).arg(output.join("rdf.yaml")).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "bioimageio.core test_model failed:\n{text}");
}

#[test]
#[ignore = "needs bioimageio.spec from PyPI: scripts/test.sh installs it and runs --ignored official_format_validator"]
fn official_format_validator_accepts_the_package() {
    // Format-only validation (rdf.yaml schema, hashes, test tensors against the axes); needs no torch.
    let python = validator_python("bioimageio.spec");
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(deepcad::tiling::DEFAULT_HALO);
    let output = dir.path().join("package.zip");
    let report = export_bioimageio(&model, &output, &ExportOptions::default()).unwrap();
    assert_eq!(report.min_size, [112, 112, 112]);
    let script = "import sys\nfrom bioimageio.spec import load_description\nd = load_description(sys.argv[1], format_version='discover')\ns = d.validation_summary\nprint('format_version', getattr(d, 'format_version', None))\nprint(s.format() if hasattr(s, 'format') else s)\nprint('STATUS', s.status)\nsys.exit(0 if s.status in ('passed', 'valid-format') else 1)\n";
    let run = std::process::Command::new(&python).args(["-c", script]).arg(&output).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    eprintln!("{text}");
    assert!(run.status.success(), "bioimageio.spec validation failed:\n{text}");
}
