//! The network: architecture, parameter counts, low-memory forward equivalence, bundle round trip.
use deepcad::model::{parameter_count, Model, ModelMetadata, Normalization, UNet3d};
use tch::{nn, Device, Kind, Tensor};

fn max_relative_difference(a: &Tensor, b: &Tensor) -> f64 {
    let diff = (a - b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]).max(1e-12);
    diff / scale
}

#[test]
fn parameter_counts_match_the_reference_networks() {
    for (f, expected) in [(16, 1_020_337), (64, 16_315_585), (32, 4_079_713)] {
        assert_eq!(parameter_count(f), expected, "formula for f={f}");
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = UNet3d::new(&vs.root(), f);
        let built: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(built as usize, expected, "built network for f={f}");
    }
}

#[test]
fn variable_names_follow_the_reference_state_dict() {
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = UNet3d::new(&vs.root(), 16);
    let names = vs.variables();
    assert_eq!(names.len(), 30);
    for name in [
        "Generator.encoders.0.basic_module.SingleConv1.conv.weight",
        "Generator.encoders.3.basic_module.SingleConv2.conv.bias",
        "Generator.decoders.2.basic_module.SingleConv1.conv.weight",
        "Generator.final_conv.weight",
    ] {
        assert!(names.contains_key(name), "missing {name}");
    }
    assert_eq!(names["Generator.decoders.0.basic_module.SingleConv1.conv.weight"].size(), vec![64, 192, 3, 3, 3]);
}

#[test]
fn low_memory_forward_equals_plain_forward_for_odd_and_aligned_sizes() {
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = UNet3d::new(&vs.root(), 4);
    let _guard = tch::no_grad_guard();
    for shape in [[1i64, 1, 24, 16, 16], [2, 1, 19, 13, 11], [1, 1, 9, 8, 8]] {
        let x = Tensor::randn(shape, (Kind::Float, Device::Cpu));
        let plain = net.forward(&x).unwrap();
        assert_eq!(plain.size(), shape.to_vec());
        for slab in [1, 3, 8, 100] {
            let sliced = net.forward_low_memory(&x, slab).unwrap();
            let err = max_relative_difference(&sliced, &plain);
            assert!(err < 1e-5, "shape {shape:?} slab {slab}: relative difference {err}");
        }
    }
}

#[test]
fn receptive_field_radius_is_what_the_tiler_assumes() {
    // Output voxels further than the radius from a perturbed input voxel must not change.
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = UNet3d::new(&vs.root(), 2);
    let _guard = tch::no_grad_guard();
    let n = 136i64;
    let x = Tensor::randn([1, 1, n, 8, 8], (Kind::Float, Device::Cpu));
    let base = net.forward(&x).unwrap();
    let mut reach = 0usize;
    for position in 60..68 {
        let y = x.copy();
        let _ = y.narrow(2, position, 1).fill_(100.0);
        let changed = (net.forward(&y).unwrap() - &base).abs().amax([0i64, 1, 3, 4].as_slice(), false);
        let changed: Vec<f32> = Vec::try_from(changed).unwrap();
        for (i, v) in changed.iter().enumerate() {
            if *v > 0.0 {
                reach = reach.max((i as i64 - position).unsigned_abs() as usize);
            }
        }
    }
    assert!(reach <= deepcad::tiling::RECEPTIVE_FIELD_RADIUS, "influence reaches {reach} voxels");
    assert!(reach >= deepcad::tiling::RECEPTIVE_FIELD_RADIUS - 8, "radius constant is far too large: reach {reach}");
}

#[test]
fn bundle_round_trip_preserves_weights_and_metadata() {
    tch::manual_seed(7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let meta = ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 12.5, scale: 3.0 });
    let model = Model::new(meta.clone(), Device::Cpu).unwrap();
    model.save(&path).unwrap();
    let loaded = Model::load(&path, Device::Cpu).unwrap();
    assert_eq!(loaded.metadata, meta);
    let x = Tensor::randn([1, 1, 16, 16, 16], (Kind::Float, Device::Cpu));
    let _guard = tch::no_grad_guard();
    let a = model.net.forward(&x).unwrap();
    let b = loaded.net.forward(&x).unwrap();
    assert_eq!(max_relative_difference(&a, &b), 0.0);
    assert_eq!(Model::read_metadata(&path).unwrap(), meta);
}

#[test]
fn corrupt_or_foreign_bundles_are_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a model at all").unwrap();
    let err = Model::load(&garbage, Device::Cpu).unwrap_err();
    assert_eq!(err.kind(), "model");
    assert!(err.to_string().contains("garbage.safetensors"), "{err}");

    // A valid safetensors file without our metadata.
    let foreign = dir.path().join("foreign.safetensors");
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = UNet3d::new(&vs.root(), 4);
    vs.save(&foreign).unwrap();
    let err = Model::load(&foreign, Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("no 'deepcad' metadata"), "{err}");

    // Truncated bundle.
    tch::manual_seed(1);
    let good = dir.path().join("good.safetensors");
    Model::new(ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 0.0, scale: 1.0 }), Device::Cpu)
        .unwrap()
        .save(&good)
        .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(Model::load(&cut, Device::Cpu).unwrap_err().kind(), "model");

    let missing = dir.path().join("missing.safetensors");
    assert_eq!(Model::load(&missing, Device::Cpu).unwrap_err().kind(), "io");
}
