//! CPU throughput and peak memory, printed (never asserted). Each measurement runs in a child
//! process of this binary so its peak RSS is its own.
//!
//!   cargo bench --bench throughput            # all phases
//!   cargo bench --bench throughput -- infer   # one phase: infer, network, network-plain, train64, train150 (152³: patches are multiples of 8)
//!   cargo bench --bench throughput -- train64 float32   # training phases take a precision: auto (default), float32, bfloat16
//!
//! Baselines measured in the same run: the plain (whole-activation) forward against our
//! low-memory forward, and the DeepCAD-RT demo tiling (150³ tiles, overlap 0.6), whose voxel count
//! is computed from the reference's tiling rule and timed at the network throughput measured here.

use std::process::Command;
use std::time::Instant;

use deepcad::infer::{denoise_file, DenoiseSettings};
use deepcad::io::InMemoryMovie;
use deepcad::io::{ImageJMetadata, OutputKind, ReadOptions, SampleType, StackWriter};
use deepcad::model::precision::{inference_model, InferencePrecision};
use deepcad::model::{Model, ModelMetadata, Normalization};
use deepcad::progress::{Control, Event, Progress, Silent};
use deepcad::simulate::{SimulationConfig, Simulator};
use deepcad::train::{train, Precision, TrainSettings};
use tch::{Device, Kind, Tensor};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Reference tiling (deepcad-spec §4.1): tiles per axis `ceil((L − P + gap)/gap)`, gap = int(P·(1−overlap)).
fn reference_voxels(shape: [usize; 3], patch: usize, overlap: f64) -> f64 {
    let gap = (patch as f64 * (1.0 - overlap)) as usize;
    shape
        .iter()
        .map(|&l| ((l.saturating_sub(patch) + gap) as f64 / gap as f64).ceil().max(1.0) * patch as f64)
        .product()
}

fn write_movie(path: &std::path::Path, shape: [usize; 3]) {
    let [t, h, w] = shape;
    let sim =
        Simulator::new(&SimulationConfig { width: w, height: h, frames: t, seed: 2, ..Default::default() }).unwrap();
    let meta = ImageJMetadata { frames: t, ..Default::default() };
    let mut writer = StackWriter::create(path, w, h, t, SampleType::U16, &meta, OutputKind::Auto).unwrap();
    let (mut clean, mut noisy) = (vec![0f32; w * h], vec![0f32; w * h]);
    for f in 0..t {
        sim.frame(f, &mut clean, &mut noisy);
        writer.write_frame(&noisy).unwrap();
    }
    writer.finish().unwrap();
}

fn infer_phase() {
    let shape = [400, 160, 160];
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("movie.tif"), dir.path().join("out.tif"));
    write_movie(&input, shape);
    tch::manual_seed(0);
    let model = Model::new(
        ModelMetadata::new(16, [64, 64, 64], Normalization::Fixed { offset: 100.0, scale: 10.0 }),
        Device::Cpu,
    )
    .unwrap();
    let started = Instant::now();
    let report =
        denoise_file(&model, &input, &output, &ReadOptions::default(), &DenoiseSettings::default(), &mut Silent)
            .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let voxels = (shape[0] * shape[1] * shape[2]) as f64;
    println!(
        "infer {}x{}x{} uint16, f=16, default seamless tiling {:?} ({} tiles, {:.2}x voxels): {:.1} s, {:.1} frames/s, {:.2} Mvoxel/s, peak RSS {:.0} MB",
        shape[0], shape[1], shape[2], report.tile, report.tiles, report.overhead, seconds, shape[0] as f64 / seconds, voxels / seconds / 1e6, peak_rss_mb()
    );
    println!(
        "infer reference-tiling voxels (150^3, overlap 0.6): {:.2}x the movie",
        reference_voxels(shape, 150, 0.6) / voxels
    );
}

fn network_phase(low_memory: bool, precision: InferencePrecision) {
    tch::manual_seed(0);
    let float32 =
        Model::new(ModelMetadata::new(16, [64, 64, 64], Normalization::Fixed { offset: 0.0, scale: 1.0 }), Device::Cpu)
            .unwrap();
    let converted = inference_model(&float32, precision).unwrap();
    let model = converted.as_ref().unwrap_or(&float32);
    let kind = precision.resolve(Device::Cpu).unwrap();
    let x = Tensor::randn([1, 1, 144, 144, 144], (Kind::Float, Device::Cpu));
    let _guard = tch::no_grad_guard();
    // The slab width the denoiser uses for this tile.
    let slab = deepcad::model::slab_columns(&x.size(), deepcad::infer::DenoiseSettings::default().slab_voxels);
    let run =
        || if low_memory { model.net.forward_low_memory(&x, slab).unwrap() } else { model.net.forward(&x).unwrap() };
    let _ = run(); // warm-up: oneDNN primitive creation, allocator growth
    let started = Instant::now();
    let reps = 2;
    for _ in 0..reps {
        let _ = run();
    }
    let seconds = started.elapsed().as_secs_f64() / reps as f64;
    let rate = 144f64.powi(3) / seconds;
    println!(
        "network 144^3 tile, {} forward, {kind:?}{}: {:.2} Mvoxel/s = {:.1} GFLOP/s, peak RSS {:.0} MB",
        if low_memory { "low-memory" } else { "plain" },
        if deepcad::model::ROUTE_SMALL_CONVOLUTIONS_TO_ONEDNN.load(std::sync::atomic::Ordering::Relaxed) {
            ""
        } else {
            " (libtorch dispatch)"
        },
        rate / 1e6,
        rate * deepcad::model::forward_flops_per_voxel(16) / 1e9,
        peak_rss_mb()
    );
    if low_memory {
        let shape = [400, 160, 160];
        let reference = reference_voxels(shape, 150, 0.6);
        println!(
            "infer 400x160x160 with the reference demo tiling at this network speed would take {:.1} s (network time only)",
            reference / rate
        );
    }
}

struct IterationTimer {
    started: Option<Instant>,
    times: Vec<f64>,
}

impl Progress for IterationTimer {
    fn event(&mut self, event: Event<'_>) -> Control {
        if let Event::Advance { .. } = event {
            let now = Instant::now();
            if let Some(s) = self.started {
                self.times.push((now - s).as_secs_f64());
            }
            self.started = Some(now);
        }
        Control::Continue
    }
}

fn train_phase(patch: usize, iterations: usize, precision: Precision) {
    let frames = 2 * patch + 16;
    let size = patch + 16;
    let sim =
        Simulator::new(&SimulationConfig { width: size, height: size, frames, seed: 3, ..Default::default() }).unwrap();
    let mut data = Vec::with_capacity(frames * size * size);
    let (mut clean, mut noisy) = (vec![0f32; size * size], vec![0f32; size * size]);
    for f in 0..frames {
        sim.frame(f, &mut clean, &mut noisy);
        data.extend_from_slice(&noisy);
    }
    let mut sources: Vec<Box<dyn deepcad::io::FrameSource>> =
        vec![Box::new(InMemoryMovie::new("bench", size, size, frames, SampleType::U16, data).unwrap())];
    let settings = TrainSettings {
        patch: [patch, patch, patch],
        patches_per_epoch: iterations + 1,
        epochs: 1,
        validation_fraction: 0.0,
        precision,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut timer = IterationTimer { started: None, times: Vec::new() };
    train(&mut sources, &settings, &dir.path().join("m.safetensors"), None, Device::Cpu, &mut timer).unwrap();
    let steady: Vec<f64> = timer.times.iter().skip(1).copied().collect();
    let mean = steady.iter().sum::<f64>() / steady.len().max(1) as f64;
    let used = precision.resolve(Device::Cpu);
    let dispatch = if deepcad::model::ROUTE_SMALL_CONVOLUTIONS_TO_ONEDNN.load(std::sync::atomic::Ordering::Relaxed) {
        ""
    } else {
        " (libtorch dispatch)"
    };
    println!("train {patch}^3 patch, f=16, batch 1, {used:?}{dispatch}: {mean:.3} s/iteration over {} iterations, peak RSS {:.0} MB", steady.len(), peak_rss_mb());
}

/// The first number in `text` after `marker` (e.g. the s/iteration of a phase's output line).
fn number_after(text: &str, marker: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(marker))?;
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split(|c: char| !(c.is_ascii_digit() || c == '.')).find(|t| !t.is_empty())?.parse().ok()
}

/// Float32 speed against its baselines, three interleaved rounds in child processes (the best of
/// each, so a busy machine disturbs the ratios less): the training step against PyTorch eager and
/// against libtorch's own convolution dispatch, and the network forward against the matmul peak.
fn compare_phase() {
    let me = std::env::current_exe().expect("own path");
    let run = |args: &[&str]| {
        String::from_utf8_lossy(&Command::new(&me).args(args).output().expect("run phase").stdout).into_owned()
    };
    let (mut ours, mut dispatch, mut eager, mut forward, mut eager_forward, mut peak) =
        (f64::INFINITY, f64::INFINITY, f64::INFINITY, 0f64, 0f64, 0f64);
    for round in 1..=3 {
        let out = run(&["train64", "float32"]);
        ours = ours.min(number_after(&out, "Float32: ").unwrap_or(f64::NAN));
        let out = run(&["train64", "float32", "libtorch-dispatch"]);
        dispatch = dispatch.min(number_after(&out, "(libtorch dispatch): ").unwrap_or(f64::NAN));
        let out = run(&["pytorch"]);
        if out.contains("SKIPPED") {
            print!("{}", out.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>());
        }
        eager = eager.min(number_after(&out, "float32: ").unwrap_or(f64::INFINITY));
        eager_forward = eager_forward.max(number_after(&out, "forward: ").map_or(0.0, |v| v));
        forward = forward.max(number_after(&run(&["network"]), "Mvoxel/s = ").map_or(0.0, |v| v));
        peak = peak.max(number_after(&run(&["matmul"]), "peak: ").unwrap_or(0.0));
        println!("round {round}: train64 float32 {ours:.3} s (libtorch dispatch {dispatch:.3}, PyTorch eager {eager:.3}); forward {forward:.1} GFLOP/s, matmul {peak:.1} GFLOP/s (best so far)");
    }
    println!(
        "float32 training step 64^3: {ours:.3} s/iteration = {:.2}x PyTorch eager ({eager:.3} s), {:.2}x libtorch's dispatch ({dispatch:.3} s)",
        eager / ours,
        dispatch / ours
    );
    println!(
        "float32 network forward 144^3 (low-memory): {forward:.1} GFLOP/s = {:.0} % of the measured matmul peak {peak:.1} GFLOP/s (PyTorch eager plain forward: {eager_forward:.2} Mvoxel/s)",
        100.0 * forward / peak
    );
}

/// Float32 matrix-multiply peak of this machine through the same libtorch (best of 3, 4096²).
fn matmul_phase() {
    let a = Tensor::randn([4096, 4096], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([4096, 4096], (Kind::Float, Device::Cpu));
    let _ = a.matmul(&b);
    let best = (0..3)
        .map(|_| {
            let started = Instant::now();
            let _ = a.matmul(&b);
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    println!("matmul 4096^2 float32 peak: {:.1} GFLOP/s", 2.0 * 4096f64.powi(3) / best / 1e9);
}

/// The PyTorch eager reference (eval/deepcad_reference.py) on the same machine, in this run: its
/// float32 training step at 64³ and its plain forward at 144³. Skipped, with the reason, when the
/// evaluation environment is missing.
fn pytorch_phase() {
    let python = std::env::var_os("DEEPCAD_EVAL_PYTHON").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
        home.join(".cache/deepcad/eval-venv-cpu-torch-2.11.0/bin/python")
    });
    if !python.is_file() {
        println!(
            "pytorch eager: SKIPPED ({} not found; run scripts/evaluate.sh once or set DEEPCAD_EVAL_PYTHON)",
            python.display()
        );
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/deepcad_reference.py");
    let threads = tch::get_num_threads().to_string();
    for args in [vec!["bench-train", "--patch", "64"], vec!["bench-network", "--size", "144"]] {
        let out =
            Command::new(&python).arg(script).args(["--threads", &threads]).args(&args).output().expect("run python");
        let text = String::from_utf8_lossy(&out.stdout);
        match serde_json::from_str::<serde_json::Value>(text.trim()) {
            Ok(v) if args[0] == "bench-train" => println!(
                "pytorch eager train 64^3 patch, float32: {:.3} s/iteration",
                v["seconds_per_iteration"].as_f64().unwrap_or(f64::NAN)
            ),
            Ok(v) => {
                let rate = v["voxels_per_second"].as_f64().unwrap_or(f64::NAN);
                println!(
                    "pytorch eager network 144^3 plain forward: {:.2} Mvoxel/s = {:.1} GFLOP/s",
                    rate / 1e6,
                    rate * deepcad::model::forward_flops_per_voxel(16) / 1e9
                );
            }
            Err(_) => println!(
                "pytorch eager {}: FAILED ({})",
                args[0],
                String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
            ),
        }
    }
}

/// One training step and one forward at 64³ in float32 with oneDNN's verbose log on (a child of
/// this binary); prints which implementation ran each layer's convolutions, or "native" where
/// oneDNN never saw it (libtorch's own im2col kernel), so a regression in dispatch is visible.
fn codepath_report(me: &std::path::Path, extra: &[&str]) {
    let out =
        Command::new(me).args(["train64-once"]).args(extra).env("ONEDNN_VERBOSE", "1").output().expect("run phase");
    let log = String::from_utf8_lossy(&out.stdout);
    // (prop_kind, problem) -> implementation
    let mut seen: Vec<(String, String, String)> = Vec::new();
    for line in log.lines().filter(|l| l.contains(",exec,cpu,convolution,")) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() > 10 {
            let (implementation, prop, problem) =
                (fields[6].to_string(), fields[7].to_string(), fields[fields.len() - 2].to_string());
            if !seen.iter().any(|(p, q, _)| *p == prop && *q == problem) {
                seen.push((prop, problem, implementation));
            }
        }
    }
    let find = |prop: &str, c_in: usize, c_out: usize, side: usize| -> String {
        let key = format!("ic{c_in}oc{c_out}_id{side}");
        seen.iter()
            .find(|(p, q, _)| p.starts_with(prop) && q.contains(&key))
            .map(|(_, q, i)| format!("{i}{}", if q.starts_with("mb2") { " (as 2)" } else { "" }))
            .unwrap_or_else(|| "native".into())
    };
    let label = if extra.is_empty() { "ours" } else { "libtorch dispatch" };
    println!("code path per convolution, 64^3 float32 training step ({label}): layer, channels @ side: forward | backward data | backward weights");
    let f = 16usize;
    let widths: Vec<usize> = (0..deepcad::model::LEVELS).map(|i| f << i).collect();
    let mut layers: Vec<(String, usize, usize, usize)> = Vec::new();
    for (i, &w) in widths.iter().enumerate() {
        let c_in = if i == 0 { 1 } else { widths[i - 1] };
        let c_mid = (w / 2).max(c_in);
        layers.push((format!("encoder {i} conv 1"), c_in, c_mid, 64 >> i));
        layers.push((format!("encoder {i} conv 2"), c_mid, w, 64 >> i));
    }
    for level in (0..deepcad::model::LEVELS - 1).rev() {
        // The first decoder convolution runs split: the skip's channels at full size, the upsampled
        // channels as 8 parity kernels (2x2x2, 8x the output channels) on the padded coarse map.
        let side = 64 >> level;
        layers.push((format!("decoder {level} conv 1 skip"), widths[level], widths[level], side));
        layers.push((format!("decoder {level} conv 1 up"), widths[level + 1], 8 * widths[level], side / 2 + 2));
        layers.push((format!("decoder {level} conv 2"), widths[level], widths[level], side));
    }
    layers.push(("head 1x1x1".into(), f, 1, 64));
    for (name, c_in, c_out, side) in layers {
        let data = if c_in == 1 { "-".to_string() } else { find("backward_data", c_in, c_out, side) };
        println!(
            "  {name:<22} {c_in:>3}->{c_out:<3} @ {side:>2}: {} | {data} | {}",
            find("forward", c_in, c_out, side),
            find("backward_weights", c_in, c_out, side)
        );
    }
}

fn main() {
    let positional: Vec<String> =
        std::env::args().skip(1).filter(|a| !a.starts_with('-') && a != "libtorch-dispatch").collect();
    let phase = positional.first().cloned();
    let precision = match positional.get(1).map(String::as_str) {
        Some("float32") => Precision::Float32,
        Some("bfloat16") => Precision::MixedBfloat16,
        _ => Precision::Auto,
    };
    let inference_precision = match precision {
        Precision::Float32 => InferencePrecision::Float32,
        Precision::MixedBfloat16 => InferencePrecision::Bfloat16,
        Precision::Auto => InferencePrecision::Auto,
    };
    deepcad::device::tune_allocator_for_throughput();
    // Baseline: libtorch's own convolution dispatch (small batch-1 convolutions on its native kernel).
    let libtorch_dispatch = std::env::args().any(|a| a == "libtorch-dispatch");
    if libtorch_dispatch {
        deepcad::model::ROUTE_SMALL_CONVOLUTIONS_TO_ONEDNN.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    println!("# deepcad throughput on CPU ({} threads)", tch::get_num_threads());
    match phase.as_deref() {
        Some("infer") => infer_phase(),
        Some("network") => network_phase(true, inference_precision),
        Some("network-plain") => network_phase(false, inference_precision),
        Some("train64") => train_phase(64, 8, precision),
        Some("train150") => train_phase(152, 3, precision),
        Some("train64-once") => train_phase(64, 1, Precision::Float32),
        Some("matmul") => matmul_phase(),
        Some("pytorch") => pytorch_phase(),
        Some("compare") => compare_phase(),
        Some("codepath") => {
            let me = std::env::current_exe().expect("own path");
            codepath_report(&me, &[]);
            codepath_report(&me, &["libtorch-dispatch"]);
        }
        Some(other) => eprintln!(
            "unknown phase {other}; use matmul, pytorch, codepath, infer, network, network-plain, train64, train150"
        ),
        None => {
            let me = std::env::current_exe().expect("own path");
            // Float32 phases (network, train64 float32) against their baselines from this run:
            // the matmul peak, libtorch's own dispatch and the PyTorch eager reference.
            let phases: [&[&str]; 7] = [
                &["compare"],
                &["network-plain"],
                &["train64"],
                &["infer"],
                &["train150"],
                &["codepath"],
                &["train150", "float32"],
            ];
            for args in phases {
                let out = Command::new(&me).args(args).output().expect("run phase");
                print!(
                    "{}",
                    String::from_utf8_lossy(&out.stdout).lines().skip(1).map(|l| format!("{l}\n")).collect::<String>()
                );
            }
        }
    }
}
