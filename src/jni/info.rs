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
use super::failure::{answer, answer_text};

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_version<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JString<'local> {
    answer_text(&mut unowned, |_env| Ok(software_version().to_string()))
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_devicesJson<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JString<'local> {
    answer_text(&mut unowned, |_env| {
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
        Ok(json.to_string())
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_setThreads<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    threads: jint,
) {
    answer(&mut unowned, |_env| {
        if threads < 0 {
            return Err(Error::usage(format!("threads {threads} must be 0 (libtorch's default) or more")).into());
        }
        if threads > 0 {
            // The settings' purpose: this process's libtorch thread count for later commands.
            tch::set_num_threads(crate::device::checked_thread_count(threads as usize)?);
        }
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_modelInfoJson<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    model_path: JString<'local>,
) -> JString<'local> {
    answer_text(&mut unowned, |env| {
        let path = arguments::string(env, &model_path, "the model path")?;
        let metadata = Model::read_validated_metadata(Path::new(&path))?;
        let json = serde_json::to_string_pretty(&metadata).map_err(|e| Error::model(&path, e.to_string()))?;
        Ok(json)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_simulate<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    config_json: JString<'local>,
) -> JObjectArray<'local> {
    answer(&mut unowned, |env| {
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
}
