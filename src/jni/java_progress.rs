//! The engine's progress events delivered to a Java `ProgressListener` on the calling thread.
//! The listener's `false` (or an exception it throws) stops the engine at its next safe point.

use jni::objects::{JObject, JThrowable, JValue};
use jni::refs::Global;
use jni::{jni_sig, jni_str, Env};

use super::failure::{Failure, JniResult};
use crate::progress::{Control, Event, Progress};

pub struct JavaProgress<'a, 'local> {
    env: &'a mut Env<'local>,
    /// May be null: then events are dropped and the call never stops early.
    listener: &'a JObject<'local>,
    phase: String,
    total: u64,
    /// An exception the listener threw, re-raised when the native call returns.
    pub thrown: Option<Global<JThrowable<'static>>>,
}

impl<'a, 'local> JavaProgress<'a, 'local> {
    pub fn new(env: &'a mut Env<'local>, listener: &'a JObject<'local>) -> Self {
        JavaProgress { env, listener, phase: String::new(), total: 0, thrown: None }
    }

    /// The call's `outcome`, unless the listener threw: then its exception, so Java sees what it threw.
    pub fn settle<T, E: Into<Failure>>(mut self, outcome: Result<T, E>) -> JniResult<T> {
        match self.thrown.take() {
            Some(thrown) => Err(Failure::JavaThrew(thrown)),
            None => outcome.map_err(Into::into),
        }
    }

    /// The calling thread's environment, for other callbacks made during the same native call
    /// (a frame source shares it through a `RefCell`).
    pub fn env(&mut self) -> &mut Env<'local> {
        self.env
    }

    /// Moves a pending Java exception (from any callback) into `thrown`; true if there was one.
    pub fn keep_pending_exception(&mut self) -> bool {
        let Some(throwable) = self.env.exception_occurred() else { return false };
        self.env.exception_clear();
        if self.thrown.is_none() {
            self.thrown = self.env.new_global_ref(throwable).ok();
        }
        true
    }

    fn send(
        &mut self,
        phase: &str,
        done: u64,
        total: u64,
        message: &str,
        train_loss: f64,
        validation_loss: f64,
    ) -> Control {
        if self.listener.is_null() || self.thrown.is_some() {
            return if self.thrown.is_some() { Control::Stop } else { Control::Continue };
        }
        let listener = self.listener;
        // One local frame per event: a long training sends thousands and must not fill the local table.
        let outcome = self.env.with_local_frame(4, |env| -> jni::errors::Result<bool> {
            let phase = env.new_string(phase)?;
            let message = env.new_string(message)?;
            env.call_method(
                listener,
                jni_str!("onEvent"),
                jni_sig!("(Ljava/lang/String;JJLjava/lang/String;DD)Z"),
                &[
                    JValue::Object(&phase),
                    JValue::Long(done.min(i64::MAX as u64) as i64),
                    JValue::Long(total.min(i64::MAX as u64) as i64),
                    JValue::Object(&message),
                    JValue::Double(train_loss),
                    JValue::Double(validation_loss),
                ],
            )?
            .z()
        });
        match outcome {
            Ok(true) => Control::Continue,
            Ok(false) => Control::Stop,
            Err(_) => {
                // Keep what the listener threw (or the JNI failure's pending exception) for the caller.
                self.keep_pending_exception();
                Control::Stop
            }
        }
    }
}

impl Progress for JavaProgress<'_, '_> {
    fn event(&mut self, event: Event<'_>) -> Control {
        match event {
            Event::Begin { phase, total } => {
                self.phase = phase.to_string();
                self.total = total;
                let phase = self.phase.clone();
                self.send(&phase, 0, total, "", f64::NAN, f64::NAN)
            }
            Event::Advance { done, message } => {
                let phase = self.phase.clone();
                self.send(&phase, done, self.total, message, f64::NAN, f64::NAN)
            }
            Event::Epoch {
                epoch,
                epochs,
                train_loss,
                validation_loss,
                seconds,
                iterations_per_second,
                remaining_seconds,
            } => {
                let message = format!(
                    "{seconds:.1} s, {iterations_per_second:.2} iterations/s, about {} left",
                    crate::progress::human_duration(remaining_seconds)
                );
                self.send("epoch", epoch as u64, epochs as u64, &message, train_loss, validation_loss)
            }
            Event::Warning(message) => self.send("warning", 0, 0, message, f64::NAN, f64::NAN),
            Event::Info(message) => self.send("info", 0, 0, message, f64::NAN, f64::NAN),
        }
    }
}

/// Runs `work` with progress going to `listener`; an exception the listener threw wins over the result.
pub fn with_progress<'local, T>(
    env: &mut Env<'local>,
    listener: &JObject<'local>,
    work: impl FnOnce(&mut JavaProgress<'_, 'local>) -> crate::Result<T>,
) -> JniResult<T> {
    let mut progress = JavaProgress::new(env, listener);
    let outcome = work(&mut progress);
    progress.settle(outcome)
}

/// `JavaProgress` shared with a frame source that calls back into Java on the same thread: both
/// borrow it in turn, never at once (the engine reads a frame or reports progress, not both).
pub struct SharedProgress<'r, 'a, 'local>(pub &'r std::cell::RefCell<JavaProgress<'a, 'local>>);

impl Progress for SharedProgress<'_, '_, '_> {
    fn event(&mut self, event: Event<'_>) -> Control {
        self.0.borrow_mut().event(event)
    }
}
