//! Live denoising (issue 28): frames pushed one at a time come back final, in order, complete; with
//! the look-ahead at the network's reach they equal the whole-movie output bit for bit; a shorter
//! look-ahead gives the output of the movie as it stood; a stream that falls behind says so and
//! drops or refuses by choice; the normalisation rule is stated.
use deepcad::infer::{
    denoise_source_to_memory, Backlog, DenoiseSettings, LiveFrame, LiveNormalization, LiveSettings, LiveStream,
};
use deepcad::io::{InMemoryMovie, SampleType};
use deepcad::model::precision::InferencePrecision;
use deepcad::model::{Model, ModelMetadata, Normalization};
use deepcad::progress::Silent;

const SIDE: usize = 24;

fn model(normalization: Normalization) -> Model {
    super::util::seeded_model(ModelMetadata::new(4, [16, 16, 16], normalization), 11)
}

fn fixed_model() -> Model {
    model(Normalization::Fixed { offset: 500.0, scale: 300.0 })
}

/// Deterministic integer-valued frames in `[0, 1000)` with a slow drift, so time matters.
fn movie(frames: usize) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(28);
    (0..frames * SIDE * SIDE).map(|i| (rng.random_range(0..800) + (i / (SIDE * SIDE)) % 200) as f32).collect()
}

/// Every frame denoised, however far behind (these tests push faster than any network).
fn queueing() -> LiveSettings {
    LiveSettings { backlog: Backlog::Queue, max_backlog_frames: 100_000, ..Default::default() }
}

fn whole(model: &Model, data: &[f32], tile: [usize; 3]) -> Vec<f32> {
    whole_in(model, data, tile, InferencePrecision::Auto)
}

fn whole_in(model: &Model, data: &[f32], tile: [usize; 3], precision: InferencePrecision) -> Vec<f32> {
    let frames = data.len() / (SIDE * SIDE);
    let mut movie = InMemoryMovie::new("whole", SIDE, SIDE, frames, SampleType::F32, data.to_vec()).unwrap();
    let settings = DenoiseSettings { tile: Some(tile), precision, ..Default::default() };
    denoise_source_to_memory(model, &mut movie, &settings, &mut Silent).unwrap().0
}

/// Pushes every frame, then finishes; returns the frames in the order they came back.
fn run_live(stream: &mut Option<LiveStream>, data: &[f32]) -> Vec<LiveFrame> {
    let mut out = Vec::new();
    for frame in data.chunks_exact(SIDE * SIDE) {
        out.extend(stream.as_mut().unwrap().push(frame).unwrap());
    }
    out.extend(stream.take().unwrap().finish().unwrap());
    out
}

fn assert_complete_and_ordered(out: &[LiveFrame], frames: usize) {
    assert_eq!(out.len(), frames, "every frame comes back once");
    for (t, frame) in out.iter().enumerate() {
        assert_eq!(frame.index, t, "frames come back in order");
        assert_eq!(frame.values.len(), SIDE * SIDE);
    }
}

#[test]
fn live_output_with_full_look_ahead_equals_the_whole_movie_bit_for_bit() {
    // Lengths: shorter than one block, a block and a bit, several blocks ending off the 8-grid.
    for frames in [50, 130, 301] {
        let data = movie(frames);
        let settings = LiveSettings { step: 16, ..queueing() };
        let mut stream = Some(LiveStream::new(fixed_model(), "live", SIDE, SIDE, SampleType::F32, settings).unwrap());
        let (tile, schedule) = (stream.as_ref().unwrap().tile(), stream.as_ref().unwrap().schedule());
        assert!(schedule.exact() && schedule.look_ahead == 52 && tile[0] == 120, "{schedule:?} {tile:?}");
        let out = run_live(&mut stream, &data);
        assert_complete_and_ordered(&out, frames);
        let live: Vec<f32> = out.iter().flat_map(|f| f.values.iter().copied()).collect();
        let reference = whole(&fixed_model(), &data, tile);
        assert!(out.iter().all(|f| f.denoised));
        assert!(live == reference, "{frames} frames: live differs from the whole movie");
    }
}

#[test]
#[ignore = "needs a CPU with native bfloat16 (AVX512-BF16 or AMX): scripts/test.sh runs --ignored bf16_native_ where /proc/cpuinfo lists one"]
fn bf16_native_a_live_stream_denoises_in_the_precision_it_is_asked_for() {
    assert!(deepcad::device::cpu_has_native_bfloat16(), "this CPU has no native bfloat16, which this test needs");
    let data = movie(130);
    let denoise = DenoiseSettings { precision: InferencePrecision::Bfloat16, ..Default::default() };
    let settings = LiveSettings { step: 16, denoise, ..queueing() };
    let mut stream = Some(LiveStream::new(fixed_model(), "live", SIDE, SIDE, SampleType::F32, settings).unwrap());
    let tile = stream.as_ref().unwrap().tile();
    let live: Vec<f32> = run_live(&mut stream, &data).iter().flat_map(|f| f.values.iter().copied()).collect();
    assert!(live == whole_in(&fixed_model(), &data, tile, InferencePrecision::Bfloat16), "bfloat16 live differs");
    assert!(live != whole_in(&fixed_model(), &data, tile, InferencePrecision::Float32), "bfloat16 was not used");
}

#[test]
fn frames_come_back_while_pushing_once_their_look_ahead_has_arrived() {
    let data = movie(200);
    let settings = LiveSettings { step: 8, backlog: Backlog::Queue, max_backlog_frames: 1000, ..Default::default() };
    let mut stream = LiveStream::new(fixed_model(), "live", SIDE, SIDE, SampleType::F32, settings).unwrap();
    let schedule = stream.schedule();
    let mut seen = 0;
    for (t, frame) in data.chunks_exact(SIDE * SIDE).enumerate() {
        for f in stream.push(frame).unwrap() {
            // Nothing comes back before the frames its step waits for were pushed.
            assert!(t + 1 >= schedule.needed(0), "frame {} came back after {} pushes", f.index, t + 1);
            seen += 1;
        }
        if t + 1 == schedule.needed(2) {
            // Give the worker time to run the first steps, then look without pushing.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while seen < schedule.frames(2).end && std::time::Instant::now() < deadline {
                seen += stream.poll().unwrap().len();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(seen, schedule.frames(2).end, "steps 0..=2 are final once needed(2) frames arrived");
        }
    }
    let status = stream.status();
    assert_eq!(status.arrived, 200);
    seen += stream.finish().unwrap().len();
    assert_eq!(seen, 200);
}

#[test]
fn a_short_look_ahead_gives_the_movie_as_it_stood_when_the_step_ran() {
    let data = movie(160);
    let settings = LiveSettings { step: 8, look_ahead: Some(4), ..queueing() };
    let mut stream = Some(LiveStream::new(fixed_model(), "live", SIDE, SIDE, SampleType::F32, settings).unwrap());
    let (tile, schedule) = (stream.as_ref().unwrap().tile(), stream.as_ref().unwrap().schedule());
    assert!(!schedule.exact());
    assert_eq!(schedule.steady_delay_frames(), 8 - 1 + 4);
    let out = run_live(&mut stream, &data);
    assert_complete_and_ordered(&out, 160);
    // Step 2 ran on the first needed(2) frames, its future mirrored: the whole-movie output of
    // that truncated movie, for the step's frames.
    let plane = SIDE * SIDE;
    let truncated = whole(&fixed_model(), &data[..schedule.needed(2) * plane], tile);
    for t in schedule.frames(2) {
        assert!(out[t].values[..] == truncated[t * plane..(t + 1) * plane], "frame {t}");
    }
    // And it is not the whole movie's output (the future was guessed).
    let full = whole(&fixed_model(), &data, tile);
    let t = schedule.frames(2).end - 1;
    assert!(out[t].values[..] != full[t * plane..(t + 1) * plane]);
}

#[test]
fn a_stream_that_falls_behind_passes_whole_steps_through_and_counts_them() {
    let data = movie(400);
    let settings = LiveSettings { step: 8, max_backlog_frames: 8, ..Default::default() };
    let mut stream = Some(LiveStream::new(fixed_model(), "live", SIDE, SIDE, SampleType::F32, settings).unwrap());
    // All frames at once: far faster than any network, so the stream falls behind.
    let mut out = Vec::new();
    for frame in data.chunks_exact(SIDE * SIDE) {
        out.extend(stream.as_mut().unwrap().push(frame).unwrap());
    }
    let status_before_finish = stream.as_ref().unwrap().status();
    out.extend(stream.take().unwrap().finish().unwrap());
    assert_complete_and_ordered(&out, 400);
    let dropped: Vec<&LiveFrame> = out.iter().filter(|f| !f.denoised).collect();
    assert!(!dropped.is_empty(), "pushing 400 frames at once must leave the network behind");
    for f in &dropped {
        assert!(f.values[..] == data[f.index * SIDE * SIDE..(f.index + 1) * SIDE * SIDE], "frame {}", f.index);
    }
    assert!(status_before_finish.late + status_before_finish.dropped > 0 || status_before_finish.behind > 0);
}

#[test]
fn a_queueing_stream_refuses_frames_past_its_bound_instead_of_waiting() {
    let data = movie(400);
    let settings = LiveSettings { step: 8, backlog: Backlog::Queue, max_backlog_frames: 4, ..Default::default() };
    let mut stream = LiveStream::new(fixed_model(), "live", SIDE, SIDE, SampleType::F32, settings).unwrap();
    let started = std::time::Instant::now();
    let refused = data.chunks_exact(SIDE * SIDE).map(|frame| stream.push(frame)).find_map(|r| r.err());
    let error = refused.expect("400 frames at once must exceed a backlog of 4").to_string();
    assert!(error.contains("frames behind the camera") && error.contains("at most 4"), "{error}");
    assert!(started.elapsed().as_secs() < 30, "push never waits for the network");
}

#[test]
fn a_per_movie_model_measures_a_warm_up_window_and_says_so() {
    let data = movie(120);
    let settings = LiveSettings { step: 8, warm_up_frames: 32, ..Default::default() };
    let mut stream =
        LiveStream::new(model(Normalization::PerMovie), "live", SIDE, SIDE, SampleType::F32, settings).unwrap();
    assert_eq!(stream.normalization(), None, "unknown before the warm-up frames");
    let mut out = Vec::new();
    for frame in data.chunks_exact(SIDE * SIDE) {
        out.extend(stream.push(frame).unwrap());
    }
    let note = loop {
        // The note arrives with the worker's first output.
        let _ = stream.poll().unwrap();
        if let Some(note) = stream.normalization() {
            break note.to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(note.contains("first 32 frames") && note.contains("offset"), "{note}");
    out.extend(stream.finish().unwrap());
    assert_eq!(out.len(), 120);
    // A given normalisation is used as given, and says so at once.
    let given =
        LiveSettings { normalization: LiveNormalization::Given { offset: 1.0, scale: 2.0 }, ..Default::default() };
    let stream = LiveStream::new(fixed_model(), "live", SIDE, SIDE, SampleType::F32, given).unwrap();
    assert!(stream.normalization().unwrap().contains("offset 1, scale 2"));
}

#[test]
fn bad_frames_are_refused_with_the_frame_and_the_reason() {
    let mut stream =
        LiveStream::new(fixed_model(), "camera", SIDE, SIDE, SampleType::U16, LiveSettings::default()).unwrap();
    let error = stream.push(&[0.0; 10]).unwrap_err().to_string();
    assert!(error.contains("camera") && error.contains("10 values") && error.contains("576"), "{error}");
    let mut frame = vec![1.0; SIDE * SIDE];
    frame[30] = f32::NAN;
    let error = stream.push(&frame).unwrap_err().to_string();
    assert!(error.contains("NaN") && error.contains("x=6 y=1"), "{error}");
    let error = LiveStream::new(
        fixed_model(),
        "camera",
        SIDE,
        SIDE,
        SampleType::U16,
        LiveSettings { step: 12, ..Default::default() },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("step of 12 frames"), "{error}");
}
