//! Streaming denoise: a movie larger than the memory it is given is denoised by the real CLI in a
//! child process whose peak RSS is measured, and its output matches the in-memory path; a movie
//! denoised in two overlapping pieces and joined equals the movie denoised whole.
use std::path::Path;
use std::process::{Command, Stdio};

use deepcad::infer::{denoise_volume, DenoiseSettings};
use deepcad::io::{ImageJMetadata, OutputKind, ReadOptions, SampleType, StackReader, StackWriter};
use deepcad::model::{Model, ModelMetadata, Normalization};
use deepcad::progress::Silent;
use deepcad::tiling::DEFAULT_HALO;
use deepcad::train::InMemoryMovie;
use tch::Device;

fn random_model() -> Model {
    tch::manual_seed(5);
    Model::new(ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 500.0, scale: 300.0 }), Device::Cpu).unwrap()
}

/// Deterministic pseudo-random frame `t` in `[0, 1000)`, integer-valued so a uint16 file holds it exactly.
fn synthetic_frame(t: usize, out: &mut [f32]) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(t as u64);
    for v in out.iter_mut() {
        *v = rng.random_range(0..1000) as f32;
    }
}

fn write_u16_movie(path: &Path, frames: usize, height: usize, width: usize) {
    let meta = ImageJMetadata { frames, ..Default::default() };
    let mut writer = StackWriter::create(path, width, height, frames, SampleType::U16, &meta, OutputKind::Auto).unwrap();
    let mut frame = vec![0f32; width * height];
    for t in 0..frames {
        synthetic_frame(t, &mut frame);
        writer.write_frame(&frame).unwrap();
    }
    writer.finish().unwrap();
}

/// Runs `command` to completion and returns its peak resident set size in bytes (from `wait4`'s
/// rusage, so it is the child's own high-water mark, not a sampled value).
fn run_measuring_peak_rss(command: &mut Command) -> u64 {
    let child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.unwrap();
    let mut message = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut message).unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std's `Child` was consumed without waiting).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed ({status}): {message}");
    usage.ru_maxrss as u64 * 1024
}

/// Denoises `input` with the CLI in a child process; returns its peak RSS in bytes.
fn cli_denoise_peak_rss(bundle: &Path, input: &Path, output: &Path) -> u64 {
    run_measuring_peak_rss(
        Command::new(env!("CARGO_BIN_EXE_deepcad"))
            .args(["denoise", "--quiet", "--device", "cpu", "--threads", "1", "--max-memory", "32M", "--model"])
            .arg(bundle)
            .arg("--output")
            .arg(output)
            .arg(input),
    )
}

#[test]
fn cli_denoises_a_movie_larger_than_its_memory_limit_and_matches_the_in_memory_path() {
    // libtorch alone keeps ≈200 MB resident, so the limit is on what the movie adds: the peak RSS
    // of a 48,000-frame movie (188 MiB as float32, what an in-memory run would hold) may exceed
    // that of a 2,000-frame one (both longer than one time tile) by at most 24 MiB.
    let (frames, short_frames, height, width) = (48_000, 2_000, 32, 32);
    let raw_float_bytes = (frames * height * width * 4) as u64;
    let movie_memory_limit: u64 = 24 << 20;
    assert!(raw_float_bytes > 4 * movie_memory_limit);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let bundle = path("f4.safetensors");
    let model = random_model();
    model.save(&bundle).unwrap();
    write_u16_movie(&path("short.tif"), short_frames, height, width);
    write_u16_movie(&path("long.tif"), frames, height, width);

    let peak_short = cli_denoise_peak_rss(&bundle, &path("short.tif"), &path("short_denoised.tif"));
    let started = std::time::Instant::now();
    let peak = cli_denoise_peak_rss(&bundle, &path("long.tif"), &path("long_denoised.tif"));
    eprintln!(
        "streamed {frames} frames in {:.1} s: peak RSS {} MB ({short_frames} frames: {} MB)",
        started.elapsed().as_secs_f64(),
        peak >> 20,
        peak_short >> 20
    );
    assert!(
        peak < peak_short + movie_memory_limit,
        "peak RSS {} MB for {frames} frames exceeds {} MB for {short_frames} frames by more than {} MB (movie: {} MB as float32)",
        peak >> 20,
        peak_short >> 20,
        movie_memory_limit >> 20,
        raw_float_bytes >> 20
    );
    let output = path("long_denoised.tif");

    let mut denoised = StackReader::open(&output, &ReadOptions::default()).unwrap();
    assert_eq!(denoised.info().frames, frames);
    assert_eq!(denoised.info().sample_type, SampleType::U16);

    // The in-memory path on a prefix; its last DEFAULT_HALO frames see the prefix's mirrored end
    // instead of the movie's next frames, so only frames before them must agree.
    let prefix = 400;
    let mut prefix_data = vec![0f32; prefix * height * width];
    for (t, frame) in prefix_data.chunks_exact_mut(height * width).enumerate() {
        synthetic_frame(t, frame);
    }
    let mut movie = InMemoryMovie::new("prefix", width, height, prefix, SampleType::U16, prefix_data).unwrap();
    let in_memory = denoise_volume(&model, &mut movie, &DenoiseSettings::default(), &mut Silent).unwrap();
    let mut frame = vec![0f32; height * width];
    let mut worst = 0f32;
    for t in 0..prefix - DEFAULT_HALO {
        denoised.read_frame(t, &mut frame).unwrap();
        let expected = &in_memory[t * height * width..(t + 1) * height * width];
        for (streamed, exact) in frame.iter().zip(expected) {
            // The file holds the float result rounded and clipped to uint16.
            worst = worst.max((streamed - exact.round().clamp(0.0, 65535.0)).abs());
        }
    }
    assert!(worst <= 1.0, "streamed output differs from the in-memory path by {worst} counts");
    // The far end too: the movie's last frames against the in-memory path on its last 400 frames
    // (a start on a multiple of 8 keeps the pooling grid; the first DEFAULT_HALO frames differ).
    let start = frames - prefix;
    assert_eq!(start % 8, 0);
    let mut suffix_data = vec![0f32; prefix * height * width];
    for (i, frame) in suffix_data.chunks_exact_mut(height * width).enumerate() {
        synthetic_frame(start + i, frame);
    }
    let mut movie = InMemoryMovie::new("suffix", width, height, prefix, SampleType::U16, suffix_data).unwrap();
    let in_memory = denoise_volume(&model, &mut movie, &DenoiseSettings::default(), &mut Silent).unwrap();
    for i in DEFAULT_HALO..prefix {
        denoised.read_frame(start + i, &mut frame).unwrap();
        let expected = &in_memory[i * height * width..(i + 1) * height * width];
        for (streamed, exact) in frame.iter().zip(expected) {
            worst = worst.max((streamed - exact.round().clamp(0.0, 65535.0)).abs());
        }
    }
    assert!(worst <= 1.0, "streamed output's end differs from the in-memory path by {worst} counts");
}

#[test]
fn two_overlapping_pieces_joined_equal_the_whole_movie() {
    let (frames, height, width) = (600, 24, 24);
    let mut data = vec![0f32; frames * height * width];
    for (t, frame) in data.chunks_exact_mut(height * width).enumerate() {
        synthetic_frame(t, frame);
    }
    let model = random_model();
    // Several time tiles per piece, so the pieces' own tile seams are exercised as well.
    let settings = DenoiseSettings { tile: Some([136, 24, 24]), ..Default::default() };
    let denoise = |first: usize, last: usize| {
        let piece = data[first * height * width..last * height * width].to_vec();
        let mut movie = InMemoryMovie::new("piece", width, height, last - first, SampleType::F32, piece).unwrap();
        denoise_volume(&model, &mut movie, &settings, &mut Silent).unwrap()
    };
    let whole = denoise(0, frames);
    // Pieces [0, 360) and [240, 600) overlap by 120 frames; the second starts on a multiple of 8
    // (the network's pooling grid). Cut at 300: ≥ DEFAULT_HALO from each piece's inner end.
    let (first, second, cut) = (denoise(0, 360), denoise(240, frames), 300);
    assert!(cut + DEFAULT_HALO <= 360 && 240 + DEFAULT_HALO <= cut);
    let mut joined = first[..cut * height * width].to_vec();
    joined.extend_from_slice(&second[(cut - 240) * height * width..]);
    assert_eq!(joined.len(), whole.len());
    let scale = whole.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = joined.iter().zip(&whole).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst / scale < 1e-4, "joined pieces differ from the whole by {worst} (scale {scale})");
    // No baseline jump at the cut: the frame means step across it as they do in the whole.
    let mean = |v: &[f32], t: usize| v[t * height * width..(t + 1) * height * width].iter().sum::<f32>() / (height * width) as f32;
    let step_joined = mean(&joined, cut) - mean(&joined, cut - 1);
    let step_whole = mean(&whole, cut) - mean(&whole, cut - 1);
    assert!((step_joined - step_whole).abs() < 1e-3 * scale, "step at the cut {step_joined} vs {step_whole}");
}
