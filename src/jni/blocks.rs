//! The Spark door's native side: `org.deepcad.spark.BlockEngine`'s static methods. Paths, block
//! numbers and a settings JSON in; the engine's block plan, block report or block status out as
//! JSON. Same error policy as the Fiji entry points: every engine error and panic becomes an
//! `org.deepcad.fiji.DeepCadException` (the Spark jar carries that class), so a bad block fails
//! its Spark task, never the executor JVM.

use std::path::Path;

use jni::objects::{JClass, JString};
use jni::sys::jint;
use jni::{Env, EnvUnowned};
use serde::Deserialize;

use crate::infer::{block_status, BlockJob, DenoiseSettings, OutputType};
use crate::io::ReadOptions;
use crate::model::Model;
use crate::progress::{Control, Event, Progress};
use crate::Error;

use super::arguments;
use super::failure::{JniResult, ThrowDeepCadException};

/// What a Spark job may set; the rest stays at the engine's defaults, which are the CLI's, so a
/// block job and `deepcad denoise` with the same options compute the same numbers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockOptions {
    tile: Option<[usize; 3]>,
    batch_size: Option<usize>,
    max_memory_bytes: Option<usize>,
    /// `auto`, `input` or `float32`.
    output_type: Option<String>,
    /// `auto` (CUDA when usable), `cpu`, `cuda`, `cuda:N`.
    device: Option<String>,
    /// libtorch threads of this process (an executor's cores per task).
    threads: Option<usize>,
    channel: Option<usize>,
    slice: Option<usize>,
}

const KNOWN_KEYS: &str = "tile, batch_size, max_memory_bytes, output_type, device, threads, channel, slice";

struct BlockCall {
    model: Model,
    input: String,
    output: String,
    options: ReadOptions,
    settings: DenoiseSettings,
}

/// Reads the arguments every call shares, applies the thread count and loads the model.
fn block_call(
    env: &Env<'_>,
    input: &JString<'_>,
    model: &JString<'_>,
    output: &JString<'_>,
    settings_json: &JString<'_>,
) -> JniResult<BlockCall> {
    let input = arguments::string(env, input, "the input movie")?;
    let model_path = arguments::string(env, model, "the model")?;
    let output = arguments::string(env, output, "the output array")?;
    let json = arguments::optional_string(env, settings_json)?;
    let o: BlockOptions = match json.as_deref() {
        None => BlockOptions::default(),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| Error::usage(format!("block settings {text}: {e} (known keys: {KNOWN_KEYS})")))?,
    };
    if let Some(threads) = o.threads {
        // Process-wide, like the CLI's --threads: an executor runs this library for its tasks only.
        tch::set_num_threads(crate::device::checked_thread_count(threads)?);
    }
    let defaults = DenoiseSettings::default();
    let settings = DenoiseSettings {
        tile: o.tile.or(defaults.tile),
        batch_size: o.batch_size.unwrap_or(defaults.batch_size),
        max_memory_bytes: o.max_memory_bytes.unwrap_or(defaults.max_memory_bytes),
        output_type: o.output_type.as_deref().map_or(Ok(OutputType::Auto), OutputType::from_name)?,
        ..defaults
    };
    let device = crate::device::parse_device(o.device.as_deref().unwrap_or("auto"))?;
    let model = Model::load(Path::new(&model_path), device)?;
    Ok(BlockCall { model, input, output, options: ReadOptions { channel: o.channel, slice: o.slice }, settings })
}

/// Keeps the engine's information and warnings for the JSON answer (a library inside a JVM does
/// not print).
#[derive(Default)]
struct Messages(Vec<String>);

impl Progress for Messages {
    fn event(&mut self, event: Event<'_>) -> Control {
        match event {
            Event::Info(text) => self.0.push(text.to_string()),
            Event::Warning(text) => self.0.push(format!("warning: {text}")),
            _ => {}
        }
        Control::Continue
    }
}

fn to_json(value: &impl serde::Serialize) -> JniResult<serde_json::Value> {
    Ok(serde_json::to_value(value).map_err(|e| Error::usage(format!("could not describe the result as JSON: {e}")))?)
}

fn block_count(value: jint, what: &str) -> JniResult<usize> {
    usize::try_from(value).map_err(|_| Error::usage(format!("{what} {value} must be 0 or more")).into())
}

/// Plans `blocks` time blocks and creates the shared output array (or checks that the existing
/// one was prepared for the same movie, model and block count). Returns the plan.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_spark_BlockEngine_planBlocks<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    input: JString<'local>,
    model: JString<'local>,
    output: JString<'local>,
    blocks: jint,
    settings_json: JString<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let count = block_count(blocks, "the number of blocks")?;
            let call = block_call(env, &input, &model, &output, &settings_json)?;
            let mut messages = Messages::default();
            let job = BlockJob {
                model: &call.model,
                input: Path::new(&call.input),
                output: Path::new(&call.output),
                count,
                options: &call.options,
                settings: &call.settings,
            };
            let plan = job.prepare(&mut messages)?;
            let mut json = to_json(&plan)?;
            json["messages"] = messages.0.into();
            Ok(env.new_string(json.to_string())?)
        })
        .resolve::<ThrowDeepCadException>()
}

/// Denoises block `index` of `blocks` into the output: a finished block is skipped
/// (`already_done`), an unfinished one is written whole. Returns the block's report.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_spark_BlockEngine_denoiseBlock<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    input: JString<'local>,
    model: JString<'local>,
    output: JString<'local>,
    index: jint,
    blocks: jint,
    settings_json: JString<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let index = block_count(index, "the block index")?;
            let count = block_count(blocks, "the number of blocks")?;
            let call = block_call(env, &input, &model, &output, &settings_json)?;
            let mut messages = Messages::default();
            let job = BlockJob {
                model: &call.model,
                input: Path::new(&call.input),
                output: Path::new(&call.output),
                count,
                options: &call.options,
                settings: &call.settings,
            };
            let report = job.denoise(index, &mut messages)?;
            let mut json = to_json(&report)?;
            json["threads"] = tch::get_num_threads().into();
            json["device"] = crate::device::device_name(call.model.device()).into();
            json["messages"] = messages.0.into();
            Ok(env.new_string(json.to_string())?)
        })
        .resolve::<ThrowDeepCadException>()
}

/// Which blocks of an output array are done.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_spark_BlockEngine_blockStatus<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    output: JString<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let output = arguments::string(env, &output, "the output array")?;
            let status = block_status(Path::new(&output))?;
            Ok(env.new_string(to_json(&status)?.to_string())?)
        })
        .resolve::<ThrowDeepCadException>()
}
