//! The engine's output rules for the Fiji door's own writes (ImageJ's TIFF writer saves a result
//! image the engine never sees): the same checks, in the same words, as every other door's.

use std::path::{Path, PathBuf};

use jni::objects::{JClass, JString};
use jni::EnvUnowned;
use serde::Deserialize;

use crate::io::{check_outputs, OutputForm};

use super::arguments;
use super::failure::answer;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputRequest {
    /// The file about to be written.
    output: String,
    /// Files it must never replace (the source movie).
    #[serde(default)]
    inputs: Vec<String>,
    /// The user allowed replacing an existing regular file.
    #[serde(default)]
    overwrite: bool,
}

/// Throws a `DeepCadException` naming the problem when `output` may not be written: one of
/// `inputs`, an existing file without `overwrite`, or anything but a regular file (a device, a
/// FIFO, a folder) even with it.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_checkOutput0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    request: JString<'local>,
) {
    answer(&mut unowned, |env| {
        let r: OutputRequest = arguments::request(env, &request, "output check")?;
        let inputs: Vec<PathBuf> = r.inputs.iter().map(PathBuf::from).collect();
        check_outputs(&[(Path::new(&r.output), OutputForm::File)], &inputs, r.overwrite)?;
        Ok(())
    })
}
