//! Training's parts: patch grid, pairs, augmentation, validation split, inputs. The loop itself
//! (bundles, cancel, resume, precision, time budget) is in `train_loop_tests.rs`.

use std::collections::HashSet;

use deepcad::io::{FrameSource, ImageJMetadata, InMemoryMovie, SampleType};
use deepcad::progress::Silent;
use deepcad::train::pair_reader::PairReader;
use deepcad::train::{
    open_training_inputs, plan_patches, split_validation, train, Augmentation, Dihedral, Patch, SourceShape,
};
use deepcad::Error;
use tch::Device;

use super::train_loop_tests::{small_settings, Recorder};

fn shape(name: &str, frames: usize, height: usize, width: usize) -> SourceShape {
    SourceShape { name: name.into(), width, height, frames }
}

/// Frame t, pixel (y, x) holds `t·10000 + y·width + x`: every value says where it came from.
fn coded_movie(frames: usize, height: usize, width: usize) -> InMemoryMovie {
    let data = (0..frames * height * width)
        .map(|i| {
            let t = i / (height * width);
            (t * 10000 + i % (height * width)) as f32
        })
        .collect();
    InMemoryMovie::new("coded", width, height, frames, SampleType::F32, data).unwrap()
}

// ---------------------------------------------------------------- patch grid

#[test]
fn patch_grid_reproduces_the_reference_worked_examples() {
    // deepcad-spec §1.2 step 7: Colab (2000 frames) and issue RT#34 (6955 frames), 492², patch 150, overlap 0.4.
    let colab = plan_patches(&[shape("a", 2000, 492, 492)], [150, 150, 150], 0.4, 2000).unwrap();
    assert_eq!(colab.patches.len(), 2096);
    let rt34 = plan_patches(&[shape("b", 6955, 492, 492)], [150, 150, 150], 0.4, 3000).unwrap();
    assert_eq!(rt34.patches.len(), 3056);
    assert!(colab.warnings.is_empty(), "{:?}", colab.warnings);
    for p in &colab.patches {
        assert!(p.t0 + 300 <= 2000 && p.y0 + 150 <= 492 && p.x0 + 150 <= 492, "{p:?} out of range");
    }
}

#[test]
fn one_window_per_position_needs_no_division_by_zero() {
    // s_num = 1 (the reference divides by s_num − 1 = 0).
    let plan = plan_patches(&[shape("a", 100, 64, 64)], [16, 32, 32], 0.5, 1).unwrap();
    assert_eq!(plan.patches.len(), 9, "3 × 3 positions, one window each");
    assert!(plan.patches.iter().all(|p| p.t0 == 0));
    assert!(plan.warnings.iter().any(|w| w.contains("more than the 1 asked")), "{:?}", plan.warnings);

    // Exactly 2·patch_t frames: only one window fits, whatever is asked; the shortfall is reported.
    let plan = plan_patches(&[shape("a", 32, 32, 32)], [16, 32, 32], 0.25, 50).unwrap();
    assert_eq!(plan.patches, vec![Patch { source: 0, t0: 0, y0: 0, x0: 0 }]);
    assert!(plan.warnings.iter().any(|w| w.contains("only 1") && w.contains("50")), "{:?}", plan.warnings);

    // More windows asked than frames allow: stride 1, every start frame once.
    let plan = plan_patches(&[shape("a", 40, 32, 32)], [16, 32, 32], 0.25, 1000).unwrap();
    let starts: Vec<usize> = plan.patches.iter().map(|p| p.t0).collect();
    assert_eq!(starts, (0..=8).collect::<Vec<_>>());
}

#[test]
fn patch_grid_covers_every_source() {
    let plan = plan_patches(&[shape("a", 200, 64, 64), shape("b", 120, 48, 80)], [16, 32, 32], 0.5, 100).unwrap();
    let sources: HashSet<usize> = plan.patches.iter().map(|p| p.source).collect();
    assert_eq!(sources, HashSet::from([0, 1]));
    let n = plan.patches.len();
    assert!((100..=125).contains(&n), "{n} patches for 100 asked");
    let distinct: HashSet<Patch> = plan.patches.iter().copied().collect();
    assert_eq!(distinct.len(), n, "no patch twice");
}

#[test]
fn short_or_small_inputs_shrink_the_patch_with_a_warning() {
    let plan = plan_patches(&[shape("long.tif", 500, 64, 64), shape("short.tif", 40, 64, 64)], [32, 64, 64], 0.25, 10)
        .unwrap();
    assert_eq!(plan.patch, [16, 64, 64]);
    assert!(plan.warnings.iter().any(|w| w.contains("short.tif") && w.contains("patch_t = 16")), "{:?}", plan.warnings);

    let plan = plan_patches(&[shape("narrow.tif", 500, 64, 20)], [16, 64, 64], 0.25, 10).unwrap();
    assert_eq!(plan.patch, [16, 64, 16]);
    assert!(plan.warnings.iter().any(|w| w.contains("narrow.tif") && w.contains("width 20")), "{:?}", plan.warnings);
}

#[test]
fn too_short_or_too_small_inputs_are_refused_naming_the_file() {
    let err = plan_patches(&[shape("tiny.tif", 15, 64, 64)], [16, 64, 64], 0.25, 10).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Usage(_)));
    assert!(message.contains("tiny.tif") && message.contains("15 frames") && message.contains("16"), "{message}");

    let err = plan_patches(&[shape("thin.tif", 100, 7, 64)], [16, 64, 64], 0.25, 10).unwrap_err();
    assert!(err.to_string().contains("thin.tif") && err.to_string().contains("height 7"), "{err}");

    // Through `train`, with nothing written.
    let dir = tempfile::tempdir().unwrap();
    let mut sources: Vec<Box<dyn FrameSource>> = vec![Box::new(
        InMemoryMovie::new("ten-frames.tif", 32, 32, 10, SampleType::U16, vec![1.0; 10 * 32 * 32]).unwrap(),
    )];
    let output = dir.path().join("m.safetensors");
    let err = train(&mut sources, &small_settings(), &output, None, Device::Cpu, &mut Silent).unwrap_err();
    assert!(err.to_string().contains("ten-frames.tif") && err.to_string().contains("10 frames"), "{err}");
    assert!(!output.exists());
}

// ---------------------------------------------------------------- pairs and augmentation

#[test]
fn pairs_take_even_frames_as_input_and_odd_frames_as_target() {
    let (frames, height, width) = (40, 24, 20);
    let mut sources: Vec<Box<dyn FrameSource>> = vec![Box::new(coded_movie(frames, height, width))];
    let (pt, py, px) = (8, 8, 16);
    let mut reader = PairReader::new([pt, py, px], 0.0, 1.0);
    let patch = Patch { source: 0, t0: 5, y0: 3, x0: 2 };
    let mut input = vec![0.0; reader.volume_len()];
    let mut target = vec![0.0; reader.volume_len()];
    reader.read_pair(&mut sources, &patch, Augmentation::NONE, &mut input, &mut target).unwrap();
    for i in 0..pt {
        for y in 0..py {
            for x in 0..px {
                let at = (i * py + y) * px + x;
                let pixel = ((patch.y0 + y) * width + patch.x0 + x) as f32;
                assert_eq!(input[at], ((patch.t0 + 2 * i) * 10000) as f32 + pixel);
                assert_eq!(target[at], ((patch.t0 + 2 * i + 1) * 10000) as f32 + pixel);
            }
        }
    }
    // Swapped: odd frames in, even frames out.
    let swapped = Augmentation { swap: true, dihedral: Dihedral::IDENTITY };
    let (mut input2, mut target2) = (input.clone(), target.clone());
    reader.read_pair(&mut sources, &patch, swapped, &mut input2, &mut target2).unwrap();
    assert_eq!(input2, target);
    assert_eq!(target2, input);

    // Normalisation (x − offset) / scale is applied to both.
    let mut normalised = PairReader::new([pt, py, px], 100.0, 4.0);
    normalised.read_pair(&mut sources, &patch, Augmentation::NONE, &mut input2, &mut target2).unwrap();
    assert!(input2.iter().zip(&input).all(|(n, r)| (n - (r - 100.0) / 4.0).abs() < 1e-3));
}

#[test]
fn the_eight_dihedral_transforms_are_distinct_and_shared_by_input_and_target() {
    let (frames, size) = (20, 16);
    let mut sources: Vec<Box<dyn FrameSource>> = vec![Box::new(coded_movie(frames, size, size))];
    let mut reader = PairReader::new([8, 8, 8], 0.0, 1.0);
    let patch = Patch { source: 0, t0: 2, y0: 4, x0: 6 };
    let (mut plain_in, mut plain_target) = (vec![0.0; 512], vec![0.0; 512]);
    reader.read_pair(&mut sources, &patch, Augmentation::NONE, &mut plain_in, &mut plain_target).unwrap();

    let mut seen = HashSet::new();
    for dihedral in Dihedral::all() {
        for swap in [false, true] {
            let (mut input, mut target) = (vec![0.0; 512], vec![0.0; 512]);
            reader.read_pair(&mut sources, &patch, Augmentation { swap, dihedral }, &mut input, &mut target).unwrap();
            // Same spatial transform on both: they differ by exactly one frame everywhere.
            let step = if swap { -10000.0 } else { 10000.0 };
            assert!(target.iter().zip(&input).all(|(t, i)| t - i == step), "{dihedral:?} swap {swap}");
            // And it is the plane transform applied frame by frame.
            let source = if swap { &plain_target } else { &plain_in };
            for i in 0..8 {
                let mut expected = vec![0.0; 64];
                dihedral.apply_plane(&source[i * 64..(i + 1) * 64], 8, 8, &mut expected);
                assert_eq!(&input[i * 64..(i + 1) * 64], &expected[..]);
            }
            if !swap {
                seen.insert(input.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
        }
    }
    assert_eq!(seen.len(), 8, "the 8 transforms give 8 different volumes");
    // Rotation by 90° counter-clockwise (numpy rot90): the top-right corner goes to the top-left.
    let mut rotated = vec![0.0; 4];
    Dihedral { quarter_turns: 1, flip: false }.apply_plane(&[1.0, 2.0, 3.0, 4.0], 2, 2, &mut rotated);
    assert_eq!(rotated, vec![2.0, 4.0, 1.0, 3.0]);
}

#[test]
fn augmentation_keeps_non_square_patches_in_shape() {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let drawn: HashSet<(u8, bool, bool)> = (0..400)
        .map(|_| Augmentation::draw(&mut rng, 16, 32))
        .map(|a| (a.dihedral.quarter_turns, a.dihedral.flip, a.swap))
        .collect();
    assert!(drawn.iter().all(|&(k, _, _)| k % 2 == 0));
    assert_eq!(drawn.len(), 8, "4 shape-keeping transforms × swap");
    let square: HashSet<(u8, bool)> = (0..400)
        .map(|_| Augmentation::draw(&mut rng, 16, 16))
        .map(|a| (a.dihedral.quarter_turns, a.dihedral.flip))
        .collect();
    assert_eq!(square.len(), 8);
}

#[test]
fn validation_patches_are_disjoint_from_training_and_fixed_by_the_seed() {
    let (training, validation) = split_validation(103, 0.1, 7);
    assert_eq!(validation.len(), 10);
    assert_eq!(training.len(), 93);
    let all: HashSet<usize> = training.iter().chain(&validation).copied().collect();
    assert_eq!(all.len(), 103);
    assert_eq!(split_validation(103, 0.1, 7), (training.clone(), validation.clone()));
    assert_ne!(split_validation(103, 0.1, 8).1, validation);
    assert_eq!(split_validation(1, 0.5, 0), (vec![0], vec![]), "a single patch is never held out");
    assert_eq!(split_validation(5, 0.01, 0).1.len(), 1, "a positive fraction holds out at least one");
    assert_eq!(split_validation(5, 0.0, 0).1.len(), 0);
}

// ---------------------------------------------------------------- inputs

#[test]
fn in_memory_movies_are_checked() {
    let err = InMemoryMovie::new("m", 4, 4, 2, SampleType::F32, vec![0.0; 31]).unwrap_err();
    assert!(err.to_string().contains("31") && err.to_string().contains("32"), "{err}");
    let mut data = vec![0.0; 32];
    data[21] = f32::NAN;
    let err = InMemoryMovie::new("m", 4, 4, 2, SampleType::F32, data).unwrap_err();
    assert!(err.to_string().contains("frame 2"), "{err}");
}

#[test]
fn a_folder_of_inputs_opens_its_tiffs_and_warns_about_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<f32> = (0..3 * 8 * 12).map(|v| v as f32).collect();
    deepcad::io::write_stack(&dir.path().join("b.tif"), (12, 8, 3), SampleType::U16, &ImageJMetadata::default(), &data)
        .unwrap();
    deepcad::io::write_stack(&dir.path().join("a.tif"), (12, 8, 3), SampleType::U16, &ImageJMetadata::default(), &data)
        .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
    let mut recorder = Recorder::default();
    let mut sources = open_training_inputs(dir.path(), &mut recorder).unwrap();
    let names: Vec<String> = sources.iter().map(|s| s.name()).collect();
    assert!(names[0].ends_with("a.tif") && names[1].ends_with("b.tif"), "{names:?}");
    assert!(recorder.warnings.iter().any(|w| w.contains("notes.txt")), "{:?}", recorder.warnings);
    let mut frame = vec![0.0; 96];
    sources[1].read_frame(2, &mut frame).unwrap();
    assert_eq!(frame, data[192..].to_vec());
}
