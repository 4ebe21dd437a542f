//! Entry points that describe the library, the devices and model bundles, set the thread count,
//! and render the engine's simulated movie (for tests and demos).

use std::path::Path;

use jni::objects::{JClass, JObject, JObjectArray, JString};
use jni::sys::jint;
use jni::{jni_str, EnvUnowned};

use crate::model::bundle::software_version;
use crate::model::Model;
use crate::simulate::{simulate, SimulationConfig};
use crate::Error;

use super::arguments;
use super::failure::{JniResult, ThrowDeepCadException};

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_version<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> { Ok(env.new_string(software_version())?) })
        .resolve::<ThrowDeepCadException>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_devicesJson<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let cuda = crate::device::cuda_available();
            let devices: Vec<String> = std::iter::once("cpu".to_string())
                .chain((0..if cuda { tch::Cuda::device_count() } else { 0 }).map(|n| format!("cuda:{n}")))
                .collect();
            let json = serde_json::json!({
                "version": software_version(),
                "cuda_available": cuda,
                "cuda_unavailable_reason": crate::device::cuda_unavailable_reason(),
                "devices": devices,
                "description": crate::device::describe_devices(),
                "threads": tch::get_num_threads(),
                "libtorch_dir": crate::device::libtorch_directory().map(|d| d.display().to_string()),
            });
            Ok(env.new_string(json.to_string())?)
        })
        .resolve::<ThrowDeepCadException>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_setThreads<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    threads: jint,
) {
    unowned
        .with_env(|_env| -> JniResult<()> {
            if threads < 0 {
                return Err(Error::usage(format!("threads {threads} must be 0 (libtorch's default) or more")).into());
            }
            if threads > 0 {
                // The settings' purpose: this process's libtorch thread count for later commands.
                tch::set_num_threads(crate::device::checked_thread_count(threads as usize)?);
            }
            Ok(())
        })
        .resolve::<ThrowDeepCadException>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_modelInfoJson<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    model_path: JString<'local>,
) -> JString<'local> {
    unowned
        .with_env(|env| -> JniResult<JString<'local>> {
            let path = arguments::string(env, &model_path, "the model path")?;
            let metadata = Model::read_validated_metadata(Path::new(&path))?;
            let json = serde_json::to_string_pretty(&metadata).map_err(|e| Error::model(&path, e.to_string()))?;
            Ok(env.new_string(json)?)
        })
        .resolve::<ThrowDeepCadException>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_simulate<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    config_json: JString<'local>,
) -> JObjectArray<'local> {
    unowned
        .with_env(|env| -> JniResult<JObjectArray<'local>> {
            let json = arguments::optional_string(env, &config_json)?;
            let config: SimulationConfig = arguments::settings_text(json.as_deref(), "simulation settings")?;
            let (clean, noisy) = simulate(&config)?;
            let result = env.new_object_array(2, jni_str!("java/lang/Object"), JObject::null())?;
            for (i, values) in [clean, noisy].iter().enumerate() {
                let array = env.new_float_array(values.len())?;
                array.set_region(env, 0, values)?;
                result.set_element(env, i, &array)?;
            }
            Ok(result)
        })
        .resolve::<ThrowDeepCadException>()
}
