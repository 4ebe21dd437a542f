//! Reading official DeepCAD / DeepCAD-RT `.pth` checkpoints: the real fixture, hand-built
//! archives that exercise views and prefixes, and hostile or broken files that must fail cleanly.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use deepcad::model::pth::{normalise_reference_key, read_pth, PthTensor};
use deepcad::model::reference_architecture::{check_reference_architecture, infer_base_width, reference_shapes};
use deepcad::model::reference_params::ReferenceParams;
use deepcad::Error;
use rand::{Rng, SeedableRng};

fn fixture() -> PathBuf {
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
    (
        "Generator.encoders.0.basic_module.SingleConv1.conv.weight",
        &[8, 1, 3, 3, 3],
    ),
    (
        "Generator.encoders.0.basic_module.SingleConv1.conv.bias",
        &[8],
    ),
    (
        "Generator.encoders.0.basic_module.SingleConv2.conv.weight",
        &[16, 8, 3, 3, 3],
    ),
    (
        "Generator.encoders.0.basic_module.SingleConv2.conv.bias",
        &[16],
    ),
    (
        "Generator.encoders.1.basic_module.SingleConv1.conv.weight",
        &[16, 16, 3, 3, 3],
    ),
    (
        "Generator.encoders.1.basic_module.SingleConv1.conv.bias",
        &[16],
    ),
    (
        "Generator.encoders.1.basic_module.SingleConv2.conv.weight",
        &[32, 16, 3, 3, 3],
    ),
    (
        "Generator.encoders.1.basic_module.SingleConv2.conv.bias",
        &[32],
    ),
    (
        "Generator.encoders.2.basic_module.SingleConv1.conv.weight",
        &[32, 32, 3, 3, 3],
    ),
    (
        "Generator.encoders.2.basic_module.SingleConv1.conv.bias",
        &[32],
    ),
    (
        "Generator.encoders.2.basic_module.SingleConv2.conv.weight",
        &[64, 32, 3, 3, 3],
    ),
    (
        "Generator.encoders.2.basic_module.SingleConv2.conv.bias",
        &[64],
    ),
    (
        "Generator.encoders.3.basic_module.SingleConv1.conv.weight",
        &[64, 64, 3, 3, 3],
    ),
    (
        "Generator.encoders.3.basic_module.SingleConv1.conv.bias",
        &[64],
    ),
    (
        "Generator.encoders.3.basic_module.SingleConv2.conv.weight",
        &[128, 64, 3, 3, 3],
    ),
    (
        "Generator.encoders.3.basic_module.SingleConv2.conv.bias",
        &[128],
    ),
    (
        "Generator.decoders.0.basic_module.SingleConv1.conv.weight",
        &[64, 192, 3, 3, 3],
    ),
    (
        "Generator.decoders.0.basic_module.SingleConv1.conv.bias",
        &[64],
    ),
    (
        "Generator.decoders.0.basic_module.SingleConv2.conv.weight",
        &[64, 64, 3, 3, 3],
    ),
    (
        "Generator.decoders.0.basic_module.SingleConv2.conv.bias",
        &[64],
    ),
    (
        "Generator.decoders.1.basic_module.SingleConv1.conv.weight",
        &[32, 96, 3, 3, 3],
    ),
    (
        "Generator.decoders.1.basic_module.SingleConv1.conv.bias",
        &[32],
    ),
    (
        "Generator.decoders.1.basic_module.SingleConv2.conv.weight",
        &[32, 32, 3, 3, 3],
    ),
    (
        "Generator.decoders.1.basic_module.SingleConv2.conv.bias",
        &[32],
    ),
    (
        "Generator.decoders.2.basic_module.SingleConv1.conv.weight",
        &[16, 48, 3, 3, 3],
    ),
    (
        "Generator.decoders.2.basic_module.SingleConv1.conv.bias",
        &[16],
    ),
    (
        "Generator.decoders.2.basic_module.SingleConv2.conv.weight",
        &[16, 16, 3, 3, 3],
    ),
    (
        "Generator.decoders.2.basic_module.SingleConv2.conv.bias",
        &[16],
    ),
    ("Generator.final_conv.weight", &[1, 16, 1, 1, 1]),
    ("Generator.final_conv.bias", &[1]),
];

#[test]
fn official_checkpoint_reads_to_the_reference_tensors() {
    let tensors = read_pth(&fixture()).expect("the official checkpoint reads");
    let got: Vec<(&str, &[usize])> = tensors
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    assert_eq!(got, F16_SHAPES.to_vec());
    for t in &tensors {
        assert_eq!(
            t.data.len(),
            t.shape.iter().product::<usize>(),
            "{}",
            t.name
        );
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
    let start = pickle
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("name in pickle")
        + needle.len();
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
    archive
        .by_name("archive/data.pkl")
        .unwrap()
        .read_to_end(&mut pickle)
        .unwrap();
    for name in [
        "Generator.encoders.0.basic_module.SingleConv1.conv.weight",
        "Generator.decoders.1.basic_module.SingleConv1.conv.weight",
        "Generator.final_conv.bias",
    ] {
        let key = storage_key_after(&pickle, name);
        let mut raw = Vec::new();
        archive
            .by_name(&format!("archive/data/{key}"))
            .unwrap()
            .read_to_end(&mut raw)
            .unwrap();
        let expected: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let t = tensors.iter().find(|t| t.name == name).unwrap();
        assert_eq!(t.data, expected, "{name}");
    }
}

#[test]
fn reference_shapes_match_the_published_parameter_counts() {
    let count = |f| {
        reference_shapes(f)
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum::<usize>()
    };
    assert_eq!(count(16), 1_020_337);
    assert_eq!(count(32), 4_079_713);
    assert_eq!(count(64), 16_315_585);
    let tensors: Vec<PthTensor> = reference_shapes(64)
        .into_iter()
        .map(|(name, shape)| PthTensor {
            data: vec![0.0; shape.iter().product()],
            name,
            shape,
        })
        .collect();
    assert_eq!(infer_base_width(&tensors).unwrap(), 64);
}

#[test]
fn architecture_check_rejects_wrong_missing_and_extra_tensors() {
    let good = read_pth(&fixture()).unwrap();
    let path = Path::new("model.pth");

    let mut wrong = good.clone();
    wrong[20].shape = vec![32, 95, 3, 3, 3];
    let err = check_reference_architecture(path, &wrong)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("decoders.1.basic_module.SingleConv1.conv.weight")
            && err.contains("[32, 96, 3, 3, 3]"),
        "{err}"
    );

    let missing: Vec<PthTensor> = good
        .iter()
        .filter(|t| t.name != "Generator.final_conv.bias")
        .cloned()
        .collect();
    let err = infer_base_width(&missing).unwrap_err().to_string();
    assert!(err.contains("final_conv.bias"), "{err}");

    let mut extra = good.clone();
    extra.push(PthTensor {
        name: "Generator.encoders.0.basic_module.SingleConv1.groupnorm.weight".into(),
        shape: vec![8],
        data: vec![1.0; 8],
    });
    assert!(infer_base_width(&extra)
        .unwrap_err()
        .to_string()
        .contains("groupnorm"));

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
    assert!(ReferenceParams::read(&path)
        .unwrap_err()
        .to_string()
        .contains("twice"));
}

// ---------------------------------------------------------------------------------------------
// Hand-built checkpoints: the opcodes torch.save (protocol 2) emits, assembled byte by byte.

#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn str(mut self, s: &str) -> Self {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn int(mut self, v: i32) -> Self {
        self.0.push(b'J');
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn global(self, module: &str, name: &str) -> Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }
    fn ints(self, values: &[i32]) -> Self {
        values.iter().fold(self.op(b"("), |p, &v| p.int(v)).op(b"t")
    }
    /// One `key: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` pair.
    #[allow(clippy::too_many_arguments)] // mirrors _rebuild_tensor_v2's own argument list
    fn tensor(
        self,
        key: &str,
        dtype: &str,
        storage: &str,
        numel: i32,
        offset: i32,
        shape: &[i32],
        stride: &[i32],
    ) -> Self {
        self.str(key)
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(b"((")
            .str("storage")
            .global("torch", &format!("{dtype}Storage"))
            .str(storage)
            .str("cpu")
            .int(numel)
            .op(b"tQ")
            .int(offset)
            .ints(shape)
            .ints(stride)
            .op(b"\x89")
            .global("collections", "OrderedDict")
            .op(b")R")
            .op(b"tR")
    }
    fn state_dict(tensors: impl FnOnce(Self) -> Self) -> Vec<u8> {
        let p = Pickle::default()
            .op(b"\x80\x02")
            .global("collections", "OrderedDict")
            .op(b")Rq\x00(");
        // torch ends with BUILD of the `_metadata` attribute.
        tensors(p).op(b"u}b.").0
    }
}

fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_bytes(bytes: &[u8]) -> deepcad::Result<Vec<PthTensor>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.pth");
    std::fs::write(&path, bytes).unwrap();
    read_pth(&path)
}

fn read_archive(pickle: &[u8], storages: &[(&str, Vec<u8>)]) -> deepcad::Result<Vec<PthTensor>> {
    let mut entries: Vec<(String, &[u8])> = vec![
        ("archive/data.pkl".into(), pickle),
        ("archive/version".into(), b"3\n"),
    ];
    for (key, bytes) in storages {
        entries.push((format!("archive/data/{key}"), bytes));
    }
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    read_bytes(&zip_bytes(&refs))
}

fn err_text(result: deepcad::Result<Vec<PthTensor>>) -> (String, &'static str) {
    let err: Error = result.expect_err("must be rejected");
    (err.to_string(), err.kind())
}

#[test]
fn views_offsets_and_prefixes_are_read_in_row_major_order() {
    let storage: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let pickle = Pickle::state_dict(|p| {
        // A 3x4 transposed view of a 4x3 row-major matrix, a 2-element slice at offset 5, a scalar.
        p.tensor("module.a", "Float", "0", 12, 0, &[3, 4], &[1, 3])
            .tensor("module.b", "Float", "0", 12, 5, &[2], &[1])
            .tensor("c", "Float", "1", 1, 0, &[], &[])
    });
    let tensors = read_archive(&pickle, &[("0", floats(&storage)), ("1", floats(&[2.5]))]).unwrap();
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Generator.a", "Generator.b", "Generator.c"]);
    assert_eq!(tensors[0].shape, [3, 4]);
    assert_eq!(
        tensors[0].data,
        [0., 3., 6., 9., 1., 4., 7., 10., 2., 5., 8., 11.]
    );
    assert_eq!(tensors[1].data, [5., 6.]);
    assert_eq!(tensors[2].shape, Vec::<usize>::new());
    assert_eq!(tensors[2].data, [2.5]);
}

#[test]
fn disallowed_globals_are_refused_before_anything_runs() {
    let marker = std::env::temp_dir().join(format!("deepcad-pth-pwned-{}", std::process::id()));
    let command = format!("touch {}", marker.display());
    // GLOBAL os.system + REDUCE, the classic pickle exploit.
    let pickle = Pickle::default()
        .op(b"\x80\x02")
        .global("os", "system")
        .str(&command)
        .op(b"\x85R.")
        .0;
    let (text, kind) = err_text(read_archive(&pickle, &[]));
    assert_eq!(kind, "model");
    assert!(
        text.contains("os.system") && text.contains("refusing to load untrusted code"),
        "{text}"
    );
    assert!(!marker.exists());

    // Protocol 4 STACK_GLOBAL naming builtins.eval, hidden inside an otherwise normal state dict.
    let pickle = Pickle::state_dict(|p| {
        p.str("x")
            .op(b"\x8c\x08builtins\x8c\x04eval\x93")
            .str("1+1")
            .op(b"\x85R")
    });
    let (text, _) = err_text(read_archive(&pickle, &[]));
    assert!(text.contains("builtins.eval"), "{text}");

    // A torch name outside the allow-list is refused just the same.
    let pickle = Pickle::state_dict(|p| p.str("x").global("torch", "load").op(b")R"));
    assert!(err_text(read_archive(&pickle, &[]))
        .0
        .contains("torch.load"));
}

#[test]
fn storage_problems_are_reported_with_the_tensor_name() {
    let one = |shape: &[i32], numel: i32| {
        Pickle::state_dict(|p| p.tensor("w", "Float", "0", numel, 0, shape, &[1]))
    };

    let (text, kind) = err_text(read_archive(&one(&[4], 4), &[]));
    assert_eq!(kind, "model");
    assert!(
        text.contains("archive/data/0") && text.contains("Generator.w") && text.contains("lacks"),
        "{text}"
    );

    let (text, _) = err_text(read_archive(&one(&[4], 4), &[("0", floats(&[1.0, 2.0]))]));
    assert!(
        text.contains("holds 8 bytes") && text.contains("needs 16"),
        "{text}"
    );

    // The view reaches past the storage's declared length.
    let (text, _) = err_text(read_archive(&one(&[4], 2), &[("0", floats(&[1.0; 4]))]));
    assert!(text.contains("declares only 2"), "{text}");

    let half = Pickle::state_dict(|p| p.tensor("w", "Half", "0", 4, 0, &[4], &[1]));
    let (text, kind) = err_text(read_archive(&half, &[("0", vec![0; 8])]));
    assert_eq!(kind, "unsupported");
    assert!(text.contains("Half") && text.contains("float32"), "{text}");

    let six_d = Pickle::state_dict(|p| p.tensor("w", "Float", "0", 1, 0, &[1; 6], &[1; 6]));
    assert!(err_text(read_archive(&six_d, &[("0", floats(&[1.0]))]))
        .0
        .contains("6 dimensions"));

    let nan = Pickle::state_dict(|p| p.tensor("w", "Float", "0", 2, 0, &[2], &[1]));
    assert!(
        err_text(read_archive(&nan, &[("0", floats(&[1.0, f32::NAN]))]))
            .0
            .contains("NaN")
    );

    // Views of one storage may repeat it (tied weights) but not multiply it without bound.
    let shared = |n: usize| {
        Pickle::state_dict(|p| {
            (0..n).fold(p, |p, i| {
                p.tensor(&format!("t{i}"), "Float", "0", 4, 0, &[4], &[1])
            })
        })
    };
    assert_eq!(
        read_archive(&shared(2), &[("0", floats(&[1.0; 4]))])
            .unwrap()
            .len(),
        2
    );
    assert!(
        err_text(read_archive(&shared(3), &[("0", floats(&[1.0; 4]))]))
            .0
            .contains("overlap")
    );

    let odd_key = Pickle::state_dict(|p| p.tensor("w", "Float", "../0", 1, 0, &[1], &[1]));
    assert!(err_text(read_archive(&odd_key, &[("0", floats(&[1.0]))]))
        .0
        .contains("not a plain name"));
}

#[test]
fn broken_pickles_fail_without_panicking() {
    let cases: &[(&str, Vec<u8>)] = &[
        ("memo entry 7 does not exist", b"\x80\x02h\x07.".to_vec()),
        ("stack underflow", b"\x80\x02R.".to_vec()),
        ("no MARK", b"\x80\x02t.".to_vec()),
        ("pickle ends", b"\x80\x02}".to_vec()),
        ("pickle ends", b"\x80\x02X\xff\xff\xff\x7fabc".to_vec()),
        (
            "nested too deeply",
            [b"\x80\x02".to_vec(), vec![b'('; 10_000]].concat(),
        ),
        ("opcode 0x69", b"\x80\x02ios\nsystem\n.".to_vec()),
        ("not a state dict", b"\x80\x02K\x05.".to_vec()),
        ("empty state dict", b"\x80\x02}.".to_vec()),
        (
            "not a tensor",
            b"\x80\x02}X\x01\x00\x00\x00aK\x01s.".to_vec(),
        ),
    ];
    for (expected, pickle) in cases {
        let (text, kind) = err_text(read_archive(pickle, &[]));
        assert_eq!(kind, "model", "{text}");
        assert!(text.contains(expected), "expected {expected:?} in {text}");
    }
}

#[test]
fn broken_files_fail_without_panicking() {
    let valid = std::fs::read(fixture()).unwrap();

    assert_eq!(err_text(read_bytes(&[])).1, "model");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let random: Vec<u8> = (0..4096).map(|_| rng.random()).collect();
    assert_eq!(err_text(read_bytes(&random)).1, "model");
    let legacy = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.";
    assert_eq!(err_text(read_bytes(legacy)).1, "unsupported");
    let missing = read_pth(Path::new("/nonexistent/model.pth")).unwrap_err();
    assert_eq!(missing.kind(), "io");

    for cut in [
        1,
        22,
        1000,
        valid.len() / 2,
        valid.len() - 23,
        valid.len() - 1,
    ] {
        let (text, _) = err_text(read_bytes(&valid[..cut]));
        assert!(
            text.contains("model.pth"),
            "the error names the file: {text}"
        );
    }

    // A flipped bit inside a stored weight is caught by the entry's CRC.
    let weight_at = {
        let mut archive = zip::ZipArchive::new(Cursor::new(&valid)).unwrap();
        let name = archive
            .file_names()
            .find(|n| n.starts_with("archive/data/"))
            .unwrap()
            .to_string();
        let entry = archive.by_name(&name).unwrap();
        (entry.data_start() + entry.size() / 2) as usize
    };
    let mut flipped = valid.clone();
    flipped[weight_at] ^= 0x10;
    assert!(read_bytes(&flipped).is_err());

    let no_pickle = zip_bytes(&[("archive/version", b"3\n")]);
    assert!(err_text(read_bytes(&no_pickle)).0.contains("data.pkl"));
}

/// Random corruption of a small valid checkpoint's pickle must always end in Ok or Err.
#[test]
fn mutated_pickles_never_panic() {
    let pickle = Pickle::state_dict(|p| {
        p.tensor("a", "Float", "0", 6, 0, &[2, 3], &[3, 1]).tensor(
            "b",
            "Float",
            "1",
            2,
            0,
            &[2],
            &[1],
        )
    });
    let storages = [("0", floats(&[1.0; 6])), ("1", floats(&[2.0; 2]))];
    assert_eq!(read_archive(&pickle, &storages).unwrap().len(), 2);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut rejected = 0;
    for _ in 0..300 {
        let mut mutated = pickle.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..mutated.len());
            mutated[at] = rng.random();
        }
        if rng.random_bool(0.2) {
            mutated.truncate(rng.random_range(0..mutated.len()));
        }
        if read_archive(&mutated, &storages).is_err() {
            rejected += 1;
        }
    }
    assert!(
        rejected > 150,
        "most mutations must be rejected, got {rejected}"
    );
}

/// Reads a little-endian float32 `.npy` array (the golden fixture's format).
fn read_npy_f32(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'<f4'") && header.contains("'fortran_order': False"), "{header}");
    let shape_text = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> = shape_text.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect();
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
