//! Live denoising for Java acquisition software (`org.deepcad.fiji.LiveDenoiser`): open a stream,
//! push one image per call and get back the images finished meanwhile, finish, close.
//!
//! Streams are held here under a number, never as a raw pointer in Java's hands: a stale or wrong
//! handle is an exception, not a crash. A push only hands the image to the stream's worker thread
//! (`infer::live`), so a camera callback never waits for the network.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use jni::objects::{JClass, JLongArray, JObject, JObjectArray, JString};
use jni::sys::{jint, jlong};
use jni::{jni_str, Env, EnvUnowned};
use serde::Deserialize;

use crate::infer::{Backlog, DenoiseSettings, EventRestoration, LiveFrame, LiveSettings, LiveStream};
use crate::io::SampleType;
use crate::model::precision::InferencePrecision;
use crate::model::Model;
use crate::Error;

use super::arguments;
use super::failure::{answer, JniResult};
use super::pixels::PlaneReader;

static STREAMS: Mutex<Option<HashMap<i64, LiveStream>>> = Mutex::new(None);
static NEXT_HANDLE: AtomicI64 = AtomicI64::new(1);

/// What Java may set (`LiveDenoiser.Options` as JSON); absent keys keep the engine's defaults.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct LiveRequest {
    model: String,
    device: Option<String>,
    look_ahead: Option<usize>,
    step: Option<usize>,
    /// "drop" or "queue".
    behind: Option<Backlog>,
    max_behind: Option<usize>,
    warm_up_frames: Option<usize>,
    max_memory_bytes: Option<usize>,
    precision: Option<InferencePrecision>,
    restore_events: Option<EventRestoration>,
}

fn streams() -> MutexGuard<'static, Option<HashMap<i64, LiveStream>>> {
    // A panic while holding the lock leaves the map as it was: still usable.
    STREAMS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `f` on the open stream `handle`, with the map locked meanwhile; an error when it is not open.
fn with_stream<T>(handle: jlong, f: impl FnOnce(&mut LiveStream) -> JniResult<T>) -> JniResult<T> {
    let mut guard = streams();
    f(guard.as_mut().and_then(|s| s.get_mut(&handle)).ok_or_else(|| unknown(handle))?)
}

fn unknown(handle: jlong) -> Error {
    Error::usage(format!("live stream {handle} is not open (closed already, or never opened)"))
}

fn settings_of(request: &LiveRequest) -> JniResult<LiveSettings> {
    let defaults = LiveSettings::default();
    Ok(LiveSettings {
        look_ahead: request.look_ahead,
        step: request.step.unwrap_or(defaults.step),
        backlog: request.behind.unwrap_or(defaults.backlog),
        max_backlog_frames: request.max_behind.unwrap_or(defaults.max_backlog_frames),
        warm_up_frames: request.warm_up_frames.unwrap_or(defaults.warm_up_frames),
        denoise: DenoiseSettings {
            max_memory_bytes: request.max_memory_bytes.unwrap_or(defaults.denoise.max_memory_bytes),
            precision: request.precision.unwrap_or(defaults.denoise.precision),
            restore_events: request.restore_events.unwrap_or(defaults.denoise.restore_events),
            ..defaults.denoise
        },
        ..defaults
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_liveOpen0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    request_json: JString<'local>,
    width: jint,
    height: jint,
    sample_type: JString<'local>,
) -> jlong {
    answer(&mut unowned, |env| {
        let request: LiveRequest = arguments::request(env, &request_json, "live settings")?;
        let sample_type = arguments::string(env, &sample_type, "sample type")?.parse::<SampleType>()?;
        if width <= 0 || height <= 0 {
            return Err(Error::usage(format!("live images of {width}×{height} have no pixels")).into());
        }
        let device = crate::device::parse_device(request.device.as_deref().unwrap_or("auto"))?;
        let model = Model::load(Path::new(&request.model), device)?;
        let name = format!("live stream of {}", request.model);
        let settings = settings_of(&request)?;
        let stream = LiveStream::new(model, &name, width as usize, height as usize, sample_type, settings)?;
        let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        streams().get_or_insert_with(HashMap::new).insert(handle, stream);
        Ok(handle)
    })
}

/// Finished frames as `[long[]{index, denoised}, float[] pixels, ...]`.
fn frames_to_java<'local>(env: &mut Env<'local>, frames: &[LiveFrame]) -> JniResult<JObjectArray<'local>> {
    let result = env.new_object_array(2 * frames.len() as i32, jni_str!("java/lang/Object"), JObject::null())?;
    for (k, frame) in frames.iter().enumerate() {
        env.with_local_frame(2, |env| -> JniResult<()> {
            let about: JLongArray = env.new_long_array(2)?;
            about.set_region(env, 0, &[frame.index as i64, i64::from(frame.denoised)])?;
            result.set_element(env, 2 * k, &about)?;
            let pixels = env.new_float_array(frame.values.len())?;
            pixels.set_region(env, 0, &frame.values)?;
            result.set_element(env, 2 * k + 1, &pixels)?;
            Ok(())
        })?;
    }
    Ok(result)
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_livePush0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    plane: JObject<'local>,
    width: jint,
    height: jint,
    sample_type: JString<'local>,
) -> JObjectArray<'local> {
    answer(&mut unowned, |env| {
        let sample_type = arguments::string(env, &sample_type, "sample type")?.parse::<SampleType>()?;
        let mut reader = PlaneReader::new(width, height, sample_type)?;
        let mut values = vec![0f32; (width as usize) * (height as usize)];
        let finished = with_stream(handle, |stream| {
            reader.read(env, plane, stream.status().arrived, &mut values)?;
            Ok(stream.push(&values)?)
        })?;
        frames_to_java(env, &finished)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_liveFinish0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) -> JObjectArray<'local> {
    answer(&mut unowned, |env| {
        // Out of the map while it finishes: other streams' pushes do not wait for it.
        let mut stream = streams().as_mut().and_then(|s| s.remove(&handle)).ok_or_else(|| unknown(handle))?;
        let finished = stream.finish();
        // Kept until close, so its status and normalisation stay readable.
        streams().get_or_insert_with(HashMap::new).insert(handle, stream);
        frames_to_java(env, &finished?)
    })
}

/// `{arrived, finished, late, dropped, behind, tile t, tile y, tile x, look-ahead, steady delay in frames}`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_liveStatus0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) -> JLongArray<'local> {
    answer(&mut unowned, |env| {
        let (s, tile, schedule) = with_stream(handle, |s| Ok((s.status(), s.tile(), s.schedule())))?;
        let array = env.new_long_array(10)?;
        let values = [
            s.arrived,
            s.finished,
            s.late,
            s.dropped,
            s.behind,
            tile[0],
            tile[1],
            tile[2],
            schedule.look_ahead,
            schedule.steady_delay_frames(),
        ]
        .map(|v| v as i64);
        array.set_region(env, 0, &values)?;
        Ok(array)
    })
}

/// The normalisation in words, or null until known (it is known by the first finished frame).
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_liveNormalization0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) -> JString<'local> {
    answer(&mut unowned, |env| {
        // Known once the worker said so: before the first finished frame (read in a push).
        match with_stream(handle, |stream| Ok(stream.normalization().map(str::to_string)))? {
            Some(note) => Ok(env.new_string(note)?),
            None => Ok(JString::null()),
        }
    })
}

/// Forgets the stream (its worker stops after its current step); closing twice is harmless.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_deepcad_fiji_DeepCadNative_liveClose0<'local>(
    mut unowned: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) {
    answer(&mut unowned, |_env| {
        let stream = streams().as_mut().and_then(|s| s.remove(&handle));
        drop(stream);
        Ok(())
    })
}
