//! The safe `.pth` reader on hand-built checkpoints: the opcodes torch.save (protocol 2) emits,
//! assembled byte by byte, to exercise views, offsets and prefixes; and hostile or broken files
//! (disallowed globals, bad storages, truncated or mutated pickles) that must fail cleanly.

use std::io::{Cursor, Write};
use std::path::Path;

use deepcad::model::pth::{read_pth, PthTensor};
use deepcad::Error;
use rand::{Rng, SeedableRng};

use super::pth_import_tests::fixture;

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
        let p = Pickle::default().op(b"\x80\x02").global("collections", "OrderedDict").op(b")Rq\x00(");
        // torch ends with BUILD of the `_metadata` attribute.
        tensors(p).op(b"u}b.").0
    }
}

fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
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
    let mut entries: Vec<(String, &[u8])> =
        vec![("archive/data.pkl".into(), pickle), ("archive/version".into(), b"3\n")];
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
    assert_eq!(tensors[0].data, [0., 3., 6., 9., 1., 4., 7., 10., 2., 5., 8., 11.]);
    assert_eq!(tensors[1].data, [5., 6.]);
    assert_eq!(tensors[2].shape, Vec::<usize>::new());
    assert_eq!(tensors[2].data, [2.5]);
}

#[test]
fn disallowed_globals_are_refused_before_anything_runs() {
    let marker = std::env::temp_dir().join(format!("deepcad-pth-pwned-{}", std::process::id()));
    let command = format!("touch {}", marker.display());
    // GLOBAL os.system + REDUCE, the classic pickle exploit.
    let pickle = Pickle::default().op(b"\x80\x02").global("os", "system").str(&command).op(b"\x85R.").0;
    let (text, kind) = err_text(read_archive(&pickle, &[]));
    assert_eq!(kind, "model");
    assert!(text.contains("os.system") && text.contains("refusing to load untrusted code"), "{text}");
    assert!(!marker.exists());

    // Protocol 4 STACK_GLOBAL naming builtins.eval, hidden inside an otherwise normal state dict.
    let pickle = Pickle::state_dict(|p| p.str("x").op(b"\x8c\x08builtins\x8c\x04eval\x93").str("1+1").op(b"\x85R"));
    let (text, _) = err_text(read_archive(&pickle, &[]));
    assert!(text.contains("builtins.eval"), "{text}");

    // A torch name outside the allow-list is refused just the same.
    let pickle = Pickle::state_dict(|p| p.str("x").global("torch", "load").op(b")R"));
    assert!(err_text(read_archive(&pickle, &[])).0.contains("torch.load"));
}

#[test]
fn storage_problems_are_reported_with_the_tensor_name() {
    let one = |shape: &[i32], numel: i32| Pickle::state_dict(|p| p.tensor("w", "Float", "0", numel, 0, shape, &[1]));

    let (text, kind) = err_text(read_archive(&one(&[4], 4), &[]));
    assert_eq!(kind, "model");
    assert!(text.contains("archive/data/0") && text.contains("Generator.w") && text.contains("lacks"), "{text}");

    let (text, _) = err_text(read_archive(&one(&[4], 4), &[("0", floats(&[1.0, 2.0]))]));
    assert!(text.contains("holds 8 bytes") && text.contains("needs 16"), "{text}");

    // The view reaches past the storage's declared length.
    let (text, _) = err_text(read_archive(&one(&[4], 2), &[("0", floats(&[1.0; 4]))]));
    assert!(text.contains("declares only 2"), "{text}");

    let half = Pickle::state_dict(|p| p.tensor("w", "Half", "0", 4, 0, &[4], &[1]));
    let (text, kind) = err_text(read_archive(&half, &[("0", vec![0; 8])]));
    assert_eq!(kind, "unsupported");
    assert!(text.contains("Half") && text.contains("float32"), "{text}");

    let six_d = Pickle::state_dict(|p| p.tensor("w", "Float", "0", 1, 0, &[1; 6], &[1; 6]));
    assert!(err_text(read_archive(&six_d, &[("0", floats(&[1.0]))])).0.contains("6 dimensions"));

    let nan = Pickle::state_dict(|p| p.tensor("w", "Float", "0", 2, 0, &[2], &[1]));
    assert!(err_text(read_archive(&nan, &[("0", floats(&[1.0, f32::NAN]))])).0.contains("NaN"));

    // Views of one storage may repeat it (tied weights) but not multiply it without bound.
    let shared = |n: usize| {
        Pickle::state_dict(|p| (0..n).fold(p, |p, i| p.tensor(&format!("t{i}"), "Float", "0", 4, 0, &[4], &[1])))
    };
    assert_eq!(read_archive(&shared(2), &[("0", floats(&[1.0; 4]))]).unwrap().len(), 2);
    assert!(err_text(read_archive(&shared(3), &[("0", floats(&[1.0; 4]))])).0.contains("overlap"));

    let odd_key = Pickle::state_dict(|p| p.tensor("w", "Float", "../0", 1, 0, &[1], &[1]));
    assert!(err_text(read_archive(&odd_key, &[("0", floats(&[1.0]))])).0.contains("not a plain name"));
}

#[test]
fn broken_pickles_fail_without_panicking() {
    let cases: &[(&str, Vec<u8>)] = &[
        ("memo entry 7 does not exist", b"\x80\x02h\x07.".to_vec()),
        ("stack underflow", b"\x80\x02R.".to_vec()),
        ("no MARK", b"\x80\x02t.".to_vec()),
        ("pickle ends", b"\x80\x02}".to_vec()),
        ("pickle ends", b"\x80\x02X\xff\xff\xff\x7fabc".to_vec()),
        ("nested too deeply", [b"\x80\x02".to_vec(), vec![b'('; 10_000]].concat()),
        ("opcode 0x69", b"\x80\x02ios\nsystem\n.".to_vec()),
        ("not a state dict", b"\x80\x02K\x05.".to_vec()),
        ("empty state dict", b"\x80\x02}.".to_vec()),
        ("not a tensor", b"\x80\x02}X\x01\x00\x00\x00aK\x01s.".to_vec()),
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

    for cut in [1, 22, 1000, valid.len() / 2, valid.len() - 23, valid.len() - 1] {
        let (text, _) = err_text(read_bytes(&valid[..cut]));
        assert!(text.contains("model.pth"), "the error names the file: {text}");
    }

    // A flipped bit inside a stored weight is caught by the entry's CRC.
    let weight_at = {
        let mut archive = zip::ZipArchive::new(Cursor::new(&valid)).unwrap();
        let name = archive.file_names().find(|n| n.starts_with("archive/data/")).unwrap().to_string();
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
        p.tensor("a", "Float", "0", 6, 0, &[2, 3], &[3, 1]).tensor("b", "Float", "1", 2, 0, &[2], &[1])
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
    assert!(rejected > 150, "most mutations must be rejected, got {rejected}");
}
