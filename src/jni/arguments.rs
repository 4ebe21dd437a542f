//! Reading the arguments of entry points. Each call takes one request JSON (paths, device, sizes
//! and the settings to change), read into a small serde struct per call; its `settings` object is
//! laid key by key over the engine's defaults, so Java sends only what the user changed and a
//! misspelt key or a wrong value is an error naming it and listing the known keys.

use jni::objects::JString;
use jni::Env;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::Error;

use super::failure::JniResult;

pub fn string(env: &Env<'_>, value: &JString<'_>, what: &str) -> JniResult<String> {
    if value.is_null() {
        return Err(Error::usage(format!("{what} is missing (null)")).into());
    }
    Ok(value.try_to_string(env)?)
}

/// Null or blank means "not given".
pub fn optional_string(env: &Env<'_>, value: &JString<'_>) -> JniResult<Option<String>> {
    if value.is_null() {
        return Ok(None);
    }
    let text = value.try_to_string(env)?;
    Ok(if text.trim().is_empty() { None } else { Some(text) })
}

/// A request's optional text: absent or blank means "not given".
pub fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|text| !text.trim().is_empty())
}

/// A call's request JSON (`what` names the call in messages) read into its struct. The request
/// is built by our own Java code, so a malformed one is a bug there, reported as such.
pub fn request<T: DeserializeOwned>(env: &Env<'_>, json: &JString<'_>, what: &str) -> JniResult<T> {
    let text = string(env, json, &format!("the {what} request"))?;
    Ok(serde_json::from_str(&text).map_err(|e| Error::usage(format!("the {what} request {text} is not valid: {e}")))?)
}

/// Blank (or absent) text means "no changes"; otherwise like [`settings`].
pub fn settings_text<T: Serialize + DeserializeOwned + Default>(json: Option<&str>, what: &str) -> JniResult<T> {
    let Some(json) = json.filter(|j| !j.trim().is_empty()) else {
        return Ok(T::default());
    };
    let changes: Value =
        serde_json::from_str(json).map_err(|e| Error::usage(format!("{what} are not valid JSON ({e}): {json}")))?;
    settings(Some(&changes), what)
}

/// `changes` (an object, or null/absent for none) applied key by key over `T::default()`. An
/// unknown key, or a value its key does not take, is an error naming the key and listing the
/// known ones.
pub fn settings<T: Serialize + DeserializeOwned + Default>(changes: Option<&Value>, what: &str) -> JniResult<T> {
    let changes = match changes {
        None | Some(Value::Null) => return Ok(T::default()),
        Some(Value::Object(changes)) => changes,
        Some(other) => return Err(Error::usage(format!("{what} must be a JSON object, got {other}")).into()),
    };
    let defaults = serde_json::to_value(T::default()).map_err(|e| Error::usage(format!("{what}: {e}")))?;
    let Value::Object(defaults) = defaults else {
        return Err(Error::usage(format!("{what} have no keys to set")).into());
    };
    let known = || {
        let mut keys: Vec<&str> = defaults.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys.join(", ")
    };
    let over = |changes: &mut dyn Iterator<Item = (&String, &Value)>| -> Map<String, Value> {
        let mut merged = defaults.clone();
        for (key, value) in changes {
            merged.insert(key.clone(), value.clone());
        }
        merged
    };
    for key in changes.keys() {
        if !defaults.contains_key(key) {
            return Err(Error::usage(format!("unknown {what} key '{key}'; known keys: {}", known())).into());
        }
    }
    serde_json::from_value(Value::Object(over(&mut changes.iter()))).map_err(|whole| {
        // Name the key whose value is wrong: the first one that fails on its own.
        let bad = changes.iter().find_map(|(key, value)| {
            let alone = over(&mut std::iter::once((key, value)));
            serde_json::from_value::<T>(Value::Object(alone)).err().map(|e| (key, value, e))
        });
        let message = match bad {
            Some((key, value, e)) => format!("{what} key '{key}' cannot be {value} ({e}); known keys: {}", known()),
            None => format!("{what} {}: {whole}; known keys: {}", Value::Object(changes.clone()), known()),
        };
        Error::usage(message).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Knobs {
        size: usize,
        name: String,
        tile: Option<[usize; 3]>,
    }

    impl Default for Knobs {
        fn default() -> Self {
            Knobs { size: 4, name: "auto".into(), tile: None }
        }
    }

    fn message(result: JniResult<Knobs>) -> String {
        match result {
            Err(super::super::failure::Failure::Engine(e)) => e.to_string(),
            other => panic!("expected an engine error, got {other:?}"),
        }
    }

    #[test]
    fn changes_apply_over_the_defaults_and_nothing_means_the_defaults() {
        let changes = serde_json::json!({"size": 9, "tile": [1, 2, 3]});
        let knobs: Knobs = settings(Some(&changes), "test settings").unwrap();
        assert_eq!(knobs, Knobs { size: 9, name: "auto".into(), tile: Some([1, 2, 3]) });
        assert_eq!(settings::<Knobs>(None, "test settings").unwrap(), Knobs::default());
        assert_eq!(settings_text::<Knobs>(Some("  "), "test settings").unwrap(), Knobs::default());
    }

    #[test]
    fn an_unknown_key_or_a_wrong_value_is_named_with_the_known_keys() {
        let unknown = message(settings(Some(&serde_json::json!({"sise": 9})), "test settings"));
        assert!(unknown.contains("'sise'") && unknown.contains("known keys: name, size, tile"), "{unknown}");
        let wrong = message(settings(Some(&serde_json::json!({"name": "x", "size": "big"})), "test settings"));
        assert!(wrong.contains("'size'") && wrong.contains("\"big\""), "{wrong}");
        assert!(wrong.contains("known keys: name, size, tile"), "{wrong}");
        let not_object = message(settings(Some(&serde_json::json!([1])), "test settings"));
        assert!(not_object.contains("must be a JSON object"), "{not_object}");
        let not_json = message(settings_text(Some("{size"), "test settings"));
        assert!(not_json.contains("not valid JSON"), "{not_json}");
    }
}
