//! Live denoising while the microscope records: push a frame, get back every frame that is now
//! final, with its index; `finish()` flushes the tail.
//!
//! A worker thread (`live_worker.rs`) owns the model and runs the streaming core (`stream.rs`) one step of frames at
//! a time on a bounded ring of recent frames (`live_ring.rs`), when the schedule says the step's
//! frames are final (`live_schedule.rs`). `push` only hands the frame over and collects what is
//! finished, so the producer (a camera callback) never waits for the network. When the network
//! falls behind, the stream says so (late frames, frames behind) and, by choice, passes whole steps
//! through undenoised (`Backlog::Drop`) or queues and refuses frames past a bound (`Backlog::Queue`).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::event_restoration::EventRestorer;
use super::live_ring::FrameRing;
use super::live_schedule::LiveSchedule;
pub use super::live_worker::{Backlog, LiveFrame};
use super::live_worker::{Command, Counters, Output, Worker};
use super::normalization::Affine;
use super::{DenoiseSettings, EventRestoration};
use crate::io::{NonFinite, SampleType};
use crate::model::{Model, Normalization};
use crate::{Error, Result};

/// How intensities map to network units when the whole movie cannot be seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LiveNormalization {
    /// The model's own rule: fixed statistics as recorded; a per-movie (or stack) rule measured on
    /// the first `warm_up_frames` frames instead of the whole movie.
    Model,
    /// Statistics given by the caller (e.g. from an earlier acquisition): `x' = (x − offset)/scale`.
    Given { offset: f32, scale: f32 },
}

#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// Frames after a step's last frame to wait for; `None` waits for the network's whole temporal
    /// reach (its halo), and the output then equals the whole-movie output bit for bit.
    pub look_ahead: Option<usize>,
    /// Frames finished per step (a multiple of 8): larger steps cost less network time per frame
    /// and add that many frames of delay.
    pub step: usize,
    pub backlog: Backlog,
    pub max_backlog_frames: usize,
    pub normalization: LiveNormalization,
    /// Frames measured by a per-movie rule before the first frame can be finished.
    pub warm_up_frames: usize,
    /// Tiling, memory budget and threads of the network runs (the time tile is set by the step).
    pub denoise: DenoiseSettings,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            look_ahead: None,
            step: 16,
            backlog: Backlog::Drop,
            max_backlog_frames: 64,
            normalization: LiveNormalization::Model,
            warm_up_frames: 64,
            denoise: DenoiseSettings::default(),
        }
    }
}

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveStatus {
    pub arrived: usize,
    pub finished: usize,
    /// Frames finished after more frames had arrived behind them than the schedule allows.
    pub late: usize,
    /// Frames passed through undenoised.
    pub dropped: usize,
    /// Frames arrived beyond those the next step needs (0 while keeping up).
    pub behind: usize,
}

/// A live denoising stream over one movie.
pub struct LiveStream {
    commands: Option<Sender<Command>>,
    outputs: Receiver<Output>,
    worker: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    schedule: LiveSchedule,
    tile: [usize; 3],
    frame_len: usize,
    width: usize,
    name: String,
    backlog: Backlog,
    max_backlog_frames: usize,
    normalization: Option<(String, Affine)>,
    stopped: bool,
}

impl LiveStream {
    /// Starts a stream of `width × height` frames of `sample_type`, named `name` in messages. The
    /// model moves to the stream's worker thread.
    pub fn new(
        model: Model,
        name: &str,
        width: usize,
        height: usize,
        sample_type: SampleType,
        settings: LiveSettings,
    ) -> Result<LiveStream> {
        if width == 0 || height == 0 {
            return Err(Error::usage(format!("{name}: live frames of {width}×{height} have a zero-sized axis")));
        }
        let halo = settings.denoise.halo.unwrap_or(model.metadata.halo);
        let schedule = LiveSchedule::new(halo[0], settings.step, settings.look_ahead.unwrap_or(halo[0]))
            .map_err(|e| Error::usage(format!("{name}: {e}")))?;
        let tile = live_tile(&model, name, [schedule.tile, height, width], &settings.denoise)?;
        let fixed = fixed_affine(&model.metadata.normalization, settings.normalization);
        let (commands, command_rx) = channel();
        let (output_tx, outputs) = channel();
        let counters = Arc::new(Counters::default());
        counters.next_needed.store(schedule.needed(0), Ordering::Relaxed);
        let worker = Worker {
            ring: FrameRing::new(name.to_string(), width, height, sample_type),
            arrivals: std::collections::VecDeque::new(),
            // Events are restored by the worker, frame by frame in order across steps (a step's
            // pipeline run would restart the cell map at each step and re-read forgotten frames).
            // `auto` stays off live: how fast events decay is measured on 300 frames and more,
            // which a stream does not have when its first frames must come out.
            settings: DenoiseSettings {
                tile: Some(tile),
                restore_events: EventRestoration::Off,
                ..settings.denoise.clone()
            },
            restorer: if settings.denoise.restore_events == EventRestoration::On {
                Some(EventRestorer::new(width, height)?)
            } else {
                None
            },
            schedule,
            affine: fixed.as_ref().map(|(affine, _)| *affine),
            warm_up_frames: settings.warm_up_frames.max(1),
            backlog: settings.backlog,
            max_backlog_frames: settings.max_backlog_frames,
            counters: counters.clone(),
            outputs: output_tx,
            step: 0,
        };
        // The precision the settings ask for, resolved once, as offline denoising does.
        let model = crate::model::precision::inference_model(&model, settings.denoise.precision)?.unwrap_or(model);
        let threads = tch::get_num_threads();
        let worker = std::thread::Builder::new()
            .name("deepcad-live".into())
            .spawn(move || worker.run(model, threads, command_rx))
            .map_err(|e| Error::Torch(format!("{name}: cannot start the live denoising thread: {e}")))?;
        Ok(LiveStream {
            commands: Some(commands),
            outputs,
            worker: Some(worker),
            counters,
            schedule,
            tile,
            frame_len: width * height,
            width,
            name: name.to_string(),
            backlog: settings.backlog,
            max_backlog_frames: settings.max_backlog_frames,
            normalization: fixed.map(|(affine, note)| (note, affine)),
            stopped: false,
        })
    }

    /// The movie's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The steps this stream finishes frames in (its declared look-ahead and delays).
    pub fn schedule(&self) -> LiveSchedule {
        self.schedule
    }

    /// The tile `[t, y, x]` every network run uses: a whole-movie run with this tile gives the
    /// same numbers when the look-ahead covers the halo.
    pub fn tile(&self) -> [usize; 3] {
        self.tile
    }

    /// The normalisation in words (rule and numbers), once known: at once for fixed statistics,
    /// after the warm-up frames for a per-movie rule.
    pub fn normalization(&self) -> Option<&str> {
        self.normalization.as_ref().map(|(note, _)| note.as_str())
    }

    /// The normalisation's numbers, once known (with [`normalization`](Self::normalization)).
    pub fn affine(&self) -> Option<Affine> {
        self.normalization.as_ref().map(|(_, affine)| *affine)
    }

    pub fn status(&self) -> LiveStatus {
        let c = &self.counters;
        let arrived = c.arrived.load(Ordering::Relaxed);
        LiveStatus {
            arrived,
            finished: c.finished.load(Ordering::Relaxed),
            late: c.late.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            behind: arrived.saturating_sub(c.next_needed.load(Ordering::Relaxed)),
        }
    }

    /// Hands frame number `status().arrived` over and returns every frame finished since the last
    /// call, in order. Never waits for the network.
    pub fn push(&mut self, frame: &[f32]) -> Result<Vec<LiveFrame>> {
        let arrived = Instant::now();
        let index = self.counters.arrived.load(Ordering::Relaxed);
        if frame.len() != self.frame_len {
            return Err(Error::usage(format!(
                "{}: live frame {index} has {} values; this stream's frames have {}",
                self.name,
                frame.len(),
                self.frame_len
            )));
        }
        if let Some(bad) = NonFinite::find(frame, self.width, self.frame_len / self.width) {
            return Err(Error::usage(format!("{}: {}", self.name, bad.input_message(index))));
        }
        let status = self.status();
        if self.backlog == Backlog::Queue && status.behind >= self.max_backlog_frames {
            return Err(Error::Limits(format!(
                "{}: the live stream is {} frames behind the camera (at most {} may wait): denoising is slower than acquisition; use a larger step, a GPU, or let late steps pass undenoised",
                self.name, status.behind, self.max_backlog_frames
            )));
        }
        let mut finished = self.poll()?;
        let commands = self.commands.as_ref().ok_or_else(|| self.stopped_error())?;
        self.counters.arrived.fetch_add(1, Ordering::Relaxed);
        if commands.send(Command::Frame(frame.to_vec(), arrived)).is_err() {
            // The worker ended: its error (if any) is in the outputs.
            finished.extend(self.poll()?);
            return Err(self.stopped_error());
        }
        Ok(finished)
    }

    /// Frames finished since the last call, without pushing one.
    pub fn poll(&mut self) -> Result<Vec<LiveFrame>> {
        let mut finished = Vec::new();
        while let Ok(output) = self.outputs.try_recv() {
            self.take(output, &mut finished)?;
        }
        Ok(finished)
    }

    /// Finishes every remaining frame (the movie ends with the last frame pushed) and returns them.
    /// The stream then takes no more frames; its status and normalisation stay readable.
    pub fn finish(&mut self) -> Result<Vec<LiveFrame>> {
        let mut finished = Vec::new();
        let commands = self.commands.take().ok_or_else(|| self.stopped_error())?;
        let _ = commands.send(Command::Finish);
        drop(commands);
        loop {
            match self.outputs.recv() {
                Ok(Output::Done) => break,
                Ok(output) => self.take(output, &mut finished)?,
                Err(_) => return Err(self.stopped_error()),
            }
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        Ok(finished)
    }

    fn take(&mut self, output: Output, finished: &mut Vec<LiveFrame>) -> Result<()> {
        match output {
            Output::Frame(frame) => finished.push(frame),
            Output::Normalization(note, affine) => self.normalization = Some((note, affine)),
            Output::Failed(error) => {
                self.stopped = true;
                self.commands = None;
                return Err(error);
            }
            Output::Done => {}
        }
        Ok(())
    }

    fn stopped_error(&self) -> Error {
        Error::usage(format!("{}: the live stream has stopped (after an error or finish); start a new one", self.name))
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        // Hanging up stops the worker at its next slab, and it is waited for: a worker left
        // running inside libtorch while its host (a JVM) exits could crash the exit.
        self.counters.hung_up.store(true, Ordering::Relaxed);
        self.commands = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The time tile set by the schedule, with the spatial tile the memory plan chooses for frames of
/// this size (or the settings' own).
fn live_tile(model: &Model, name: &str, shape: [usize; 3], settings: &DenoiseSettings) -> Result<[usize; 3]> {
    if let Some([_, y, x]) = settings.tile {
        return Ok([shape[0], y, x]);
    }
    let plan = super::stream::plan(model, name, shape, &DenoiseSettings { tile: None, ..settings.clone() })?;
    Ok([shape[0], plan.tiles.tile[1], plan.tiles.tile[2]])
}

/// The affine map known before any frame, with its description; `None` for rules that measure.
fn fixed_affine(model: &Normalization, rule: LiveNormalization) -> Option<(Affine, String)> {
    match (rule, model) {
        (LiveNormalization::Given { offset, scale }, _) => Some((
            Affine { offset, scale },
            format!("normalisation given for this stream: offset {offset}, scale {scale}"),
        )),
        (LiveNormalization::Model, Normalization::Fixed { offset, scale }) => Some((
            Affine { offset: *offset as f32, scale: *scale as f32 },
            format!("normalisation: the model's recorded statistics, offset {offset}, scale {scale}"),
        )),
        _ => None,
    }
}

/// A frame's delay: from its push to now.
pub fn delay_of(frame: &LiveFrame) -> Duration {
    frame.arrived.elapsed()
}
