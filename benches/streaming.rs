//! Streaming denoise: peak RSS and throughput of the `deepcad` CLI for one model on movies of
//! several lengths, each denoised in its own child process (peak RSS from `wait4`'s rusage), and
//! the read-ahead pipeline against a sequential run of the same engine on the same movie.
//! Printed, never asserted. Flat RSS and steady throughput mean memory is set by the tile.
//!
//!   cargo bench --bench streaming                                # the table: 256×256 × 2k/8k/32k, f=16
//!   cargo bench --bench streaming -- frames=2000,8000            # only some lengths
//!   cargo bench --bench streaming -- side=64 frames=1000,4000,16000 width=4   # a quick run
//!   cargo bench --bench streaming -- prefetch=0                  # skip the pipeline comparison
//!   DEEPCAD_BIN=/path/to/deepcad cargo bench --bench streaming   # time another build of the CLI
//!
//! Options (key=value): side (frame side, 256), frames (comma-separated lengths, 2000,8000,32000),
//! width (base width f, 16), threads (libtorch threads, 1), prefetch (frames of the pipelined vs
//! sequential comparison, run with the table's tile after it, 1000; 0 skips it).
//!
//! Every length runs with one fixed tile: the one the default memory budget chooses for the
//! shortest movie (left to choose, longer movies get somewhat longer tiles and so more memory, up
//! to the budget, which would hide what length alone costs).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use deepcad::infer::{bytes_per_voxel, denoise_file_to_file, plan_memory, Budget, DenoiseSettings};
use deepcad::io::{ImageJMetadata, OutputKind, ReadOptions, SampleType, StackWriter};
use deepcad::model::{Model, ModelMetadata, Normalization};
use deepcad::progress::Silent;
use deepcad::simulate::{SimulationConfig, Simulator};
use tch::Device;

struct Options {
    side: usize,
    lengths: Vec<usize>,
    base_width: usize,
    threads: usize,
    prefetch_frames: usize,
}

fn parse_options() -> Options {
    let mut options =
        Options { side: 256, lengths: vec![2000, 8000, 32000], base_width: 16, threads: 1, prefetch_frames: 1000 };
    // cargo passes `--bench`; everything we read is key=value.
    for arg in std::env::args().skip(1).filter(|a| !a.starts_with("--")) {
        let (key, value) = arg.split_once('=').unwrap_or_else(|| panic!("expected key=value, got '{arg}'"));
        let number = |v: &str| v.parse::<usize>().unwrap_or_else(|_| panic!("{key}: '{v}' is not a whole number"));
        match key {
            "side" => options.side = number(value),
            "frames" => options.lengths = value.split(',').map(number).collect(),
            "width" => options.base_width = number(value),
            "threads" => options.threads = number(value),
            "prefetch" => options.prefetch_frames = number(value),
            _ => panic!("unknown option '{key}' (side, frames, width, threads, prefetch)"),
        }
    }
    options
}

fn write_movie(path: &Path, side: usize, frames: usize) {
    let sim =
        Simulator::new(&SimulationConfig { width: side, height: side, frames, seed: 2, ..Default::default() }).unwrap();
    let meta = ImageJMetadata { frames, ..Default::default() };
    let mut writer = StackWriter::create(path, side, side, frames, SampleType::U16, &meta, OutputKind::Auto).unwrap();
    let (mut clean, mut noisy) = (vec![0f32; side * side], vec![0f32; side * side]);
    for f in 0..frames {
        sim.frame(f, &mut clean, &mut noisy);
        writer.write_frame(&noisy).unwrap();
    }
    writer.finish().unwrap();
}

/// Runs the child to completion; returns (seconds, peak RSS in bytes).
// Reaped with wait4 (for its rusage) instead of `Child::wait`, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_measured(command: &mut Command) -> (f64, u64) {
    let started = Instant::now();
    let child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("cannot start deepcad");
    let pid = child.id() as libc::pid_t;
    let mut messages = String::new();
    std::io::Read::read_to_string(&mut child.stderr.unwrap(), &mut messages).unwrap();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: our own child, not yet reaped.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert!(
        reaped == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "deepcad failed ({status}): {messages}"
    );
    (started.elapsed().as_secs_f64(), usage.ru_maxrss as u64 * 1024)
}

/// Frames per second of the engine in this process on `input`, pipelined or not.
fn engine_frames_per_second(model: &Model, input: &Path, output: &Path, tile: [usize; 3], pipelined: bool) -> f64 {
    let settings = DenoiseSettings { tile: Some(tile), pipelined, ..Default::default() };
    let report = denoise_file_to_file(model, input, output, &ReadOptions::default(), &settings, &mut Silent).unwrap();
    std::fs::remove_file(output).unwrap();
    report.frames as f64 / report.seconds
}

fn main() {
    let options = parse_options();
    let side = options.side;
    let binary = std::env::var("DEEPCAD_BIN")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string() + "/target/release/deepcad");
    if !Path::new(&binary).exists() {
        eprintln!("{binary} not found: run `cargo build --release --bin deepcad` first (or set DEEPCAD_BIN)");
        std::process::exit(1);
    }
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR").to_string() + "/target").unwrap();
    let bundle = dir.path().join("model.safetensors");
    tch::manual_seed(0);
    let model = Model::new(
        ModelMetadata::new(options.base_width, [64, 64, 64], Normalization::Fixed { offset: 100.0, scale: 10.0 }),
        Device::Cpu,
    )
    .unwrap();
    model.save(&bundle).unwrap();
    let shortest = *options.lengths.iter().min().expect("at least one length");
    let defaults = DenoiseSettings::default();
    let budget = Budget {
        bytes: defaults.max_memory_bytes,
        activation_bytes_per_voxel: bytes_per_voxel(options.base_width),
        slab_voxels: defaults.slab_voxels,
        slab_bytes_per_voxel: deepcad::model::slab_bytes_per_voxel(options.base_width),
        batch: 1,
        pipelined: true,
    };
    let tile = plan_memory("bench", [shortest, side, side], model.metadata.halo, None, &budget).unwrap().tiles.tile;
    let tile_arg = format!("{},{},{}", tile[0], tile[1], tile[2]);
    println!("binary: {binary}");
    println!(
        "model: f={} (random weights), frames {side}×{side} uint16, --threads {} --tile {tile_arg}, CPU",
        options.base_width, options.threads
    );
    println!("{:>8} {:>13} {:>9} {:>9} {:>14}", "frames", "raw f32 (MB)", "time (s)", "frames/s", "peak RSS (MB)");
    for &frames in &options.lengths {
        let (input, output) =
            (dir.path().join(format!("movie{frames}.tif")), dir.path().join(format!("out{frames}.tif")));
        write_movie(&input, side, frames);
        let (seconds, peak) = run_measured(
            Command::new(&binary)
                .args([
                    "denoise",
                    "--quiet",
                    "--device",
                    "cpu",
                    "--threads",
                    &options.threads.to_string(),
                    "--tile",
                    &tile_arg,
                    "--model",
                ])
                .arg(&bundle)
                .arg("--output")
                .arg(&output)
                .arg(&input),
        );
        println!(
            "{:>8} {:>13.0} {:>9.1} {:>9.2} {:>14.0}",
            frames,
            (frames * side * side * 4) as f64 / 1e6,
            seconds,
            frames as f64 / seconds,
            peak as f64 / (1 << 20) as f64
        );
        let _ = std::fs::remove_file(&input);
        let _ = std::fs::remove_file(&output);
    }

    if options.prefetch_frames > 0 {
        // Same process, same movie, same tile as the table: only the overlap of reading and
        // writing with compute differs. The overlap works between time blocks, so the movie
        // should span several (frames well above the tile's length).
        tch::set_num_threads(options.threads as i32);
        let frames = options.prefetch_frames;
        let time_blocks =
            deepcad::tiling::TilePlan::new([frames, side, side], tile, model.metadata.halo).unwrap().per_axis[0].len();
        let (input, output) = (dir.path().join("prefetch.tif"), dir.path().join("prefetch-out.tif"));
        write_movie(&input, side, frames);
        // Warm-up, so neither timed run pays for first-touch allocations.
        engine_frames_per_second(&model, &input, &output, tile, true);
        let sequential = engine_frames_per_second(&model, &input, &output, tile, false);
        let pipelined = engine_frames_per_second(&model, &input, &output, tile, true);
        println!(
            "read-ahead: {frames} frames, tile {tile_arg}, {time_blocks} time blocks: pipelined {pipelined:.2} frames/s, sequential {sequential:.2} frames/s, ratio {:.3}",
            pipelined / sequential
        );
    }
}
