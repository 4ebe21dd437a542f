//! Denoising entry points: an in-memory movie (an ImagePlus's planes) into new planes; a movie
//! read plane by plane from Java (a virtual stack) streamed into a TIFF; and TIFF files into a
//! folder through the engine's streaming `denoise_file`.

use std::path::{Path, PathBuf};

use jni::objects::{JClass, JObject, JObjectArray, JString};
use jni::{Env, EnvUnowned};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::cell::RefCell;

use crate::infer::{
    denoise_batch, denoise_in_memory, denoise_to_file, plan_batch, DenoiseSettings, OutputType, DEFAULT_SUFFIX,
};
use crate::io::{Calibration, ImageJMetadata, ReadOptions};
use crate::model::Model;
use crate::progress::{report, Event};
use crate::Error;

use super::arguments::{self, given};
use super::failure::{Failure, JniResult, ThrowDeepCadException};
use super::java_planes::JavaPlanes;
use super::java_progress::{JavaProgress, SharedProgress};
use super::pixels;
use crate::infer::official_pipeline::{CompatSettings, OfficialPipeline};
use crate::model::precision::InferencePrecision;

/// The denoise settings Java may change, at the engine's defaults (the command line's) unless it
/// does; read with [`arguments::settings`] like every settings object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenoiseOptions {
    tile: Option<[usize; 3]>,
    batch_size: usize,
    max_memory_bytes: usize,
    overwrite: bool,
    /// `auto`, `float32` or `bfloat16`, as the command line's `--precision`.
    precision: InferencePrecision,
    /// An official DeepCAD-RT pipeline to reproduce instead of seamless tiling.
    compat: Option<CompatOptions>,
    /// Files only: the channel (index from 0) of multi-channel files, as the command line's `--channel`.
    channel: Option<usize>,
    /// Files only: the slice (index from 0) of slices-and-frames files, as the command line's `--slice`.
    slice: Option<usize>,
}

impl Default for DenoiseOptions {
    fn default() -> Self {
        let d = DenoiseSettings::default();
        DenoiseOptions {
            tile: d.tile,
            batch_size: d.batch_size,
            max_memory_bytes: d.max_memory_bytes,
            overwrite: d.overwrite,
            precision: d.precision,
            compat: None,
            channel: None,
            slice: None,
        }
    }
}

/// `{"pipeline": "deepcad-rt" | "deepcad-rt-2021", "patch": [t, y, x], "overlap": f | "gap": [t, y, x]}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompatOptions {
    pipeline: String,
    patch: Option<[usize; 3]>,
    overlap: Option<f64>,
    gap: Option<[usize; 3]>,
}

/// What every denoise call names besides its pixels: the model, the device, the output type and
/// the settings to change.
struct DenoiseCall {
    model: Model,
    settings: DenoiseSettings,
    read_options: ReadOptions,
}

impl DenoiseCall {
    /// Checks the settings before loading the model, so a wrong setting fails fast.
    fn read(model: &str, device: &Option<String>, output_type: &str, settings: &Option<Value>) -> JniResult<Self> {
        let output_type: OutputType = output_type.parse()?;
        let options: DenoiseOptions = arguments::settings(settings.as_ref(), "denoise settings")?;
        let compat = match options.compat {
            Some(c) => Some(CompatSettings::new(c.pipeline.parse::<OfficialPipeline>()?, c.patch, c.overlap, c.gap)?),
            None => None,
        };
        let settings = DenoiseSettings {
            compat,
            tile: options.tile,
            batch_size: options.batch_size,
            max_memory_bytes: options.max_memory_bytes,
            overwrite: options.overwrite,
            precision: options.precision,
            output_type,
            ..DenoiseSettings::default()
        };
        let read_options = ReadOptions { channel: options.channel, slice: options.slice };
        Ok(DenoiseCall { model: load_model(model, device)?, settings, read_options })
    }

    fn on_device(&self) -> String {
        crate::device::device_name(self.model.device())
    }
}

fn load_model(path: &str, device: &Option<String>) -> JniResult<Model> {
    let device = crate::device::parse_device(given(device).unwrap_or("auto"))?;
    Ok(Model::load(Path::new(path), device)?)
}

/// Runs `work` with progress going to `listener`; an exception the listener threw wins over the result.
fn with_progress<'local, T>(
    env: &mut Env<'local>,
    listener: &JObject<'local>,
    work: impl FnOnce(&mut JavaProgress<'_, 'local>) -> crate::Result<T>,
) -> JniResult<T> {
    let mut progress = JavaProgress::new(env, listener);
    let outcome = work(&mut progress);
    if let Some(thrown) = progress.thrown.take() {
        return Err(Failure::JavaThrew(thrown));
    }
    Ok(outcome?)
}

/// `denoise0(planes, request, listener)`: the request names the model, device, output type,
/// settings and the planes' width, height and sample type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InMemoryRequest {
    model: String,
    device: Option<String>,
    output_type: String,
    settings: Option<Value>,
    width: i32,
    height: i32,
    sample_type: String,
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_denoise0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    planes: JObjectArray<'local>,
    request: JString<'local>,
    listener: JObject<'local>,
) -> JObjectArray<'local> {
    unowned
        .with_env(|env| -> JniResult<JObjectArray<'local>> {
            let r: InMemoryRequest = arguments::request(env, &request, "denoise")?;
            let sample_type = pixels::parse_sample_type(&r.sample_type)?;
            let call = DenoiseCall::read(&r.model, &r.device, &r.output_type, &r.settings)?;
            let mut movie = pixels::read_movie(env, "image".into(), &planes, r.width, r.height, sample_type)?;
            let (denoised, output_type) = with_progress(env, &listener, |progress| {
                report(progress, Event::Info(&format!("DeepCAD denoises on {}", call.on_device())))?;
                denoise_in_memory(&call.model, &mut movie, &call.settings, progress)
            })?;
            drop(movie);
            pixels::write_planes(env, &denoised, r.width, r.height, output_type)
        })
        .resolve::<ThrowDeepCadException>()
}

/// The calibration Java sends with a streamed movie, written into the output TIFF; a settings
/// object like any other (keys left out keep the engine's defaults).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalibrationOptions {
    pixel_width: f64,
    pixel_height: f64,
    pixel_depth: f64,
    unit: String,
    frame_interval: f64,
    time_unit: String,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        let c = Calibration::default();
        CalibrationOptions {
            pixel_width: c.pixel_width,
            pixel_height: c.pixel_height,
            pixel_depth: c.pixel_depth,
            unit: c.unit,
            frame_interval: c.frame_interval,
            time_unit: c.time_unit,
        }
    }
}

fn output_metadata(calibration: &Option<Value>, frames: usize) -> JniResult<ImageJMetadata> {
    let c: CalibrationOptions = arguments::settings(calibration.as_ref(), "calibration")?;
    // Non-positive or non-finite sizes would make a TIFF other readers reject; ImageJ treats them as 1.
    let size = |v: f64| if v.is_finite() && v > 0.0 { v } else { 1.0 };
    let calibration = Calibration {
        pixel_width: size(c.pixel_width),
        pixel_height: size(c.pixel_height),
        pixel_depth: size(c.pixel_depth),
        unit: c.unit,
        frame_interval: if c.frame_interval.is_finite() && c.frame_interval > 0.0 { c.frame_interval } else { 0.0 },
        time_unit: c.time_unit,
    };
    Ok(ImageJMetadata { frames, calibration, ..Default::default() })
}

/// `denoiseToFile0(planes, request, listener)`: besides [`InMemoryRequest`]'s fields, the frame
/// count, the output path, the file the planes come from (never overwritten) and the calibration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToFileRequest {
    model: String,
    device: Option<String>,
    output_type: String,
    settings: Option<Value>,
    frames: i32,
    width: i32,
    height: i32,
    sample_type: String,
    output: String,
    source: Option<String>,
    calibration: Option<Value>,
}

/// Denoises a movie that Java hands over one plane at a time (`PlaneSource.plane(t)`, called on
/// this thread) into a TIFF at `output_path`, streaming: neither the input nor the output is held
/// whole. Returns a JSON report with where the frames lie in the file (`data_offset`,
/// `frame_bytes`, little-endian) so Java can open it as a virtual stack.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_denoiseToFile0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    planes: JObject<'local>,
    request: JString<'local>,
    listener: JObject<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let r: ToFileRequest = arguments::request(env, &request, "denoise-to-file")?;
            let sample_type = pixels::parse_sample_type(&r.sample_type)?;
            let metadata = output_metadata(&r.calibration, r.frames.max(0) as usize)?;
            let call = DenoiseCall::read(&r.model, &r.device, &r.output_type, &r.settings)?;
            let output = PathBuf::from(&r.output);
            let source = given(&r.source).map(PathBuf::from);
            let name = source.as_ref().map_or_else(|| "image".to_string(), |p| p.display().to_string());
            let protected: Vec<PathBuf> = source.into_iter().collect();
            let (frames, width, height) = (r.frames, r.width, r.height);
            let shared = RefCell::new(JavaProgress::new(env, &listener));
            let outcome = (|| -> JniResult<crate::infer::DenoiseReport> {
                let mut movie = JavaPlanes::new(&shared, &planes, name, frames, width, height, sample_type)?;
                let mut progress = SharedProgress(&shared);
                report(&mut progress, Event::Info(&format!("DeepCAD denoises on {}", call.on_device())))?;
                Ok(denoise_to_file(
                    &call.model,
                    &mut movie,
                    &output,
                    &protected,
                    &metadata,
                    &call.settings,
                    &mut progress,
                )?)
            })();
            if let Some(thrown) = shared.into_inner().thrown.take() {
                return Err(Failure::JavaThrew(thrown));
            }
            let done = outcome?;
            let layout = done.frame_layout.filter(|l| l.contiguous).ok_or_else(|| {
                Error::format(&done.output, "its frames do not lie back to back; cannot open it as a virtual stack")
            })?;
            let json = serde_json::json!({
                "output": done.output.display().to_string(),
                "frames": done.frames,
                "width": done.width,
                "height": done.height,
                "sample_type": done.sample_type.to_string(),
                "data_offset": layout.data_offset,
                "frame_bytes": layout.frame_bytes,
                "tile": done.tile,
                "seconds": done.seconds,
            });
            Ok(env.new_string(json.to_string())?)
        })
        .resolve::<ThrowDeepCadException>()
}

/// `denoiseFiles0(request, listener)`: the model, device, output type and settings, the input
/// (a file or a folder of them) and the output folder.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilesRequest {
    model: String,
    device: Option<String>,
    output_type: String,
    settings: Option<Value>,
    input: String,
    output_folder: String,
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_denoiseFiles0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    request: JString<'local>,
    listener: JObject<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let r: FilesRequest = arguments::request(env, &request, "denoise-files")?;
            let input = PathBuf::from(&r.input);
            let folder = PathBuf::from(&r.output_folder);
            let call = DenoiseCall::read(&r.model, &r.device, &r.output_type, &r.settings)?;
            // Always a folder here (even for one input file): the command's "Output folder".
            std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
            let model_file = [PathBuf::from(&r.model)];
            let plan = plan_batch(
                std::slice::from_ref(&input),
                &folder,
                DEFAULT_SUFFIX,
                &model_file,
                call.settings.overwrite,
            )?;
            let report = with_progress(env, &listener, |progress| {
                report(
                    progress,
                    Event::Info(&format!("DeepCAD denoises {} file(s) on {}", plan.jobs.len(), call.on_device())),
                )?;
                let done = denoise_batch(&call.model, &plan, &call.read_options, &call.settings, progress)?
                    .require_all(&folder)?;
                serde_json::to_string(&done).map_err(|e| Error::usage(e.to_string()))
            })?;
            Ok(env.new_string(report)?)
        })
        .resolve::<ThrowDeepCadException>()
}
