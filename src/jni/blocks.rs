//! The Spark door's native side: `org.deepcad.spark.BlockEngine`'s static methods. One request
//! JSON in (the input movie, the model, the output array, the block numbers and the settings to
//! change), the engine's block plan, block report or block status out as JSON. Same error policy
//! as the Fiji entry points: every engine error and panic becomes an
//! `org.deepcad.fiji.DeepCadException` (the Spark jar carries that class), so a bad block fails
//! its Spark task, never the executor JVM.

use std::path::Path;

use jni::objects::{JClass, JString};
use jni::EnvUnowned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::infer::{block_status, BlockJob, DenoiseSettings};
use crate::io::ReadOptions;
use crate::model::Model;
use crate::progress::{Control, Event, Progress};
use crate::Error;

use super::arguments;
use super::failure::{answer_text, JniResult};

/// What a Spark job may set: the engine's own [`DenoiseSettings`] and [`ReadOptions`], the device
/// and the thread count, at the engine's defaults (the CLI's) unless it does, so a block job and
/// `deepcad denoise` with the same options compute the same numbers. Read with
/// [`arguments::settings`] like every settings object, which refuses unknown keys by name.
#[derive(Debug, Serialize, Deserialize)]
struct BlockOptions {
    #[serde(flatten)]
    settings: DenoiseSettings,
    #[serde(flatten)]
    read: ReadOptions,
    /// `auto` (CUDA when usable), `cpu`, `cuda`, `cuda:N`.
    device: String,
    /// libtorch threads of this process (an executor's cores per task); none leaves it as it is.
    threads: Option<usize>,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            settings: DenoiseSettings::default(),
            read: ReadOptions::default(),
            device: "auto".into(),
            threads: None,
        }
    }
}

/// One block call: `planBlocks(request)` or `denoiseBlock(request)` (which also names `index`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockRequest {
    input: String,
    model: String,
    output: String,
    blocks: i64,
    index: Option<i64>,
    settings: Option<Value>,
}

struct BlockCall {
    model: Model,
    input: String,
    output: String,
    count: usize,
    options: ReadOptions,
    settings: DenoiseSettings,
}

/// Reads the request, applies the thread count and loads the model.
fn block_call(r: BlockRequest) -> JniResult<BlockCall> {
    let count = block_count(r.blocks, "the number of blocks")?;
    let o: BlockOptions = arguments::settings(r.settings.as_ref(), "block settings")?;
    if let Some(threads) = o.threads {
        // Process-wide, like the CLI's --threads: an executor runs this library for its tasks only.
        tch::set_num_threads(crate::device::checked_thread_count(threads)?);
    }
    let device = crate::device::parse_device(&o.device)?;
    let model = Model::load(Path::new(&r.model), device)?;
    Ok(BlockCall { model, input: r.input, output: r.output, count, options: o.read, settings: o.settings })
}

impl BlockCall {
    fn job(&self) -> BlockJob<'_> {
        BlockJob {
            model: &self.model,
            input: Path::new(&self.input),
            output: Path::new(&self.output),
            count: self.count,
            options: &self.options,
            settings: &self.settings,
        }
    }
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

/// `work`'s result as JSON, with the engine's information and warnings under `messages`.
fn with_messages<T: Serialize>(work: impl FnOnce(&mut Messages) -> crate::Result<T>) -> JniResult<Value> {
    let mut messages = Messages::default();
    let mut json = to_json(&work(&mut messages)?)?;
    json["messages"] = messages.0.into();
    Ok(json)
}

fn to_json(value: &impl serde::Serialize) -> JniResult<serde_json::Value> {
    Ok(serde_json::to_value(value).map_err(|e| Error::usage(format!("could not describe the result as JSON: {e}")))?)
}

fn block_count(value: i64, what: &str) -> JniResult<usize> {
    usize::try_from(value).map_err(|_| Error::usage(format!("{what} {value} must be 0 or more")).into())
}

/// Plans `blocks` time blocks and creates the shared output array (or checks that the existing
/// one was prepared for the same movie, model and block count). Returns the plan.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_spark_BlockEngine_planBlocks<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    request: JString<'local>,
) -> JString<'local> {
    answer_text(&mut unowned, |env| {
        let call = block_call(arguments::request(env, &request, "block plan")?)?;
        let plan = with_messages(|messages| call.job().prepare(messages))?;
        Ok(plan.to_string())
    })
}

/// Denoises block `index` of `blocks` into the output: a finished block is skipped
/// (`already_done`), an unfinished one is written whole. Returns the block's report.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_spark_BlockEngine_denoiseBlock<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    request: JString<'local>,
) -> JString<'local> {
    answer_text(&mut unowned, |env| {
        let r: BlockRequest = arguments::request(env, &request, "block")?;
        let index = r.index.ok_or_else(|| Error::usage("the block request names no block index"))?;
        let index = block_count(index, "the block index")?;
        let call = block_call(r)?;
        let mut report = with_messages(|messages| call.job().denoise(index, messages))?;
        report["threads"] = tch::get_num_threads().into();
        report["device"] = crate::device::device_name(call.model.device()).into();
        Ok(report.to_string())
    })
}

/// Which blocks of an output array are done.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_spark_BlockEngine_blockStatus<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    output: JString<'local>,
) -> JString<'local> {
    answer_text(&mut unowned, |env| {
        let output = arguments::string(env, &output, "the output array")?;
        let status = block_status(Path::new(&output))?;
        Ok(to_json(&status)?.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::OutputType;
    use serde_json::json;

    fn options(changes: Value) -> Result<BlockOptions, String> {
        arguments::settings(Some(&changes), "block settings").map_err(|failure| format!("{failure:?}"))
    }

    #[test]
    fn block_settings_are_the_engines_plus_device_and_threads_and_nothing_else() {
        let o = options(json!({"output_type": "float32", "slice": 2, "threads": 3, "device": "cpu"})).unwrap();
        assert_eq!((o.settings.output_type, o.read.slice, o.threads), (OutputType::Float32, Some(2), Some(3)));
        assert_eq!(o.settings.batch_size, DenoiseSettings::default().batch_size);
        let unknown = options(json!({"thread": 3})).unwrap_err();
        assert!(unknown.contains("'thread'") && unknown.contains("threads") && unknown.contains("max_memory_bytes"));
    }
}
