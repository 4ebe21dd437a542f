//! The GPU path. Device reporting runs everywhere. What needs a GPU, or the CUDA libtorch set, is
//! `#[ignore]`d with the reason, so a CPU-only run reports it as ignored, never as passed;
//! scripts/test.sh runs them (`--ignored`) where a GPU or the CUDA set is present.

use std::process::Command;

fn deepcad(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deepcad")).args(args).output().unwrap()
}

#[test]
fn info_lists_each_gpu_or_says_why_cuda_is_unusable() {
    let out = deepcad(&["info", "--devices"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().next().is_some_and(|l| l.starts_with("cpu: ")), "{text}");
    let cuda: Vec<&str> = text.lines().filter(|l| l.starts_with("cuda")).collect();
    assert!(!cuda.is_empty(), "no CUDA line: {text}");
    if deepcad::device::cuda_available() {
        // Each GPU: name, memory and compute capability.
        assert!(cuda.iter().all(|l| l.contains("GiB") && l.contains("compute capability")), "{text}");
    } else {
        // Why not, in the CUDA runtime's or the loader's words.
        assert!(cuda[0].starts_with("cuda: unavailable (") && cuda[0].len() > 40, "{text}");
    }
}

#[test]
#[ignore = "needs the CUDA libtorch set (source scripts/env.sh --cuda); scripts/test.sh runs it when present"]
fn cuda_set_libraries_resolve_through_run_paths_alone() {
    // `source scripts/env.sh --cuda` installs it; without it there is nothing to check.
    let cache = std::env::var_os("DEEPCAD_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/deepcad")
    });
    let venv = cache.join("libtorch-2.11.0-cuda");
    let library = std::fs::read_dir(venv.join("lib"))
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|python| python.path().join("site-packages/torch/lib/libtorch_cuda.so"));
    let library = library.filter(|l| l.is_file() && venv.join(".complete").is_file()).unwrap_or_else(|| {
        panic!("the CUDA libtorch set is not installed in {} (source scripts/env.sh --cuda)", venv.display())
    });
    let out = Command::new("ldd").arg(&library).env_remove("LD_LIBRARY_PATH").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = text.lines().filter(|l| l.contains("not found")).collect();
    assert!(missing.is_empty(), "{} cannot find: {missing:?}", library.display());
    for needed in ["libcublas.so", "libcudnn.so", "libcudart.so"] {
        assert!(text.contains(needed), "{} does not use {needed}: {text}", library.display());
    }
}

#[test]
#[ignore = "needs a CUDA GPU; scripts/test.sh runs it where `deepcad info --devices` lists one"]
fn gpu_network_agrees_with_cpu() {
    assert!(
        deepcad::device::cuda_available(),
        "no usable GPU: {}",
        deepcad::device::cuda_unavailable_reason().unwrap_or_default()
    );
    use deepcad::model::{Model, ModelMetadata, Normalization};
    use tch::{Device, Kind, Tensor};
    tch::manual_seed(3);
    let cpu =
        Model::new(ModelMetadata::new(16, [32, 32, 32], Normalization::Fixed { offset: 0.0, scale: 1.0 }), Device::Cpu)
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    cpu.save(&path).unwrap();
    let gpu = Model::load(&path, Device::Cuda(0)).unwrap();
    let x = Tensor::randn([1, 1, 32, 64, 64], (Kind::Float, Device::Cpu));
    let _guard = tch::no_grad_guard();
    let a = cpu.net.forward(&x).unwrap();
    let b = gpu.net.forward(&x.to_device(Device::Cuda(0))).unwrap().to_device(Device::Cpu);
    // TF32 is off in libtorch by default for convolutions' float32 results to match; cuDNN's
    // algorithms sum in another order: 1e-4 of the output's range.
    let error = (&a - &b).abs().max().double_value(&[]) / a.abs().max().double_value(&[]);
    assert!(error < 1e-4, "GPU and CPU outputs differ by {error} of the range");
}

#[test]
#[ignore = "needs the CUDA libtorch set (source scripts/env.sh --cuda); scripts/test.sh runs it when present"]
fn cuda_set_gpu_overlay_loads_libtorch_cuda_from_its_own_folder() {
    // The Fiji GPU overlay as a user would copy it; a CLI placed in its lib/linux64 loads libtorch
    // from there ($ORIGIN first) and must get libtorch_cuda.so loaded with no LD_LIBRARY_PATH: on a
    // machine without a GPU the only thing left missing is the device itself.
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{root}/fiji-plugin/build.sh")).arg("--cuda").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // libtorch and the CUDA libraries live in DeepCAD's private folder (fiji-plugin/README.md).
    let lib = dir.path().join("Fiji.app/lib/linux64/deepcad");
    for name in ["libtorch_cuda.so", "libcudnn_engines_precompiled.so.9", "libcublasLt.so.13"] {
        assert!(lib.join(name).is_file(), "{name} missing from the GPU overlay");
    }
    let probe = lib.join("deepcad-probe");
    std::fs::copy(env!("CARGO_BIN_EXE_deepcad"), &probe).unwrap();
    let out = Command::new(&probe).args(["info", "--devices"]).env_remove("LD_LIBRARY_PATH").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("compute capability") || text.contains("libtorch_cuda is loaded"), "{text}");
    assert!(!text.contains("cannot open shared object file"), "{text}");
}
