//! Whether to restore fast events (`event_restoration.rs`): a setting every door shares, whose
//! default decides from the movie.
//!
//! Restoring brings back transients that denoising loses when they decay within a few frames, and
//! costs some SNR where it has nothing to bring back. So `auto` measures how fast the movie's
//! events decay (`event_timescale.rs`) and restores when they decay within
//! [`FAST_EVENT_FRAMES`] frames. On the harness's simulated movies (docs/evaluation/experiments.md,
//! "Restoring events automatically") that turns it on for a fast indicator (decay 100–200 ms) at
//! 7.5 to 60 Hz, where it raised whole-mask spike r in every case, and leaves it off for GCaMP6s
//! at 30 Hz, where it cost up to 1.4 dB for no spike gain, so those results stay as they were.

use super::event_timescale::{self, EventTimescale, MAX_LAG, MIN_FRAMES};
use crate::io::FrameSource;
use crate::vocabulary::Vocabulary;
use crate::Result;

/// Events decaying to 1/e within fewer frames than this are restored by default. Between the
/// slowest fast-indicator reading measured (11.8 frames: decay 100–200 ms at 60 Hz) and the
/// fastest GCaMP6s one at 30 Hz (15.6 frames, from 300 frames of a 48×48 movie; 26–29 from 600
/// frames of 128×128).
pub const FAST_EVENT_FRAMES: f64 = 14.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventRestoration {
    /// Restore when the movie's events decay within [`FAST_EVENT_FRAMES`] frames.
    #[default]
    Auto,
    On,
    Off,
}

impl Vocabulary for EventRestoration {
    const WHAT: &'static str = "event restoration";
    const WORDS: &'static [(Self, &'static str)] =
        &[(EventRestoration::Auto, "auto"), (EventRestoration::On, "on"), (EventRestoration::Off, "off")];
    /// Requests and macros made when the setting was a yes/no.
    const OLDER: &'static [(Self, &'static str)] = &[(EventRestoration::On, "true"), (EventRestoration::Off, "false")];
}

crate::spelled_but_read_by_hand!(EventRestoration);

/// A word, or `true`/`false` as JSON booleans (requests written when the setting was a yes/no).
impl<'de> serde::Deserialize<'de> for EventRestoration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Given {
            YesNo(bool),
            Word(String),
        }
        match Given::deserialize(deserializer)? {
            Given::YesNo(true) => Ok(EventRestoration::On),
            Given::YesNo(false) => Ok(EventRestoration::Off),
            Given::Word(word) => EventRestoration::from_word(&word).map_err(serde::de::Error::custom),
        }
    }
}

/// The setting resolved for one movie, and why when it was automatic (for the log).
#[derive(Debug, Clone, PartialEq)]
pub struct RestorationDecision {
    pub restore: bool,
    pub why: Option<String>,
}

impl EventRestoration {
    /// Resolves `auto` by measuring the movie's first frames; `on` and `off` read nothing.
    pub fn decide(self, source: &mut dyn FrameSource) -> Result<RestorationDecision> {
        match self {
            EventRestoration::On => Ok(RestorationDecision { restore: true, why: None }),
            EventRestoration::Off => Ok(RestorationDecision { restore: false, why: None }),
            EventRestoration::Auto => {
                let timescale = event_timescale::measure(source)?;
                Ok(RestorationDecision { restore: is_fast(timescale), why: Some(explain(timescale)) })
            }
        }
    }
}

fn is_fast(timescale: EventTimescale) -> bool {
    matches!(timescale, EventTimescale::Measured { decay_frames: Some(d), .. } if d < FAST_EVENT_FRAMES)
}

/// One line for the log: what was measured and what it chose.
pub fn explain(timescale: EventTimescale) -> String {
    let limit = FAST_EVENT_FRAMES;
    match timescale {
        EventTimescale::Measured { decay_frames: Some(d), frames } if d < limit => format!(
            "fast events restored: the cells' activity decays in {d:.1} frames (measured on the first {frames}), \
             under {limit}, so denoising loses part of each brief transient; restoring adds it back"
        ),
        EventTimescale::Measured { decay_frames: Some(d), frames } => format!(
            "fast events not restored: the cells' activity decays in {d:.1} frames (measured on the first {frames}), \
             {limit} or more, slow enough for denoising to keep each transient"
        ),
        EventTimescale::Measured { decay_frames: None, frames } => format!(
            "fast events not restored: the cells' activity decays in more than {MAX_LAG} frames (measured on the \
             first {frames}), slow enough for denoising to keep each transient"
        ),
        EventTimescale::NoActivity { frames } => format!(
            "fast events not restored: no activity stands out of the noise in the first {frames} frames, so there is \
             nothing to restore"
        ),
        EventTimescale::TooShort { frames } => format!(
            "fast events not restored: {frames} frames are too few to measure how fast the events decay \
             ({MIN_FRAMES} needed); turn event restoration on for a fast indicator at a low frame rate"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_may_say_yes_or_no_or_a_word() {
        let read = |json: &str| serde_json::from_str::<EventRestoration>(json).unwrap();
        assert_eq!(read("true"), EventRestoration::On);
        assert_eq!(read("false"), EventRestoration::Off);
        assert_eq!(read("\"auto\""), EventRestoration::Auto);
        assert_eq!(read("\"off\""), EventRestoration::Off);
        assert_eq!("true".parse::<EventRestoration>().unwrap(), EventRestoration::On);
        let unknown = serde_json::from_str::<EventRestoration>("\"sometimes\"").unwrap_err().to_string();
        assert!(unknown.contains("auto, on, off"), "{unknown}");
        assert_eq!(serde_json::to_string(&EventRestoration::Auto).unwrap(), "\"auto\"");
    }

    #[test]
    fn only_a_measured_fast_decay_turns_it_on() {
        let measured = |d| EventTimescale::Measured { decay_frames: d, frames: 600 };
        assert!(is_fast(measured(Some(5.7))));
        assert!(!is_fast(measured(Some(23.0))));
        assert!(!is_fast(measured(None)));
        assert!(!is_fast(EventTimescale::TooShort { frames: 200 }));
        assert!(!is_fast(EventTimescale::NoActivity { frames: 600 }));
        assert!(explain(measured(Some(5.7))).contains("5.7 frames"));
    }
}
