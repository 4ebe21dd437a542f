//! The live stream's worker thread: it owns the model, keeps the ring of recent frames, and runs
//! each step of the schedule through the streaming core when the step's frames are final, passing
//! steps through undenoised when it has fallen too far behind (`Backlog::Drop`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

use super::event_restoration::EventRestorer;
use super::live_ring::FrameRing;
use super::live_schedule::{blocks_for, LiveSchedule};
use super::normalization::{resolve_normalization, Affine};
use super::DenoiseSettings;
use crate::io::InMemoryMovie;
use crate::model::Model;
use crate::progress::{Control, Event, Progress};
use crate::{Error, Result};

/// What to do when frames arrive faster than the network finishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// Once more than `max_backlog_frames` wait, whole steps leave undenoised (their input as it
    /// came, flagged), so the output keeps up with the camera and stays complete.
    Drop,
    /// Every frame is denoised; a push that would leave more than `max_backlog_frames` waiting is
    /// refused with an error (memory stays bounded).
    Queue,
}

impl crate::vocabulary::Vocabulary for Backlog {
    const WHAT: &'static str = "behind";
    const WORDS: &'static [(Self, &'static str)] = &[(Backlog::Drop, "drop"), (Backlog::Queue, "queue")];
}
crate::spelled!(Backlog);

/// One finished frame, in input units.
#[derive(Debug, Clone)]
pub struct LiveFrame {
    pub index: usize,
    pub values: Vec<f32>,
    /// `false` when the frame left undenoised because the stream was behind (`Backlog::Drop`).
    pub denoised: bool,
    /// When its input was pushed.
    pub arrived: Instant,
}

/// Counters shared by the producer and the worker.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) arrived: AtomicUsize,
    pub(super) finished: AtomicUsize,
    pub(super) late: AtomicUsize,
    pub(super) dropped: AtomicUsize,
    /// Frames the next step needs before it can run.
    pub(super) next_needed: AtomicUsize,
    /// The stream was dropped: the worker stops at its next slab.
    pub(super) hung_up: AtomicBool,
}

pub(super) enum Command {
    Frame(Vec<f32>, Instant),
    Finish,
}

pub(super) enum Output {
    Frame(LiveFrame),
    /// The normalisation used, once known, in words and numbers.
    Normalization(String, Affine),
    Failed(Error),
    Done,
}

/// The worker thread's state: the ring, the schedule, and where the stream is in it.
pub(super) struct Worker {
    pub(super) ring: FrameRing,
    /// Arrival times of frames not yet finished, oldest first.
    pub(super) arrivals: std::collections::VecDeque<Instant>,
    /// Settings for the streaming core (never restoring events itself: `restorer` does).
    pub(super) settings: DenoiseSettings,
    /// Restores every denoised frame's fast events, and follows the frames passed through, in order.
    pub(super) restorer: Option<EventRestorer>,
    pub(super) schedule: LiveSchedule,
    pub(super) affine: Option<Affine>,
    pub(super) warm_up_frames: usize,
    pub(super) backlog: Backlog,
    pub(super) max_backlog_frames: usize,
    pub(super) counters: Arc<Counters>,
    pub(super) outputs: Sender<Output>,
    /// The next step to run.
    pub(super) step: usize,
}

impl Worker {
    pub(super) fn run(mut self, model: Model, threads: i32, commands: Receiver<Command>) {
        if tch::get_num_threads() != threads {
            tch::set_num_threads(threads);
        }
        let result = (|| -> Result<()> {
            while let Ok(command) = commands.recv() {
                match command {
                    Command::Frame(values, arrived) => self.take_frame(&model, values, arrived)?,
                    Command::Finish => return self.finish(&model),
                }
            }
            Ok(()) // the stream was dropped
        })();
        let _ = self.outputs.send(match result {
            Ok(()) => Output::Done,
            Err(error) => Output::Failed(error),
        });
    }

    fn take_frame(&mut self, model: &Model, values: Vec<f32>, arrived: Instant) -> Result<()> {
        self.ring.push(values);
        self.arrivals.push_back(arrived);
        if self.affine.is_none() && self.ring.arrived() >= self.warm_up_frames {
            self.warm_up(model)?;
        }
        while self.affine.is_some() && self.ring.arrived() >= self.schedule.needed(self.step) {
            let frames = self.schedule.frames(self.step);
            let behind = self.counters.arrived.load(Ordering::Relaxed).saturating_sub(self.schedule.needed(self.step));
            if self.backlog == Backlog::Drop && behind > self.max_backlog_frames {
                self.pass_through(frames)?;
            } else {
                let keep_up = self.backlog == Backlog::Drop;
                match self.denoise(model, self.schedule.needed(self.step), frames.clone(), keep_up) {
                    // Fell too far behind while denoising it: the step leaves undenoised.
                    Err(Error::Cancelled) if keep_up => self.pass_through(frames)?,
                    other => other?,
                }
            }
            self.step += 1;
            self.counters.next_needed.store(self.schedule.needed(self.step), Ordering::Relaxed);
            // Later steps read from at most one time tile before their first frame.
            self.ring.forget_before(self.schedule.frames(self.step).start.saturating_sub(self.schedule.tile));
        }
        Ok(())
    }

    /// Measures the model's per-movie rule on the frames so far (the warm-up window).
    fn warm_up(&mut self, model: &Model) -> Result<()> {
        let frames = self.ring.arrived();
        let mut data = Vec::with_capacity(frames * self.ring.width * self.ring.height);
        for t in 0..frames {
            data.extend_from_slice(self.ring.frame(t)?);
        }
        let (w, h, sample_type) = (self.ring.width, self.ring.height, self.ring.sample_type);
        let mut window = InMemoryMovie::new(self.ring.name.clone(), w, h, frames, sample_type, data)?;
        let affine = resolve_normalization(&model.metadata.normalization, &mut window)?;
        self.affine = Some(affine);
        let note = format!(
            "normalisation: the model's per-movie rule measured on the first {frames} frames (warm-up window), offset {}, scale {}",
            affine.offset, affine.scale
        );
        let _ = self.outputs.send(Output::Normalization(note, affine));
        Ok(())
    }

    /// The movie ended: everything not yet finished, on the movie as it is.
    fn finish(&mut self, model: &Model) -> Result<()> {
        let total = self.ring.arrived();
        if self.affine.is_none() && total > 0 {
            self.warm_up(model)?;
        }
        let first = self.counters.finished.load(Ordering::Relaxed);
        if first < total {
            self.denoise(model, total, first..total, false)?;
        }
        Ok(())
    }

    /// Runs the streaming core on the movie as if it had `movie_len` frames, for `wanted` frames.
    /// `keep_up`: give up (`Error::Cancelled`) once more than the allowed frames wait behind it.
    fn denoise(
        &mut self,
        model: &Model,
        movie_len: usize,
        wanted: std::ops::Range<usize>,
        keep_up: bool,
    ) -> Result<()> {
        let affine = self.affine.expect("set before any step runs");
        let (tile, halo) = (self.schedule.tile, self.schedule.halo);
        let Some((blocks, first_kept)) = blocks_for(movie_len, tile, halo, wanted.clone())
            .map_err(|e| Error::usage(format!("{}: {e}", self.ring.name)))?
        else {
            return Ok(());
        };
        let mut movie = self.ring.as_movie(movie_len);
        let mut index = first_kept;
        let mut done = Vec::new();
        super::stream::denoise_to_sink(
            model,
            &mut movie,
            &self.settings,
            affine,
            Some(blocks),
            &mut KeepUp { counters: &self.counters, needed: movie_len, max: self.max_backlog_frames, active: keep_up },
            &mut |values: &[f32]| {
                if wanted.contains(&index) {
                    done.push(values.to_vec());
                }
                index += 1;
                Ok(())
            },
        )?;
        for (t, values) in wanted.zip(done) {
            let values = match self.restorer.as_mut() {
                Some(restorer) => restorer.restore(&mut self.ring.as_movie(movie_len), t, &values)?.to_vec(),
                None => values,
            };
            self.emit(values, true);
        }
        Ok(())
    }

    /// The step's input as it came, flagged undenoised.
    fn pass_through(&mut self, frames: std::ops::Range<usize>) -> Result<()> {
        for t in frames {
            if let Some(restorer) = self.restorer.as_mut() {
                // Its cell map follows every frame, so that the next denoised step needs no old ones.
                restorer.observe(&mut self.ring.as_movie(t + 1), t)?;
            }
            let values = self.ring.frame(t)?.to_vec();
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.emit(values, false);
        }
        Ok(())
    }

    fn emit(&mut self, values: Vec<f32>, denoised: bool) {
        let index = self.counters.finished.load(Ordering::Relaxed);
        let arrived = self.arrivals.pop_front().unwrap_or_else(Instant::now);
        let behind_it = self.counters.arrived.load(Ordering::Relaxed).saturating_sub(index + 1);
        if behind_it > self.schedule.allowed_delay(index) {
            self.counters.late.fetch_add(1, Ordering::Relaxed);
        }
        self.counters.finished.store(index + 1, Ordering::Relaxed);
        let _ = self.outputs.send(Output::Frame(LiveFrame { index, values, denoised, arrived }));
    }
}

/// Stops a step once more than `max` frames arrived beyond those it runs on (checked between
/// slabs): a step that cannot catch up would otherwise hold every frame the camera sends meanwhile.
struct KeepUp<'a> {
    counters: &'a Counters,
    needed: usize,
    max: usize,
    active: bool,
}

impl Progress for KeepUp<'_> {
    fn event(&mut self, _event: Event<'_>) -> Control {
        let behind = self.counters.arrived.load(Ordering::Relaxed).saturating_sub(self.needed);
        if self.counters.hung_up.load(Ordering::Relaxed) || (self.active && behind > self.max) {
            Control::Stop
        } else {
            Control::Continue
        }
    }
}
