//! What a Zarr movie's attributes say about it, beside the pixels: the calibration and frame
//! interval Fiji shows, where the movie came from, and the other description lines a TIFF
//! carried. Stored under one key, so other tools' attributes live beside ours untouched.

use serde_json::{json, Map, Value};

use crate::io::{Calibration, ImageJMetadata};

/// The attribute key of a movie's description.
pub const MOVIE_ATTRIBUTE: &str = "deepcad_movie";

/// The attributes describing a movie of `frames` frames with `metadata`, from `source`.
pub fn movie_attributes(metadata: &ImageJMetadata, source: Option<&str>) -> Map<String, Value> {
    let c = &metadata.calibration;
    let mut attributes = Map::new();
    attributes.insert(
        MOVIE_ATTRIBUTE.into(),
        json!({
            "axes": ["t", "y", "x"],
            "pixel_width": c.pixel_width,
            "pixel_height": c.pixel_height,
            "unit": c.unit,
            "frame_interval": c.frame_interval,
            "time_unit": c.time_unit,
            "source": source,
            "description": metadata.extra.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        }),
    );
    attributes
}

/// The metadata of a movie of `frames` frames from its attributes; missing or foreign entries
/// fall back to an uncalibrated movie (a Zarr written by another tool).
pub fn read_movie_attributes(attributes: &Map<String, Value>, frames: usize) -> ImageJMetadata {
    let mut metadata = ImageJMetadata { frames, hyperstack: frames > 1, ..ImageJMetadata::default() };
    let Some(movie) = attributes.get(MOVIE_ATTRIBUTE).and_then(Value::as_object) else {
        return metadata;
    };
    let number = |key: &str, default: f64| {
        movie.get(key).and_then(Value::as_f64).filter(|v| v.is_finite() && *v >= 0.0).unwrap_or(default)
    };
    let text = |key: &str, default: &str| movie.get(key).and_then(Value::as_str).unwrap_or(default).to_string();
    metadata.calibration = Calibration {
        pixel_width: number("pixel_width", 1.0),
        pixel_height: number("pixel_height", 1.0),
        unit: text("unit", "pixel"),
        frame_interval: number("frame_interval", 0.0),
        time_unit: text("time_unit", "sec"),
        ..Calibration::default()
    };
    if let Some(lines) = movie.get("description").and_then(Value::as_array) {
        metadata.extra = lines
            .iter()
            .filter_map(|pair| Some((pair.get(0)?.as_str()?.to_string(), pair.get(1)?.as_str()?.to_string())))
            .collect();
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_and_description_survive_a_round_trip() {
        let mut metadata = ImageJMetadata { frames: 7, hyperstack: true, ..ImageJMetadata::default() };
        metadata.calibration.pixel_width = 0.625;
        metadata.calibration.pixel_height = 0.5;
        metadata.calibration.unit = "µm".into();
        metadata.calibration.frame_interval = 0.033;
        metadata.extra = vec![("min".into(), "0.0".into()), ("mode".into(), "grayscale".into())];
        let back = read_movie_attributes(&movie_attributes(&metadata, Some("cells.tif")), 7);
        assert_eq!(back.calibration, metadata.calibration);
        assert_eq!(back.extra, metadata.extra);
        assert_eq!(back.frames, 7);
    }
}
