//! Training entry points: from an in-memory movie (an ImagePlus's planes) or from TIFF files.

use std::path::{Path, PathBuf};

use jni::objects::{JClass, JObject, JObjectArray, JString};
use jni::sys::jint;
use jni::{Env, EnvUnowned};

use crate::io::FrameSource;
use crate::progress::{report, Event};
use crate::train::{best_bundle_path, open_training_inputs, train_from_door, TrainReport, TrainSettings};

use super::arguments;
use super::failure::{Failure, JniResult, ThrowDeepCadException};
use super::java_progress::JavaProgress;
use super::pixels;

#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_train0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    planes: JObjectArray<'local>,
    width: jint,
    height: jint,
    sample_type: JString<'local>,
    source_name: JString<'local>,
    settings_json: JString<'local>,
    output_path: JString<'local>,
    resume_path: JString<'local>,
    device: JString<'local>,
    listener: JObject<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let sample_type = pixels::parse_sample_type(&arguments::string(env, &sample_type, "the sample type")?)?;
            let name = arguments::optional_string(env, &source_name)?.unwrap_or_else(|| "image".into());
            let request = TrainingRequest::read(env, &settings_json, &output_path, &resume_path, &device)?;
            let movie = pixels::read_movie(env, name, &planes, width, height, sample_type)?;
            let mut sources: Vec<Box<dyn FrameSource>> = vec![Box::new(movie)];
            let report = request.run(env, &listener, |_| Ok(std::mem::take(&mut sources)))?;
            Ok(env.new_string(report)?)
        })
        .resolve::<ThrowDeepCadException>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_trainFiles0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    input_path: JString<'local>,
    settings_json: JString<'local>,
    output_path: JString<'local>,
    resume_path: JString<'local>,
    device: JString<'local>,
    listener: JObject<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let input = PathBuf::from(arguments::string(env, &input_path, "the input path")?);
            let request = TrainingRequest::read(env, &settings_json, &output_path, &resume_path, &device)?;
            let report = request.run(env, &listener, |progress| open_training_inputs(&input, progress))?;
            Ok(env.new_string(report)?)
        })
        .resolve::<ThrowDeepCadException>()
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
    fn read(
        env: &Env<'_>,
        settings_json: &JString<'_>,
        output_path: &JString<'_>,
        resume_path: &JString<'_>,
        device: &JString<'_>,
    ) -> JniResult<TrainingRequest> {
        let json = arguments::optional_string(env, settings_json)?;
        let settings: TrainSettings = arguments::settings(json.as_deref(), "training settings")?;
        settings.validate()?;
        let output = PathBuf::from(arguments::string(env, output_path, "the model output path")?);
        let resume = arguments::optional_string(env, resume_path)?.map(PathBuf::from);
        let device =
            crate::device::parse_device(&arguments::optional_string(env, device)?.unwrap_or_else(|| "auto".into()))?;
        Ok(TrainingRequest { settings, output, resume, device })
    }

    /// Opens the inputs and trains with progress going to `listener`; returns the report as JSON.
    fn run<'local>(
        self,
        env: &mut Env<'local>,
        listener: &JObject<'local>,
        open: impl FnOnce(&mut JavaProgress<'_, '_>) -> crate::Result<Vec<Box<dyn FrameSource>>>,
    ) -> JniResult<String> {
        let mut progress = JavaProgress::new(env, listener);
        let outcome = (|| {
            report(
                &mut progress,
                Event::Info(&format!("DeepCAD trains on {}", crate::device::device_name(self.device))),
            )?;
            let mut sources = open(&mut progress)?;
            train_from_door(
                FIJI_ORIGIN,
                &mut sources,
                &self.settings,
                &self.output,
                self.resume.as_deref(),
                self.device,
                &mut progress,
            )
        })();
        if let Some(thrown) = progress.thrown.take() {
            return Err(Failure::JavaThrew(thrown));
        }
        Ok(report_json(&outcome?, &self.output))
    }
}

fn report_json(report: &TrainReport, output: &Path) -> String {
    serde_json::json!({
        "epochs_completed": report.epochs_completed,
        "best_epoch": report.best_epoch,
        "history": report.history,
        "bundle": report.bundle.display().to_string(),
        "checks": report.checks,
        "best_bundle": best_bundle_path(output).display().to_string(),
    })
    .to_string()
}
