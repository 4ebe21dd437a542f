//! Cost of the hybrid self-supervision against interlaced, same run, same machine: seconds per
//! training iteration (64³ patches, f = 16, batch 1; each precision asked for) and per denoised
//! frame (a simulated 128×128 movie, default settings: the memory plan picks the tile; each run
//! in a child process, with its peak RSS). Runs
//! alternate between the methods and the best of each is kept, so a busy machine disturbs the
//! ratio less. Prints, asserts nothing.
//!
//!   cargo run --release --example hybrid_timing [-- ROUNDS FRAMES]

use std::time::Instant;

use deepcad::infer::{denoise_source_to_memory, DenoiseSettings};
use deepcad::io::{FrameSource, InMemoryMovie, SampleType};
use deepcad::model::{Model, ModelMetadata, Normalization, SelfSupervision};
use deepcad::progress::{Control, Event, Progress};
use deepcad::simulate::{SimulationConfig, Simulator};
use deepcad::train::{train, Precision, TrainSettings};
use tch::Device;

/// Times between consecutive training iterations, and the denoiser's tile line.
#[derive(Default)]
struct Recorder {
    last: Option<Instant>,
    iterations: Vec<f64>,
    tiles: Option<String>,
}

impl Progress for Recorder {
    fn event(&mut self, event: Event<'_>) -> Control {
        match event {
            Event::Advance { .. } => {
                let now = Instant::now();
                if let Some(last) = self.last {
                    self.iterations.push((now - last).as_secs_f64());
                }
                self.last = Some(now);
            }
            Event::Info(line) if line.starts_with("tile ") => self.tiles = Some(line.to_string()),
            _ => {}
        }
        Control::Continue
    }
}

fn simulated(frames: usize, size: usize) -> Vec<f32> {
    let config = SimulationConfig { width: size, height: size, frames, seed: 3, ..Default::default() };
    let sim = Simulator::new(&config).unwrap();
    let (mut clean, mut noisy) = (vec![0f32; size * size], vec![0f32; size * size]);
    let mut data = Vec::with_capacity(frames * size * size);
    for f in 0..frames {
        sim.frame(f, &mut clean, &mut noisy);
        data.extend_from_slice(&noisy);
    }
    data
}

/// Mean seconds per training iteration (the first left out: it warms the allocator up).
fn seconds_per_iteration(method: SelfSupervision, precision: Precision, data: &[f32], size: usize) -> f64 {
    const ITERATIONS: usize = 10;
    let frames = data.len() / (size * size);
    let mut sources: Vec<Box<dyn FrameSource>> =
        vec![Box::new(InMemoryMovie::new("timing", size, size, frames, SampleType::U16, data.to_vec()).unwrap())];
    let settings = TrainSettings {
        patch: [64, 64, 64],
        patches_per_epoch: ITERATIONS + 1,
        epochs: 1,
        validation_fraction: 0.0,
        precision,
        method,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut recorder = Recorder::default();
    train(&mut sources, &settings, &dir.path().join("m.safetensors"), None, Device::Cpu, &mut recorder).unwrap();
    let steady = &recorder.iterations[1..];
    steady.iter().sum::<f64>() / steady.len() as f64
}

/// Seconds per denoised frame of `data` (`frames × size × size`), and the tile line.
fn seconds_per_frame(model: &Model, data: &[f32], size: usize) -> (f64, String) {
    let frames = data.len() / (size * size);
    let mut movie = InMemoryMovie::new("timing", size, size, frames, SampleType::U16, data.to_vec()).unwrap();
    let mut recorder = Recorder::default();
    let started = Instant::now();
    denoise_source_to_memory(model, &mut movie, &DenoiseSettings::default(), &mut recorder).unwrap();
    (started.elapsed().as_secs_f64() / frames as f64, recorder.tiles.unwrap_or_default())
}

fn main() {
    let words: Vec<String> = std::env::args().collect();
    if words.get(1).map(String::as_str) == Some("denoise") {
        let method = words[2].parse::<SelfSupervision>().unwrap();
        return denoise_child(method, words[3].parse().unwrap());
    }
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = args.first().copied().unwrap_or(2);
    let frames = args.get(1).copied().unwrap_or(500);
    println!(
        "machine: {} cores for libtorch, {}",
        tch::get_num_threads(),
        if std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default().contains("avx512_bf16") {
            "AVX-512 BF16"
        } else {
            "no native bf16"
        }
    );
    let methods = [SelfSupervision::Interlaced, SelfSupervision::Hybrid];

    let train_data = simulated(2 * 64 + 16, 64 + 16);
    for precision in [Precision::Auto, Precision::Float32] {
        let mut best = [f64::INFINITY; 2];
        for round in 1..=rounds {
            for (m, &method) in methods.iter().enumerate() {
                let seconds = seconds_per_iteration(method, precision, &train_data, 64 + 16);
                best[m] = best[m].min(seconds);
                println!(
                    "  round {round}: train 64^3 {:?} {method}: {seconds:.3} s/iteration",
                    precision.resolve(Device::Cpu)
                );
            }
        }
        println!(
            "train 64^3, f=16, batch 1, {:?}: interlaced {:.3} s/iteration, hybrid {:.3} s/iteration, hybrid/interlaced {:.2}x",
            precision.resolve(Device::Cpu),
            best[0],
            best[1],
            best[1] / best[0]
        );
    }

    // Denoising runs in a child process per measurement, so each peak RSS is its own.
    let me = std::env::current_exe().unwrap();
    let mut best = [f64::INFINITY; 2];
    for round in 1..=rounds {
        for (m, method) in methods.iter().enumerate() {
            let out = std::process::Command::new(&me)
                .args(["denoise", &method.to_string(), &frames.to_string()])
                .output()
                .unwrap();
            let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let ms: f64 = line.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
            best[m] = best[m].min(ms);
            println!("  round {round}: denoise {frames}x128x128 {method}: {line}");
        }
    }
    println!(
        "denoise {frames}x128x128, f=16, float32, default settings: interlaced {:.2} ms/frame, hybrid {:.2} ms/frame, hybrid/interlaced {:.2}x",
        best[0],
        best[1],
        best[1] / best[0]
    );
}

/// Child: one denoise of a simulated `frames`×128×128 movie; prints ms/frame, peak RSS, tiles.
fn denoise_child(method: SelfSupervision, frames: usize) {
    let size = 128;
    let movie = simulated(frames, size);
    tch::manual_seed(1);
    let metadata = ModelMetadata::new(16, [64, 64, 64], Normalization::Fixed { offset: 100.0, scale: 10.0 });
    let model = Model::new(metadata.with_method(method), Device::Cpu).unwrap();
    let (seconds, tiles) = seconds_per_frame(&model, &movie, size);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    println!("{:.2} ms/frame, peak RSS {:.0} MB; {tiles}", 1e3 * seconds, peak_kb / 1024.0);
}
