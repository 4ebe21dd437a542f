//! Training entry points: from an in-memory movie (an ImagePlus's planes) or from TIFF files.

use std::path::{Path, PathBuf};

use jni::objects::{JClass, JObject, JObjectArray, JString};
use jni::{Env, EnvUnowned};
use serde::Deserialize;
use serde_json::Value;

use crate::io::{FrameSource, SampleType};
use crate::progress::{report, Event};
use crate::train::{best_bundle_path, open_training_inputs, train, TrainReport, TrainSettings};

use super::arguments::{self, given};
use super::failure::{answer_text, JniResult};
use super::java_progress::{with_progress, JavaProgress};
use super::pixels;

/// `train0(planes, request, listener)`: the planes' width, height and sample type, how the bundle
/// names the movie, and what every training call names (see [`TrainingRequest::read`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InMemoryRequest {
    width: i32,
    height: i32,
    sample_type: SampleType,
    source_name: Option<String>,
    settings: Option<Value>,
    output: String,
    resume: Option<String>,
    device: Option<String>,
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_train0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    planes: JObjectArray<'local>,
    request: JString<'local>,
    listener: JObject<'local>,
) -> JString<'local> {
    answer_text(&mut unowned, |env| {
        let r: InMemoryRequest = arguments::request(env, &request, "training")?;
        let sample_type = r.sample_type;
        let name = given(&r.source_name).unwrap_or("image").to_string();
        let training = TrainingRequest::read(&r.settings, &r.output, &r.resume, &r.device)?;
        let movie = pixels::read_movie(env, name, &planes, r.width, r.height, sample_type)?;
        let mut sources: Vec<Box<dyn FrameSource>> = vec![Box::new(movie)];
        let report = training.run(env, &listener, |_| Ok(std::mem::take(&mut sources)))?;
        Ok(report)
    })
}

/// `trainFiles0(request, listener)`: the input (a file or a folder of them) and what every
/// training call names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilesRequest {
    input: String,
    settings: Option<Value>,
    output: String,
    resume: Option<String>,
    device: Option<String>,
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_trainFiles0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    request: JString<'local>,
    listener: JObject<'local>,
) -> JString<'local> {
    answer_text(&mut unowned, |env| {
        let r: FilesRequest = arguments::request(env, &request, "training")?;
        let input = PathBuf::from(&r.input);
        let training = TrainingRequest::read(&r.settings, &r.output, &r.resume, &r.device)?;
        let report = training.run(env, &listener, |progress| open_training_inputs(&input, progress))?;
        Ok(report)
    })
}

/// This door's name in a bundle's `training.origin` (the command line records "deepcad train").
const FIJI_ORIGIN: &str = "fiji";

/// Everything a training call needs besides its inputs, read and checked before any work.
struct TrainingRequest {
    settings: TrainSettings,
    output: PathBuf,
    resume: Option<PathBuf>,
    device: tch::Device,
}

impl TrainingRequest {
    /// The settings laid over the engine's defaults and checked, the model output, the bundle to
    /// resume from and the device, before any work.
    fn read(
        settings: &Option<Value>,
        output: &str,
        resume: &Option<String>,
        device: &Option<String>,
    ) -> JniResult<TrainingRequest> {
        let settings = TrainSettings {
            origin: FIJI_ORIGIN.to_string(),
            ..arguments::settings(settings.as_ref(), "training settings")?
        };
        settings.validate()?;
        if output.trim().is_empty() {
            return Err(crate::Error::usage("the model output path is empty").into());
        }
        Ok(TrainingRequest {
            settings,
            output: PathBuf::from(output),
            resume: given(resume).map(PathBuf::from),
            device: crate::device::parse_device(given(device).unwrap_or("auto"))?,
        })
    }

    /// Opens the inputs and trains with progress going to `listener`; returns the report as JSON.
    fn run<'local>(
        self,
        env: &mut Env<'local>,
        listener: &JObject<'local>,
        open: impl FnOnce(&mut JavaProgress<'_, '_>) -> crate::Result<Vec<Box<dyn FrameSource>>>,
    ) -> JniResult<String> {
        let done = with_progress(env, listener, |progress| {
            let device = crate::device::device_name(self.device);
            report(progress, Event::Info(&format!("DeepCAD trains on {device}")))?;
            let mut sources = open(progress)?;
            train(&mut sources, &self.settings, &self.output, self.resume.as_deref(), self.device, progress)
        })?;
        Ok(report_json(&done, &self.output))
    }
}

fn report_json(report: &TrainReport, output: &Path) -> String {
    serde_json::json!({
        "epochs_completed": report.epochs_completed,
        "best_epoch": report.best_epoch,
        "history": report.history,
        "bundle": report.bundle.display().to_string(),
        "checks": report.checks,
        "event_timescales": report.event_timescales,
        "best_bundle": best_bundle_path(output).display().to_string(),
    })
    .to_string()
}
