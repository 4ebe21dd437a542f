//! Property tests of the pure tile plan: kept ranges partition every axis, reads stay aligned and
//! in range, and every kept voxel sits at least a halo inside its tile unless at the volume edge.
use deepcad::tiling::{plan_axis, reflect_index, round_up, TilePlan, DEFAULT_HALO};
use proptest::prelude::*;

proptest! {
    #[test]
    fn kept_ranges_partition_the_axis(len in 1usize..2000, tile_units in 14usize..40, halo_units in 0usize..14) {
        let tile = tile_units * 8;
        let halo = halo_units * 4;
        prop_assume!(tile > 2 * halo && (tile - 2 * halo) % 8 == 0);
        let tiles = plan_axis(len, tile, halo).unwrap();
        let mut next = 0;
        let padded = round_up(len, 8);
        for t in &tiles {
            prop_assert_eq!(t.keep_start, next);
            prop_assert!(t.keep_end > t.keep_start);
            prop_assert_eq!(t.origin % 8, 0);
            prop_assert_eq!(t.length % 8, 0);
            prop_assert!(t.origin + t.length <= padded.max(t.length));
            prop_assert!(t.keep_start >= t.origin && t.keep_end <= t.origin + t.length);
            // Inner edges keep a full halo of context.
            if t.keep_start > 0 { prop_assert!(t.keep_start - t.origin >= halo); }
            if t.keep_end < len { prop_assert!(t.origin + t.length - t.keep_end >= halo); }
            next = t.keep_end;
        }
        prop_assert_eq!(next, len);
    }

    #[test]
    fn reflection_stays_in_range(i in 0usize..10_000, len in 1usize..300) {
        let r = reflect_index(i, len);
        prop_assert!(r < len);
        if i < len { prop_assert_eq!(r, i); }
    }
}

#[test]
fn reflection_mirrors_without_repeating_the_edge() {
    let mapped: Vec<usize> = (0..9).map(|i| reflect_index(i, 4)).collect();
    assert_eq!(mapped, vec![0, 1, 2, 3, 2, 1, 0, 1, 2]);
}

#[test]
fn short_axis_is_one_padded_tile_kept_whole() {
    let tiles = plan_axis(20, 128, DEFAULT_HALO).unwrap();
    assert_eq!(tiles.len(), 1);
    assert_eq!((tiles[0].origin, tiles[0].length, tiles[0].keep_start, tiles[0].keep_end), (0, 24, 0, 20));
}

#[test]
fn impossible_plans_are_refused_with_reasons() {
    let e = TilePlan::new([400, 160, 160], [64, 160, 160], [52, 52, 52]).unwrap_err();
    assert!(e.0.contains("time axis") && e.0.contains("halo"), "{}", e.0);
    assert!(plan_axis(0, 64, 0).is_err());
    assert!(plan_axis(100, 60, 0).is_err());
}

#[test]
fn plan_counts_tiles_and_overhead() {
    let plan = TilePlan::new([400, 160, 160], [256, 160, 160], [52, 52, 52]).unwrap();
    assert_eq!(plan.per_axis[0].len(), 2);
    assert_eq!(plan.tile_count(), 2);
    assert!((plan.overhead() - 512.0 / 400.0).abs() < 1e-9);
    assert_eq!(plan.tiles().count(), 2);
}
