//! Streaming denoise: peak RSS and throughput of the `deepcad` CLI for one model on movies of 1×,
//! 4× and 16× the length, each denoised in its own child process (peak RSS from `wait4`'s rusage).
//! Printed, never asserted. Flat RSS and steady throughput mean memory is set by the tile.
//!
//!   cargo bench --bench streaming                    # 64×64 × 1,000 / 4,000 / 16,000 frames, f=4
//!   cargo bench --bench streaming -- 2000 16         # base length 2,000, base width 16
//!   cargo bench --bench streaming -- 2000 4 4        # only the 4× length
//!   DEEPCAD_BIN=/path/to/deepcad cargo bench --bench streaming   # time another build of the CLI
//!
//! Runs on one libtorch thread (`--threads 1`) with one fixed tile, `--tile 1056,64,64` (what
//! `--max-memory 256M` chooses for 2,000 frames; left to choose, longer movies get somewhat longer
//! tiles and so more memory, up to the budget).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use deepcad::io::{ImageJMetadata, OutputKind, SampleType, StackWriter};
use deepcad::model::{Model, ModelMetadata, Normalization};
use deepcad::simulate::{SimulationConfig, Simulator};
use tch::Device;

const SIDE: usize = 64;
const TILE: &str = "1056,64,64";

fn write_movie(path: &Path, frames: usize) {
    let sim = Simulator::new(&SimulationConfig { width: SIDE, height: SIDE, frames, seed: 2, ..Default::default() }).unwrap();
    let meta = ImageJMetadata { frames, ..Default::default() };
    let mut writer = StackWriter::create(path, SIDE, SIDE, frames, SampleType::U16, &meta, OutputKind::Auto).unwrap();
    let (mut clean, mut noisy) = (vec![0f32; SIDE * SIDE], vec![0f32; SIDE * SIDE]);
    for f in 0..frames {
        sim.frame(f, &mut clean, &mut noisy);
        writer.write_frame(&noisy).unwrap();
    }
    writer.finish().unwrap();
}

/// Runs the child to completion; returns (seconds, peak RSS in bytes, the tile it reported).
fn run_measured(command: &mut Command) -> (f64, u64, String) {
    let started = Instant::now();
    let child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("cannot start deepcad");
    let pid = child.id() as libc::pid_t;
    let mut messages = String::new();
    std::io::Read::read_to_string(&mut child.stderr.unwrap(), &mut messages).unwrap();
    let tile = messages
        .split("tile [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .map_or_else(|| "?".to_string(), |t| t.replace(' ', ""));
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: our own child, not yet reaped.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert!(reaped == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "deepcad failed ({status}): {messages}");
    (started.elapsed().as_secs_f64(), usage.ru_maxrss as u64 * 1024, tile)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let base: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let width: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let factors: Vec<usize> = match args.get(2) {
        Some(list) => list.split(',').filter_map(|f| f.parse().ok()).collect(),
        None => vec![1, 4, 16],
    };
    let binary = std::env::var("DEEPCAD_BIN").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string() + "/target/release/deepcad");
    if !Path::new(&binary).exists() {
        eprintln!("{binary} not found: run `cargo build --release --bin deepcad` first (or set DEEPCAD_BIN)");
        std::process::exit(1);
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("model.safetensors");
    tch::manual_seed(0);
    Model::new(ModelMetadata::new(width, [64, 64, 64], Normalization::Fixed { offset: 100.0, scale: 10.0 }), Device::Cpu)
        .unwrap()
        .save(&bundle)
        .unwrap();
    println!("binary: {binary}");
    println!("model: f={width} (random weights), frames {SIDE}×{SIDE} uint16, --threads 1 --tile {TILE}, CPU");
    println!("{:>7} {:>8} {:>13} {:>14} {:>9} {:>9} {:>14}", "length", "frames", "raw f32 (MB)", "tile t,y,x", "time (s)", "frames/s", "peak RSS (MB)");
    for factor in factors {
        let frames = base * factor;
        let (input, output) = (dir.path().join(format!("movie{factor}.tif")), dir.path().join(format!("out{factor}.tif")));
        write_movie(&input, frames);
        let (seconds, peak, tile) = run_measured(
            Command::new(&binary)
                .args(["denoise", "--device", "cpu", "--threads", "1", "--tile", TILE, "--model"])
                .arg(&bundle)
                .arg("--output")
                .arg(&output)
                .arg(&input),
        );
        println!(
            "{:>6}× {:>8} {:>13.0} {:>14} {:>9.1} {:>9.0} {:>14.0}",
            factor,
            frames,
            (frames * SIDE * SIDE * 4) as f64 / 1e6,
            tile,
            seconds,
            frames as f64 / seconds,
            peak as f64 / (1 << 20) as f64
        );
        let _ = std::fs::remove_file(&input);
        let _ = std::fs::remove_file(&output);
    }
}
