//! The hybrid network is blind where it must be, proved by autograd: the output at frame t, pixel
//! (y, x) has exactly zero derivative with respect to the input at (t, y, x), through the full
//! denoising forward (parity split, grid shift, mirror padding, low-memory slabs) and through the
//! training forward, while its neighbours in the same frame and the other parity's frames do
//! count. An interlaced model run on consecutive frames, as DeepCAD denoises, is the control: there
//! the same derivative is not zero, so the test can tell.

use deepcad::model::{Model, ModelMetadata, Normalization, SelfSupervision, TileMemory, TilePlacement};
use deepcad::tiling::reflect_index;
use tch::{Device, Kind, Tensor};

/// A small model with every weight random, the head's zero-initialised output layer included
/// (otherwise nothing would reach the output through the blind spot).
fn random_model(method: SelfSupervision) -> Model {
    tch::manual_seed(5);
    let metadata = ModelMetadata::new(4, [16, 16, 16], Normalization::Fixed { offset: 0.0, scale: 1.0 });
    let model = Model::new(metadata.with_method(method), Device::Cpu).unwrap();
    tch::no_grad(|| {
        for (name, mut var) in model.vs.variables() {
            if name.starts_with("BlindSpot.output") {
                let _ = var.normal_(0.0, 0.5);
            }
        }
    });
    model
}

/// `movie` (`[T, H, W]`) mirrored past its bottom and right edges to `rows × columns`, as the
/// streaming denoiser pads a tile there, through differentiable indexing.
fn mirror_padded(movie: &Tensor, rows: i64, columns: i64) -> Tensor {
    let size = movie.size();
    let index = |n: i64, len: i64| {
        let values: Vec<i64> = (0..n).map(|i| reflect_index(i as usize, len as usize) as i64).collect();
        Tensor::from_slice(&values)
    };
    movie
        .index_select(1, &index(rows, size[1]))
        .index_select(2, &index(columns, size[2]))
        .view([1, 1, size[0], rows, columns])
}

/// d output(t, y, x) / d input, for one output voxel.
fn gradient_of(output: &Tensor, input: &Tensor, at: [i64; 3]) -> Tensor {
    let [t, y, x] = at;
    let voxel = output.get(0).get(0).get(t).get(y).get(x);
    Tensor::run_backward(&[voxel], &[input], true, false).pop().unwrap()
}

fn abs_at(gradient: &Tensor, t: i64, y: i64, x: i64) -> f64 {
    gradient.get(t).get(y).get(x).abs().double_value(&[])
}

/// Sum of |gradient| over the 3×3 neighbours of (y, x) in frame t, the centre left out.
fn neighbours(gradient: &Tensor, t: i64, y: i64, x: i64) -> f64 {
    let size = gradient.size();
    let mut sum = 0.0;
    for dy in -1..=1 {
        for dx in -1..=1 {
            let (ny, nx) = (y + dy, x + dx);
            if (dy, dx) != (0, 0) && (0..size[1]).contains(&ny) && (0..size[2]).contains(&nx) {
                sum += abs_at(gradient, t, ny, nx);
            }
        }
    }
    sum
}

/// Sum of |gradient| over a whole frame.
fn frame_total(gradient: &Tensor, t: i64) -> f64 {
    gradient.get(t).abs().sum(Kind::Double).double_value(&[])
}

/// The voxels checked: corners, the mirrored edges, frames of both parities, the first and last.
const SAMPLED: [[i64; 3]; 8] =
    [[0, 0, 0], [15, 12, 10], [7, 6, 5], [8, 12, 3], [3, 1, 10], [10, 11, 9], [12, 5, 0], [1, 9, 8]];

#[test]
fn the_hybrid_denoising_forward_never_sees_the_pixel_it_predicts() {
    let model = random_model(SelfSupervision::Hybrid);
    // 16 frames of 13×11 pixels, padded to a 16×16 tile as at the movie's bottom-right corner, and
    // placed at frame 8, so the parity passes are shifted onto the movie's grid (8/2 mod 8 = 4).
    let movie = Tensor::randn([16, 13, 11], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let tile = mirror_padded(&movie, 16, 16);
    let placements = [TilePlacement { first_frame: 8, real_rows: 13, real_columns: 11 }];
    for memory in [TileMemory::Whole, TileMemory::Slabs { voxels: 16 * 16 * 4 }] {
        let output = model.denoise_tile(&tile, &placements, memory, &mut || Ok(())).unwrap();
        assert_eq!(output.size(), [1, 1, 16, 16, 16]);
        for [t, y, x] in SAMPLED {
            let gradient = gradient_of(&output, &movie, [t, y, x]);
            let at = format!("{memory:?}, output ({t}, {y}, {x})");
            assert_eq!(abs_at(&gradient, t, y, x), 0.0, "{at}: depends on its own input pixel");
            assert!(neighbours(&gradient, t, y, x) > 0.0, "{at}: its neighbours in the frame do not count");
            // The context is the other parity's frames: the next or previous frame counts, the
            // same parity's never (they would carry no blind spot).
            let other = if t + 1 < 16 { t + 1 } else { t - 1 };
            assert!(frame_total(&gradient, other) > 0.0, "{at}: frame {other} does not count");
            for same in (t % 2..16).step_by(2).filter(|&s| s != t) {
                assert_eq!(frame_total(&gradient, same), 0.0, "{at}: depends on frame {same} of its own parity");
            }
        }
    }
}

#[test]
fn the_hybrid_training_forward_never_sees_the_pixel_it_predicts() {
    let model = random_model(SelfSupervision::Hybrid);
    let input = Tensor::randn([1, 1, 8, 16, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let target = Tensor::randn([1, 1, 8, 16, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let output = model.pair_forward(&input, &target).unwrap();
    for [t, y, x] in [[0, 0, 0], [7, 15, 15], [3, 8, 8], [5, 1, 14]] {
        let [from_input, from_target] = <[Tensor; 2]>::try_from(Tensor::run_backward(
            &[output.get(0).get(0).get(t).get(y).get(x)],
            &[&input, &target],
            true,
            false,
        ))
        .unwrap();
        let (from_input, from_target) = (from_input.get(0).get(0), from_target.get(0).get(0));
        assert_eq!(abs_at(&from_target, t, y, x), 0.0, "({t}, {y}, {x}) depends on its own target pixel");
        assert!(neighbours(&from_target, t, y, x) > 0.0, "({t}, {y}, {x}): its target neighbours do not count");
        assert!(frame_total(&from_input, t) > 0.0, "({t}, {y}, {x}): the context frames do not count");
        // The blind stack works on one frame: other target frames never count.
        let others: f64 = (0..8).filter(|&s| s != t).map(|s| frame_total(&from_target, s)).sum();
        assert_eq!(others, 0.0, "({t}, {y}, {x}) depends on other target frames");
    }
}

#[test]
fn the_control_an_interlaced_model_denoising_consecutive_frames_does_see_its_own_pixel() {
    let model = random_model(SelfSupervision::Interlaced);
    let movie = Tensor::randn([16, 16, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let tile = movie.view([1, 1, 16, 16, 16]);
    let output =
        model.denoise_tile(&tile, &TilePlacement::unmirrored(&tile), TileMemory::Whole, &mut || Ok(())).unwrap();
    let seen =
        SAMPLED.iter().filter(|&&[t, y, x]| abs_at(&gradient_of(&output, &movie, [t, y, x]), t, y, x) > 0.0).count();
    // (A random ReLU network may be flat at a voxel or two: most must show it.)
    assert!(seen > SAMPLED.len() / 2, "only {seen} voxels see their own pixel: the test could not tell");
}
