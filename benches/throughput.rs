//! CPU throughput and peak memory, printed (never asserted). Each measurement runs in a child
//! process of this binary so its peak RSS is its own.
//!
//!   cargo bench --bench throughput            # all phases
//!   cargo bench --bench throughput -- infer   # one phase: infer, network, network-plain, train64, train150 (152³: patches are multiples of 8)
//!   cargo bench --bench throughput -- train64 float32   # training phases take a precision: auto (default), float32, bfloat16
//!   cargo bench --bench throughput -- train64 float32 libtorch-dispatch   # network/train phases on libtorch's own convolution dispatch
//!
//! Baselines measured in the same run: the plain (whole-activation) forward against our
//! low-memory forward, and the DeepCAD-RT demo tiling (150³ tiles, overlap 0.6), whose voxel count
//! is computed from the reference's tiling rule and timed at the network throughput measured here.

use std::process::Command;
use std::time::Instant;

use deepcad::infer::{denoise_file_to_file, DenoiseSettings};
use deepcad::io::InMemoryMovie;
use deepcad::io::{ImageJMetadata, OutputKind, ReadOptions, SampleType, StackWriter};
use deepcad::model::precision::{inference_model, InferencePrecision};
use deepcad::model::{LibtorchConvDispatch, Model, ModelMetadata, Normalization};
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

fn infer_phase(precision: InferencePrecision) {
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
    let settings = DenoiseSettings { precision, ..DenoiseSettings::default() };
    let report =
        denoise_file_to_file(&model, &input, &output, &ReadOptions::default(), &settings, &mut Silent).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let voxels = (shape[0] * shape[1] * shape[2]) as f64;
    println!(
        "infer {}x{}x{} uint16, f=16, {:?}, default seamless tiling {:?} ({} tiles, {:.2}x voxels): {:.1} s, {:.1} frames/s, {:.2} Mvoxel/s, peak RSS {:.0} MB",
        shape[0], shape[1], shape[2], precision.resolve(Device::Cpu).unwrap(), report.tile, report.tiles, report.overhead, seconds, shape[0] as f64 / seconds, voxels / seconds / 1e6, peak_rss_mb()
    );
    println!(
        "infer reference-tiling voxels (150^3, overlap 0.6): {:.2}x the movie",
        reference_voxels(shape, 150, 0.6) / voxels
    );
}

fn network_phase(low_memory: bool, precision: InferencePrecision, libtorch_dispatch: bool) {
    let _dispatch = libtorch_dispatch.then(LibtorchConvDispatch::begin);
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
        if libtorch_dispatch { " (libtorch dispatch)" } else { "" },
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

fn train_phase(patch: usize, iterations: usize, precision: Precision, libtorch_dispatch: bool) {
    let _dispatch = libtorch_dispatch.then(LibtorchConvDispatch::begin);
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
    let dispatch = if libtorch_dispatch { " (libtorch dispatch)" } else { "" };
    println!("train {patch}^3 patch, f=16, batch 1, {used:?}{dispatch}: {mean:.3} s/iteration over {} iterations, peak RSS {:.0} MB", steady.len(), peak_rss_mb());
}

/// The first number in `text` after `marker` (e.g. the s/iteration of a phase's output line).
fn number_after(text: &str, marker: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(marker))?;
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split(|c: char| !(c.is_ascii_digit() || c == '.')).find(|t| !t.is_empty())?.parse().ok()
}

/// The whole story in one run, against baselines measured in the same run: interleaved rounds in
/// child processes (the best of each, so a busy machine disturbs the ratios less) of our training
/// step and forward in float32 and bfloat16, PyTorch's best (eager or `torch.compile`, float32 or
/// bfloat16 autocast, default or channels-last memory order), libtorch's own dispatch and both matmul peaks; then the code path of every
/// denoising convolution and the end-to-end denoise against the reference's tiling.
fn compare_phase() {
    let me = std::env::current_exe().expect("own path");
    let run = |args: &[&str]| {
        String::from_utf8_lossy(&Command::new(&me).args(args).output().expect("run phase").stdout).into_owned()
    };
    println!("CPU: {}; bfloat16 units: {}", cpu_model(), deepcad::device::cpu_bfloat16_units());
    let mut best = Best::default();
    for round in 1..=2 {
        best.low("ours train f32", number_after(&run(&["train64", "float32"]), "Float32: "));
        best.low("ours train bf16", number_after(&run(&["train64", "bfloat16"]), "MixedBfloat16: "));
        best.low(
            "libtorch dispatch train f32",
            number_after(&run(&["train64", "float32", "libtorch-dispatch"]), "(libtorch dispatch): "),
        );
        best.high("ours forward f32", number_after(&run(&["network", "float32"]), "Float: "));
        best.high("ours forward bf16", number_after(&run(&["network", "bfloat16"]), "BFloat16: "));
        let matmul = run(&["matmul"]);
        best.high("matmul f32", number_after(&matmul, "float32 peak: "));
        best.high("matmul bf16", number_after(&matmul, "bfloat16 peak: "));
        let pytorch = run(&["pytorch-best"]);
        for line in pytorch.lines().skip(1) {
            if line.contains("SKIPPED") || line.contains("FAILED") {
                println!("{line}");
                continue;
            }
            let name = line.split(':').next().unwrap_or("").to_string();
            best.low(&format!("{name} train"), number_after(line, "train 64^3 "));
            best.high(&format!("{name} forward"), number_after(line, "forward 144^3 "));
        }
        println!("round {round} (best so far): {}", best.summary());
    }
    best.report();
    println!("{}", run(&["forward64-once", "bfloat16"]).lines().skip(1).collect::<Vec<_>>().join("\n"));
    forward_codepath_report(&me, "float32");
    forward_codepath_report(&me, "bfloat16");
    for precision in ["float32", "bfloat16"] {
        print!("{}", run(&["infer", precision]).lines().skip(1).map(|l| format!("{l}\n")).collect::<String>());
    }
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).unwrap_or("?");
    format!("{} ({} threads)", model.trim(), tch::get_num_threads())
}

/// The best value of each measurement over the rounds: least seconds, most throughput.
#[derive(Default)]
struct Best(Vec<(String, f64)>);

impl Best {
    fn keep(&mut self, name: &str, value: Option<f64>, better: fn(f64, f64) -> bool) {
        let Some(value) = value.filter(|v| v.is_finite() && *v > 0.0) else { return };
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) if better(value, *old) => *old = value,
            Some(_) => {}
            None => self.0.push((name.to_string(), value)),
        }
    }
    fn low(&mut self, name: &str, value: Option<f64>) {
        self.keep(name, value, |a, b| a < b)
    }
    fn high(&mut self, name: &str, value: Option<f64>) {
        self.keep(name, value, |a, b| a > b)
    }
    fn get(&self, name: &str) -> f64 {
        self.0.iter().find(|(n, _)| n == name).map_or(f64::NAN, |(_, v)| *v)
    }
    /// The best PyTorch entry among those ending in `suffix` and containing `layout` (`""` for
    /// any): least (train) or most (forward).
    fn pytorch(&self, suffix: &str, layout: &str, least: bool) -> (String, f64) {
        let candidates =
            self.0.iter().filter(|(n, _)| n.starts_with("pytorch") && n.ends_with(suffix) && n.contains(layout));
        let pick = if least {
            candidates.min_by(|a, b| a.1.total_cmp(&b.1))
        } else {
            candidates.max_by(|a, b| a.1.total_cmp(&b.1))
        };
        pick.cloned().unwrap_or(("pytorch (not measured)".into(), f64::NAN))
    }
    fn summary(&self) -> String {
        self.0.iter().map(|(n, v)| format!("{n} {v:.3}")).collect::<Vec<_>>().join(", ")
    }
    fn report(&self) {
        let flops = deepcad::model::forward_flops_per_voxel(16) / 1e3; // Mvoxel/s -> GFLOP/s
                                                                       // PyTorch's best over every mode, precision and memory order, and its best in its default
                                                                       // (contiguous) order, the baseline issue 25 first set its targets against.
        for (which, layout) in [("PyTorch's best", ""), ("PyTorch's best in its default memory order", " contiguous ")]
        {
            let (train_name, pytorch_train) = self.pytorch(" train", layout, true);
            let (forward_name, pytorch_forward) = self.pytorch(" forward", layout, false);
            for (precision, train, forward) in [
                ("float32", "ours train f32", "ours forward f32"),
                ("bfloat16", "ours train bf16", "ours forward bf16"),
            ] {
                let (t, f) = (self.get(train), self.get(forward));
                println!(
                    "{precision} against {which}: training step 64^3 {t:.3} s = {:.2}x ({train_name} {pytorch_train:.3} s); forward 144^3 {f:.2} Mvoxel/s = {:.1} GFLOP/s = {:.2}x ({forward_name} {pytorch_forward:.2} Mvoxel/s), {:.0} % of the float32 matmul peak {:.1} and {:.0} % of the bfloat16 peak {:.1} GFLOP/s",
                    pytorch_train / t,
                    f * flops,
                    f / pytorch_forward,
                    100.0 * f * flops / self.get("matmul f32"),
                    self.get("matmul f32"),
                    100.0 * f * flops / self.get("matmul bf16"),
                    self.get("matmul bf16"),
                );
            }
        }
        println!(
            "libtorch's own dispatch, float32 training step: {:.3} s (ours {:.2}x)",
            self.get("libtorch dispatch train f32"),
            self.get("libtorch dispatch train f32") / self.get("ours train f32")
        );
        for (name, value) in self.0.iter().filter(|(n, _)| n.starts_with("pytorch")) {
            println!("  {name}: {value:.3}{}", if name.ends_with("train") { " s" } else { " Mvoxel/s" });
        }
    }
}

/// Float32 and bfloat16 matrix-multiply peaks of this machine through the same libtorch (best
/// of 3, 4096²).
fn matmul_phase() {
    for (kind, name) in [(Kind::Float, "float32"), (Kind::BFloat16, "bfloat16")] {
        let a = Tensor::randn([4096, 4096], (kind, Device::Cpu));
        let b = Tensor::randn([4096, 4096], (kind, Device::Cpu));
        let _ = a.matmul(&b);
        let best = (0..3)
            .map(|_| {
                let started = Instant::now();
                let _ = a.matmul(&b);
                started.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        println!("matmul 4096^2 {name} peak: {:.1} GFLOP/s", 2.0 * 4096f64.powi(3) / best / 1e9);
    }
}

/// The evaluation environment's Python (PyTorch), or why it is missing.
fn eval_python() -> Result<std::path::PathBuf, String> {
    let python = std::env::var_os("DEEPCAD_EVAL_PYTHON").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
        home.join(".cache/deepcad/eval-venv-cpu-torch-2.11.0/bin/python")
    });
    if python.is_file() {
        Ok(python)
    } else {
        Err(format!("{} not found; run scripts/evaluate.sh once or set DEEPCAD_EVAL_PYTHON", python.display()))
    }
}

/// PyTorch's best (eval/pytorch_baselines.py): eager and `torch.compile`, float32 and bfloat16
/// autocast, a 64³ training step and a 144³ forward, on this binary's thread count.
fn pytorch_best_phase() {
    let python = match eval_python() {
        Ok(python) => python,
        Err(why) => return println!("pytorch best: SKIPPED ({why})"),
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/pytorch_baselines.py");
    let threads = tch::get_num_threads().to_string();
    let out = Command::new(&python).arg(script).args(["--threads", &threads]).output().expect("run python");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (mode, precision) = (v["mode"].as_str().unwrap_or("?"), v["precision"].as_str().unwrap_or("?"));
        let layout = v["layout"].as_str().unwrap_or("contiguous");
        match v["error"].as_str() {
            Some(error) => println!("pytorch {mode} {layout} {precision}: FAILED ({error})"),
            None => {
                let rate = v["forward_voxels_per_s"].as_f64().unwrap_or(f64::NAN);
                println!(
                    "pytorch {mode} {layout} {precision}: train 64^3 {:.3} s/iteration; forward 144^3 {:.2} Mvoxel/s = {:.1} GFLOP/s",
                    v["train_s"].as_f64().unwrap_or(f64::NAN),
                    rate / 1e6,
                    rate * deepcad::model::forward_flops_per_voxel(16) / 1e9
                );
            }
        }
    }
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

/// Channels (`icXocY`), oneDNN implementation and source data type of a convolution.
type ConvolutionKind = (String, String, String);

/// One low-memory forward of a 64³ tile as the denoiser runs it (for oneDNN's verbose log).
fn forward_once_phase(precision: InferencePrecision) {
    tch::manual_seed(0);
    let float32 =
        Model::new(ModelMetadata::new(16, [64, 64, 64], Normalization::Fixed { offset: 0.0, scale: 1.0 }), Device::Cpu)
            .unwrap();
    let converted = inference_model(&float32, precision).unwrap();
    let model = converted.as_ref().unwrap_or(&float32);
    let x = Tensor::randn([1, 1, 64, 64, 64], (Kind::Float, Device::Cpu));
    let _guard = tch::no_grad_guard();
    let slab = deepcad::model::slab_columns(&x.size(), DenoiseSettings::default().slab_voxels);
    let _ = model.net.forward_low_memory(&x, slab).unwrap();
}

/// The oneDNN implementation of every distinct convolution of one denoising forward (64³ tile,
/// low-memory slabs) in `precision`: which kernels run (AVX512-BF16 `avx512_core_bf16`, AMX
/// `avx512_core_amx`, or float32 `avx512_core`), and the time oneDNN reports for each.
fn forward_codepath_report(me: &std::path::Path, precision: &str) {
    let out =
        Command::new(me).args(["forward64-once", precision]).env("ONEDNN_VERBOSE", "1").output().expect("run phase");
    let log = String::from_utf8_lossy(&out.stdout);
    let mut seen: Vec<(ConvolutionKind, (usize, f64))> = Vec::new();
    for line in log.lines().filter(|l| l.contains(",exec,cpu,convolution,")) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() < 10 {
            continue;
        }
        let problem = fields[fields.len() - 2];
        let channels = problem
            .split('_')
            .find(|p| p.contains("ic") && p.contains("oc"))
            .map(|p| p.trim_start_matches(|c: char| c == 'm' || c == 'b' || c.is_ascii_digit()).to_string())
            .unwrap_or_default();
        let data = fields.iter().find(|f| f.starts_with("src:")).map_or("?", |f| f.split(':').nth(1).unwrap_or("?"));
        let ms: f64 = fields[fields.len() - 1].parse().unwrap_or(0.0);
        let key = (channels, fields[6].to_string(), data.to_string());
        match seen.iter_mut().find(|(k, _)| *k == key) {
            Some((_, (calls, total))) => {
                *calls += 1;
                *total += ms;
            }
            None => seen.push((key, (1, ms))),
        }
    }
    println!("code path per convolution, 64^3 denoising forward ({precision}): channels: implementation (source type), calls, ms");
    for ((channels, implementation, data), (calls, ms)) in &seen {
        println!("  {channels:<12} {implementation} ({data}), {calls} calls, {ms:.1} ms");
    }
    if seen.is_empty() {
        println!("  (no oneDNN convolution in the log: all on libtorch's native kernels)");
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
    println!("# deepcad throughput on CPU ({} threads)", tch::get_num_threads());
    match phase.as_deref() {
        Some("infer") => infer_phase(inference_precision),
        Some("pytorch-best") => pytorch_best_phase(),
        Some("forward64-once") => forward_once_phase(inference_precision),
        Some("network") => network_phase(true, inference_precision, libtorch_dispatch),
        Some("network-plain") => network_phase(false, inference_precision, libtorch_dispatch),
        Some("train64") => train_phase(64, 8, precision, libtorch_dispatch),
        Some("train150") => train_phase(152, 3, precision, libtorch_dispatch),
        Some("train64-once") => train_phase(64, 1, Precision::Float32, libtorch_dispatch),
        Some("matmul") => matmul_phase(),
        Some("pytorch") => pytorch_phase(),
        Some("compare") => compare_phase(),
        Some("codepath") => {
            let me = std::env::current_exe().expect("own path");
            codepath_report(&me, &[]);
            codepath_report(&me, &["libtorch-dispatch"]);
            forward_codepath_report(&me, "float32");
            forward_codepath_report(&me, "bfloat16");
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
