//! OME-TIFF dimensions: Bio-Formats, Micro-Manager and many microscopes write an OME-XML
//! ImageDescription instead of ImageJ's. Its `<Pixels SizeC SizeZ SizeT DimensionOrder>` say how
//! the pages interleave channels, z and time; without reading them a 3-channel movie of 20 time
//! points would be denoised as 60 frames of mixed channels. They become the same hyperstack
//! dimensions an ImageJ file has (and the same channel / slice choice), plus the page order.

use crate::io::imagej::ImageJMetadata;

/// How pages run through the channel, z and time axes: each axis's step in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageOrder {
    pub channel_step: usize,
    pub slice_step: usize,
    pub frame_step: usize,
}

impl PageOrder {
    /// ImageJ's XYCZT: channel fastest, then slice, then frame.
    pub fn imagej(channels: usize, slices: usize) -> PageOrder {
        PageOrder { channel_step: 1, slice_step: channels, frame_step: channels * slices }
    }
}

/// Dimensions read from an OME-XML description.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OmeDimensions {
    pub metadata: ImageJMetadata,
    pub order: PageOrder,
}

/// `Ok(None)` when `text` is not OME-XML; `Err` with a message when it is but its first image's
/// `Pixels` element lacks sizes or has an unknown dimension order.
pub(super) fn parse_ome(text: &str) -> Result<Option<OmeDimensions>, String> {
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if !(text.starts_with("<?xml") || text.starts_with("<OME")) || !text.contains("<OME") {
        return Ok(None);
    }
    let document =
        roxmltree::Document::parse(text).map_err(|e| format!("its OME-XML description is malformed ({e})"))?;
    let Some(pixels) = document.descendants().find(|n| n.has_tag_name("Pixels")) else {
        return Err("its OME-XML description has no Pixels element".into());
    };
    let size = |name: &str| -> Result<usize, String> {
        match pixels.attribute(name).map(str::parse::<usize>) {
            Some(Ok(n)) if n > 0 => Ok(n),
            Some(_) => Err(format!(
                "its OME-XML has {name}=\"{}\"; expected a positive whole number",
                pixels.attribute(name).unwrap_or("")
            )),
            None => Ok(1),
        }
    };
    let (channels, slices, frames) = (size("SizeC")?, size("SizeZ")?, size("SizeT")?);
    let order = pixels.attribute("DimensionOrder").unwrap_or("XYCZT");
    let steps = page_steps(order, [channels, slices, frames]).ok_or_else(|| {
        format!("its OME-XML has DimensionOrder=\"{order}\"; expected XY followed by C, Z and T in some order")
    })?;
    let mut metadata = ImageJMetadata {
        channels,
        slices,
        frames,
        hyperstack: channels > 1 || (slices > 1 && frames > 1),
        ..Default::default()
    };
    let physical =
        |name: &str| pixels.attribute(name).and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite() && *v > 0.0);
    if let (Some(x), Some(y)) = (physical("PhysicalSizeX"), physical("PhysicalSizeY")) {
        metadata.calibration.pixel_width = x;
        metadata.calibration.pixel_height = y;
        metadata.calibration.unit = pixels.attribute("PhysicalSizeXUnit").unwrap_or("µm").to_string();
    }
    if let Some(z) = physical("PhysicalSizeZ") {
        metadata.calibration.pixel_depth = z;
    }
    if let Some(dt) = physical("TimeIncrement") {
        metadata.calibration.frame_interval = dt;
        metadata.calibration.time_unit = pixels.attribute("TimeIncrementUnit").unwrap_or("s").to_string();
    }
    Ok(Some(OmeDimensions {
        metadata,
        order: PageOrder { channel_step: steps[0], slice_step: steps[1], frame_step: steps[2] },
    }))
}

/// Page steps of C, Z and T for an order such as `XYZCT` (after XY, fastest first).
fn page_steps(order: &str, sizes: [usize; 3]) -> Option<[usize; 3]> {
    let axes = order.strip_prefix("XY")?;
    if axes.len() != 3 {
        return None;
    }
    let mut steps = [0usize; 3];
    let mut step = 1usize;
    for axis in axes.chars() {
        let index = "CZT".find(axis)?;
        if steps[index] != 0 {
            return None;
        }
        steps[index] = step;
        step = step.checked_mul(sizes[index])?;
    }
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ome(order: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="{order}" Type="uint16" SizeX="8" SizeY="6" SizeC="3" SizeZ="1" SizeT="20" PhysicalSizeX="0.5" PhysicalSizeY="0.5" TimeIncrement="0.033"/></Image></OME>"#
        )
    }

    #[test]
    fn sizes_order_and_calibration_come_from_the_pixels_element() {
        let dims = parse_ome(&ome("XYCZT")).unwrap().unwrap();
        assert_eq!((dims.metadata.channels, dims.metadata.slices, dims.metadata.frames), (3, 1, 20));
        assert_eq!(dims.order, PageOrder::imagej(3, 1));
        assert_eq!(dims.metadata.calibration.pixel_width, 0.5);
        assert_eq!(dims.metadata.calibration.frame_interval, 0.033);
        let time_first = parse_ome(&ome("XYTCZ")).unwrap().unwrap();
        assert_eq!(time_first.order, PageOrder { frame_step: 1, channel_step: 20, slice_step: 60 });
    }

    #[test]
    fn other_descriptions_are_not_ome_and_bad_orders_are_refused() {
        assert_eq!(parse_ome("ImageJ=1.54f\nimages=3\n"), Ok(None));
        assert_eq!(parse_ome("{\"shape\": [3, 4]}"), Ok(None));
        assert!(parse_ome(&ome("XYCCT")).unwrap_err().contains("DimensionOrder"));
        assert!(parse_ome("<?xml version=\"1.0\"?><OME><Image>").is_err());
    }
}
