//! Pixel sample types we read and write, one frame of raw samples, and the conversions to and from
//! the `f32` the engine computes in. Writing rounds half away from zero, clips to the type's range
//! and maps NaN to 0, so a denoised float frame always lands on a valid integer image.

use crate::vocabulary::Vocabulary;

/// The grayscale sample types a stack may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleType {
    U8,
    U16,
    I16,
    F32,
}

impl Vocabulary for SampleType {
    const WHAT: &'static str = "sample type";
    const WORDS: &'static [(Self, &'static str)] =
        &[(SampleType::U8, "u8"), (SampleType::U16, "u16"), (SampleType::I16, "i16"), (SampleType::F32, "f32")];
    /// ImageJ's and NumPy's names for the same types, which callers have always been able to use.
    const OLDER: &'static [(Self, &'static str)] = &[
        (SampleType::U8, "uint8"),
        (SampleType::U8, "8"),
        (SampleType::U8, "8-bit"),
        (SampleType::U16, "uint16"),
        (SampleType::U16, "16"),
        (SampleType::U16, "16-bit"),
        (SampleType::I16, "int16"),
        (SampleType::F32, "float32"),
        (SampleType::F32, "float"),
        (SampleType::F32, "32"),
        (SampleType::F32, "32-bit"),
    ];
    const ANY_CASE: bool = true;
}
crate::spelled!(SampleType);

impl SampleType {
    /// Its word, as users and the CLI spell it ("u8", "u16", "i16", "f32").
    pub fn name(self) -> &'static str {
        self.word()
    }

    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            SampleType::U8 => 1,
            SampleType::U16 | SampleType::I16 => 2,
            SampleType::F32 => 4,
        }
    }

    /// The closed range of values the type can hold (F32: the finite `f32` range).
    pub fn range(self) -> (f32, f32) {
        match self {
            SampleType::U8 => (0.0, 255.0),
            SampleType::U16 => (0.0, 65535.0),
            SampleType::I16 => (-32768.0, 32767.0),
            SampleType::F32 => (f32::MIN, f32::MAX),
        }
    }
}

/// One frame of samples in their stored type, row-major (`width * height` values).
#[derive(Debug, Clone, PartialEq)]
pub enum FrameData {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    F32(Vec<f32>),
}

impl FrameData {
    pub fn sample_type(&self) -> SampleType {
        match self {
            FrameData::U8(_) => SampleType::U8,
            FrameData::U16(_) => SampleType::U16,
            FrameData::I16(_) => SampleType::I16,
            FrameData::F32(_) => SampleType::F32,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            FrameData::U8(v) => v.len(),
            FrameData::U16(v) => v.len(),
            FrameData::I16(v) => v.len(),
            FrameData::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the samples into `out` as `f32` (exact for every supported type).
    /// `out` must hold exactly `len()` values.
    pub fn to_f32(&self, out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.len());
        match self {
            FrameData::U8(v) => out.iter_mut().zip(v).for_each(|(o, &s)| *o = f32::from(s)),
            FrameData::U16(v) => out.iter_mut().zip(v).for_each(|(o, &s)| *o = f32::from(s)),
            FrameData::I16(v) => out.iter_mut().zip(v).for_each(|(o, &s)| *o = f32::from(s)),
            FrameData::F32(v) => out.copy_from_slice(v),
        }
    }

    /// Converts `f32` values to `sample_type` (round half away from zero, clip, NaN -> 0).
    pub fn from_f32(values: &[f32], sample_type: SampleType) -> FrameData {
        match sample_type {
            SampleType::U8 => FrameData::U8(values.iter().map(|&v| to_integer(v, sample_type) as u8).collect()),
            SampleType::U16 => FrameData::U16(values.iter().map(|&v| to_integer(v, sample_type) as u16).collect()),
            SampleType::I16 => FrameData::I16(values.iter().map(|&v| to_integer(v, sample_type) as i16).collect()),
            SampleType::F32 => FrameData::F32(values.iter().map(|&v| to_float(v)).collect()),
        }
    }
}

/// Where a movie first holds a NaN or an infinity: frame (counting from the first frame given),
/// pixel and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonFinite {
    pub frame: usize,
    pub x: usize,
    pub y: usize,
    pub value: f32,
}

impl NonFinite {
    /// The first non-finite value of whole `width × height` frames.
    pub fn find(values: &[f32], width: usize, height: usize) -> Option<NonFinite> {
        let i = values.iter().position(|v| !v.is_finite())?;
        let plane = (width * height).max(1);
        Some(NonFinite { frame: i / plane, x: i % plane % width.max(1), y: i % plane / width.max(1), value: values[i] })
    }

    /// Why an input holding it cannot be used, and what to do; frames are named as Fiji numbers
    /// them (from 1) and by index (from 0), `self.frame` counting from `first_frame`.
    pub fn input_message(&self, first_frame: usize) -> String {
        format!(
            "frame {} (index {} counting from 0), pixel x={} y={} is {}; movies with non-finite values are not read (training, denoising, conversion and comparison all refuse them): replace them first (in Fiji: Process > Math > Remove NaNs, or set them to a number)",
            first_frame + self.frame + 1,
            first_frame + self.frame,
            self.x,
            self.y,
            self.value
        )
    }
}

/// One value to an integer type: `f32::round` rounds half away from zero, as the spec asks.
fn to_integer(value: f32, sample_type: SampleType) -> f32 {
    if value.is_nan() {
        return 0.0;
    }
    let (low, high) = sample_type.range();
    value.round().clamp(low, high)
}

/// Float output keeps values, but infinities are clipped and NaN becomes 0 like every other type,
/// so a written file never carries the non-finite values our reader refuses.
fn to_float(value: f32) -> f32 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(f32::MIN, f32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u16_conversion_rounds_half_away_from_zero_and_clips() {
        let frame = FrameData::from_f32(&[70000.4, -3.0, 2.5, 1.49, f32::NAN, f32::INFINITY], SampleType::U16);
        assert_eq!(frame, FrameData::U16(vec![65535, 0, 3, 1, 0, 65535]));
    }

    #[test]
    fn i16_conversion_rounds_negative_halves_away_from_zero() {
        let frame = FrameData::from_f32(&[-2.5, -40000.0, 32767.6, f32::NEG_INFINITY], SampleType::I16);
        assert_eq!(frame, FrameData::I16(vec![-3, -32768, 32767, -32768]));
    }

    #[test]
    fn f32_conversion_keeps_values_but_not_non_finite_ones() {
        let frame = FrameData::from_f32(&[0.25, f32::NAN, f32::INFINITY], SampleType::F32);
        assert_eq!(frame, FrameData::F32(vec![0.25, 0.0, f32::MAX]));
    }

    #[test]
    fn names_parse_back_and_imagej_names_in_any_case_still_read() {
        for t in [SampleType::U8, SampleType::U16, SampleType::I16, SampleType::F32] {
            assert_eq!(t.name().parse::<SampleType>().unwrap(), t);
            assert_eq!(serde_json::from_value::<SampleType>(serde_json::json!(t.name())).unwrap(), t);
        }
        assert_eq!("UINT16".parse::<SampleType>().unwrap(), SampleType::U16);
        assert_eq!("32-bit".parse::<SampleType>().unwrap(), SampleType::F32);
        let err = "f64".parse::<SampleType>().unwrap_err().to_string();
        assert!(err.contains("'f64'") && err.contains("u8, u16, i16, f32"), "{err}");
    }
}
