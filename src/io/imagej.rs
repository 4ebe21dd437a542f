//! ImageJ's metadata conventions: the `ImageDescription` text ImageJ writes on the first page
//! (`ImageJ=1.54f\nimages=..\nchannels=..\nslices=..\nframes=..\nhyperstack=true\nunit=..\n...`)
//! and the pixel size carried by XResolution/YResolution. Keeping both in step is what makes Fiji
//! reopen our output with the input's dimensions and calibration.

/// Physical calibration of a stack, as ImageJ keeps it. Serde (keys left out keep the defaults):
/// the Fiji door sends it with a movie it streams.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Calibration {
    pub pixel_width: f64,
    pub pixel_height: f64,
    /// Z spacing (`spacing=` in the description).
    pub pixel_depth: f64,
    /// Length unit; "pixel" when uncalibrated. ImageJ's "micron"/"um" are read as "µm".
    pub unit: String,
    /// Seconds (or `time_unit`) between frames; 0 when unknown (`finterval=`).
    pub frame_interval: f64,
    pub time_unit: String,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            pixel_width: 1.0,
            pixel_height: 1.0,
            pixel_depth: 1.0,
            unit: "pixel".to_string(),
            frame_interval: 0.0,
            time_unit: "sec".to_string(),
        }
    }
}

/// Hyperstack dimensions and calibration from (or for) an ImageJ TIFF.
/// Pages are stored XYCZT: channel fastest, then slice, then frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageJMetadata {
    pub channels: usize,
    pub slices: usize,
    pub frames: usize,
    pub hyperstack: bool,
    pub calibration: Calibration,
    /// Other `key=value` lines of the description (min, max, loop, mode...), kept in order.
    pub extra: Vec<(String, String)>,
}

impl Default for ImageJMetadata {
    fn default() -> Self {
        ImageJMetadata {
            channels: 1,
            slices: 1,
            frames: 1,
            hyperstack: false,
            calibration: Calibration::default(),
            extra: Vec::new(),
        }
    }
}

/// Keys this module reads into fields and writes itself; everything else travels in `extra`.
const MANAGED_KEYS: &[&str] =
    &["ImageJ", "images", "channels", "slices", "frames", "hyperstack", "unit", "spacing", "finterval", "tunit"];

/// The version string we write; any `ImageJ=` value makes ImageJ parse the description.
const IMAGEJ_VERSION: &str = "1.54f";

impl ImageJMetadata {
    /// Length of the time axis: frames, or slices when the stack has a single frame
    /// (a plain ImageJ stack of a movie is saved as `slices=N`).
    pub fn time_axis_len(&self) -> usize {
        if self.frames > 1 {
            self.frames
        } else {
            self.slices
        }
    }

    /// Number of pages the dimensions describe (channels × slices × frames).
    pub fn page_count(&self) -> usize {
        self.channels.saturating_mul(self.slices).saturating_mul(self.frames)
    }

    /// Parses an ImageDescription. `Ok(None)` when the text is not ImageJ's (no `ImageJ=` line);
    /// `Err` with a message when a dimension is not a positive integer.
    pub fn parse_description(text: &str) -> Result<Option<ImageJMetadata>, String> {
        let text = text.trim_end_matches('\0');
        if !text.starts_with("ImageJ=") {
            return Ok(None);
        }
        let mut meta = ImageJMetadata::default();
        let mut images: Option<usize> = None;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let count = || -> Result<usize, String> {
                match value.parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(format!("ImageJ description has {key}={value}; expected a positive whole number")),
                }
            };
            match key {
                "images" => images = Some(count()?),
                "channels" => meta.channels = count()?,
                "slices" => meta.slices = count()?,
                "frames" => meta.frames = count()?,
                "hyperstack" => meta.hyperstack = value == "true",
                "unit" => meta.calibration.unit = normalize_unit(&unescape(value)),
                "spacing" => set_positive(&mut meta.calibration.pixel_depth, value),
                "finterval" => set_positive(&mut meta.calibration.frame_interval, value),
                "tunit" => meta.calibration.time_unit = unescape(value),
                "ImageJ" => {}
                _ => meta.extra.push((key.to_string(), value.to_string())),
            }
        }
        // A plain stack written by other tools may give only `images=`; ImageJ then treats it as
        // slices, and so do we.
        if let Some(images) = images {
            if meta.page_count() == 1 && images > 1 {
                meta.slices = images;
            }
        }
        Ok(Some(meta))
    }

    /// The ImageDescription for a file of `pages` pages. The dimensions written are this
    /// metadata's when they multiply to `pages`; otherwise all pages go on the time axis this
    /// metadata uses (slices for a plain stack, frames otherwise).
    pub fn to_description(&self, pages: usize) -> String {
        let (channels, slices, frames) = if self.page_count() == pages {
            (self.channels, self.slices, self.frames)
        } else if self.frames == 1 && self.slices > 1 {
            (1, pages, 1)
        } else {
            (1, 1, pages)
        };
        let mut text = format!("ImageJ={IMAGEJ_VERSION}\n");
        let mut line = |key: &str, value: String| {
            text.push_str(key);
            text.push('=');
            text.push_str(&value);
            text.push('\n');
        };
        if pages > 1 {
            line("images", pages.to_string());
        }
        if channels > 1 {
            line("channels", channels.to_string());
        }
        if slices > 1 {
            line("slices", slices.to_string());
        }
        if frames > 1 {
            line("frames", frames.to_string());
        }
        if self.hyperstack {
            line("hyperstack", "true".to_string());
        }
        let cal = &self.calibration;
        if cal.unit != "pixel" && !cal.unit.is_empty() {
            line("unit", escape(&imagej_unit_name(&cal.unit)));
        }
        if cal.pixel_depth != 1.0 && cal.pixel_depth.is_finite() && cal.pixel_depth > 0.0 {
            line("spacing", cal.pixel_depth.to_string());
        }
        if cal.frame_interval > 0.0 && cal.frame_interval.is_finite() {
            line("finterval", cal.frame_interval.to_string());
        }
        if cal.time_unit != "sec" && !cal.time_unit.is_empty() {
            line("tunit", escape(&cal.time_unit));
        }
        for (key, value) in &self.extra {
            // A key or value with a line break or '=' in the key would corrupt the description.
            if MANAGED_KEYS.contains(&key.as_str()) || key.contains(['=', '\n', '\r']) || value.contains(['\n', '\r']) {
                continue;
            }
            line(key, escape(value));
        }
        text
    }
}

fn set_positive(field: &mut f64, value: &str) {
    if let Ok(v) = value.parse::<f64>() {
        if v.is_finite() && v > 0.0 {
            *field = v;
        }
    }
}

/// ImageJ spells micrometres several ways; we keep one.
fn normalize_unit(unit: &str) -> String {
    match unit {
        "micron" | "microns" | "um" | "\u{3bc}m" => "\u{b5}m".to_string(),
        "" => "pixel".to_string(),
        other => other.to_string(),
    }
}

/// ImageJ writes micrometres as "micron" (ASCII); it maps that back to µm on opening.
fn imagej_unit_name(unit: &str) -> String {
    if normalize_unit(unit) == "\u{b5}m" {
        "micron".to_string()
    } else {
        unit.to_string()
    }
}

/// TIFF ASCII must be 7-bit: non-ASCII characters become `\uXXXX`, as ImageJ escapes them.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && c != '\0' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04X}"));
            }
        }
    }
    out
}

fn unescape(text: &str) -> String {
    if !text.contains("\\u") {
        return text.to_string();
    }
    let mut units: Vec<u16> = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("\\u") {
        units.extend(rest[..pos].encode_utf16());
        let hex = rest.get(pos + 2..pos + 6);
        match hex.and_then(|h| u16::from_str_radix(h, 16).ok()) {
            Some(unit) => {
                units.push(unit);
                rest = &rest[pos + 6..];
            }
            None => {
                units.extend("\\u".encode_utf16());
                rest = &rest[pos + 2..];
            }
        }
    }
    units.extend(rest.encode_utf16());
    String::from_utf16_lossy(&units)
}

/// A TIFF RATIONAL (numerator, denominator) close to `value`, using as many digits as u32 allows
/// (ImageJ's fixed 1e6 denominator loses precision on sub-micron pixel sizes).
pub(crate) fn to_rational(value: f64) -> (u32, u32) {
    if !value.is_finite() || value <= 0.0 {
        return (1, 1);
    }
    let max = f64::from(u32::MAX);
    if value >= 1.0 {
        if value >= max {
            return (u32::MAX, 1);
        }
        let denominator = (max / value).floor();
        ((value * denominator).round().min(max) as u32, denominator as u32)
    } else {
        let numerator = (value * max).round();
        if numerator >= 1.0 {
            (numerator as u32, u32::MAX)
        } else {
            (1, (1.0 / value).round().min(max) as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperstack_description_round_trips() {
        let meta = ImageJMetadata {
            channels: 2,
            slices: 3,
            frames: 4,
            hyperstack: true,
            calibration: Calibration {
                pixel_width: 0.5,
                pixel_height: 0.5,
                pixel_depth: 2.5,
                unit: "\u{b5}m".to_string(),
                frame_interval: 0.033,
                time_unit: "ms".to_string(),
            },
            extra: vec![("loop".to_string(), "false".to_string()), ("min".to_string(), "3.0".to_string())],
        };
        let text = meta.to_description(24);
        assert!(text.starts_with("ImageJ="));
        assert!(text.contains("images=24\nchannels=2\nslices=3\nframes=4\nhyperstack=true\nunit=micron\n"), "{text}");
        let back = ImageJMetadata::parse_description(&text).unwrap().unwrap();
        let mut expected = meta.clone();
        expected.calibration.pixel_width = 1.0; // pixel size travels in XResolution, not the text
        expected.calibration.pixel_height = 1.0;
        assert_eq!(back, expected);
    }

    #[test]
    fn plain_stack_keeps_slices_as_time_axis() {
        let meta =
            ImageJMetadata::parse_description("ImageJ=1.53t\nimages=14\nslices=14\nloop=false\n\0").unwrap().unwrap();
        assert_eq!((meta.channels, meta.slices, meta.frames), (1, 14, 1));
        assert_eq!(meta.time_axis_len(), 14);
        assert!(meta.to_description(14).contains("images=14\nslices=14\n"));
        // When the page count differs, pages go on the same axis.
        assert!(meta.to_description(9).contains("images=9\nslices=9\n"));
    }

    #[test]
    fn non_imagej_and_bad_descriptions() {
        assert_eq!(ImageJMetadata::parse_description("{\"shape\": [29, 21, 14]}"), Ok(None));
        let err = ImageJMetadata::parse_description("ImageJ=1.5\nchannels=zero\n").unwrap_err();
        assert!(err.contains("channels=zero"), "{err}");
        let meta = ImageJMetadata::parse_description("ImageJ=1.5\nimages=5\n").unwrap().unwrap();
        assert_eq!(meta.slices, 5);
    }

    #[test]
    fn escaped_units_are_decoded_and_non_ascii_is_escaped() {
        let meta = ImageJMetadata::parse_description("ImageJ=1.5\nunit=\\u00B5m\ntunit=\\u00B5s\n").unwrap().unwrap();
        assert_eq!(meta.calibration.unit, "\u{b5}m");
        assert_eq!(meta.calibration.time_unit, "\u{b5}s");
        let text = meta.to_description(1);
        assert!(text.is_ascii());
        assert!(text.contains("tunit=\\u00B5s"), "{text}");
    }

    #[test]
    fn rationals_are_precise() {
        for value in [1.0, 1.0 / 0.65, 3.0769, 0.001, 12345.678, 1e-12] {
            let (n, d) = to_rational(value);
            let back = f64::from(n) / f64::from(d);
            assert!(((back - value) / value).abs() < 1e-6 || value < 1e-9, "{value} -> {n}/{d}");
        }
    }
}
