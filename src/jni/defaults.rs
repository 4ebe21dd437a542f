//! `DeepCadNative.defaultsJson()`: the engine's own defaults, for the Fiji dialogs. Java shows
//! what the engine would use when nothing is chosen (learning rate, patches per epoch, memory
//! budget, the official pipelines' patch and overlap, the output suffix...) instead of repeating
//! the numbers as Java constants, so a default changed in the engine changes in Fiji too.
//!
//! Every value comes from an engine `Default` impl or constant: [`TrainSettings::default`],
//! [`DenoiseSettings::default`], [`CompatSettings::new`] with nothing given, [`DEFAULT_SUFFIX`].

use jni::objects::{JClass, JString};
use jni::EnvUnowned;
use serde_json::{json, Value};

use crate::infer::official_pipeline::{CompatSettings, OfficialPipeline};
use crate::infer::{DenoiseSettings, OutputType, DEFAULT_SUFFIX};
use crate::model::precision::InferencePrecision;
use crate::model::SelfSupervision;
use crate::train::settings::TrainSettings;
use crate::vocabulary::Vocabulary;
use crate::Error;

use super::failure::answer_text;

/// An official pipeline's default tiling: its patch, its gaps, and the overlap factor those gaps
/// come from (`gap = patch · (1 − overlap)`, truncated, so the factor is read back from the first
/// axis; the 2021 pipeline's gaps differ per axis and are given as gaps).
fn official_defaults(pipeline: OfficialPipeline) -> crate::Result<Value> {
    let c = CompatSettings::new(pipeline, None, None, None)?;
    let overlap = 1.0 - c.gap[0] as f64 / c.patch[0] as f64;
    Ok(json!({ "patch": c.patch, "gap": c.gap, "overlap": overlap }))
}

/// `{"train": TrainSettings, "denoise": DenoiseSettings, "official_pipeline": {"deepcad-rt": {...},
/// "deepcad-rt-2021": {...}}, "suffix": "-denoised", "words": {...}}`, each at the engine's defaults;
/// `words` lists the vocabulary of the settings a dialog offers as a choice (SciJava fixes a
/// choice list at compile time, so the Java tests check the dialogs' lists against these).
pub(crate) fn defaults() -> crate::Result<Value> {
    let as_json = |what: &str, value: Result<Value, serde_json::Error>| {
        value.map_err(|e| Error::usage(format!("the {what} defaults could not be written as JSON: {e}")))
    };
    let train = as_json("training", serde_json::to_value(TrainSettings::default()))?;
    let denoise = as_json("denoising", serde_json::to_value(DenoiseSettings::default()))?;
    let mut official = serde_json::Map::new();
    for &(pipeline, word) in OfficialPipeline::WORDS {
        official.insert(word.to_string(), official_defaults(pipeline)?);
    }
    Ok(json!({
        "train": train,
        "denoise": denoise,
        "official_pipeline": official,
        "suffix": DEFAULT_SUFFIX,
        "words": {
            "method": SelfSupervision::words(),
            "output_type": OutputType::words(),
            "official_pipeline": OfficialPipeline::words(),
            "precision": InferencePrecision::words(),
        },
    }))
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_defaultsJson<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JString<'local> {
    answer_text(&mut unowned, |_env| Ok(defaults()?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_engines() {
        let d = defaults().unwrap();
        let t = TrainSettings::default();
        assert_eq!(d["train"]["learning_rate"], json!(t.learning_rate));
        assert_eq!(d["train"]["patches_per_epoch"], json!(t.patches_per_epoch));
        assert_eq!(d["train"]["init"], json!("builtin"));
        assert_eq!(d["denoise"]["max_memory_bytes"], json!(DenoiseSettings::default().max_memory_bytes));
        assert_eq!(d["denoise"]["output_type"], json!("auto"));
        assert_eq!(d["official_pipeline"]["deepcad-rt"]["patch"], json!([150, 150, 150]));
        assert_eq!(d["official_pipeline"]["deepcad-rt"]["overlap"], json!(0.6));
        assert_eq!(d["suffix"], json!(DEFAULT_SUFFIX));
        assert_eq!(d["words"]["output_type"], json!(["auto", "input", "float32"]));
        assert_eq!(d["words"]["method"], json!(["interlaced", "hybrid", "masked"]));
        // The overlap read back gives the pipeline's own gaps again.
        for name in ["deepcad-rt", "deepcad-rt-2021"] {
            let p = &d["official_pipeline"][name];
            let pipeline: OfficialPipeline = name.parse().unwrap();
            let patch: [usize; 3] = serde_json::from_value(p["patch"].clone()).unwrap();
            let gap: [usize; 3] = serde_json::from_value(p["gap"].clone()).unwrap();
            assert_eq!(CompatSettings::new(pipeline, Some(patch), None, Some(gap)).unwrap().gap, gap);
        }
        let rt = &d["official_pipeline"]["deepcad-rt"];
        let patch: [usize; 3] = serde_json::from_value(rt["patch"].clone()).unwrap();
        let again =
            CompatSettings::new(OfficialPipeline::DeepcadRt, Some(patch), rt["overlap"].as_f64(), None).unwrap();
        assert_eq!(json!(again.gap), rt["gap"]);
    }
}
