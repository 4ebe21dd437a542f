//! Reading official DeepCAD / DeepCAD-RT `.pth` checkpoints: the real fixture, the reference
//! architecture and key spellings, para.yaml, and the imported model reproducing the reference
//! output. Hand-built and hostile checkpoints are in `pth_reader_tests.rs`.

use std::io::Read;
use std::path::{Path, PathBuf};

use deepcad::model::pth::{normalise_reference_key, read_pth, PthTensor};
use deepcad::model::reference_architecture::{check_reference_architecture, infer_base_width, reference_shapes};
use deepcad::model::reference_params::ReferenceParams;

pub fn fixture() -> PathBuf {
    let root = std::env::var_os("DEEPCAD_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::util::shared_dir().join("fixtures"));
    let path = root.join("deepcad-rt-official/E_10_Iter_3500.pth");
    assert!(
        path.is_file(),
        "fixture {} is missing; set DEEPCAD_FIXTURES to the shared fixtures folder",
        path.display()
    );
    path
}

/// Spec §2.1 layer table for f = 16, in module (and pickle) order.
const F16_SHAPES: &[(&str, &[usize])] = &[
    ("Generator.encoders.0.basic_module.SingleConv1.conv.weight", &[8, 1, 3, 3, 3]),
    ("Generator.encoders.0.basic_module.SingleConv1.conv.bias", &[8]),
    ("Generator.encoders.0.basic_module.SingleConv2.conv.weight", &[16, 8, 3, 3, 3]),
    ("Generator.encoders.0.basic_module.SingleConv2.conv.bias", &[16]),
    ("Generator.encoders.1.basic_module.SingleConv1.conv.weight", &[16, 16, 3, 3, 3]),
    ("Generator.encoders.1.basic_module.SingleConv1.conv.bias", &[16]),
    ("Generator.encoders.1.basic_module.SingleConv2.conv.weight", &[32, 16, 3, 3, 3]),
    ("Generator.encoders.1.basic_module.SingleConv2.conv.bias", &[32]),
    ("Generator.encoders.2.basic_module.SingleConv1.conv.weight", &[32, 32, 3, 3, 3]),
    ("Generator.encoders.2.basic_module.SingleConv1.conv.bias", &[32]),
    ("Generator.encoders.2.basic_module.SingleConv2.conv.weight", &[64, 32, 3, 3, 3]),
    ("Generator.encoders.2.basic_module.SingleConv2.conv.bias", &[64]),
    ("Generator.encoders.3.basic_module.SingleConv1.conv.weight", &[64, 64, 3, 3, 3]),
    ("Generator.encoders.3.basic_module.SingleConv1.conv.bias", &[64]),
    ("Generator.encoders.3.basic_module.SingleConv2.conv.weight", &[128, 64, 3, 3, 3]),
    ("Generator.encoders.3.basic_module.SingleConv2.conv.bias", &[128]),
    ("Generator.decoders.0.basic_module.SingleConv1.conv.weight", &[64, 192, 3, 3, 3]),
    ("Generator.decoders.0.basic_module.SingleConv1.conv.bias", &[64]),
    ("Generator.decoders.0.basic_module.SingleConv2.conv.weight", &[64, 64, 3, 3, 3]),
    ("Generator.decoders.0.basic_module.SingleConv2.conv.bias", &[64]),
    ("Generator.decoders.1.basic_module.SingleConv1.conv.weight", &[32, 96, 3, 3, 3]),
    ("Generator.decoders.1.basic_module.SingleConv1.conv.bias", &[32]),
    ("Generator.decoders.1.basic_module.SingleConv2.conv.weight", &[32, 32, 3, 3, 3]),
    ("Generator.decoders.1.basic_module.SingleConv2.conv.bias", &[32]),
    ("Generator.decoders.2.basic_module.SingleConv1.conv.weight", &[16, 48, 3, 3, 3]),
    ("Generator.decoders.2.basic_module.SingleConv1.conv.bias", &[16]),
    ("Generator.decoders.2.basic_module.SingleConv2.conv.weight", &[16, 16, 3, 3, 3]),
    ("Generator.decoders.2.basic_module.SingleConv2.conv.bias", &[16]),
    ("Generator.final_conv.weight", &[1, 16, 1, 1, 1]),
    ("Generator.final_conv.bias", &[1]),
];

#[test]
fn official_checkpoint_reads_to_the_reference_tensors() {
    let tensors = read_pth(&fixture()).expect("the official checkpoint reads");
    let got: Vec<(&str, &[usize])> = tensors.iter().map(|t| (t.name.as_str(), t.shape.as_slice())).collect();
    assert_eq!(got, F16_SHAPES.to_vec());
    for t in &tensors {
        assert_eq!(t.data.len(), t.shape.iter().product::<usize>(), "{}", t.name);
        assert!(t.data.iter().all(|v| v.is_finite()), "{}", t.name);
    }
    let total: usize = tensors.iter().map(|t| t.data.len()).sum();
    assert_eq!(total, 1_020_337);
    assert_eq!(infer_base_width(&tensors).unwrap(), 16);
    // Trained weights are not all equal; catches a reader that returns one repeated value.
    let w = &tensors[2].data;
    assert!(w.iter().any(|v| *v != w[0]));
}

/// Finds each tensor's storage key in data.pkl without the reader's interpreter: the first
/// all-digit BINUNICODE string after the tensor's name is its storage key.
fn storage_key_after(pickle: &[u8], name: &str) -> String {
    let needle = name.as_bytes();
    let start = pickle.windows(needle.len()).position(|w| w == needle).expect("name in pickle") + needle.len();
    let mut i = start;
    while i + 5 < pickle.len() {
        if pickle[i] == b'X' {
            let len = u32::from_le_bytes(pickle[i + 1..i + 5].try_into().unwrap()) as usize;
            if (1..=24).contains(&len) && i + 5 + len <= pickle.len() {
                let s = &pickle[i + 5..i + 5 + len];
                if s.iter().all(u8::is_ascii_digit) {
                    return String::from_utf8(s.to_vec()).unwrap();
                }
            }
        }
        i += 1;
    }
    panic!("no storage key after {name}");
}

#[test]
fn official_checkpoint_values_match_the_raw_storages() {
    let path = fixture();
    let tensors = read_pth(&path).unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut pickle = Vec::new();
    archive.by_name("archive/data.pkl").unwrap().read_to_end(&mut pickle).unwrap();
    for name in [
        "Generator.encoders.0.basic_module.SingleConv1.conv.weight",
        "Generator.decoders.1.basic_module.SingleConv1.conv.weight",
        "Generator.final_conv.bias",
    ] {
        let key = storage_key_after(&pickle, name);
        let mut raw = Vec::new();
        archive.by_name(&format!("archive/data/{key}")).unwrap().read_to_end(&mut raw).unwrap();
        let expected: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        let t = tensors.iter().find(|t| t.name == name).unwrap();
        assert_eq!(t.data, expected, "{name}");
    }
}

#[test]
fn reference_shapes_match_the_published_parameter_counts() {
    let count = |f| reference_shapes(f).iter().map(|(_, s)| s.iter().product::<usize>()).sum::<usize>();
    assert_eq!(count(16), 1_020_337);
    assert_eq!(count(32), 4_079_713);
    assert_eq!(count(64), 16_315_585);
    let tensors: Vec<PthTensor> = reference_shapes(64)
        .into_iter()
        .map(|(name, shape)| PthTensor { data: vec![0.0; shape.iter().product()], name, shape })
        .collect();
    assert_eq!(infer_base_width(&tensors).unwrap(), 64);
}

#[test]
fn architecture_check_rejects_wrong_missing_and_extra_tensors() {
    let good = read_pth(&fixture()).unwrap();
    let path = Path::new("model.pth");

    let mut wrong = good.clone();
    wrong[20].shape = vec![32, 95, 3, 3, 3];
    let err = check_reference_architecture(path, &wrong).unwrap_err().to_string();
    assert!(
        err.contains("decoders.1.basic_module.SingleConv1.conv.weight") && err.contains("[32, 96, 3, 3, 3]"),
        "{err}"
    );

    let missing: Vec<PthTensor> = good.iter().filter(|t| t.name != "Generator.final_conv.bias").cloned().collect();
    let err = infer_base_width(&missing).unwrap_err().to_string();
    assert!(err.contains("final_conv.bias"), "{err}");

    let mut extra = good.clone();
    extra.push(PthTensor {
        name: "Generator.encoders.0.basic_module.SingleConv1.groupnorm.weight".into(),
        shape: vec![8],
        data: vec![1.0; 8],
    });
    assert!(infer_base_width(&extra).unwrap_err().to_string().contains("groupnorm"));

    let no_probe: Vec<PthTensor> = good.iter().skip(4).cloned().collect();
    assert_eq!(infer_base_width(&no_probe).unwrap_err().kind(), "model");
}

#[test]
fn reference_keys_are_normalised() {
    let want = "Generator.encoders.0.basic_module.SingleConv1.conv.weight";
    for key in [
        want,
        "encoders.0.basic_module.SingleConv1.conv.weight",
        "module.encoders.0.basic_module.SingleConv1.conv.weight",
        "module.Generator.encoders.0.basic_module.SingleConv1.conv.weight",
        "Generator.module.encoders.0.basic_module.SingleConv1.conv.weight",
    ] {
        assert_eq!(normalise_reference_key(key), want, "{key}");
    }
}

#[test]
fn para_yaml_sidecar_is_read() {
    // DeepCAD-RT's pth/ModelForPytorch/para.yaml, the sidecar of the official checkpoint.
    let text = "GPU: '0'\nb1: 0.5\nb2: 0.999\nbatch_size: 1\ndatasets_folder: DataForPytorch\ndatasets_path: datasets\nfmap: 16\ngap_h: 75\ngap_s: 75\ngap_w: 75\nimg_h: 150\nimg_s: 150\nimg_w: 150\nlr: 5.0e-05\nn_epochs: 30\nnormalize_factor: 1\noutput_dir: ./results\ntrain_datasets_size: 3500\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("para.yaml");
    std::fs::write(&path, text).unwrap();
    let params = ReferenceParams::read(&path).unwrap();
    assert_eq!(params.entries.len(), 18);
    assert_eq!(params.get_usize("fmap"), Some(16));
    assert_eq!(params.get_usize("img_s"), Some(150));
    assert_eq!(params.get_f64("lr"), Some(5e-5));
    assert_eq!(params.get_f64("b2"), Some(0.999));
    assert_eq!(params.get_str("GPU"), Some("0"));
    assert_eq!(params.get_str("output_dir"), Some("./results"));
    assert_eq!(params.get_usize("lr"), None);
    assert_eq!(params.get_str("absent"), None);

    std::fs::write(&path, "fmap: 16\npatch:\n  x: 150\n").unwrap();
    let err = ReferenceParams::read(&path).unwrap_err();
    assert_eq!(err.kind(), "format");
    assert!(err.to_string().contains("line 3"), "{err}");
    std::fs::write(&path, "fmap: 16\nfmap: 32\n").unwrap();
    assert!(ReferenceParams::read(&path).unwrap_err().to_string().contains("twice"));
}

/// Reads a little-endian float32 `.npy` array (the golden fixture's format).
fn read_npy_f32(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'<f4'") && header.contains("'fortran_order': False"), "{header}");
    let shape_text = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> =
        shape_text.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect();
    let data = bytes[10 + header_len..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (shape, data)
}

#[test]
fn imported_official_checkpoint_reproduces_the_reference_output() {
    let dir = fixture().parent().unwrap().to_path_buf();
    let model = deepcad::model::import::import_reference_checkpoint(&fixture(), None, tch::Device::Cpu).unwrap();
    assert_eq!(model.metadata.base_width, 16);
    let (shape, input) = read_npy_f32(&dir.join("input.npy"));
    let (out_shape, expected) = read_npy_f32(&dir.join("output.npy"));
    assert_eq!(shape, vec![1, 1, 32, 64, 64]);
    assert_eq!(out_shape, shape);
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let x = tch::Tensor::from_slice(&input).reshape(&dims);
    let _guard = tch::no_grad_guard();
    for output in [model.net.forward(&x).unwrap(), model.net.forward_low_memory(&x, 8).unwrap()] {
        let ours = Vec::<f32>::try_from(output.flatten(0, -1)).unwrap();
        let peak = expected.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        let worst = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
        eprintln!("golden: max abs error {worst:.3e}, relative to max|out| {:.3e}", worst / peak);
        assert!(worst / peak < 1e-4, "max relative error {}", worst / peak);
    }
    // Round trip through our bundle keeps the weights and the reference normalisation.
    let bundle = tempfile::tempdir().unwrap();
    let path = bundle.path().join("imported.safetensors");
    model.save(&path).unwrap();
    let meta = deepcad::model::Model::read_metadata(&path).unwrap();
    assert_eq!(meta.normalization, deepcad::model::Normalization::StackMean { scale_factor: 1.0 });
    assert!(meta.training.origin.contains("E_10_Iter_3500.pth"));
}
