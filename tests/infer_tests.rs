//! Inference: tiled output equals whole-volume output, frame counts and types are kept, files
//! appear complete or not at all.
use deepcad::infer::{denoise_file_to_file, denoise_source_to_memory, output_spread, DenoiseSettings, OutputType};
use deepcad::io::{read_stack, write_stack, ImageJMetadata, InMemoryMovie, ReadOptions, SampleType, StackReader};
use deepcad::model::{Model, ModelMetadata, Normalization};
use deepcad::progress::{Control, Event, Progress, Silent};
use tch::Device;

fn random_model(base_width: usize, offset: f64, scale: f64) -> Model {
    super::util::seeded_model(ModelMetadata::new(base_width, [16, 16, 16], Normalization::Fixed { offset, scale }), 11)
}

fn random_movie(t: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..t * h * w).map(|_| rng.random_range(0.0..1000.0)).collect()
}

fn max_relative_difference(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().map(|v| v.abs() as f64).fold(0.0, f64::max).max(1e-12);
    a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).fold(0.0, f64::max) / scale
}

fn assert_tiled_equals_whole(shape: [usize; 3], whole_tile: [usize; 3], tile: [usize; 3], batch_size: usize) {
    let model = random_model(4, 500.0, 300.0);
    let [t, h, w] = shape;
    let data = random_movie(t, h, w, 1);
    let run = |tile: [usize; 3], batch_size: usize| {
        let mut movie = InMemoryMovie::new("random", w, h, t, SampleType::F32, data.clone()).unwrap();
        let settings = DenoiseSettings { tile: Some(tile), batch_size, ..Default::default() };
        denoise_source_to_memory(&model, &mut movie, &settings, &mut Silent).unwrap().0
    };
    let whole = run(whole_tile, 1);
    assert_eq!(whole.len(), t * h * w);
    let tiled = run(tile, batch_size);
    let err = max_relative_difference(&tiled, &whole);
    assert!(err < 1e-4, "shape {shape:?} tile {tile:?}: tiled vs whole relative difference {err}");
}

#[test]
fn tiled_output_equals_whole_volume_output_along_time() {
    // 136 - 2·52 = 32: tiles at 0, 32 and a snapped last tile; odd length mirrored to 208.
    assert_tiled_equals_whole([203, 20, 20], [208, 24, 24], [136, 24, 24], 1);
}

#[test]
fn tiled_output_equals_whole_volume_output_in_space_with_batches() {
    assert_tiled_equals_whole([12, 150, 141], [16, 152, 144], [16, 120, 112], 2);
}

#[test]
fn short_axes_are_mirror_padded_not_zero_bordered() {
    // 5 frames of 9×7 pixels: far smaller than any tile; every output frame must be filled.
    let model = random_model(4, 0.0, 1.0);
    let data = random_movie(5, 9, 7, 2);
    let mut movie = InMemoryMovie::new("tiny", 7, 9, 5, SampleType::F32, data).unwrap();
    let out = denoise_source_to_memory(&model, &mut movie, &DenoiseSettings::default(), &mut Silent).unwrap().0;
    assert_eq!(out.len(), 5 * 9 * 7);
    assert!(out.iter().all(|v| v.is_finite()));
    // A zero border would make the last row identical across frames to the network's bias response;
    // with mirrored context it varies with the input.
    let last_rows: Vec<f32> = (0..5).map(|f| out[f * 63 + 62]).collect();
    assert!(last_rows.windows(2).any(|p| (p[0] - p[1]).abs() > 1e-6), "{last_rows:?}");
}

#[test]
fn file_output_keeps_frames_type_and_calibration_and_clips() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.tif");
    let (t, h, w) = (20, 24, 16);
    let data: Vec<f32> = random_movie(t, h, w, 3).iter().map(|v| v * 60.0).collect();
    let mut meta = ImageJMetadata { frames: t, hyperstack: true, ..Default::default() };
    meta.calibration.pixel_width = 0.5;
    meta.calibration.pixel_height = 0.5;
    meta.calibration.unit = "µm".into();
    meta.calibration.frame_interval = 0.033;
    write_stack(&input, (w, h, t), SampleType::U16, &meta, &data).unwrap();
    let before = std::fs::read(&input).unwrap();

    // Scale chosen so outputs overshoot the 16-bit range: must clip, never wrap.
    let model = random_model(4, 30000.0, 30000.0);
    let output = dir.path().join("out.tif");
    let report = denoise_file_to_file(
        &model,
        &input,
        &output,
        &ReadOptions::default(),
        &DenoiseSettings::default(),
        &mut Silent,
    )
    .unwrap();
    assert_eq!(report.frames, t);
    let reader = StackReader::open(&output, &ReadOptions::default()).unwrap();
    let info = reader.info();
    assert_eq!((info.width, info.height, info.frames, info.sample_type), (w, h, t, SampleType::U16));
    assert_eq!(info.metadata.calibration.pixel_width, 0.5);
    assert_eq!(info.metadata.calibration.unit, "µm");
    assert!((info.metadata.calibration.frame_interval - 0.033).abs() < 1e-9);
    assert_eq!(std::fs::read(&input).unwrap(), before, "input must never change");

    // Same run in float32: the u16 file equals the float output rounded and clipped.
    let float_out = dir.path().join("out32.tif");
    let settings = DenoiseSettings { output_type: OutputType::Float32, ..Default::default() };
    denoise_file_to_file(&model, &input, &float_out, &ReadOptions::default(), &settings, &mut Silent).unwrap();
    let (_, as_float) = read_stack(&float_out, &ReadOptions::default()).unwrap();
    let (_, as_u16) = read_stack(&output, &ReadOptions::default()).unwrap();
    for (f, u) in as_float.iter().zip(&as_u16) {
        assert_eq!(*u, f.round().clamp(0.0, 65535.0));
    }
}

struct StopAfter(u64);
impl Progress for StopAfter {
    fn event(&mut self, event: Event<'_>) -> Control {
        match event {
            Event::Advance { done, .. } if done >= self.0 => Control::Stop,
            _ => Control::Continue,
        }
    }
}

#[test]
fn cancelled_denoise_leaves_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.tif");
    let (t, h, w) = (150, 16, 16);
    write_stack(&input, (w, h, t), SampleType::U16, &ImageJMetadata::default(), &random_movie(t, h, w, 4)).unwrap();
    let model = random_model(4, 0.0, 1.0);
    let output = dir.path().join("out.tif");
    let settings = DenoiseSettings { tile: Some([112, 16, 16]), ..Default::default() };
    let err = denoise_file_to_file(&model, &input, &output, &ReadOptions::default(), &settings, &mut StopAfter(1))
        .unwrap_err();
    assert_eq!(err.kind(), "cancelled");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "only the input may remain: {leftovers:?}");
}

#[test]
fn output_equal_to_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.tif");
    write_stack(&input, (8, 8, 4), SampleType::U16, &ImageJMetadata::default(), &vec![1.0; 256]).unwrap();
    let model = random_model(4, 0.0, 1.0);
    let err =
        denoise_file_to_file(&model, &input, &input, &ReadOptions::default(), &DenoiseSettings::default(), &mut Silent)
            .unwrap_err();
    assert_eq!(err.kind(), "usage");
    assert!(err.to_string().contains("in.tif"), "{err}");
}

#[test]
fn automatic_output_type_keeps_integers_for_bright_data_and_floats_for_dim_data() {
    use deepcad::infer::MIN_SPREAD_FOR_INTEGER_OUTPUT;
    let mut movie =
        InMemoryMovie::new("m", 8, 8, 4, SampleType::U16, (0..256).map(|v| (v % 7) as f32).collect()).unwrap();
    let dim_model = random_model(4, 101.0, 2.7);
    let bright = output_spread(&random_model(4, 500.0, MIN_SPREAD_FOR_INTEGER_OUTPUT * 2.0), &mut movie).unwrap();
    let dim = output_spread(&dim_model, &mut movie).unwrap();
    assert_eq!(OutputType::Auto.resolve(SampleType::U16, bright), (SampleType::U16, None));
    let (chosen, why) = OutputType::Auto.resolve(SampleType::U16, dim);
    assert_eq!(chosen, SampleType::F32);
    assert!(why.unwrap().contains("2.7 counts"));
    assert_eq!(OutputType::Auto.resolve(SampleType::U8, dim).0, SampleType::F32);
    assert_eq!(OutputType::Auto.resolve(SampleType::F32, bright).0, SampleType::F32);
    // Explicit choices always win.
    assert_eq!(OutputType::SameAsInput.resolve(SampleType::U16, dim), (SampleType::U16, None));
    assert_eq!(OutputType::Float32.resolve(SampleType::U16, bright), (SampleType::F32, None));
    // Per-movie models judge each movie by its own spread (this one: values 0..6, std ≈ 2).
    let general = Model::new(ModelMetadata::new(4, [16, 16, 16], Normalization::PerMovie), Device::Cpu).unwrap();
    let spread = output_spread(&general, &mut movie).unwrap().unwrap();
    assert!((spread - 2.0).abs() < 0.1, "{spread}");
    assert_eq!(OutputType::Auto.resolve(SampleType::U16, Some(spread)).0, SampleType::F32);
    // Imported reference models (per-stack mean) keep the input's type.
    tch::manual_seed(11);
    let imported =
        Model::new(ModelMetadata::new(4, [16, 16, 16], Normalization::StackMean { scale_factor: 1.0 }), Device::Cpu)
            .unwrap();
    assert_eq!(
        OutputType::Auto.resolve(SampleType::U16, output_spread(&imported, &mut movie).unwrap()).0,
        SampleType::U16
    );

    // The default writes dim data as float, and says why.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("dim.tif");
    let (t, h, w) = (12, 16, 16);
    let data: Vec<f32> = random_movie(t, h, w, 5).iter().map(|v| 100.0 + (v / 200.0).round()).collect();
    write_stack(&input, (w, h, t), SampleType::U16, &ImageJMetadata::default(), &data).unwrap();
    struct Infos(Vec<String>);
    impl Progress for Infos {
        fn event(&mut self, event: Event<'_>) -> Control {
            if let Event::Info(text) = event {
                self.0.push(text.to_string());
            }
            Control::Continue
        }
    }
    let mut infos = Infos(Vec::new());
    let output = dir.path().join("dim-denoised.tif");
    denoise_file_to_file(&dim_model, &input, &output, &ReadOptions::default(), &DenoiseSettings::default(), &mut infos)
        .unwrap();
    assert_eq!(StackReader::open(&output, &ReadOptions::default()).unwrap().info().sample_type, SampleType::F32);
    assert!(infos.0.iter().any(|i| i.contains("32-bit float")), "{:?}", infos.0);
}
