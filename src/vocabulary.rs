//! One spelling per setting value, shared by every door: the command line parses these words,
//! request JSON from Fiji and Spark carries the same words, bundles record them, and error
//! messages list them. Each settings enum declares its table once ([`Vocabulary`]) and
//! [`spelled!`](crate::spelled) derives serde, `FromStr` and `Display` from it, so no door keeps
//! its own list. Spellings used by earlier releases stay readable (`OLDER`), never written.

use crate::{Error, Result};

/// A settings enum's words.
pub trait Vocabulary: Copy + PartialEq + Sized + 'static {
    /// What the value is, for messages ("loss").
    const WHAT: &'static str;
    /// Each value and its word, in the order help text lists them.
    const WORDS: &'static [(Self, &'static str)];
    /// Words of earlier releases (request JSON, bundles), still accepted on reading.
    const OLDER: &'static [(Self, &'static str)] = &[];
    /// Whether a word is read whatever its letter case ("U16" as "u16"); written words are as listed.
    const ANY_CASE: bool = false;

    /// The value's word.
    fn word(self) -> &'static str {
        Self::WORDS.iter().find(|(value, _)| *value == self).map(|(_, word)| *word).expect("every value has a word")
    }

    /// The value a word names; otherwise an error that lists the words.
    fn from_word(word: &str) -> Result<Self> {
        let same = |w: &str| if Self::ANY_CASE { w.eq_ignore_ascii_case(word) } else { w == word };
        Self::WORDS.iter().chain(Self::OLDER).find(|(_, w)| same(w)).map(|(value, _)| *value).ok_or_else(|| {
            Error::usage(format!("{} '{word}' is unknown; use {}", Self::WHAT, Self::words().join(", ")))
        })
    }

    /// Every current word (for help text and messages).
    fn words() -> Vec<&'static str> {
        Self::WORDS.iter().map(|(_, word)| *word).collect()
    }
}

/// Serde (as its word), `FromStr` and `Display` for a [`Vocabulary`] type.
#[macro_export]
macro_rules! spelled {
    ($type:ty) => {
        $crate::spelled_but_read_by_hand!($type);

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
                let word = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                <$type as $crate::vocabulary::Vocabulary>::from_word(&word).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// [`spelled!`] without `Deserialize`, for a type that also reads something other than its words
/// (`EventRestoration` reads the JSON booleans of requests made when it was a yes/no).
#[macro_export]
macro_rules! spelled_but_read_by_hand {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str($crate::vocabulary::Vocabulary::word(*self))
            }
        }

        impl std::str::FromStr for $type {
            type Err = $crate::Error;
            fn from_str(word: &str) -> $crate::Result<Self> {
                <$type as $crate::vocabulary::Vocabulary>::from_word(word)
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::vocabulary::Vocabulary::word(*self))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Shade {
        Light,
        Dark,
    }

    impl Vocabulary for Shade {
        const WHAT: &'static str = "shade";
        const WORDS: &'static [(Self, &'static str)] = &[(Shade::Light, "light"), (Shade::Dark, "dark")];
        const OLDER: &'static [(Self, &'static str)] = &[(Shade::Dark, "very_dark")];
    }
    crate::spelled!(Shade);

    #[test]
    fn json_and_text_use_the_same_words_and_older_words_still_read() {
        assert_eq!(serde_json::to_string(&Shade::Dark).unwrap(), "\"dark\"");
        assert_eq!(serde_json::from_str::<Shade>("\"very_dark\"").unwrap(), Shade::Dark);
        assert_eq!("light".parse::<Shade>().unwrap(), Shade::Light);
        assert_eq!(Shade::Light.to_string(), "light");
        let err = "grey".parse::<Shade>().unwrap_err().to_string();
        assert!(err.contains("shade 'grey'") && err.contains("light, dark"), "{err}");
        let err = serde_json::from_str::<Shade>("\"grey\"").unwrap_err().to_string();
        assert!(err.contains("light, dark"), "{err}");
        assert!("Light".parse::<Shade>().is_err(), "letter case counts unless the vocabulary says otherwise");
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Loud;

    impl Vocabulary for Loud {
        const WHAT: &'static str = "volume";
        const WORDS: &'static [(Self, &'static str)] = &[(Loud, "loud")];
        const OLDER: &'static [(Self, &'static str)] = &[(Loud, "noisy")];
        const ANY_CASE: bool = true;
    }

    #[test]
    fn a_vocabulary_read_in_any_case_accepts_every_case_of_current_and_older_words() {
        assert_eq!(Loud::from_word("LOUD").unwrap(), Loud);
        assert_eq!(Loud::from_word("Noisy").unwrap(), Loud);
        assert!(Loud::from_word("quiet").is_err());
    }
}
