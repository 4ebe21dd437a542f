//! Movies as Java hands them over: one primitive array per frame (`byte[]` for u8, `short[]` for
//! u16/i16, `float[]` for f32), exactly how an ImageJ `ImageStack` holds its planes. Each frame is
//! converted straight into (or out of) the engine's `f32` volume through one frame-sized buffer.

use jni::objects::{JByteArray, JFloatArray, JObject, JObjectArray, JShortArray};
use jni::Env;

use crate::io::{FrameData, SampleType};
use crate::Error;

use super::failure::JniResult;

fn frame_len(width: i32, height: i32) -> JniResult<usize> {
    if width <= 0 || height <= 0 {
        return Err(Error::usage(format!("image size {width}×{height} must be positive")).into());
    }
    Ok(width as usize * height as usize)
}

/// Reads the planes of a Java movie (one primitive array per frame) into an engine movie.
pub fn read_movie(
    env: &mut Env<'_>,
    name: String,
    planes: &JObjectArray<'_>,
    width: i32,
    height: i32,
    sample_type: SampleType,
) -> JniResult<crate::io::InMemoryMovie> {
    let volume = read_planes(env, planes, width, height, sample_type)?;
    let frames = volume.len() / frame_len(width, height)?;
    Ok(crate::io::InMemoryMovie::new(name, width as usize, height as usize, frames, sample_type, volume)?)
}

/// Reads every plane into one `T×H×W` f32 volume, checking each plane's type and length.
pub fn read_planes(
    env: &mut Env<'_>,
    planes: &JObjectArray<'_>,
    width: i32,
    height: i32,
    sample_type: SampleType,
) -> JniResult<Vec<f32>> {
    if planes.is_null() {
        return Err(Error::usage("the movie's planes are null").into());
    }
    let len = frame_len(width, height)?;
    let frames = planes.len(env)?;
    if frames == 0 {
        return Err(Error::usage("the movie has no frames").into());
    }
    // Every plane's type and length first: a wrong plane is refused at once, before memory for
    // the whole movie is claimed and cleared (a 65536² image sent as one short[1] took 70 s).
    for t in 0..frames {
        env.with_local_frame(2, |env| -> JniResult<()> {
            let plane: JObject = planes.get_element(env, t)?;
            check_plane(env, plane, t, width, height, sample_type)
        })?;
    }
    let total = len
        .checked_mul(frames)
        .ok_or_else(|| Error::Limits(format!("{frames} frames of {len} pixels overflow memory")))?;
    let mut volume = Vec::new();
    volume.try_reserve_exact(total).map_err(|_| {
        Error::Limits(format!("not enough memory for {frames} frames of {width}×{height} pixels as 32-bit floats"))
    })?;
    volume.resize(total, 0.0);
    let mut reader = PlaneReader::new(width, height, sample_type)?;
    for (t, frame) in volume.chunks_exact_mut(len).enumerate() {
        env.with_local_frame(2, |env| -> JniResult<()> {
            let plane: JObject = planes.get_element(env, t)?;
            reader.read(env, plane, t, frame)
        })?;
    }
    Ok(volume)
}

/// Checks that `plane` (frame `t`, for messages) is the primitive array `sample_type` needs, with
/// one value per pixel.
fn check_plane(
    env: &mut Env<'_>,
    plane: JObject<'_>,
    t: usize,
    width: i32,
    height: i32,
    sample_type: SampleType,
) -> JniResult<()> {
    let len = frame_len(width, height)?;
    let what = match sample_type {
        SampleType::U8 => "byte[]",
        SampleType::U16 | SampleType::I16 => "short[]",
        SampleType::F32 => "float[]",
    };
    let wrong = || -> super::failure::Failure {
        Error::usage(format!(
            "frame {}: expected a {what} of {len} values for a {width}×{height} {sample_type} image",
            t + 1
        ))
        .into()
    };
    if plane.is_null() {
        return Err(wrong());
    }
    let given = match sample_type {
        SampleType::U8 => env.cast_local::<JByteArray>(plane).map_err(|_| wrong())?.len(env)?,
        SampleType::U16 | SampleType::I16 => env.cast_local::<JShortArray>(plane).map_err(|_| wrong())?.len(env)?,
        SampleType::F32 => env.cast_local::<JFloatArray>(plane).map_err(|_| wrong())?.len(env)?,
    };
    if given != len {
        return Err(wrong());
    }
    Ok(())
}

/// Converts Java planes (one primitive array per frame) into `f32` frames through reused buffers.
pub struct PlaneReader {
    width: i32,
    height: i32,
    sample_type: SampleType,
    bytes: Vec<i8>,
    shorts: Vec<i16>,
    floats: Vec<f32>,
}

impl PlaneReader {
    pub fn new(width: i32, height: i32, sample_type: SampleType) -> JniResult<PlaneReader> {
        let len = frame_len(width, height)?;
        Ok(PlaneReader {
            width,
            height,
            sample_type,
            bytes: vec![0i8; if sample_type == SampleType::U8 { len } else { 0 }],
            shorts: vec![0i16; if matches!(sample_type, SampleType::U16 | SampleType::I16) { len } else { 0 }],
            floats: vec![0f32; if sample_type == SampleType::F32 { len } else { 0 }],
        })
    }

    /// Reads `plane` (frame `t`, for messages) into `out`, checking its array type and length.
    pub fn read<'any>(&mut self, env: &mut Env<'_>, plane: JObject<'any>, t: usize, out: &mut [f32]) -> JniResult<()> {
        let (width, height, sample_type) = (self.width, self.height, self.sample_type);
        let len = out.len();
        let wrong = |what: &str| -> super::failure::Failure {
            Error::usage(format!(
                "frame {}: expected a {what} of {len} values for a {width}×{height} {sample_type} image",
                t + 1
            ))
            .into()
        };
        if plane.is_null() {
            return Err(wrong("non-null array"));
        }
        match sample_type {
            SampleType::U8 => {
                let array = env.cast_local::<JByteArray>(plane).map_err(|_| wrong("byte[]"))?;
                if array.len(env)? != len {
                    return Err(wrong("byte[]"));
                }
                array.get_region(env, 0, &mut self.bytes)?;
                for (o, &b) in out.iter_mut().zip(&self.bytes) {
                    *o = b as u8 as f32;
                }
            }
            SampleType::U16 | SampleType::I16 => {
                let array = env.cast_local::<JShortArray>(plane).map_err(|_| wrong("short[]"))?;
                if array.len(env)? != len {
                    return Err(wrong("short[]"));
                }
                array.get_region(env, 0, &mut self.shorts)?;
                let unsigned = sample_type == SampleType::U16;
                for (o, &s) in out.iter_mut().zip(&self.shorts) {
                    *o = if unsigned { s as u16 as f32 } else { s as f32 };
                }
            }
            SampleType::F32 => {
                let array = env.cast_local::<JFloatArray>(plane).map_err(|_| wrong("float[]"))?;
                if array.len(env)? != len {
                    return Err(wrong("float[]"));
                }
                array.get_region(env, 0, &mut self.floats)?;
                out.copy_from_slice(&self.floats);
            }
        }
        Ok(())
    }
}

/// One new Java array per frame of `volume`, cast to `sample_type` the way the TIFF writer casts
/// (rounded, clipped to the type's range, NaN → 0).
pub fn write_planes<'local>(
    env: &mut Env<'local>,
    volume: &[f32],
    width: i32,
    height: i32,
    sample_type: SampleType,
) -> JniResult<JObjectArray<'local>> {
    let len = frame_len(width, height)?;
    if volume.len() % len != 0 {
        return Err(Error::usage(format!(
            "the engine returned {} values, not a whole number of {width}×{height} frames",
            volume.len()
        ))
        .into());
    }
    let frames = volume.len() / len;
    let result = env.new_object_array(frames as i32, jni::jni_str!("java/lang/Object"), JObject::null())?;
    for (t, frame) in volume.chunks_exact(len).enumerate() {
        env.with_local_frame(2, |env| -> JniResult<()> {
            let plane: JObject = match FrameData::from_f32(frame, sample_type) {
                FrameData::U8(values) => {
                    let array = env.new_byte_array(len)?;
                    let signed: Vec<i8> = values.iter().map(|&v| v as i8).collect();
                    array.set_region(env, 0, &signed)?;
                    array.into()
                }
                FrameData::U16(values) => {
                    let array = env.new_short_array(len)?;
                    let signed: Vec<i16> = values.iter().map(|&v| v as i16).collect();
                    array.set_region(env, 0, &signed)?;
                    array.into()
                }
                FrameData::I16(values) => {
                    let array = env.new_short_array(len)?;
                    array.set_region(env, 0, &values)?;
                    array.into()
                }
                FrameData::F32(values) => {
                    let array = env.new_float_array(len)?;
                    array.set_region(env, 0, &values)?;
                    array.into()
                }
            };
            result.set_element(env, t, &plane)?;
            Ok(())
        })?;
    }
    Ok(result)
}
