//! `deepcad denoise --follow`: denoise a TIFF or a Zarr array that another program (ScanImage,
//! Micro-Manager, a script) is still writing, frame by frame as they land, through the engine's
//! live stream.
//!
//! Never a half-written frame: each input kind states when a frame is complete (`tiff_input`: a
//! page once the page after it exists or the file settled; `zarr_input`: a chunk row once the
//! writer began the next one). The writer is done when `--follow-frames` frames were read, when
//! `<input>.done` exists and every frame written was read, or when the input has not changed for
//! `--follow-idle`. The output TIFF grows with the input and is valid after every frame (each page
//! and its directory are written before the next); `<output>.done` (JSON: frames, late,
//! undenoised, normalisation) is written when the follow ended normally, so another program can
//! follow the output the same way.

mod tiff_input;
mod zarr_input;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use deepcad::infer::{DenoiseSettings, EventRestoration, LiveFrame, LiveSettings, LiveStream, OutputType};
use deepcad::io::{FrameData, ReadOptions, SampleType};
use deepcad::model::Model;
use deepcad::progress::{report, Event, Progress};
use deepcad::{Error, Result};
use tiff::encoder::{colortype, TiffEncoder};
use tiff::tags::Tag;

use crate::args::DenoiseArgs;

/// Time between looks at the input.
const POLL: Duration = Duration::from_millis(20);

/// A movie another program is still writing, as far as its frames are complete.
trait GrowingInput {
    fn path(&self) -> &Path;
    /// Looks at the input again; returns how many of its frames are complete (never fewer than
    /// the last look said).
    fn complete_frames(&mut self) -> Result<usize>;
    /// Frame size and sample type; known once a frame is complete.
    fn geometry(&self) -> Geometry;
    /// Reads complete frame `t`; `Ok(false)` when it cannot be read yet (look again later).
    fn read_frame(&mut self, t: usize, out: &mut [f32]) -> Result<bool>;
    /// The writer's end marker is there and every frame written before it is counted complete.
    fn finished(&self) -> bool;
    /// How long the input has not changed.
    fn idle_for(&self) -> Duration;
}

struct Geometry {
    width: usize,
    height: usize,
    sample_type: SampleType,
}

/// `<path>.done`: the writer's end marker for an input, ours for an output.
fn marker_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".done");
    PathBuf::from(name)
}

/// The output, one page appended per finished frame.
struct GrowingTiff {
    encoder: TiffEncoder<File>,
    sample_type: SampleType,
    width: u32,
    height: u32,
    description: String,
    written: usize,
}

impl GrowingTiff {
    fn write(&mut self, values: &[f32], path: &Path) -> Result<()> {
        let (w, h) = (self.width, self.height);
        // ImageJ reads the first page's description; later pages repeat nothing.
        let description = if self.written == 0 { self.description.clone() } else { String::new() };
        let result = match FrameData::from_f32(values, self.sample_type) {
            FrameData::U8(v) => write_page::<colortype::Gray8>(&mut self.encoder, w, h, &v, &description),
            FrameData::U16(v) => write_page::<colortype::Gray16>(&mut self.encoder, w, h, &v, &description),
            FrameData::I16(v) => write_page::<colortype::GrayI16>(&mut self.encoder, w, h, &v, &description),
            FrameData::F32(v) => write_page::<colortype::Gray32Float>(&mut self.encoder, w, h, &v, &description),
        };
        result.map_err(|e| Error::usage(format!("{}: cannot append frame {}: {e}", path.display(), self.written)))?;
        self.written += 1;
        Ok(())
    }
}

fn write_page<C: colortype::ColorType>(
    encoder: &mut TiffEncoder<File>,
    width: u32,
    height: u32,
    data: &[C::Inner],
    description: &str,
) -> tiff::TiffResult<()>
where
    [C::Inner]: tiff::encoder::TiffValue,
{
    let mut image = encoder.new_image::<C>(width, height)?;
    if !description.is_empty() {
        image.encoder().write_tag(Tag::ImageDescription, description)?;
    }
    image.write_data(data)
}

/// The `--follow` run: the live stream between the growing input and the growing output.
pub fn follow(a: &DenoiseArgs, model: Model, settings: DenoiseSettings, progress: &mut dyn Progress) -> Result<()> {
    let [input] = a.inputs.as_slice() else {
        return Err(Error::usage("--follow takes one input movie (the TIFF or Zarr array being written)"));
    };
    if deepcad::io::OutputForm::of_movie(&a.output) != deepcad::io::OutputForm::File {
        return Err(Error::usage(format!(
            "{}: --follow writes its output as a growing TIFF, not a Zarr array; name a .tif output, and once the acquisition ended turn it into Zarr with `deepcad convert`",
            a.output.display()
        )));
    }
    let form = deepcad::io::OutputForm::File;
    deepcad::io::check_outputs(
        &[(&a.output, form), (&marker_path(&a.output), form)],
        std::slice::from_ref(input),
        a.overwrite,
    )?;
    let mut source = growing_input(input, a);
    let first = wait_for_first_frame(source.as_mut(), a, progress)?;
    let info = source.geometry();
    let live_settings = LiveSettings {
        look_ahead: a.look_ahead,
        step: a.live_step,
        backlog: a.behind,
        max_backlog_frames: a.max_behind,
        denoise: settings.clone(),
        ..Default::default()
    };
    let normalization = model.metadata.normalization.clone();
    let name = input.display().to_string();
    let mut stream = LiveStream::new(model, &name, info.width, info.height, info.sample_type, live_settings)?;
    let schedule = stream.schedule();
    report(progress, Event::Info(&format!(
        "following {name}: each frame is final once {} later frames arrived ({}; the first {} frames wait for {}); steps of {} frames, tile {:?}",
        schedule.steady_delay_frames(),
        if schedule.exact() { "look-ahead covers the network's reach: same numbers as denoising the finished file" } else { "shorter than the network's reach: the future is mirrored" },
        schedule.frames(0).end, schedule.first_delay_frames() + 1, schedule.step, stream.tile()
    )))?;
    if settings.restore_events == EventRestoration::Auto {
        // What `auto` would measure needs frames the stream does not have yet.
        report(
            progress,
            Event::Info(
                "fast events not restored while following (how fast the events decay is measured on 300 frames or \
                 more); --restore-events on restores them as frames arrive",
            ),
        )?;
    }
    let mut output = Output {
        path: a.output.clone(),
        file: None,
        output_type: settings.output_type,
        normalization,
        sample_type: info.sample_type,
        width: info.width,
        height: info.height,
    };
    let mut tally = Tally::default();
    tally.take(stream.push(&first)?, &mut output, &stream, progress)?;
    let mut frame = vec![0f32; info.width * info.height];
    let mut next = 1;
    loop {
        let complete = source.complete_frames()?;
        while next < complete && a.follow_frames.is_none_or(|n| next < n) {
            if !source.read_frame(next, &mut frame)? {
                break;
            }
            next += 1;
            tally.take(stream.push(&frame)?, &mut output, &stream, progress)?;
        }
        tally.take(stream.poll()?, &mut output, &stream, progress)?;
        report(progress, Event::Advance { done: tally.frames as u64, message: "frames" })?;
        let why = if a.follow_frames.is_some_and(|n| next >= n) {
            Some("the expected frame count was read")
        } else if source.finished() && next >= complete {
            Some("the writer's end marker appeared")
        } else if source.idle_for() >= a.follow_idle && next >= complete {
            Some("the input stopped growing for --follow-idle")
        } else {
            None
        };
        if let Some(why) = why {
            report(progress, Event::Info(&format!("{name}: stopping after {next} frames: {why}")))?;
            break;
        }
        std::thread::sleep(POLL);
    }
    let last = stream.finish()?;
    tally.take(last, &mut output, &stream, progress)?;
    tally.close(&output, &stream, progress)
}

/// The input as its kind says frames complete: a Zarr array when its name ends in `.zarr` or the
/// folder already holds Zarr metadata, else a TIFF.
fn growing_input(input: &Path, a: &DenoiseArgs) -> Box<dyn GrowingInput> {
    let options = ReadOptions { channel: a.channel, slice: a.slice };
    if deepcad::io::zarr::is_zarr(input) {
        Box::new(zarr_input::ZarrInput::new(input, options, a.follow_idle))
    } else {
        Box::new(tiff_input::TiffInput::new(input, options))
    }
}

/// Waits (within `--follow-idle`) for the input to exist and hold one complete frame; returns it.
fn wait_for_first_frame(
    source: &mut dyn GrowingInput,
    a: &DenoiseArgs,
    progress: &mut dyn Progress,
) -> Result<Vec<f32>> {
    let started = Instant::now();
    loop {
        if source.complete_frames()? > 0 {
            let geometry = source.geometry();
            let mut frame = vec![0f32; geometry.width * geometry.height];
            if source.read_frame(0, &mut frame)? {
                return Ok(frame);
            }
        }
        report(progress, Event::Advance { done: 0, message: "waiting for the first frame" })?;
        if started.elapsed() >= a.follow_idle && (source.idle_for() >= a.follow_idle || source.finished()) {
            return Err(Error::usage(format!(
                "{}: no complete frame appeared within --follow-idle ({}); is the acquisition writing it?",
                source.path().display(),
                humantime::format_duration(a.follow_idle)
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// The output file, created at the first finished frame (its sample type may depend on the
/// normalisation a warm-up window measures).
struct Output {
    path: PathBuf,
    file: Option<GrowingTiff>,
    output_type: OutputType,
    normalization: deepcad::model::Normalization,
    sample_type: SampleType,
    width: usize,
    height: usize,
}

impl Output {
    fn write(&mut self, frame: &LiveFrame, stream: &LiveStream, progress: &mut dyn Progress) -> Result<()> {
        if self.file.is_none() {
            self.file = Some(self.create(stream, progress)?);
        }
        self.file.as_mut().expect("created above").write(&frame.values, &self.path)
    }

    fn create(&self, stream: &LiveStream, progress: &mut dyn Progress) -> Result<GrowingTiff> {
        let note = stream.normalization().unwrap_or("normalisation: unknown").to_string();
        report(progress, Event::Info(&format!("{note} (recorded in the output's description)")))?;
        let spread =
            stream.affine().and_then(|affine| deepcad::infer::normalization::spread(&self.normalization, affine));
        let (sample_type, why) = self.output_type.resolve(self.sample_type, spread);
        if let Some(why) = why {
            report(progress, Event::Info(&why))?;
        }
        let cannot =
            |e: &dyn std::fmt::Display| Error::usage(format!("{}: cannot write the output: {e}", self.path.display()));
        let file = File::create(&self.path).map_err(|e| cannot(&e))?;
        let encoder = TiffEncoder::new(file).map_err(|e| cannot(&e))?;
        let schedule = stream.schedule();
        Ok(GrowingTiff {
            encoder,
            sample_type,
            width: self.width as u32,
            height: self.height as u32,
            description: format!(
                "deepcad live denoise (--follow) of {}; {note}; look-ahead {} frames{}, steps of {}, tile {:?}",
                stream.name(),
                schedule.look_ahead,
                if schedule.exact() { " (exact)" } else { "" },
                schedule.step,
                stream.tile()
            ),
            written: 0,
        })
    }
}

/// What the follow did, for the end marker and the log.
#[derive(Default)]
struct Tally {
    frames: usize,
    undenoised: Vec<usize>,
    /// Seconds from each frame's arrival to its page being written.
    delays: Vec<f64>,
}

impl Tally {
    fn take(
        &mut self,
        frames: Vec<LiveFrame>,
        output: &mut Output,
        stream: &LiveStream,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        for frame in frames {
            output.write(&frame, stream, progress)?;
            self.delays.push(frame.arrived.elapsed().as_secs_f64());
            if !frame.denoised {
                self.undenoised.push(frame.index);
            }
            self.frames += 1;
        }
        Ok(())
    }

    /// Says how it went and writes `<output>.done`.
    fn close(&self, output: &Output, stream: &LiveStream, progress: &mut dyn Progress) -> Result<()> {
        let status = stream.status();
        let mut sorted = self.delays.clone();
        sorted.sort_by(f64::total_cmp);
        let quantile = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
        report(progress, Event::Info(&format!(
            "{}: {} frames written; delay from arrival to written: median {:.2} s, 95th percentile {:.2} s, max {:.2} s; {} late, {} passed through undenoised",
            output.path.display(), self.frames, quantile(0.5), quantile(0.95), quantile(1.0), status.late, self.undenoised.len()
        )))?;
        let record = serde_json::json!({
            "frames": self.frames,
            "late": status.late,
            "undenoised": self.undenoised,
            "normalization": stream.normalization(),
            "look_ahead": stream.schedule().look_ahead,
            "exact": stream.schedule().exact(),
            "delay_seconds": { "median": quantile(0.5), "p95": quantile(0.95), "max": quantile(1.0) },
        });
        deepcad::io::write_file_atomically(&marker_path(&output.path), record.to_string().as_bytes())
    }
}
