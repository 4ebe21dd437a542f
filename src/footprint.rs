//! Where a neuron is in a frame: the one type the simulator draws, the metrics read traces through
//! and the evaluation derives from label images. Its own module so that none of those rooms has to
//! reach into another for it.

/// Where a neuron is: the pixels it covers (`y·width + x`) and how strongly (peak weight 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    pub pixels: Vec<(usize, f32)>,
}
