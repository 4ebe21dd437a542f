//! Fits a denoising run into a memory budget. The budget bounds the streaming core's whole working
//! set, not only the network: activations of one batch of tiles, the input blocks in flight
//! (read-ahead included), the finished output block and the frame buffers. The plan picks the tile
//! with the least tiling overhead whose working set fits; where even one time block of whole frames
//! would not fit (very large frames), each time block is split into horizontal bands of tile rows,
//! read and computed one band at a time, and if even the frames one block keeps would not fit whole,
//! the block is run again for each part of its kept frames (more compute, same output). Above the
//! budget at the smallest tile: a clear error, never an allocation the process cannot survive.

use std::ops::Range;

use crate::model::{SelfSupervision, ALIGNMENT, SLAB_SHARE_OF_TILE};
use crate::tiling::{plan_axis, round_up, AxisTile, TilePlan};
use crate::{Error, Result};

/// Peak bytes per tile voxel of the low-memory forward on CPU (measured with
/// `examples/probe_forward.rs` at f=16: ≈160 B on a 144³ tile with 4-column slabs), scaled with the
/// base width. The slab's own activations are counted apart (`Budget::slab_bytes`).
pub fn bytes_per_voxel(base_width: usize) -> usize {
    (150 * base_width).div_ceil(16).max(48)
}

/// Peak bytes per tile voxel for a network trained with `method`. A hybrid tile runs its U-Net
/// on one parity at a time, half the tile's frames (padded by at most 14 frames onto the movie's
/// grid), so half the U-Net's bytes; it also holds each parity's context, their interleaving, the
/// frames its blind spot reads and its output, 4 bytes a voxel each. Its blind-spot stack works
/// in steps of half a slab's voxels, within the slab's own allowance.
pub fn method_bytes_per_voxel(base_width: usize, method: SelfSupervision) -> usize {
    match method {
        SelfSupervision::Interlaced | SelfSupervision::Masked => bytes_per_voxel(base_width),
        SelfSupervision::Hybrid => bytes_per_voxel(base_width).div_ceil(2) + 5 * F32,
    }
}

const F32: usize = std::mem::size_of::<f32>();

/// What a run may hold and how it runs.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The whole working set of the streaming core, in bytes.
    pub bytes: usize,
    /// Activation bytes per tile voxel ([`bytes_per_voxel`], doubled on CUDA).
    pub activation_bytes_per_voxel: usize,
    /// Voxels per slab of the CPU's low-memory forward (0 where the whole tile runs at once).
    pub slab_voxels: usize,
    /// Activation bytes of a slab per slab voxel, on top of the per-tile-voxel bytes.
    pub slab_bytes_per_voxel: usize,
    /// Tiles per network call.
    pub batch: usize,
    /// Whether the next block is read while the network runs on this one (one more block alive).
    pub pipelined: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPlan {
    pub tiles: TilePlan,
    /// Consecutive groups of y-tile indices; each time block is read and computed one band at a
    /// time. One band (all rows) unless whole frames would not fit.
    pub bands: Vec<Range<usize>>,
    /// Frames kept per pass over a time block: all it keeps unless whole output frames for them
    /// would not fit; the block is then computed once per part.
    pub frames_per_pass: usize,
    /// The estimated working set, in bytes.
    pub bytes: usize,
}

/// Splits `n` tiles into `bands` consecutive groups whose sizes differ by at most one.
pub fn split_bands(n: usize, bands: usize) -> Vec<Range<usize>> {
    let bands = bands.clamp(1, n.max(1));
    (0..bands).map(|b| (b * n / bands)..((b + 1) * n / bands)).collect()
}

/// One way to split a time block into bands: the band count, and the padded rows read and
/// volume rows kept by its largest band.
#[derive(Debug, Clone, Copy)]
struct BandChoice {
    bands: usize,
    read_rows: usize,
    kept_rows: usize,
}

/// The band counts worth trying for `tiles`, fewest first: for each largest-band size k, the
/// fewest bands that achieve it, `ceil(n/k)` (about 2√n distinct values).
fn band_choices(tiles: &[AxisTile]) -> Vec<BandChoice> {
    let n = tiles.len();
    let mut counts: Vec<usize> = (1..=n).map(|k| n.div_ceil(k)).collect();
    counts.sort_unstable();
    counts.dedup();
    counts
        .into_iter()
        .map(|bands| {
            let (read_rows, kept_rows) = split_bands(n, bands).iter().fold((0, 0), |(read, kept), band| {
                let (first, last) = (&tiles[band.start], &tiles[band.end - 1]);
                (read.max(last.origin + last.length - first.origin), kept.max(last.keep_end - first.keep_start))
            });
            BandChoice { bands, read_rows, kept_rows }
        })
        .collect()
}

/// Working set of the streaming core, apart from the activations, for one choice of time tiles
/// and bands (see `stream.rs`: the blocks alive at once and who holds them).
fn stream_bytes(
    shape: [usize; 3],
    time: &[AxisTile],
    choice: BandChoice,
    frames_per_pass: usize,
    budget: &Budget,
) -> usize {
    let [_, height, width] = shape;
    let padded_width = round_up(width, ALIGNMENT);
    let block_frames = time.iter().map(|t| t.length).max().unwrap_or(0);
    let kept_frames = most_kept_frames(time).min(frames_per_pass);
    // Input: the block being read, the one queued for the network and the network's tensor copy.
    let inputs = if budget.pipelined { 3 } else { 2 } * block_frames * choice.read_rows * padded_width;
    // Output: the stitched band (tensor and its copy) and one finished band waiting to be written.
    let outputs = 3 * kept_frames * choice.kept_rows * width;
    // Bands are assembled into whole frames before they are written.
    let assembly = if choice.bands > 1 { kept_frames * height * width } else { 0 };
    // The frame read from the source and the decoder's own buffer.
    let frames = 2 * height * width;
    (inputs + outputs + assembly + frames).saturating_mul(F32)
}

/// Candidate tile lengths along one axis: the whole padded axis, or `2·halo + 8k`.
fn candidates(len: usize, halo: usize) -> Vec<usize> {
    let padded = round_up(len, ALIGNMENT);
    let mut values = vec![padded];
    let mut tile = 2 * halo + ALIGNMENT;
    while tile < padded {
        values.push(tile);
        tile += ALIGNMENT;
    }
    values
}

struct AxisOption {
    tile: usize,
    tiles: Vec<AxisTile>,
    /// Positions pushed through the network along this axis (tiles × length).
    pushed: usize,
}

fn axis_options(len: usize, halo: usize) -> Vec<AxisOption> {
    candidates(len, halo)
        .into_iter()
        .filter_map(|tile| {
            let tiles = plan_axis(len, tile, halo).ok()?;
            let pushed = tiles.iter().map(|t| t.length).sum();
            Some(AxisOption { tile, tiles, pushed })
        })
        .collect()
}

fn most_kept_frames(time: &[AxisTile]) -> usize {
    time.iter().map(|t| t.keep_end - t.keep_start).max().unwrap_or(0)
}

/// How a run splits its time blocks, and the working set that results.
#[derive(Debug, Clone, Copy)]
struct Split {
    bands: usize,
    frames_per_pass: usize,
    bytes: usize,
    fits: bool,
}

/// The cheapest split with which a run fits the budget: every kept frame in one pass if possible
/// (re-reading frames for more bands costs less than recomputing blocks), then the fewest bands.
/// When nothing fits, the split with the smallest working set (`fits: false`).
fn cheapest_split(
    shape: [usize; 3],
    time: &[AxisTile],
    choices: &[BandChoice],
    activations: usize,
    budget: &Budget,
) -> Split {
    let mut smallest = Split { bands: 1, frames_per_pass: 1, bytes: usize::MAX, fits: false };
    let mut frames_per_pass = most_kept_frames(time).max(1);
    loop {
        for &choice in choices {
            let bytes = activations.saturating_add(stream_bytes(shape, time, choice, frames_per_pass, budget));
            if bytes <= budget.bytes {
                return Split { bands: choice.bands, frames_per_pass, bytes, fits: true };
            }
            if bytes < smallest.bytes {
                smallest = Split { bands: choice.bands, frames_per_pass, bytes, fits: false };
            }
        }
        if frames_per_pass == 1 {
            return smallest;
        }
        frames_per_pass = frames_per_pass.div_ceil(2);
    }
}

/// Refuses a movie whose single frame cannot be held within `budget` bytes (what its reader holds,
/// the frame as float, a frame on its way out), before any pixel is read.
pub fn check_frame_fits(source: &dyn crate::io::FrameSource, budget: usize) -> Result<()> {
    let pixels = source.width().saturating_mul(source.height());
    // What the source holds while reading, the frame read, and a frame on its way out.
    let needed = source
        .read_bytes()
        .saturating_add(pixels.saturating_mul(4))
        .saturating_add(pixels.saturating_mul(source.sample_type().bytes() + 4));
    if needed <= budget {
        return Ok(());
    }
    Err(Error::Limits(format!(
        "{}: one {}×{} frame needs about {} of memory to read and write, above the memory budget of {}; raise the memory budget to at least {} or crop the movie",
        source.name(),
        source.width(),
        source.height(),
        mb(needed),
        mb(budget),
        mb(needed.next_multiple_of(1 << 20).saturating_add(1 << 28))
    )))
}

/// A size for messages: MB, or kB/bytes below a megabyte (a 1-byte budget is not "0 MB").
fn mb(bytes: usize) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.0} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.0} kB", b as f64 / 1e3),
        b => format!("{b} bytes"),
    }
}

/// The plan for a `shape = [t, y, x]` movie with `halo`: the least-overhead tile (or `fixed_tile`)
/// and the fewest bands whose working set fits `budget`.
pub fn plan_memory(
    name: &str,
    shape: [usize; 3],
    halo: [usize; 3],
    fixed_tile: Option<[usize; 3]>,
    budget: &Budget,
) -> Result<MemoryPlan> {
    let per_voxel = budget.activation_bytes_per_voxel.saturating_mul(budget.batch.max(1));
    let tiles = match fixed_tile {
        Some(tile) => TilePlan::new(shape, tile, halo).map_err(|e| {
            Error::usage(format!("{name}: cannot tile {shape:?} with tile {tile:?} and halo {halo:?}: {}", e.0))
        })?,
        None => TilePlan::new(shape, least_overhead_tile(name, shape, halo, per_voxel, budget)?, halo)
            .map_err(|e| Error::usage(format!("{name}: {}", e.0)))?,
    };
    let activations = activation_bytes(tiles.tile.iter().product(), per_voxel, budget);
    let choices = band_choices(&tiles.per_axis[1]);
    let Split { bands, frames_per_pass, bytes, fits } =
        cheapest_split(shape, &tiles.per_axis[0], &choices, activations, budget);
    if !fits {
        return Err(Error::Limits(format!(
            "{name}: denoising {}×{}×{} (t, y, x) with tile {:?} needs at least {} of memory, above the memory budget of {}; choose a smaller tile or raise the memory budget",
            shape[0], shape[1], shape[2], tiles.tile, mb(bytes), mb(budget.bytes)
        )));
    }
    Ok(MemoryPlan { bands: split_bands(tiles.per_axis[1].len(), bands), frames_per_pass, tiles, bytes })
}

/// The network's activations for a tile (batch) of `voxels`: per voxel, plus one slab's.
fn activation_bytes(voxels: usize, per_voxel: usize, budget: &Budget) -> usize {
    voxels.saturating_mul(per_voxel).saturating_add(budget.slab_bytes(voxels))
}

impl Budget {
    /// Activation bytes of one slab in a tile (batch) of `voxels`.
    pub fn slab_bytes(&self, voxels: usize) -> usize {
        self.slab_voxels.min(voxels / SLAB_SHARE_OF_TILE).saturating_mul(self.slab_bytes_per_voxel)
    }
}

fn least_overhead_tile(
    name: &str,
    shape: [usize; 3],
    halo: [usize; 3],
    per_voxel: usize,
    budget: &Budget,
) -> Result<[usize; 3]> {
    let options: Vec<Vec<AxisOption>> = (0..3).map(|a| axis_options(shape[a], halo[a])).collect();
    let y_choices: Vec<Vec<BandChoice>> = options[1].iter().map(|y| band_choices(&y.tiles)).collect();
    // Overhead is a product of per-axis factors, and the stream's own memory depends only on the
    // time and y tiles: its minimum over band counts is computed once per (t, y) pair.
    let mut best: Option<(usize, usize, usize, [usize; 3])> = None; // (pushed, bands, voxels, tile)
    let mut smallest_need = usize::MAX;
    for t in &options[0] {
        for (y, choices) in options[1].iter().zip(&y_choices) {
            // The least the stream can hold: one kept frame per pass, the best band count.
            let stream_min =
                choices.iter().map(|&c| stream_bytes(shape, &t.tiles, c, 1, budget)).min().unwrap_or(usize::MAX);
            for x in &options[2] {
                let voxels = t.tile * y.tile * x.tile;
                let need = activation_bytes(voxels, per_voxel, budget).saturating_add(stream_min);
                smallest_need = smallest_need.min(need);
                if need > budget.bytes {
                    continue;
                }
                let pushed = t.pushed * y.pushed * x.pushed;
                if best.is_some_and(|(p, ..)| pushed > p) {
                    continue;
                }
                let split =
                    cheapest_split(shape, &t.tiles, choices, activation_bytes(voxels, per_voxel, budget), budget);
                // Repeated passes push the block through the network again: part of the overhead.
                let passes =
                    t.tiles.iter().map(|a| (a.keep_end - a.keep_start).div_ceil(split.frames_per_pass)).sum::<usize>();
                let pushed = passes * t.tile * y.pushed * x.pushed;
                // Least overhead; among equals the fewest bands (each band re-reads the frames),
                // then the fewest (largest) tiles.
                let key = (pushed, split.bands, std::cmp::Reverse(voxels));
                if best.is_none_or(|(p, b, v, _)| key < (p, b, std::cmp::Reverse(v))) {
                    best = Some((pushed, split.bands, voxels, [t.tile, y.tile, x.tile]));
                }
            }
        }
    }
    best.map(|(.., tile)| tile).ok_or_else(|| {
        Error::Limits(format!(
            "{name}: denoising {}×{}×{} (t, y, x) needs at least {} of memory even with the smallest tile, above the memory budget of {}; raise the memory budget",
            shape[0], shape[1], shape[2], mb(smallest_need), mb(budget.bytes)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bytes: usize) -> Budget {
        Budget {
            bytes,
            activation_bytes_per_voxel: bytes_per_voxel(16),
            slab_voxels: 0,
            slab_bytes_per_voxel: 0,
            batch: 1,
            pipelined: true,
        }
    }

    #[test]
    fn a_slab_counts_in_the_plan_as_at_most_a_quarter_of_its_tile() {
        let wide = Budget { slab_voxels: 1000, slab_bytes_per_voxel: 300, ..budget(1 << 30) };
        assert_eq!(wide.slab_bytes(100_000), 300_000);
        assert_eq!(wide.slab_bytes(2_000), 500 * 300);
        let shape = [400, 160, 160];
        let plain = plan_memory("m", shape, [52; 3], None, &budget(1 << 30)).unwrap();
        let slabbed = Budget { slab_voxels: 663_552, slab_bytes_per_voxel: 320, ..budget(1 << 30) };
        let with_slabs = plan_memory("m", shape, [52; 3], None, &slabbed).unwrap();
        assert!(with_slabs.bytes <= 1 << 30, "{} bytes", with_slabs.bytes);
        let voxels = |p: &MemoryPlan| p.tiles.tile.iter().product::<usize>();
        assert!(voxels(&with_slabs) < voxels(&plain), "the slab's memory leaves less for the tile");
    }

    #[test]
    fn bands_cover_every_tile_once_in_order() {
        for n in 1..12 {
            for b in 1..15 {
                let bands = split_bands(n, b);
                assert_eq!(bands.len(), b.min(n));
                assert_eq!(bands.first().unwrap().start, 0);
                assert_eq!(bands.last().unwrap().end, n);
                assert!(bands.windows(2).all(|w| w[0].end == w[1].start && !w[1].is_empty()));
            }
        }
    }

    #[test]
    fn small_frames_take_one_band_and_the_plan_fits() {
        let plan = plan_memory("m", [400, 160, 160], [52; 3], None, &budget(1 << 30)).unwrap();
        assert_eq!(plan.bands.len(), 1);
        assert!(plan.bytes <= 1 << 30);
    }

    #[test]
    fn huge_frames_are_split_into_bands_within_the_budget() {
        // 4096² frames: one time block of whole frames alone is over 7 GB.
        let plan = plan_memory("big", [300, 4096, 4096], [52; 3], None, &budget(2 << 30)).unwrap();
        assert!(plan.bands.len() > 1, "{:?}", plan.bands);
        assert!(plan.bytes <= 2 << 30, "{} bytes", plan.bytes);
    }

    #[test]
    fn too_small_a_budget_is_a_clear_error() {
        let error =
            plan_memory("big.tif", [300, 4096, 4096], [52; 3], None, &budget(64 << 20)).unwrap_err().to_string();
        assert!(error.contains("big.tif") && error.contains("memory budget of 67 MB"), "{error}");
    }
}
