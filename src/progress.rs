//! Progress and cancellation for every long call, in one small interface (push model, after
//! ripgrep's `Sink`): the engine calls the sink; a sink returning `Control::Stop` ends the call
//! cleanly at the next safe point with `Error::Cancelled`. Each door supplies an adapter
//! (progress bar in the CLI, StatusService in Fiji); the engine itself never prints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// One event of a long call.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A phase begins; `total` units of work are expected (0 when unknown).
    Begin { phase: &'a str, total: u64 },
    /// `done` of the phase's units are finished.
    Advance { done: u64, message: &'a str },
    /// A training epoch ended (`seconds` including its validation; `epochs` 0 when the run lasts
    /// as long as its time budget allows); `remaining_seconds` is the
    /// estimated time to the end of the run (the planned epochs or the time budget, whichever first).
    Epoch {
        epoch: usize,
        epochs: usize,
        train_loss: f64,
        validation_loss: f64,
        seconds: f64,
        iterations_per_second: f64,
        remaining_seconds: f64,
    },
    /// Something the user should know but that does not stop the work.
    Warning(&'a str),
    /// A line of information (device chosen, files found...).
    Info(&'a str),
}

pub trait Progress {
    fn event(&mut self, event: Event<'_>) -> Control;
}

/// A sink that ignores everything and never stops.
pub struct Silent;

impl Progress for Silent {
    fn event(&mut self, _event: Event<'_>) -> Control {
        Control::Continue
    }
}

/// A cloneable stop flag that another thread (a Cancel button, Ctrl-C) can raise.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Helper for engine code: report an event, turn a stop request into `Error::Cancelled`.
pub fn report(progress: &mut dyn Progress, event: Event<'_>) -> crate::Result<()> {
    match progress.event(event) {
        Control::Continue => Ok(()),
        Control::Stop => Err(crate::Error::Cancelled),
    }
}

/// A duration for people: "45 s", "12 min", "2.5 h".
pub fn human_duration(seconds: f64) -> String {
    match seconds {
        s if !s.is_finite() => "unknown time".to_string(),
        s if s < 90.0 => format!("{:.0} s", s.max(0.0)),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}
