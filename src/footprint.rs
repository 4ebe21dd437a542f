//! Where a neuron is in a frame: the one type the simulator draws, the metrics read traces through
//! and the evaluation derives from label images, and its conversions to and from a label image
//! (0 = background, n = neuron n: the format Suite2p, CaImAn and Fiji's ROI tools all export). Its
//! own module so that none of those rooms has to reach into another for it.

use crate::{Error, Result};

/// Where a neuron is: the pixels it covers (`y·width + x`) and how strongly (peak weight 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    pub pixels: Vec<(usize, f32)>,
}

/// Footprints (weight 1 per pixel) of the labels `1..=max` in a label image of `width × height`.
/// Labels with no pixel give empty footprints (they score 0 in trace correlations), so neuron
/// numbers stay aligned with the label values.
pub fn footprints_from_labels(labels: &[f32], width: usize, height: usize) -> Result<Vec<Footprint>> {
    if labels.len() != width * height {
        return Err(Error::usage(format!(
            "the label image has {} pixels but frames are {width}×{height}; give one label frame of the movie's size",
            labels.len()
        )));
    }
    let mut max_label = 0usize;
    for (index, &value) in labels.iter().enumerate() {
        if !(value >= 0.0 && value.fract() == 0.0 && value < 65536.0) {
            return Err(Error::usage(format!(
                "label image pixel {index} (x {}, y {}) is {value}; labels must be whole numbers 0..65535 (0 = background)",
                index % width,
                index / width
            )));
        }
        max_label = max_label.max(value as usize);
    }
    let mut footprints = vec![Footprint { pixels: Vec::new() }; max_label];
    for (index, &value) in labels.iter().enumerate() {
        if value > 0.0 {
            footprints[value as usize - 1].pixels.push((index, 1.0));
        }
    }
    Ok(footprints)
}

/// Label image of footprints: a pixel belongs to the neuron whose footprint weighs most there,
/// if that weight is at least `threshold` of the neuron's own peak (cores, not faint rims).
pub fn labels_from_footprints(footprints: &[Footprint], frame_len: usize, threshold: f32) -> Vec<f32> {
    let mut labels = vec![0f32; frame_len];
    let mut strongest = vec![0f32; frame_len];
    for (n, footprint) in footprints.iter().enumerate() {
        let peak = footprint.pixels.iter().map(|&(_, w)| w).fold(0f32, f32::max);
        for &(index, weight) in &footprint.pixels {
            if index < frame_len && weight > 0.0 && weight >= threshold * peak && weight > strongest[index] {
                strongest[index] = weight;
                labels[index] = (n + 1) as f32;
            }
        }
    }
    labels
}
