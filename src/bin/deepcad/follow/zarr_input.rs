//! A Zarr array another program is still writing: appending frames by growing the shape in the
//! array's metadata and storing chunks (or filling an array whose shape was set up front), in
//! time order.
//!
//! When a frame is complete (the rule the README states):
//! - the metadata is re-read at every look, before any chunk file is looked at, so every chunk
//!   released below was finished before that metadata was written;
//! - frame t is complete once it is inside the shape, every chunk file of t's chunk row (the
//!   chunks holding t's time range at the followed channel; shards for a sharded array) exists,
//!   and the writer has moved past that row: a chunk file of a later row exists. A chunk holding
//!   several frames is rewritten as they land, so a row is released whole, never while the writer
//!   may still touch it; requiring every chunk file also covers writers that store frames
//!   asynchronously, one frame per chunk (tensorstore), whose files may land out of order;
//! - once the writer has ended, every frame it wrote is complete: with `<input>.done`, every frame
//!   inside the shape; after --follow-idle without a change, every frame up to the last chunk row
//!   the writer began (an array whose shape was set up front may end with rows never written);
//! - a chunk that fails to decode is not complete yet and is read again at the next look; once the
//!   array has not changed for --follow-idle it is damaged, and that is an error;
//! - writers skip storing a chunk that is all fill value (zarrs, zarr-python, tensorstore): such a
//!   row holds the follow back until the writer ends, and then reads as the finished array does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use deepcad::io::{FrameSource, ReadOptions, ZarrMovie};
use deepcad::Result;
use zarrs::array::Array;
use zarrs::filesystem::FilesystemStore;

use super::{marker_path, Geometry, GrowingInput};

/// How long the metadata must stay unchanged before an array that cannot be opened as a movie
/// (wrong axes, channel, data type) is an error rather than a metadata file caught mid-write.
const SETTLE: Duration = Duration::from_millis(300);

/// The array as far as it is written.
pub(super) struct ZarrInput {
    path: PathBuf,
    marker: PathBuf,
    options: ReadOptions,
    follow_idle: Duration,
    /// Opened at the latest shape and limited to the complete frames, so no frame past them is
    /// ever decoded; reopened whenever more are complete (a fresh store, nothing cached).
    movie: Option<ZarrMovie>,
    complete: usize,
    reopen: bool,
    /// The metadata and the chunk files where the writer works, at the last look, and when they
    /// last changed.
    signature: Signature,
    changed: Instant,
    idle_at_look: Duration,
    marker_seen: bool,
}

/// What the writer last changed: the metadata file and the first chunk file of the rows at the
/// frontier (every frame written touches it, whatever the chunking across the image).
#[derive(PartialEq, Default)]
struct Signature {
    metadata: Option<(u64, SystemTime)>,
    frontier: Vec<Option<(u64, SystemTime)>>,
}

/// The array's chunk rows along time, at the followed channel.
struct ChunkRows {
    store: Arc<FilesystemStore>,
    array: Array<FilesystemStore>,
    frames: usize,
    frames_per_row: usize,
    /// Chunk index of the followed channel (a `(t, c, y, x)` array) and the chunk grid across y, x.
    channel: Option<u64>,
    grid_yx: (u64, u64),
}

impl ChunkRows {
    /// The array's layout now: `Err(true)` for an array that holds no movie's axes (the movie
    /// reader says what is wrong), `Err(false)` while it cannot be opened or holds no frame yet.
    fn open(path: &Path, channel: Option<usize>) -> std::result::Result<ChunkRows, bool> {
        let store = Arc::new(FilesystemStore::new(path).map_err(|_| false)?);
        let array = Array::open(store.clone(), "/").map_err(|_| false)?;
        let shape = array.shape().to_vec();
        if shape.contains(&0) {
            return Err(false);
        }
        if !(3..=4).contains(&shape.len()) {
            return Err(true);
        }
        let chunk = array.chunk_shape(&vec![0; shape.len()]).map_err(|_| false)?;
        let grid = array.chunk_grid_shape().to_vec();
        let n = shape.len();
        let channel = (n == 4).then(|| channel.unwrap_or(0) as u64 / chunk[1].get());
        Ok(ChunkRows {
            frames: shape[0] as usize,
            frames_per_row: chunk[0].get() as usize,
            channel,
            grid_yx: (grid[n - 2], grid[n - 1]),
            store,
            array,
        })
    }

    /// The chunk files holding row `row`'s frames at the followed channel.
    fn files(&self, row: usize) -> impl Iterator<Item = PathBuf> + '_ {
        let (ny, nx) = self.grid_yx;
        (0..ny).flat_map(move |y| (0..nx).map(move |x| self.file(row, y, x)))
    }

    fn file(&self, row: usize, y: u64, x: u64) -> PathBuf {
        let indices: Vec<u64> = match self.channel {
            None => vec![row as u64, y, x],
            Some(c) => vec![row as u64, c, y, x],
        };
        self.store.key_to_fspath(&self.array.chunk_key(&indices))
    }

    /// The writer has begun row `row` (in time order, it finished every row before).
    fn started(&self, row: usize) -> bool {
        self.files(row).any(|file| file.exists())
    }

    /// Every chunk file of row `row` exists.
    fn stored(&self, row: usize) -> bool {
        self.files(row).all(|file| file.exists())
    }

    /// Frames complete while the writer works, counting on from `known` (a row boundary or less).
    fn complete_from(&self, known: usize) -> usize {
        let rows_in_shape = self.frames.div_ceil(self.frames_per_row);
        let mut row = known / self.frames_per_row;
        // A row beyond the shape may already exist when a writer stores chunks before growing it.
        while row < rows_in_shape && self.stored(row) && self.started(row + 1) {
            row += 1;
        }
        (row * self.frames_per_row).min(self.frames)
    }

    /// Frames up to the end of the last row the writer began (at least `known`), once it stopped.
    fn written_through(&self, known: usize) -> usize {
        let rows_in_shape = self.frames.div_ceil(self.frames_per_row);
        (known / self.frames_per_row..rows_in_shape)
            .rev()
            .find(|&row| self.started(row))
            .map_or(known, |row| ((row + 1) * self.frames_per_row).min(self.frames).max(known))
    }
}

fn stat(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

impl ZarrInput {
    pub(super) fn new(path: &Path, options: ReadOptions, follow_idle: Duration) -> ZarrInput {
        ZarrInput {
            path: path.to_path_buf(),
            marker: marker_path(path),
            options,
            follow_idle,
            movie: None,
            complete: 0,
            reopen: false,
            signature: Signature::default(),
            changed: Instant::now(),
            idle_at_look: Duration::ZERO,
            marker_seen: false,
        }
    }

    fn metadata_file(&self) -> PathBuf {
        let v3 = self.path.join("zarr.json");
        if v3.exists() || !self.path.join(".zarray").exists() {
            v3
        } else {
            self.path.join(".zarray")
        }
    }

    /// Notes whether the writer changed anything since the last look.
    fn note_activity(&mut self, rows: Option<&ChunkRows>) {
        let frontier = rows.map_or_else(Vec::new, |rows| {
            let row = self.complete / rows.frames_per_row;
            vec![stat(&rows.file(row, 0, 0)), stat(&rows.file(row + 1, 0, 0))]
        });
        let signature = Signature { metadata: stat(&self.metadata_file()), frontier };
        if signature != self.signature {
            self.signature = signature;
            self.changed = Instant::now();
        }
        self.idle_at_look = self.changed.elapsed();
    }

    /// Opens the movie limited to `complete` frames; `Ok(false)` while the metadata may be
    /// mid-write.
    fn open_movie(&mut self, complete: usize) -> Result<bool> {
        match ZarrMovie::open(&self.path, &self.options) {
            Ok(mut movie) => {
                movie.limit_frames(complete);
                self.movie = Some(movie);
                self.reopen = false;
                Ok(true)
            }
            Err(e) if self.idle_at_look >= SETTLE => Err(e),
            Err(_) => Ok(false),
        }
    }
}

impl GrowingInput for ZarrInput {
    fn path(&self) -> &Path {
        &self.path
    }

    fn complete_frames(&mut self) -> Result<usize> {
        // The marker first: everything the writer wrote before it is in the metadata read next.
        let marker = self.marker.exists();
        let rows = ChunkRows::open(&self.path, self.options.channel);
        self.note_activity(rows.as_ref().ok());
        let rows = match rows {
            Ok(rows) => rows,
            // Axes no movie has: the movie reader's error, once the metadata has settled.
            Err(true) => {
                self.open_movie(0)?;
                return Ok(self.complete);
            }
            // Not created yet, no frame yet, or the metadata caught mid-write.
            Err(false) => return Ok(self.complete),
        };
        let complete = if marker {
            rows.frames
        } else if self.idle_at_look >= self.follow_idle {
            rows.written_through(self.complete)
        } else {
            rows.complete_from(self.complete)
        }
        .max(self.complete);
        if (complete > self.complete || self.reopen || self.movie.is_none()) && self.open_movie(complete)? {
            self.complete = complete;
        }
        self.marker_seen = marker && self.complete >= rows.frames;
        Ok(self.complete)
    }

    fn geometry(&self) -> Geometry {
        let movie = self.movie.as_ref().expect("a frame is complete");
        Geometry { width: movie.width(), height: movie.height(), sample_type: movie.sample_type() }
    }

    fn read_frame(&mut self, t: usize, out: &mut [f32]) -> Result<bool> {
        match self.movie.as_mut().expect("frames are complete").read_frame(t, out) {
            Ok(()) => Ok(true),
            // Unchanged for --follow-idle and still undecodable: damaged, not mid-write.
            Err(e) if self.idle_at_look >= self.follow_idle => Err(e),
            Err(_) => {
                self.reopen = true;
                Ok(false)
            }
        }
    }

    fn finished(&self) -> bool {
        self.marker_seen
    }

    fn idle_for(&self) -> Duration {
        self.idle_at_look
    }
}
