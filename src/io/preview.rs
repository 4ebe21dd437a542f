//! PNG previews of frames side by side (raw | denoised | ground truth), each contrast-stretched
//! to its own 0.5–99.5 percentile range, for demos and reports.

use std::path::Path;

use crate::{Error, Result};

/// One grayscale panel: `width·height` values.
pub struct Panel<'a> {
    pub pixels: &'a [f32],
    pub width: usize,
    pub height: usize,
}

fn percentile_range(pixels: &[f32]) -> (f32, f32) {
    let mut sorted: Vec<f32> = pixels.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return (0.0, 1.0);
    }
    sorted.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.005), at(0.995));
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}

/// Writes panels left to right with a 4-pixel white gap, scaled up by `zoom`.
pub fn write_preview_png(path: &Path, panels: &[Panel<'_>], zoom: usize) -> Result<()> {
    let zoom = zoom.max(1);
    let gap = 4;
    let height = panels.iter().map(|p| p.height).max().unwrap_or(0) * zoom;
    let width = panels.iter().map(|p| p.width * zoom).sum::<usize>() + gap * panels.len().saturating_sub(1);
    if width == 0 || height == 0 {
        return Err(Error::usage("preview needs at least one non-empty panel"));
    }
    let mut image = vec![255u8; width * height];
    let mut left = 0;
    for panel in panels {
        if panel.pixels.len() != panel.width * panel.height {
            return Err(Error::usage("preview panel size does not match its pixel count"));
        }
        let (lo, hi) = percentile_range(panel.pixels);
        for y in 0..panel.height * zoom {
            for x in 0..panel.width * zoom {
                let v = panel.pixels[(y / zoom) * panel.width + x / zoom];
                let scaled = ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0;
                image[y * width + left + x] = scaled.round() as u8;
            }
        }
        left += panel.width * zoom + gap;
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| Error::usage(e.to_string()))?;
        writer.write_image_data(&image).map_err(|e| Error::usage(e.to_string()))?;
    }
    super::write_file_atomically(path, &bytes)
}
