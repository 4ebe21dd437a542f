//! Denoising entry points: an in-memory movie (an ImagePlus's planes) into new planes; a movie
//! read plane by plane from Java (a virtual stack) streamed into a TIFF; and TIFF files into a
//! folder through the engine's streaming `denoise_file_to_file`.

use std::path::{Path, PathBuf};

use jni::objects::{JClass, JObject, JObjectArray, JString};
use jni::EnvUnowned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::cell::RefCell;

use crate::infer::{
    denoise_batch, denoise_source_to_file, denoise_source_to_memory, plan_batch, DenoiseSettings, DEFAULT_SUFFIX,
};
use crate::io::{Calibration, ImageJMetadata, ReadOptions, SampleType};
use crate::model::Model;
use crate::progress::{report, Event};
use crate::Error;

use super::arguments::{self, given};
use super::failure::{answer, answer_text, JniResult};
use super::java_planes::JavaPlanes;
use super::java_progress::{with_progress, JavaProgress, SharedProgress};
use super::pixels;

/// The denoise settings Java may change: the engine's own [`DenoiseSettings`] (output type,
/// tile, memory budget, precision, official pipeline...) and, for files, which channel and slice
/// to read, at the engine's defaults (the command line's) unless it does. Read with
/// [`arguments::settings`] like every settings object, which refuses unknown keys by name.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DenoiseOptions {
    #[serde(flatten)]
    settings: DenoiseSettings,
    #[serde(flatten)]
    read: ReadOptions,
}

/// What every denoise call names besides its pixels: the model, the device and
/// the settings to change.
struct DenoiseCall {
    model: Model,
    settings: DenoiseSettings,
    read_options: ReadOptions,
}

impl DenoiseCall {
    /// Checks the settings before loading the model, so a wrong setting fails fast.
    fn read(model: &str, device: &Option<String>, settings: &Option<Value>) -> JniResult<Self> {
        let options: DenoiseOptions = arguments::settings(settings.as_ref(), "denoise settings")?;
        Ok(DenoiseCall { model: load_model(model, device)?, settings: options.settings, read_options: options.read })
    }

    fn on_device(&self) -> String {
        crate::device::device_name(self.model.device())
    }
}

fn load_model(path: &str, device: &Option<String>) -> JniResult<Model> {
    let device = crate::device::parse_device(given(device).unwrap_or("auto"))?;
    Ok(Model::load(Path::new(path), device)?)
}

/// `denoise0(planes, request, listener)`: the request names the model, device,
/// settings (the output type among them) and the planes' width, height and sample type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InMemoryRequest {
    model: String,
    device: Option<String>,
    settings: Option<Value>,
    width: i32,
    height: i32,
    sample_type: SampleType,
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_denoise0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    planes: JObjectArray<'local>,
    request: JString<'local>,
    listener: JObject<'local>,
) -> JObjectArray<'local> {
    answer(&mut unowned, |env| {
        let r: InMemoryRequest = arguments::request(env, &request, "denoise")?;
        let sample_type = r.sample_type;
        let call = DenoiseCall::read(&r.model, &r.device, &r.settings)?;
        let mut movie = pixels::read_movie(env, "image".into(), &planes, r.width, r.height, sample_type)?;
        let (denoised, output_type) = with_progress(env, &listener, |progress| {
            report(progress, Event::Info(&format!("DeepCAD denoises on {}", call.on_device())))?;
            denoise_source_to_memory(&call.model, &mut movie, &call.settings, progress)
        })?;
        drop(movie);
        pixels::write_planes(env, &denoised, r.width, r.height, output_type)
    })
}

fn output_metadata(calibration: &Option<Value>, frames: usize) -> JniResult<ImageJMetadata> {
    // The calibration Java sends with a streamed movie: a settings object like any other.
    let c: Calibration = arguments::settings(calibration.as_ref(), "calibration")?;
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
    settings: Option<Value>,
    frames: i32,
    width: i32,
    height: i32,
    sample_type: SampleType,
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
    answer_text(&mut unowned, |env| {
        let r: ToFileRequest = arguments::request(env, &request, "denoise-to-file")?;
        let sample_type = r.sample_type;
        let metadata = output_metadata(&r.calibration, r.frames.max(0) as usize)?;
        let call = DenoiseCall::read(&r.model, &r.device, &r.settings)?;
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
            Ok(denoise_source_to_file(
                &call.model,
                &mut movie,
                &output,
                &protected,
                &metadata,
                &call.settings,
                &mut progress,
            )?)
        })();
        let done = shared.into_inner().settle(outcome)?;
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
        Ok(json.to_string())
    })
}

/// `denoiseFiles0(request, listener)`: the model, device and settings, the input
/// (a file or a folder of them) and the output folder.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilesRequest {
    model: String,
    device: Option<String>,
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
    answer_text(&mut unowned, |env| {
        let r: FilesRequest = arguments::request(env, &request, "denoise-files")?;
        let input = PathBuf::from(&r.input);
        let folder = PathBuf::from(&r.output_folder);
        let call = DenoiseCall::read(&r.model, &r.device, &r.settings)?;
        // Always a folder here (even for one input file): the command's "Output folder".
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        let model_file = [PathBuf::from(&r.model)];
        let plan =
            plan_batch(std::slice::from_ref(&input), &folder, DEFAULT_SUFFIX, &model_file, call.settings.overwrite)?;
        let report = with_progress(env, &listener, |progress| {
            report(
                progress,
                Event::Info(&format!("DeepCAD denoises {} file(s) on {}", plan.jobs.len(), call.on_device())),
            )?;
            let done = denoise_batch(&call.model, &plan, &call.read_options, &call.settings, progress)?
                .require_all(&folder)?;
            serde_json::to_string(&done).map_err(|e| Error::usage(e.to_string()))
        })?;
        Ok(report)
    })
}

#[cfg(test)]
mod tests {
    use super::super::failure::Failure;
    use super::*;
    use crate::infer::official_pipeline::OfficialPipeline;
    use crate::infer::OutputType;
    use serde_json::json;

    fn options(changes: Value) -> Result<DenoiseOptions, String> {
        arguments::settings(Some(&changes), "denoise settings").map_err(|failure| match failure {
            Failure::Engine(e) => e.to_string(),
            other => panic!("expected an engine error, got {other:?}"),
        })
    }

    #[test]
    fn settings_read_into_the_engines_types_with_the_doors_words() {
        let o = options(json!({"output_type": "input", "precision": "float32", "channel": 1,
            "compat": {"pipeline": "deepcad-rt-2021", "patch": [80, 80, 80], "overlap": 0.5}}))
        .unwrap();
        assert_eq!(o.settings.output_type, OutputType::SameAsInput);
        assert_eq!(o.read.channel, Some(1));
        let compat = o.settings.compat.unwrap();
        assert_eq!((compat.pipeline, compat.gap), (OfficialPipeline::DeepcadRt2021, [40, 40, 40]));
        // Nothing changed: the engine's defaults, the command line's.
        let d = options(json!({})).unwrap();
        assert_eq!(d.settings.max_memory_bytes, DenoiseSettings::default().max_memory_bytes);
        assert_eq!((d.settings.output_type, d.read), (OutputType::Auto, ReadOptions::default()));
    }

    #[test]
    fn unknown_keys_and_wrong_words_are_refused_by_name() {
        let unknown = options(json!({"tile_size": [8, 8, 8]})).unwrap_err();
        assert!(unknown.contains("'tile_size'") && unknown.contains("channel") && unknown.contains("output_type"));
        let word = options(json!({"output_type": "16-bit"})).unwrap_err();
        assert!(word.contains("'output_type'") && word.contains("auto, input, float32"), "{word}");
        let nested = options(json!({"compat": {"pipeline": "deepcad-rt", "patsch": [8, 8, 8]}})).unwrap_err();
        assert!(nested.contains("'compat'") && nested.contains("patsch"), "{nested}");
        let both = options(json!({"compat": {"pipeline": "deepcad-rt", "overlap": 0.5, "gap": [9, 9, 9]}}));
        assert!(both.unwrap_err().contains("not both"));
    }
}
