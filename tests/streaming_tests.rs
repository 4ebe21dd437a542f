//! Streaming denoise: a movie larger than the memory it is given is denoised by the real CLI in a
//! child process whose peak RSS is measured, and its output matches the in-memory path; a movie
//! denoised in two overlapping pieces and joined equals the movie denoised whole.
use std::path::Path;
use std::process::{Command, Stdio};

use deepcad::infer::{denoise_source_to_memory, DenoiseSettings};
use deepcad::io::{ImageJMetadata, InMemoryMovie, OutputKind, ReadOptions, SampleType, StackReader, StackWriter};
use deepcad::model::{Model, ModelMetadata, Normalization};
use deepcad::progress::Silent;
use deepcad::tiling::DEFAULT_HALO;

fn random_model() -> Model {
    super::util::seeded_model(
        ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 500.0, scale: 300.0 }),
        5,
    )
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
    let mut writer =
        StackWriter::create(path, width, height, frames, SampleType::U16, &meta, OutputKind::Auto).unwrap();
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
    let (status, peak, message) = run_with_peak_rss(command);
    assert!(status.success(), "child failed ({status}): {message}");
    peak
}

/// Runs `command` to completion: its exit status, peak RSS in bytes and stderr.
// Reaped with wait4 (for its rusage) instead of `Child::wait`, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_with_peak_rss(command: &mut Command) -> (std::process::ExitStatus, u64, String) {
    let child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut message = String::new();
    std::io::Read::read_to_string(&mut child.stderr.unwrap(), &mut message).unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std's `Child` was consumed without waiting).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    (std::os::unix::process::ExitStatusExt::from_raw(status), usage.ru_maxrss as u64 * 1024, message)
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
    let in_memory = denoise_source_to_memory(&model, &mut movie, &DenoiseSettings::default(), &mut Silent).unwrap().0;
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
    let in_memory = denoise_source_to_memory(&model, &mut movie, &DenoiseSettings::default(), &mut Silent).unwrap().0;
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
        denoise_source_to_memory(&model, &mut movie, &settings, &mut Silent).unwrap().0
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
    let mean = |v: &[f32], t: usize| {
        v[t * height * width..(t + 1) * height * width].iter().sum::<f32>() / (height * width) as f32
    };
    let step_joined = mean(&joined, cut) - mean(&joined, cut - 1);
    let step_whole = mean(&whole, cut) - mean(&whole, cut - 1);
    assert!((step_joined - step_whole).abs() < 1e-3 * scale, "step at the cut {step_joined} vs {step_whole}");
}

#[test]
fn sequential_and_pipelined_runs_give_identical_output() {
    let (frames, height, width) = (300, 16, 16);
    let mut data = vec![0f32; frames * height * width];
    for (t, frame) in data.chunks_exact_mut(height * width).enumerate() {
        synthetic_frame(t, frame);
    }
    let model = random_model();
    let run = |pipelined: bool| {
        // Several time tiles, so the read-ahead actually runs ahead.
        let settings = DenoiseSettings { tile: Some([120, 16, 16]), pipelined, ..Default::default() };
        let mut movie = InMemoryMovie::new("movie", width, height, frames, SampleType::F32, data.clone()).unwrap();
        denoise_source_to_memory(&model, &mut movie, &settings, &mut Silent).unwrap().0
    };
    let (pipelined, sequential) = (run(true), run(false));
    assert_eq!(pipelined.len(), frames * height * width);
    assert!(pipelined == sequential, "the read-ahead pipeline changed the output");
}

/// Starts `deepcad denoise` on a movie long enough to be stopped mid-way; returns the child once
/// its hidden temporary output exists and holds some finished frames.
// The child is returned to the caller, which waits for it; the failure paths kill and reap it.
#[allow(clippy::zombie_processes)]
fn start_denoise_and_wait_for_frames(dir: &Path) -> std::process::Child {
    let (frames, side) = (6_000, 32);
    write_u16_movie(&dir.join("movie.tif"), frames, side, side);
    random_model().save(&dir.join("model.safetensors")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["denoise", "--quiet", "--device", "cpu", "--threads", "1", "--tile", "120,32,32", "--model"])
        .arg(dir.join("model.safetensors"))
        .arg("--output")
        .arg(dir.join("out.tif"))
        .arg(dir.join("movie.tif"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let frame_bytes = (side * side * 2) as u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let written = temporary_outputs(dir).iter().map(|p| p.metadata().map_or(0, |m| m.len())).max().unwrap_or(0);
        // More than a few blocks written, far fewer than all 6,000 frames.
        let failure = if written > 200 * frame_bytes {
            if written < (frames as u64 / 2) * frame_bytes {
                return child;
            }
            Some("the run finished too fast to be interrupted")
        } else if std::time::Instant::now() >= deadline {
            Some("no frames were written within 120 s")
        } else {
            None
        };
        if let Some(failure) = failure {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{failure}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The writer's hidden `.out.tif.partial-*` files in `dir`.
fn temporary_outputs(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".out.tif.partial-"))
        .collect()
}

fn wait_for_exit(mut child: std::process::Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "deepcad did not stop within 60 s of the signal");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_killed_denoise_leaves_nothing_under_the_output_name() {
    let dir = tempfile::tempdir().unwrap();
    let child = start_denoise_and_wait_for_frames(dir.path());
    // SAFETY: plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) }, 0);
    let status = wait_for_exit(child);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(!dir.path().join("out.tif").exists(), "a killed run left a file under the final name");
    // Nothing can clean up after SIGKILL: the hidden partial file stays (documented in the README).
    assert_eq!(temporary_outputs(dir.path()).len(), 1);
}

#[test]
fn an_interrupted_denoise_exits_130_and_leaves_no_output_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let child = start_denoise_and_wait_for_frames(dir.path());
    // SAFETY: plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let status = wait_for_exit(child);
    assert_eq!(status.code(), Some(130), "exit status after Ctrl-C: {status:?}");
    assert!(!dir.path().join("out.tif").exists(), "a cancelled run left a file under the final name");
    assert_eq!(
        temporary_outputs(dir.path()),
        Vec::<std::path::PathBuf>::new(),
        "a cancelled run left its temporary file"
    );
    let mut left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["model.safetensors", "movie.tif"]);
}

/// A cheap deterministic uint16-range movie (content does not matter for a memory bound).
fn write_patterned_u16_movie(path: &Path, frames: usize, side: usize) {
    let meta = ImageJMetadata { frames, ..Default::default() };
    let mut writer = StackWriter::create(path, side, side, frames, SampleType::U16, &meta, OutputKind::Auto).unwrap();
    let mut frame = vec![0f32; side * side];
    for t in 0..frames {
        for (i, v) in frame.iter_mut().enumerate() {
            *v = ((i.wrapping_mul(2_654_435_761) ^ t.wrapping_mul(40_503)) % 997) as f32 + 100.0;
        }
        writer.write_frame(&frame).unwrap();
    }
    writer.finish().unwrap();
}

/// `deepcad train` for one short epoch in a child process; returns its peak RSS in bytes.
fn cli_train_peak_rss(input: &Path, output: &Path, patch_xy: usize) -> u64 {
    run_measuring_peak_rss(
        Command::new(env!("CARGO_BIN_EXE_deepcad"))
            .args(["train", "--quiet", "--device", "cpu", "--threads", "1", "--epochs", "1", "--patch-t", "8"])
            .args(["--patch-xy", &patch_xy.to_string(), "--patches-per-epoch", "200", "--base-width", "4", "--output"])
            .arg(output)
            .arg(input),
    )
}

#[test]
fn training_on_a_movie_four_times_the_frame_cache_stays_within_a_length_independent_bound() {
    use deepcad::train::pair_reader::FRAME_CACHE_BYTES;
    // 64×64 frames, 131,072 of them: 2 GiB as float32 (1 GiB on disk), four times the trainer's
    // frame cache. One patch covers a whole frame, so the epoch's 200 patches are windows of 2·8
    // frames spread evenly over the whole movie (from its first to its last frames). A 512-frame
    // movie gives the baseline (libtorch, the model, the optimiser); the long movie may add at most
    // the frame cache and a margin, however long it is. (Filling the cache would take training
    // on ≥ 512 MiB of frames, minutes on CI; the bound holds either way.)
    let (side, frames, short_frames) = (64, 131_072, 512);
    let raw_float_bytes = (frames * side * side * 4) as u64;
    assert!(raw_float_bytes >= 4 * FRAME_CACHE_BYTES as u64);
    let dir = tempfile::tempdir().unwrap();
    let (short, long) = (dir.path().join("short.tif"), dir.path().join("long.tif"));
    write_patterned_u16_movie(&short, short_frames, side);
    let peak_short = cli_train_peak_rss(&short, &dir.path().join("short.safetensors"), side);
    write_patterned_u16_movie(&long, frames, side);
    let started = std::time::Instant::now();
    let peak = cli_train_peak_rss(&long, &dir.path().join("long.safetensors"), side);
    let bound = peak_short + FRAME_CACHE_BYTES as u64 + (64 << 20);
    eprintln!(
        "training 1 epoch in {:.1} s: peak RSS {} MiB for {frames} frames ({} MiB as float32), {} MiB for {short_frames}; bound {} MiB",
        started.elapsed().as_secs_f64(),
        peak >> 20,
        raw_float_bytes >> 20,
        peak_short >> 20,
        bound >> 20
    );
    assert!(peak < bound, "peak RSS {} MiB exceeds {} MiB (baseline + frame cache + margin)", peak >> 20, bound >> 20);
    assert!(
        peak < raw_float_bytes / 2,
        "peak RSS {} MiB is not far below the movie's {} MiB",
        peak >> 20,
        raw_float_bytes >> 20
    );
    // The model was trained on the long movie (its whole length, not a prefix).
    let meta = deepcad::model::Model::read_metadata(&dir.path().join("long.safetensors")).unwrap();
    assert_eq!(meta.training.sources[0].frames, frames);
}

#[test]
fn frames_split_into_bands_to_fit_the_budget_give_the_same_output() {
    use deepcad::infer::{bytes_per_voxel, plan_memory, Budget};
    let (frames, height, width) = (60, 96, 40);
    let mut data = vec![0f32; frames * height * width];
    for (t, frame) in data.chunks_exact_mut(height * width).enumerate() {
        synthetic_frame(t, frame);
    }
    let model = random_model();
    let (tile, halo) = ([40, 40, 40], [8, 8, 8]);
    let budget = |bytes| Budget {
        bytes,
        activation_bytes_per_voxel: bytes_per_voxel(4),
        // As the denoiser plans its CPU runs.
        slab_voxels: DenoiseSettings::default().slab_voxels,
        slab_bytes_per_voxel: deepcad::model::slab_bytes_per_voxel(4),
        batch: 1,
        pipelined: true,
    };
    let one_band = plan_memory("m", [frames, height, width], halo, Some(tile), &budget(1 << 30)).unwrap();
    assert_eq!(one_band.bands.len(), 1);
    // Just under what whole frames need: the plan must split them.
    let tight = one_band.bytes - 1;
    let banded = plan_memory("m", [frames, height, width], halo, Some(tile), &budget(tight)).unwrap();
    assert!(banded.bands.len() > 1 && banded.bytes <= tight, "{:?} {} bytes", banded.bands, banded.bytes);
    let run = |max_memory_bytes: usize| {
        let settings = DenoiseSettings { tile: Some(tile), halo: Some(halo), max_memory_bytes, ..Default::default() };
        let mut movie = InMemoryMovie::new("movie", width, height, frames, SampleType::F32, data.clone()).unwrap();
        denoise_source_to_memory(&model, &mut movie, &settings, &mut Silent).unwrap().0
    };
    let (whole, in_bands) = (run(1 << 30), run(tight));
    assert_eq!(whole.len(), frames * height * width);
    assert!(whole == in_bands, "splitting frames into bands changed the output");
    // Tighter still: blocks are run once per part of their kept frames.
    let mut budget_bytes = tight;
    let parts = loop {
        budget_bytes = budget_bytes * 9 / 10;
        let plan = plan_memory("m", [frames, height, width], halo, Some(tile), &budget(budget_bytes)).unwrap();
        if plan.frames_per_pass < 32 {
            break plan;
        }
    };
    assert!(parts.bytes <= budget_bytes);
    assert!(run(budget_bytes) == whole, "running blocks in parts changed the output ({parts:?})");
}

/// Exit status, peak RSS and stderr of `deepcad denoise` with `--max-memory budget`.
fn cli_denoise_with_budget(
    bundle: &Path,
    input: &Path,
    output: &Path,
    budget: &str,
) -> (std::process::ExitStatus, u64, String) {
    run_with_peak_rss(
        Command::new(env!("CARGO_BIN_EXE_deepcad"))
            .args(["denoise", "--quiet", "--device", "cpu", "--threads", "2", "--max-memory", budget, "--model"])
            .arg(bundle)
            .arg("--output")
            .arg(output)
            .arg(input),
    )
}

#[test]
fn large_frames_are_denoised_within_the_memory_budget_or_refused_clearly() {
    // 2048² frames: one time block of whole frames (3 blocks in flight of 8 padded frames) is
    // 400 MB, far above a 256 MB budget; the run must split frames into bands and stay within it.
    let (frames, side) = (4, 2048);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let bundle = path("f4.safetensors");
    random_model().save(&bundle).unwrap();
    write_u16_movie(&path("tiny.tif"), frames, 16, 16);
    write_u16_movie(&path("wide.tif"), frames, side, side);

    let (status, base, message) = cli_denoise_with_budget(&bundle, &path("tiny.tif"), &path("tiny-out.tif"), "256M");
    assert!(status.success(), "{message}");
    let (status, peak, message) = cli_denoise_with_budget(&bundle, &path("wide.tif"), &path("wide-out.tif"), "256M");
    assert!(status.success(), "{message}");
    eprintln!("2048² frames with a 256 MB budget: peak RSS {} MB (16² frames: {} MB)", peak >> 20, base >> 20);
    assert!(
        peak < base + (256 << 20),
        "peak RSS {} MB is more than the budget above the {} MB baseline",
        peak >> 20,
        base >> 20
    );
    let denoised = StackReader::open(&path("wide-out.tif"), &ReadOptions::default()).unwrap();
    assert_eq!((denoised.info().frames, denoised.info().width, denoised.info().height), (frames, side, side));

    // A budget below what even one band needs: a clear error, exit 2, nothing written.
    let (status, _, message) = cli_denoise_with_budget(&bundle, &path("wide.tif"), &path("refused.tif"), "24M");
    assert_eq!(status.code(), Some(2), "{message}");
    assert!(message.contains("wide.tif") && message.contains("memory budget"), "{message}");
    assert!(!path("refused.tif").exists());
}
