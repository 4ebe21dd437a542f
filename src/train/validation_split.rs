//! Which patches are held out for the validation loss: a share of the grid chosen by the seed,
//! never trained on. Patches on the grid overlap their neighbours, so this measures fit on unseen
//! windows of the same movies, not on unseen movies.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Splits patch indices `0..count` into `(training, validation)`, both sorted. At least one patch
/// stays for training; with fewer than two patches nothing is held out.
pub fn split_validation(count: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let wanted = (count as f64 * fraction).round() as usize;
    let held_out = if count < 2 { 0 } else { wanted.clamp(usize::from(fraction > 0.0), count - 1) };
    let mut order: Vec<usize> = (0..count).collect();
    // Stream 0 of the seed is the split; epochs use their own streams (see the trainer).
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    order.shuffle(&mut rng);
    let mut validation = order[..held_out].to_vec();
    let mut training = order[held_out..].to_vec();
    validation.sort_unstable();
    training.sort_unstable();
    (training, validation)
}
