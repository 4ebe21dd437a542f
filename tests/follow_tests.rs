//! `deepcad denoise --follow` against a real writer process: a separate process (this test binary,
//! re-run as `follow_tests::writer_process`) appends TIFF pages at a fixed rate with the `tiff`
//! crate, as an acquisition program does; the CLI denoises them as they land into a growing
//! output, stops by its stated rule, and its frames equal the finished file's denoised frames.
//! A second writer grows a Zarr v3 array with the `zarrs` crate (the shape first, the pixels after)
//! and the CLI follows it by the Zarr rule, never reading a frame the writer has not stored.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deepcad::infer::{denoise_source_to_memory, DenoiseSettings};
use deepcad::io::{open_movie, FrameData, InMemoryMovie, ReadOptions, SampleType, StackReader};
use deepcad::model::{Model, ModelMetadata, Normalization};
use deepcad::progress::Silent;
use tch::Device;

use super::util::{p, text};

const SIDE: usize = 32;

fn model_bundle(dir: &Path) -> PathBuf {
    tch::manual_seed(3);
    let model = Model::new(
        ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 500.0, scale: 300.0 }),
        Device::Cpu,
    )
    .unwrap();
    let path = dir.join("model.safetensors");
    model.save(&path).unwrap();
    path
}

/// Frame `t` of the writer's movie (u16, deterministic).
fn frame(t: usize) -> Vec<u16> {
    (0..SIDE * SIDE).map(|i| ((i * 7 + t * 13) % 900 + (t % 50) * 4) as u16).collect()
}

/// The writer: appends `FOLLOW_WRITER_FRAMES` pages (0 = until killed) to `FOLLOW_WRITER_PATH` every
/// `FOLLOW_WRITER_MS` ms, then writes `<path>.done` if `FOLLOW_WRITER_MARKER` is set. With
/// `FOLLOW_WRITER_PAUSE_AT` it stops before that frame until `<path>.go` exists (as an acquisition
/// paused between trials), so a test can look at the output mid-acquisition however slow the
/// machine is. Run only as the child process of the tests below.
#[test]
#[ignore = "the writer process of the --follow tests, started by them (not a test of its own)"]
fn writer_process() {
    let Some(path) = std::env::var_os("FOLLOW_WRITER_PATH") else { return };
    let frames: usize = std::env::var("FOLLOW_WRITER_FRAMES").unwrap().parse().unwrap();
    let interval = Duration::from_millis(std::env::var("FOLLOW_WRITER_MS").unwrap().parse().unwrap());
    let pause_at: Option<usize> = std::env::var("FOLLOW_WRITER_PAUSE_AT").ok().map(|n| n.parse().unwrap());
    let go = sibling(Path::new(&path), ".go");
    let file = std::fs::File::create(&path).unwrap();
    let mut encoder = tiff::encoder::TiffEncoder::new(file).unwrap();
    let started = Instant::now();
    for t in 0.. {
        if frames > 0 && t == frames {
            break;
        }
        if pause_at == Some(t) {
            let resume = Instant::now() + Duration::from_secs(300);
            while !go.exists() && Instant::now() < resume {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // At a fixed rate, as a camera delivers frames (after a pause, at once).
        if let Some(wait) = (interval * t as u32).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        encoder.write_image::<tiff::encoder::colortype::Gray16>(SIDE as u32, SIDE as u32, &frame(t)).unwrap();
    }
    if std::env::var_os("FOLLOW_WRITER_MARKER").is_some() {
        std::fs::write(sibling(Path::new(&path), ".done"), b"").unwrap();
    }
}

/// `<path><suffix>`, as the writer's marker files are named.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn start_writer(path: &Path, frames: usize, interval_ms: u64, marker: bool) -> Child {
    start_writer_pausing(path, frames, interval_ms, marker, None)
}

fn start_writer_pausing(path: &Path, frames: usize, interval_ms: u64, marker: bool, pause_at: Option<usize>) -> Child {
    let writer = WriterRun { frames, interval_ms, marker, pause_at };
    writer.spawn("follow_tests::writer_process", &[("FOLLOW_WRITER_PATH", path.as_os_str())])
}

/// How a writer process (this test binary re-run as one of the ignored writer tests) appends.
struct WriterRun {
    frames: usize,
    interval_ms: u64,
    marker: bool,
    pause_at: Option<usize>,
}

impl WriterRun {
    fn spawn(&self, test: &str, env: &[(&str, &std::ffi::OsStr)]) -> Child {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", test, "--ignored", "--nocapture"])
            .envs(env.iter().copied())
            .env("FOLLOW_WRITER_FRAMES", self.frames.to_string())
            .env("FOLLOW_WRITER_MS", self.interval_ms.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.marker {
            command.env("FOLLOW_WRITER_MARKER", "1");
        }
        if let Some(frame) = self.pause_at {
            command.env("FOLLOW_WRITER_PAUSE_AT", frame.to_string());
        }
        command.spawn().unwrap()
    }
}

fn start_follow(input: &Path, model: &Path, output: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_deepcad"))
        .args(["denoise", "--follow", p(input), "-m", p(model), "-o", p(output), "--device", "cpu", "--quiet"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The output's frames, or `None` while it cannot be read (a page being appended).
fn read_frames(path: &Path) -> Option<(usize, Vec<f32>)> {
    let mut reader = StackReader::open(path, &ReadOptions::default()).ok()?;
    let frames = reader.info().frames;
    let mut out = vec![0f32; frames * SIDE * SIDE];
    for (t, plane) in out.chunks_exact_mut(SIDE * SIDE).enumerate() {
        reader.read_frame(t, plane).ok()?;
    }
    Some((frames, out))
}

/// The first `frames` frames of the input (a TIFF or a Zarr array), denoised as a finished movie
/// with the live run's tile, rounded to u16 as the output stores them.
fn offline(model: &Path, input: &Path, frames: usize, tile: [usize; 3]) -> Vec<f32> {
    let model = Model::load(model, Device::Cpu).unwrap();
    let mut reader = open_movie(input, &ReadOptions::default()).unwrap().source;
    let mut data = vec![0f32; frames * SIDE * SIDE];
    for (t, plane) in data.chunks_exact_mut(SIDE * SIDE).enumerate() {
        reader.read_frame(t, plane).unwrap();
    }
    let mut movie = InMemoryMovie::new("finished", SIDE, SIDE, frames, SampleType::U16, data).unwrap();
    let settings = DenoiseSettings { tile: Some(tile), ..Default::default() };
    let values = denoise_source_to_memory(&model, &mut movie, &settings, &mut Silent).unwrap().0;
    let FrameData::U16(rounded) = FrameData::from_f32(&values, SampleType::U16) else { unreachable!() };
    rounded.into_iter().map(f32::from).collect()
}

fn tile_in_description(output: &Path) -> [usize; 3] {
    let bytes = std::fs::read(output).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let start = text.find("tile [").expect("the description names the tile") + 6;
    let numbers: Vec<usize> =
        text[start..text[start..].find(']').unwrap() + start].split(',').map(|n| n.trim().parse().unwrap()).collect();
    [numbers[0], numbers[1], numbers[2]]
}

#[test]
fn follow_denoises_a_file_while_a_writer_appends_and_stops_at_the_expected_count() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("acquisition.tif"), dir.path().join("denoised.tif"));
    let model = model_bundle(dir.path());
    // 100 Hz, until killed: the follow stops by the frame count. The writer pauses before frame 120
    // until the test has seen the output mid-acquisition (a slow machine may need longer than the
    // acquisition takes to finish its first frames).
    let mut writer = start_writer_pausing(&input, 0, 10, false, Some(120));
    let follow = start_follow(
        &input,
        &model,
        &output,
        &["--follow-frames", "150", "--behind", "queue", "--max-behind", "100000"],
    );
    // The output grows while the writer is still writing, and is readable whenever looked at.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_growing = None;
    while Instant::now() < deadline && seen_growing.is_none() {
        if let Some((frames, _)) = read_frames(&output) {
            if frames > 0 && frames < 150 {
                seen_growing = Some(frames);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(sibling(&input, ".go"), b"").unwrap();
    let result = follow.wait_with_output().unwrap();
    // Stopped by PID, as an acquisition is stopped.
    let writer_pid = writer.id() as i32;
    unsafe { libc::kill(writer_pid, libc::SIGTERM) };
    let _ = writer.wait();
    assert!(result.status.success(), "{}", text(&result));
    assert!(seen_growing.is_some(), "the output never held part of the movie while following");
    let (frames, live) = read_frames(&output).unwrap();
    assert_eq!(frames, 150);
    let tile = tile_in_description(&output);
    assert!(live == offline(&model, &input, 150, tile), "followed output differs from the finished file's");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("denoised.tif.done")).unwrap()).unwrap();
    assert_eq!(record["frames"], 150);
    assert_eq!(record["undenoised"].as_array().unwrap().len(), 0);
    assert!(record["normalization"].as_str().unwrap().contains("recorded statistics"), "{record}");
}

#[test]
fn follow_stops_at_the_writers_end_marker_or_when_the_input_goes_idle() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_bundle(dir.path());
    // End marker: 70 frames at 200 Hz, then `<input>.done`.
    let (input, output) = (dir.path().join("marked.tif"), dir.path().join("marked-denoised.tif"));
    let mut writer = start_writer(&input, 70, 5, true);
    let started = Instant::now();
    let result = start_follow(&input, &model, &output, &["--follow-idle", "60s", "--behind", "queue"])
        .wait_with_output()
        .unwrap();
    let _ = writer.wait();
    assert!(result.status.success(), "{}", text(&result));
    assert!(started.elapsed() < Duration::from_secs(55), "stopped by the marker, not the idle timeout");
    assert_eq!(read_frames(&output).unwrap().0, 70);
    // Idle: 40 frames and no marker; the follow ends 2 s after the last page.
    let (input, output) = (dir.path().join("idle.tif"), dir.path().join("idle-denoised.tif"));
    let mut writer = start_writer(&input, 40, 5, false);
    let result = start_follow(&input, &model, &output, &["--follow-idle", "2s", "--behind", "queue"])
        .wait_with_output()
        .unwrap();
    let _ = writer.wait();
    assert!(result.status.success(), "{}", text(&result));
    assert_eq!(read_frames(&output).unwrap().0, 40);
    // A second follow to the same output is refused: outputs are never silently replaced.
    let again = start_follow(&input, &model, &output, &["--follow-idle", "1s"]).wait_with_output().unwrap();
    assert!(!again.status.success() && text(&again).contains("denoised.tif"), "{}", text(&again));
}

/// The Zarr writer: creates a Zarr v3 array `(t, y, x)` of u16 at `FOLLOW_ZARR_PATH` (zstd) and
/// writes `FOLLOW_WRITER_FRAMES` frames, one every `FOLLOW_WRITER_MS` ms, in one of two styles:
/// - appending (default): an empty time axis and chunks of 4 frames × 16 × 16 pixels; each frame
///   grows the shape in the metadata first and stores its pixels half an interval later
///   (rewriting the chunks it shares with earlier frames), so a reader that trusted the shape
///   alone would read frames not yet written. With `FOLLOW_WRITER_PAUSE_AT` it waits between
///   growing the shape to hold that frame and storing it until `<path>.go` exists;
/// - `FOLLOW_ZARR_STYLE=preallocated`: the whole shape set up front (`FOLLOW_ZARR_SHAPE_FRAMES`
///   frames, default all it writes: an acquisition stopped early writes fewer), one frame per chunk and four
///   16 × 16 chunks per frame, stored one chunk file at a time. With `FOLLOW_WRITER_PAUSE_AT` that
///   frame's last chunk lands only after the next frame, once `<path>.go` exists, as an
///   asynchronous writer's chunk files may land out of order.
///
/// `FOLLOW_WRITER_MARKER`: `<path>.done` at the end. Run only as the child process of the tests below.
#[test]
#[ignore = "the Zarr writer process of the --follow tests, started by them (not a test of its own)"]
fn zarr_writer_process() {
    use zarrs::array::{codec::ZstdCodec, data_type, ArrayBuilder, ArraySubset};
    let Some(path) = std::env::var_os("FOLLOW_ZARR_PATH") else { return };
    let path = PathBuf::from(path);
    let frames: usize = std::env::var("FOLLOW_WRITER_FRAMES").unwrap().parse().unwrap();
    let interval = Duration::from_millis(std::env::var("FOLLOW_WRITER_MS").unwrap().parse().unwrap());
    let pause_at: Option<usize> = std::env::var("FOLLOW_WRITER_PAUSE_AT").ok().map(|n| n.parse().unwrap());
    let preallocated = std::env::var("FOLLOW_ZARR_STYLE").is_ok_and(|s| s == "preallocated");
    std::fs::create_dir(&path).unwrap();
    let store = std::sync::Arc::new(zarrs::filesystem::FilesystemStore::new(&path).unwrap());
    let side = SIDE as u64;
    let shape_frames: usize = std::env::var("FOLLOW_ZARR_SHAPE_FRAMES").map_or(frames, |n| n.parse().unwrap());
    let (shape_t, chunk_t) = if preallocated { (shape_frames as u64, 1) } else { (0, 4) };
    let mut array = ArrayBuilder::new(vec![shape_t, side, side], vec![chunk_t, 16, 16], data_type::uint16(), 0u16)
        .bytes_to_bytes_codecs(vec![std::sync::Arc::new(ZstdCodec::new(3, false))])
        .dimension_names(["t", "y", "x"].into())
        .build(store, "/")
        .unwrap();
    array.store_metadata().unwrap();
    let started = Instant::now();
    for t in 0..frames {
        if let Some(wait) = (interval * t as u32).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        if preallocated {
            for block in 0..if pause_at == Some(t) { 3 } else { 4 } {
                store_block(&array, t, block);
            }
            if t > 0 && pause_at == Some(t - 1) {
                wait_for_go(&path);
                store_block(&array, t - 1, 3);
            }
            continue;
        }
        array.set_shape(vec![t as u64 + 1, side, side]).unwrap();
        array.store_metadata().unwrap();
        if pause_at == Some(t) {
            wait_for_go(&path);
        }
        std::thread::sleep(interval / 2);
        let subset = ArraySubset::new_with_ranges(&[t as u64..t as u64 + 1, 0..side, 0..side]);
        array.store_array_subset(&subset, frame(t)).unwrap();
    }
    if std::env::var_os("FOLLOW_WRITER_MARKER").is_some() {
        std::fs::write(sibling(&path, ".done"), b"").unwrap();
    }
}

/// Waits (at most 5 minutes) until the test creates `<path>.go`.
fn wait_for_go(path: &Path) {
    let resume = Instant::now() + Duration::from_secs(300);
    while !sibling(path, ".go").exists() && Instant::now() < resume {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stores 16 × 16 block `block` (0 to 3, row by row) of frame `t`: one chunk file.
fn store_block(array: &zarrs::array::Array<zarrs::filesystem::FilesystemStore>, t: usize, block: usize) {
    let (y0, x0) = (block / 2 * 16, block % 2 * 16);
    let pixels = frame(t);
    let values: Vec<u16> = (y0..y0 + 16).flat_map(|y| pixels[y * SIDE + x0..y * SIDE + x0 + 16].to_vec()).collect();
    let (y, x, t) = (y0 as u64, x0 as u64, t as u64);
    let subset = zarrs::array::ArraySubset::new_with_ranges(&[t..t + 1, y..y + 16, x..x + 16]);
    array.store_array_subset(&subset, values).unwrap();
}

fn start_zarr_writer(path: &Path, frames: usize, interval_ms: u64, marker: bool, pause_at: Option<usize>) -> Child {
    start_zarr_writer_styled(path, frames, interval_ms, marker, pause_at, &[])
}

fn start_zarr_writer_styled(
    path: &Path,
    frames: usize,
    interval_ms: u64,
    marker: bool,
    pause_at: Option<usize>,
    style: &[(&str, &str)],
) -> Child {
    let mut env = vec![("FOLLOW_ZARR_PATH", path.as_os_str())];
    env.extend(style.iter().map(|&(key, value)| (key, std::ffi::OsStr::new(value))));
    WriterRun { frames, interval_ms, marker, pause_at }.spawn("follow_tests::zarr_writer_process", &env)
}

#[test]
fn follow_reads_a_growing_zarr_array_only_as_far_as_the_writer_stored_it() {
    // The writer pauses with the shape grown to 131 frames and frame 130 not stored (its chunk
    // row, frames 128-131, holds 128 and 129 so far): only rows the writer has left (frames
    // 0-127, enough for the first output frames) may be read meanwhile.
    follow_a_paused_zarr_writer(&[], 130, 128);
}

#[test]
fn follow_waits_for_every_chunk_file_of_a_row_when_they_land_out_of_order() {
    // The shape is set up front, one frame per chunk row of four chunk files. The writer pauses
    // with three of frame 130's chunk files stored and all of frame 131's: a rule that asked only
    // for a later row to have begun would read frame 130's last chunk as the fill value. Frames
    // 0-129 may be read meanwhile.
    follow_a_paused_zarr_writer(&[("FOLLOW_ZARR_STYLE", "preallocated")], 130, 130);
}

/// Follows a Zarr writer of `style` (its environment, see `zarr_writer_process`): 162 frames at 100 Hz, then the
/// end marker, pausing at frame `pause_at` until the test has seen the output grow. The output
/// then holds at most `readable` frames; at the end every frame, equal to the finished array's
/// denoised frames. The idle timeout is long enough never to end the follow on a slow machine.
fn follow_a_paused_zarr_writer(style: &[(&str, &str)], pause_at: usize, readable: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("acquisition.zarr"), dir.path().join("denoised.tif"));
    let model = model_bundle(dir.path());
    let mut writer = start_zarr_writer_styled(&input, 162, 10, true, Some(pause_at), style);
    let follow = start_follow(
        &input,
        &model,
        &output,
        &["--follow-idle", "300s", "--behind", "queue", "--max-behind", "100000"],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_growing = None;
    while Instant::now() < deadline && seen_growing.is_none() {
        if let Some((frames, _)) = read_frames(&output) {
            if frames > 0 {
                seen_growing = Some(frames);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(sibling(&input, ".go"), b"").unwrap();
    let result = follow.wait_with_output().unwrap();
    let _ = writer.wait();
    assert!(result.status.success(), "{}", text(&result));
    assert!(seen_growing.is_some_and(|n| n <= readable), "output while the writer paused: {seen_growing:?} frames");
    let (frames, live) = read_frames(&output).unwrap();
    assert_eq!(frames, 162);
    let tile = tile_in_description(&output);
    assert!(live == offline(&model, &input, 162, tile), "followed output differs from the finished array's");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("denoised.tif.done")).unwrap()).unwrap();
    assert_eq!(record["frames"], 162);
}

#[test]
fn follow_of_a_zarr_array_stops_when_it_goes_idle_after_the_frames_written_and_refuses_a_zarr_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_bundle(dir.path());
    // 30 frames, no marker: the last row (28, 29) is read once the array is unchanged for 2 s.
    let (input, output) = (dir.path().join("idle.zarr"), dir.path().join("idle-denoised.tif"));
    let mut writer = start_zarr_writer(&input, 30, 5, false, None);
    let result = start_follow(&input, &model, &output, &["--follow-idle", "2s", "--behind", "queue"])
        .wait_with_output()
        .unwrap();
    let _ = writer.wait();
    assert!(result.status.success(), "{}", text(&result));
    let (frames, live) = read_frames(&output).unwrap();
    assert_eq!(frames, 30);
    assert!(live == offline(&model, &input, 30, tile_in_description(&output)));
    // Shape set up front for 60 frames, 24 written, no marker: the follow ends after the frames
    // written, not the shape's never-written rows.
    let (input, output) = (dir.path().join("stopped.zarr"), dir.path().join("stopped-denoised.tif"));
    let style = [("FOLLOW_ZARR_STYLE", "preallocated"), ("FOLLOW_ZARR_SHAPE_FRAMES", "60")];
    let mut writer = start_zarr_writer_styled(&input, 24, 5, false, None, &style);
    let result = start_follow(&input, &model, &output, &["--follow-idle", "2s", "--behind", "queue"])
        .wait_with_output()
        .unwrap();
    let _ = writer.wait();
    assert!(result.status.success(), "{}", text(&result));
    let (frames, live) = read_frames(&output).unwrap();
    assert_eq!(frames, 24);
    assert!(live == offline(&model, &input, 24, tile_in_description(&output)));
    // A Zarr output is refused before anything is read, and the message says what to use.
    let zarr_output = dir.path().join("denoised.zarr");
    let refused = start_follow(&input, &model, &zarr_output, &["--follow-idle", "1s"]).wait_with_output().unwrap();
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains(".tif output") && text(&refused).contains("deepcad convert"), "{}", text(&refused));
    assert!(!zarr_output.exists());
}
