//! Reading the plain arguments of entry points: strings, optional paths, settings JSON laid over
//! the engine's defaults (so Java sends only what the user changed, and a misspelt key is an error).

use jni::objects::JString;
use jni::Env;
use serde::de::DeserializeOwned;
use serde::Serialize;

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

/// `json` (an object, or null/blank for none) applied key by key over `T::default()`.
pub fn settings<T: Serialize + DeserializeOwned + Default>(json: Option<&str>, what: &str) -> JniResult<T> {
    let mut merged = serde_json::to_value(T::default()).map_err(|e| Error::usage(format!("{what}: {e}")))?;
    let Some(json) = json.filter(|j| !j.trim().is_empty()) else {
        return Ok(T::default());
    };
    let changes: serde_json::Value =
        serde_json::from_str(json).map_err(|e| Error::usage(format!("{what} are not valid JSON ({e}): {json}")))?;
    let (Some(changes), Some(target)) = (changes.as_object(), merged.as_object_mut()) else {
        return Err(Error::usage(format!("{what} must be a JSON object, got {json}")).into());
    };
    for (key, value) in changes {
        if !target.contains_key(key) {
            let mut known: Vec<&String> = target.keys().collect();
            known.sort();
            return Err(Error::usage(format!("unknown {what} key '{key}'; known keys: {known:?}")).into());
        }
        target.insert(key.clone(), value.clone());
    }
    Ok(serde_json::from_value(merged).map_err(|e| Error::usage(format!("{what} {json}: {e}")))?)
}
