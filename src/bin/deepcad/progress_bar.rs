//! The CLI's adapter for the engine's progress interface: indicatif bars on a terminal, plain
//! lines otherwise; Ctrl-C raises the cancel flag so training keeps its last finished epoch.

use deepcad::progress::{CancelFlag, Control, Event, Progress};
use indicatif::{ProgressBar, ProgressStyle};

pub struct TerminalProgress {
    bar: Option<ProgressBar>,
    cancel: CancelFlag,
    quiet: bool,
}

impl TerminalProgress {
    pub fn new(cancel: CancelFlag, quiet: bool) -> Self {
        TerminalProgress { bar: None, cancel, quiet }
    }

    fn println(&self, line: String) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => say(&line),
        }
    }
}

/// One line on standard error that never stops the run: when stderr's reader has gone (a dropped
/// ssh session, `2>&1 | head`) the line is lost, but the run still finishes or cleans up
/// (`eprintln!` would panic; with SIGPIPE at its default the process would die mid-write).
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

impl Progress for TerminalProgress {
    fn event(&mut self, event: Event<'_>) -> Control {
        match event {
            Event::Begin { phase, total } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                if !self.quiet {
                    let bar = ProgressBar::new(total);
                    // No total (a run bounded by time): count and elapsed time instead of a bar.
                    let template = if total > 0 {
                        "{prefix:>9} [{bar:30}] {pos}/{len} {msg} (eta {eta})"
                    } else {
                        "{prefix:>9} {spinner} {pos} {msg} ({elapsed})"
                    };
                    bar.set_style(
                        ProgressStyle::with_template(template).expect("static template").progress_chars("=> "),
                    );
                    bar.set_prefix(phase.to_string());
                    self.bar = Some(bar);
                }
            }
            Event::Advance { done, message } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(done);
                    bar.set_message(message.to_string());
                }
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
                if !self.quiet {
                    let of = if epochs > 0 { format!("/{epochs}") } else { String::new() };
                    self.println(format!(
                        "epoch {epoch}{of}: train loss {train_loss:.5}, validation loss {validation_loss:.5} ({seconds:.1} s, {iterations_per_second:.2} iterations/s, about {} left)",
                        deepcad::progress::human_duration(remaining_seconds)
                    ));
                }
            }
            Event::Warning(text) => self.println(format!("deepcad: warning: {text}")),
            Event::Info(text) => {
                if !self.quiet {
                    self.println(format!("deepcad: {text}"))
                }
            }
        }
        if self.cancel.is_cancelled() {
            Control::Stop
        } else {
            Control::Continue
        }
    }
}

impl Drop for TerminalProgress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
