//! Denoising entry points: an in-memory movie (an ImagePlus's planes) into new planes; a movie
//! read plane by plane from Java (a virtual stack) streamed into a TIFF; and TIFF files into a
//! folder through the engine's streaming `denoise_file`.

use std::path::{Path, PathBuf};

use jni::objects::{JClass, JObject, JObjectArray, JString};
use jni::sys::jint;
use jni::{Env, EnvUnowned};
use serde::Deserialize;

use std::cell::RefCell;

use crate::infer::{
    denoise_batch, denoise_in_memory, denoise_to_file, plan_batch, DenoiseSettings, OutputType, DEFAULT_SUFFIX,
};
use crate::io::{Calibration, ImageJMetadata, ReadOptions};
use crate::model::Model;
use crate::progress::{report, Event};
use crate::Error;

use super::arguments;
use super::failure::{Failure, JniResult, ThrowDeepCadException};
use super::java_planes::JavaPlanes;
use super::java_progress::{JavaProgress, SharedProgress};
use super::pixels;
use crate::infer::official_pipeline::{CompatSettings, OfficialPipeline};

/// The denoise settings Java may change (the rest stay at the engine's defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenoiseOptions {
    tile: Option<[usize; 3]>,
    batch_size: Option<usize>,
    max_memory_bytes: Option<usize>,
    overwrite: Option<bool>,
    /// An official DeepCAD-RT pipeline to reproduce instead of seamless tiling.
    compat: Option<CompatOptions>,
    /// Files only: the channel (index from 0) of multi-channel files, as the command line's `--channel`.
    channel: Option<usize>,
    /// Files only: the slice (index from 0) of slices-and-frames files, as the command line's `--slice`.
    slice: Option<usize>,
}

/// `{"pipeline": "deepcad-rt" | "deepcad-rt-2021", "patch": [t, y, x], "overlap": f | "gap": [t, y, x]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompatOptions {
    pipeline: String,
    patch: Option<[usize; 3]>,
    overlap: Option<f64>,
    gap: Option<[usize; 3]>,
}

fn denoise_options(env: &Env<'_>, json: &JString<'_>) -> JniResult<DenoiseOptions> {
    let json = arguments::optional_string(env, json)?;
    Ok(match json.as_deref() {
        None => DenoiseOptions::default(),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            Error::usage(format!("denoise settings {text}: {e} (known keys: tile, batch_size, max_memory_bytes, overwrite, compat, channel, slice)"))
        })?,
    })
}

fn denoise_settings(env: &Env<'_>, json: &JString<'_>, output_type: &JString<'_>) -> JniResult<DenoiseSettings> {
    let output_type = OutputType::from_name(&arguments::string(env, output_type, "the output type")?)?;
    let options = denoise_options(env, json)?;
    let defaults = DenoiseSettings::default();
    let compat = match options.compat {
        Some(c) => Some(CompatSettings::new(OfficialPipeline::from_name(&c.pipeline)?, c.patch, c.overlap, c.gap)?),
        None => None,
    };
    Ok(DenoiseSettings {
        compat,
        tile: options.tile.or(defaults.tile),
        batch_size: options.batch_size.unwrap_or(defaults.batch_size),
        max_memory_bytes: options.max_memory_bytes.unwrap_or(defaults.max_memory_bytes),
        overwrite: options.overwrite.unwrap_or(defaults.overwrite),
        output_type,
        ..defaults
    })
}

fn load_model(env: &Env<'_>, model_path: &JString<'_>, device: &JString<'_>) -> JniResult<Model> {
    let path = arguments::string(env, model_path, "the model path")?;
    let device =
        crate::device::parse_device(&arguments::optional_string(env, device)?.unwrap_or_else(|| "auto".into()))?;
    Ok(Model::load(Path::new(&path), device)?)
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

#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_denoise0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    model_path: JString<'local>,
    device: JString<'local>,
    planes: JObjectArray<'local>,
    width: jint,
    height: jint,
    sample_type: JString<'local>,
    settings_json: JString<'local>,
    output_type: JString<'local>,
    listener: JObject<'local>,
) -> JObjectArray<'local> {
    unowned
        .with_env(|env| -> JniResult<JObjectArray<'local>> {
            let sample_type = pixels::parse_sample_type(&arguments::string(env, &sample_type, "the sample type")?)?;
            let settings = denoise_settings(env, &settings_json, &output_type)?;
            let model = load_model(env, &model_path, &device)?;
            let mut movie = pixels::read_movie(env, "image".into(), &planes, width, height, sample_type)?;
            let (denoised, output_type) = with_progress(env, &listener, |progress| {
                report(
                    progress,
                    Event::Info(&format!("DeepCAD denoises on {}", crate::device::device_name(model.device()))),
                )?;
                denoise_in_memory(&model, &mut movie, &settings, progress)
            })?;
            drop(movie);
            pixels::write_planes(env, &denoised, width, height, output_type)
        })
        .resolve::<ThrowDeepCadException>()
}

/// The calibration Java sends with a streamed movie, written into the output TIFF.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

fn output_metadata(env: &Env<'_>, json: &JString<'_>, frames: usize) -> JniResult<ImageJMetadata> {
    let json = arguments::optional_string(env, json)?;
    let c: CalibrationOptions = match json.as_deref() {
        None => CalibrationOptions::default(),
        Some(text) => serde_json::from_str(text).map_err(|e| Error::usage(format!("calibration {text}: {e}")))?,
    };
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

/// Denoises a movie that Java hands over one plane at a time (`PlaneSource.plane(t)`, called on
/// this thread) into a TIFF at `output_path`, streaming: neither the input nor the output is held
/// whole. Returns a JSON report with where the frames lie in the file (`data_offset`,
/// `frame_bytes`, little-endian) so Java can open it as a virtual stack.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_denoiseToFile0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    model_path: JString<'local>,
    device: JString<'local>,
    planes: JObject<'local>,
    frames: jint,
    width: jint,
    height: jint,
    sample_type: JString<'local>,
    settings_json: JString<'local>,
    output_type: JString<'local>,
    output_path: JString<'local>,
    source_path: JString<'local>,
    calibration_json: JString<'local>,
    listener: JObject<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let sample_type = pixels::parse_sample_type(&arguments::string(env, &sample_type, "the sample type")?)?;
            let settings = denoise_settings(env, &settings_json, &output_type)?;
            let output = PathBuf::from(arguments::string(env, &output_path, "the output path")?);
            let source = arguments::optional_string(env, &source_path)?.map(PathBuf::from);
            let metadata = output_metadata(env, &calibration_json, frames.max(0) as usize)?;
            let model = load_model(env, &model_path, &device)?;
            let name = source.as_ref().map_or_else(|| "image".to_string(), |p| p.display().to_string());
            let protected: Vec<PathBuf> = source.into_iter().collect();
            let shared = RefCell::new(JavaProgress::new(env, &listener));
            let outcome = (|| -> JniResult<crate::infer::DenoiseReport> {
                let mut movie = JavaPlanes::new(&shared, &planes, name, frames, width, height, sample_type)?;
                let mut progress = SharedProgress(&shared);
                report(
                    &mut progress,
                    Event::Info(&format!("DeepCAD denoises on {}", crate::device::device_name(model.device()))),
                )?;
                Ok(denoise_to_file(&model, &mut movie, &output, &protected, &metadata, &settings, &mut progress)?)
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

#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_denoiseFiles0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    model_path: JString<'local>,
    device: JString<'local>,
    input_path: JString<'local>,
    output_folder: JString<'local>,
    settings_json: JString<'local>,
    output_type: JString<'local>,
    listener: JObject<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let input = PathBuf::from(arguments::string(env, &input_path, "the input path")?);
            let folder = PathBuf::from(arguments::string(env, &output_folder, "the output folder")?);
            let settings = denoise_settings(env, &settings_json, &output_type)?;
            let options = denoise_options(env, &settings_json)?;
            let read_options = ReadOptions { channel: options.channel, slice: options.slice };
            let model = load_model(env, &model_path, &device)?;
            // Always a folder here (even for one input file): the command's "Output folder".
            std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
            let plan = plan_batch(std::slice::from_ref(&input), &folder, DEFAULT_SUFFIX, settings.overwrite)?;
            let report = with_progress(env, &listener, |progress| {
                report(
                    progress,
                    Event::Info(&format!(
                        "DeepCAD denoises {} file(s) on {}",
                        plan.jobs.len(),
                        crate::device::device_name(model.device())
                    )),
                )?;
                let done = denoise_batch(&model, &plan, &read_options, &settings, progress)?;
                // As the command line: a batch in which any movie failed fails (the others stay written).
                if !done.failed.is_empty() {
                    return Err(Error::usage(format!(
                        "{} of {} movies could not be denoised (see the warnings above); the others were written to {}",
                        done.failed.len(),
                        plan.jobs.len(),
                        folder.display()
                    )));
                }
                serde_json::to_string(&done).map_err(|e| Error::usage(e.to_string()))
            })?;
            Ok(env.new_string(report)?)
        })
        .resolve::<ThrowDeepCadException>()
}
