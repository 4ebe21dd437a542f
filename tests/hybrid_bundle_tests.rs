//! The self-supervision method in the bundle: recorded, reloaded, and absent from older bundles,
//! which load as interlaced.

use std::collections::HashMap;

use deepcad::model::{Model, ModelMetadata, Normalization, SelfSupervision, TileMemory, TilePlacement, BUILT_IN_MODEL};
use tch::{Device, Kind, Tensor};

fn metadata() -> ModelMetadata {
    ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 10.0, scale: 2.0 })
}

/// The bundle at `path` with its `deepcad` metadata JSON changed by `edit`, written to `to`.
fn with_edited_metadata(path: &std::path::Path, to: &std::path::Path, edit: impl Fn(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
    let mut metadata: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["deepcad"].as_str().unwrap()).unwrap();
    edit(&mut metadata);
    header["__metadata__"]["deepcad"] = serde_json::Value::String(metadata.to_string());
    let json = header.to_string().into_bytes();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + length..]);
    std::fs::write(to, out).unwrap();
}

fn denoised(model: &Model, tile: &Tensor) -> Tensor {
    tch::no_grad(|| {
        model.denoise_tile(tile, &TilePlacement::unmirrored(tile), TileMemory::Whole, &mut || Ok(())).unwrap()
    })
}

#[test]
fn a_hybrid_bundle_records_its_method_and_reloads_the_same_network() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hybrid.safetensors");
    tch::manual_seed(2);
    let model = Model::new(metadata().with_method(SelfSupervision::Hybrid), Device::Cpu).unwrap();
    tch::no_grad(|| {
        for (_, mut var) in model.vs.variables() {
            let _ = var.normal_(0.0, 0.3);
        }
    });
    model.save(&path).unwrap();

    let read = Model::read_metadata(&path).unwrap();
    assert_eq!(read.method, SelfSupervision::Hybrid);
    assert_eq!(read.architecture, SelfSupervision::Hybrid.architecture());
    assert_eq!(read.halo, [104, 52, 52], "the context sees 2·51 + 1 frames each way");
    assert_eq!(read.parameters, deepcad::model::parameter_count(4) + SelfSupervision::Hybrid.extra_parameters());

    let loaded = Model::load(&path, Device::Cpu).unwrap();
    assert!(loaded.hybrid.is_some());
    let names = |m: &Model| {
        let mut names: Vec<String> = m.vs.variables().into_keys().collect();
        names.sort();
        names
    };
    assert_eq!(names(&loaded), names(&model));
    assert!(names(&model).iter().any(|n| n.starts_with("BlindSpot.blind.layers.4")));
    let tile = Tensor::randn([1, 1, 16, 16, 16], (Kind::Float, Device::Cpu));
    let difference = (denoised(&model, &tile) - denoised(&loaded, &tile)).abs().max().double_value(&[]);
    assert_eq!(difference, 0.0);
}

#[test]
fn bundles_without_a_method_load_as_interlaced() {
    // The built-in model was written before the method existed.
    let built_in = Model::read_metadata(std::path::Path::new(BUILT_IN_MODEL)).unwrap();
    assert_eq!(built_in.method, SelfSupervision::Interlaced);

    let dir = tempfile::tempdir().unwrap();
    let (new, old) = (dir.path().join("new.safetensors"), dir.path().join("old.safetensors"));
    Model::new(metadata(), Device::Cpu).unwrap().save(&new).unwrap();
    with_edited_metadata(&new, &old, |m| {
        assert_eq!(m["method"], "interlaced");
        m.as_object_mut().unwrap().remove("method");
    });
    let model = Model::load(&old, Device::Cpu).unwrap();
    assert_eq!(model.metadata.method, SelfSupervision::Interlaced);
    assert!(model.hybrid.is_none());
}

#[test]
fn a_bundle_whose_method_and_network_disagree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("good.safetensors"), dir.path().join("bad.safetensors"));
    Model::new(metadata().with_method(SelfSupervision::Hybrid), Device::Cpu).unwrap().save(&good).unwrap();
    // A hybrid network described as interlaced: its blind-spot tensors have no place.
    with_edited_metadata(&good, &bad, |m| {
        m.as_object_mut().unwrap().remove("method");
    });
    let error = Model::load(&bad, Device::Cpu).unwrap_err().to_string();
    assert!(error.contains("architecture") && error.contains("interlaced"), "{error}");
    // An interlaced one whose halo is too short in time for a hybrid's context.
    with_edited_metadata(&good, &bad, |m| m["halo"] = serde_json::json!([52, 52, 52]));
    let error = Model::load(&bad, Device::Cpu).unwrap_err().to_string();
    assert!(error.contains("halo") && error.contains("hybrid"), "{error}");
}

#[test]
fn an_interlaced_model_made_hybrid_keeps_its_u_net_and_starts_from_its_prediction() {
    tch::manual_seed(4);
    let interlaced = Model::new(metadata(), Device::Cpu).unwrap();
    let before: HashMap<String, Tensor> = interlaced.vs.variables();
    let input = Tensor::randn([1, 1, 8, 16, 16], (Kind::Float, Device::Cpu));
    let target = Tensor::randn([1, 1, 8, 16, 16], (Kind::Float, Device::Cpu));
    let expected = tch::no_grad(|| interlaced.pair_forward(&input, &target).unwrap());

    let hybrid = interlaced.with_method(SelfSupervision::Hybrid).unwrap();
    assert_eq!(hybrid.metadata.method, SelfSupervision::Hybrid);
    assert_eq!(hybrid.metadata.halo, SelfSupervision::Hybrid.halo());
    let after = hybrid.vs.variables();
    for (name, value) in &before {
        assert!(value.equal(&after[name]), "{name} changed");
    }
    let got = tch::no_grad(|| hybrid.pair_forward(&input, &target).unwrap());
    assert!(got.equal(&expected), "a fresh blind-spot branch must add nothing");
}
