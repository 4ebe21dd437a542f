//! Event restoration after denoising (`infer::event_restoration`, issue 23): it brings back a
//! one-frame, cell-shaped event the network smoothed away and adds little elsewhere; the output
//! does not depend on tiles, bands, time blocks or live steps; it is refused with the official pipelines.
use deepcad::infer::official_pipeline::{CompatSettings, OfficialPipeline};
use deepcad::infer::{denoise_source_to_memory, Backlog, DenoiseSettings, EventRestoration, LiveSettings, LiveStream};
use deepcad::io::{InMemoryMovie, SampleType};
use deepcad::model::{Model, ModelMetadata, Normalization, BUILT_IN_MODEL};
use deepcad::progress::Silent;
use rand::SeedableRng;
use rand_distr::{Distribution, Poisson};

const SIDE: usize = 64;
const FRAMES: usize = 64;
const FLASHES: [usize; 2] = [20, 41];
/// A live stream long enough to cross two chunks of the cell map (`infer::cell_map`, 100 frames).
const LIVE_FRAMES: usize = 230;
const CENTRE: (f32, f32) = (30.0, 34.0);

/// Photon counts of a dim scene with one soma that flashes for one frame at each of `FLASHES`
/// (nothing before or after: shorter than any frame spacing), and the flash's shape.
fn flashing_movie() -> (Vec<f32>, Vec<f32>) {
    flashing_movie_of(FRAMES)
}

fn flashing_movie_of(frames: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
    let cell: Vec<f32> = (0..SIDE * SIDE)
        .map(|i| {
            let (y, x) = ((i / SIDE) as f32 - CENTRE.0, (i % SIDE) as f32 - CENTRE.1);
            (-(y * y + x * x) / (2.0 * 16.0)).exp()
        })
        .collect();
    let mut movie = Vec::with_capacity(frames * SIDE * SIDE);
    for t in 0..frames {
        let flash = if FLASHES.contains(&t) { 12.0 } else { 0.0 };
        for &c in &cell {
            let mean = 4.0 + 4.0 * c + flash * c;
            movie.push(Poisson::new(mean as f64).unwrap().sample(&mut rng) as f32);
        }
    }
    (movie, cell)
}

fn denoise(model: &Model, data: &[f32], settings: &DenoiseSettings) -> deepcad::Result<Vec<f32>> {
    let frames = data.len() / (SIDE * SIDE);
    let mut movie = InMemoryMovie::new("flashes", SIDE, SIDE, frames, SampleType::F32, data.to_vec())?;
    Ok(denoise_source_to_memory(model, &mut movie, settings, &mut Silent)?.0)
}

/// Mean over the soma's core (shape above one half) of frame `t`.
fn core_mean(movie: &[f32], cell: &[f32], t: usize) -> f32 {
    let frame = &movie[t * SIDE * SIDE..(t + 1) * SIDE * SIDE];
    let core: Vec<f32> = frame.iter().zip(cell).filter(|(_, &c)| c > 0.5).map(|(&v, _)| v).collect();
    core.iter().sum::<f32>() / core.len() as f32
}

#[test]
fn a_one_frame_event_the_network_smoothed_comes_back_and_little_else_changes() {
    let model = Model::load(std::path::Path::new(BUILT_IN_MODEL), tch::Device::Cpu).unwrap();
    let (data, cell) = flashing_movie();
    let plain =
        denoise(&model, &data, &DenoiseSettings { restore_events: EventRestoration::Off, ..Default::default() })
            .unwrap();
    let restored =
        denoise(&model, &data, &DenoiseSettings { restore_events: EventRestoration::On, ..Default::default() })
            .unwrap();
    let rise = |movie: &[f32], t: usize| core_mean(movie, &cell, t) - core_mean(movie, &cell, t - 3);
    for t in FLASHES {
        let (truth, raw, smoothed, back) = (12.0 * 0.75, rise(&data, t), rise(&plain, t), rise(&restored, t));
        // The network alone keeps little of a flash no neighbouring frame shows.
        assert!(smoothed < 0.6 * raw, "frame {t}: the network kept {smoothed} of a raw rise of {raw}");
        assert!(back > smoothed + 0.3 * truth && back > 0.6 * truth, "frame {t}: restored {back}, plain {smoothed}");
    }
    // Frames far from a flash: restoration adds far less than the noise it would add back whole.
    let quiet: Vec<usize> = (4..FRAMES - 4).filter(|t| FLASHES.iter().all(|f| t.abs_diff(*f) > 2)).collect();
    let (mut change, mut noise) = (0.0f64, 0.0f64);
    for &t in &quiet {
        let range = t * SIDE * SIDE..(t + 1) * SIDE * SIDE;
        for i in range {
            change += ((restored[i] - plain[i]) as f64).powi(2);
            noise += ((data[i] - plain[i]) as f64).powi(2);
        }
    }
    assert!(change < 0.02 * noise, "restoration changed quiet frames by {change} against the residual's {noise}");
}

#[test]
fn restored_output_is_the_same_whole_in_bands_and_in_time_blocks() {
    let (data, _) = flashing_movie();
    let model = super::util::seeded_model(
        ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 6.0, scale: 3.0 }),
        9,
    );
    let settings = |tile: [usize; 3], max_memory_bytes: usize| DenoiseSettings {
        tile: Some(tile),
        halo: Some([8, 8, 8]),
        max_memory_bytes,
        restore_events: EventRestoration::On,
        ..Default::default()
    };
    let whole = denoise(&model, &data, &settings([64, 64, 64], 1 << 30)).unwrap();
    let tiled = denoise(&model, &data, &settings([24, 24, 24], 1 << 30)).unwrap();
    let tight = denoise(&model, &data, &settings([24, 24, 24], 24 << 20)).unwrap();
    let plain = denoise(
        &model,
        &data,
        &DenoiseSettings { restore_events: EventRestoration::Off, ..settings([64, 64, 64], 1 << 30) },
    );
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-3 * (1.0 + x.abs()));
    assert!(close(&whole, &tiled), "restored output differs between one tile and many");
    assert!(close(&whole, &tight), "restored output differs under a tight memory budget");
    assert!(whole != plain.unwrap(), "restoration changed nothing");
}

#[test]
fn restoration_is_refused_with_an_official_pipeline() {
    let (data, _) = flashing_movie();
    let model = Model::load(std::path::Path::new(BUILT_IN_MODEL), tch::Device::Cpu).unwrap();
    let compat = CompatSettings::new(OfficialPipeline::DeepcadRt, None, None, None);
    let settings =
        DenoiseSettings { restore_events: EventRestoration::On, compat: Some(compat.unwrap()), ..Default::default() };
    let error = denoise(&model, &data, &settings).unwrap_err().to_string();
    assert!(error.contains("event restoration") && error.contains("official"), "{error}");
}

#[test]
fn a_live_stream_restores_events_exactly_as_the_finished_movie_does() {
    let (data, _) = flashing_movie_of(LIVE_FRAMES);
    let model = || Model::load(std::path::Path::new(BUILT_IN_MODEL), tch::Device::Cpu).unwrap();
    let denoise_live = |restore_events: EventRestoration| {
        let denoise = DenoiseSettings { restore_events, ..Default::default() };
        let live = LiveSettings {
            step: 16,
            denoise,
            // The whole movie as the warm-up window: the normalisation of the finished movie, so
            // that only the step-by-step restoration could differ.
            warm_up_frames: LIVE_FRAMES,
            backlog: Backlog::Queue,
            max_backlog_frames: 100_000,
            ..Default::default()
        };
        let mut stream = LiveStream::new(model(), "live", SIDE, SIDE, SampleType::F32, live).unwrap();
        let tile = stream.tile();
        let mut out = Vec::new();
        for frame in data.chunks_exact(SIDE * SIDE) {
            out.extend(stream.push(frame).unwrap());
        }
        out.extend(stream.finish().unwrap());
        assert!(out.iter().enumerate().all(|(t, f)| f.index == t && f.denoised), "complete, in order, denoised");
        (out.into_iter().flat_map(|f| f.values).collect::<Vec<f32>>(), tile)
    };
    let (restored, tile) = denoise_live(EventRestoration::On);
    let (plain, _) = denoise_live(EventRestoration::Off);
    // `auto` stays off live (a stream has too few frames to measure when its first ones must come out).
    let (automatic, _) = denoise_live(EventRestoration::Auto);
    assert!(automatic == plain, "auto restored events live");
    let whole = denoise(
        &model(),
        &data,
        &DenoiseSettings { restore_events: EventRestoration::On, tile: Some(tile), ..Default::default() },
    )
    .unwrap();
    assert!(restored == whole, "live restored output differs from the finished movie's");
    assert!(restored != plain, "restoration changed nothing live");
}

#[test]
fn auto_restores_a_fast_movie_the_same_whole_and_in_blocks_and_a_job_that_disagrees_is_refused() {
    use crate::util::{deepcad, p, text};
    let dir = tempfile::tempdir().unwrap();
    let movie = dir.path().join("movie.tif");
    // 320 frames (enough to measure how fast events decay) in 3 blocks: the last starts in the
    // cell map's third chunk (100 frames each). A fast indicator at 7.5 Hz: events decay in ~1 frame.
    let args = ["--width", "48", "--height", "48", "--frames", "320", "--photons", "1", "--indicator", "fast"];
    let out = deepcad(&[&["simulate", "-o", p(&movie), "--frame-rate", "7.5", "--seed", "3"][..], &args[..]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let [on, automatic, blocks] = ["on.zarr", "auto.zarr", "blocks.zarr"].map(|name| dir.path().join(name));
    let denoise = |output: &std::path::Path, extra: &[&str]| {
        let base = ["denoise", p(&movie), "--model", "default", "-o", p(output), "--threads", "1"];
        deepcad(&[&base[..], extra].concat())
    };
    let out = denoise(&on, &["--restore-events"]);
    assert!(out.status.success(), "{}", text(&out));
    let out =
        crate::util::deepcad_logged(&["denoise", p(&movie), "-m", "default", "-o", p(&automatic), "--threads", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("fast events restored: the cells' activity decays in"), "{}", text(&out));
    let same = deepcad(&["compare", p(&on), p(&automatic)]);
    assert_eq!(same.status.code(), Some(0), "auto vs on, on a fast movie: {}", text(&same));
    for block in ["0/3", "1/3", "2/3"] {
        let out = denoise(&blocks, &["--block", block]);
        assert!(out.status.success(), "block {block}: {}", text(&out));
    }
    let same = deepcad(&["compare", p(&on), p(&blocks)]);
    assert_eq!(same.status.code(), Some(0), "auto-restored blocks vs the restored whole movie: {}", text(&same));
    let refused = denoise(&blocks, &["--restore-events", "off", "--block", "1/3"]);
    assert!(!refused.status.success(), "a block job without restoration joined a restored output");
    assert!(text(&refused).contains("event restoration on"), "{}", text(&refused));
}

#[test]
fn auto_leaves_a_slow_indicator_as_it_was_and_says_why() {
    use crate::util::{deepcad, p, text};
    let dir = tempfile::tempdir().unwrap();
    let movie = dir.path().join("movie.tif");
    // GCaMP6s at 30 Hz: events decay over ~20 frames, which denoising keeps.
    let args = ["--width", "48", "--height", "48", "--frames", "320", "--photons", "1", "--seed", "3"];
    let out = deepcad(&[&["simulate", "-o", p(&movie)][..], &args[..]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let [off, automatic] = ["off.tif", "auto.tif"].map(|name| dir.path().join(name));
    let denoise = |output: &std::path::Path, extra: &[&str]| {
        let base = ["denoise", p(&movie), "--model", "default", "-o", p(output), "--threads", "1"];
        deepcad(&[&base[..], extra].concat())
    };
    let out = denoise(&off, &["--restore-events", "off"]);
    assert!(out.status.success(), "{}", text(&out));
    let out =
        crate::util::deepcad_logged(&["denoise", p(&movie), "-m", "default", "-o", p(&automatic), "--threads", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("fast events not restored: the cells' activity decays in"), "{}", text(&out));
    let same = deepcad(&["compare", p(&off), p(&automatic)]);
    assert_eq!(same.status.code(), Some(0), "auto vs off, on a slow indicator: {}", text(&same));
}
