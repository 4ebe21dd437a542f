//! The network's geometry as plain numbers, with no torch: how far it pools, how far it sees and
//! the halo a tile needs. The network (`model`) and the tile plan (`tiling`) both build on it, so
//! the pure tile arithmetic never reaches into the torch-bound model room.

/// Number of encoder levels; the network pools `LEVELS - 1` times, so every tile axis should be a
/// multiple of `ALIGNMENT` for tiled and whole-volume outputs to agree.
pub const LEVELS: usize = 4;
pub const ALIGNMENT: usize = 1 << (LEVELS - 1);

/// Receptive-field radius of the 4-level network (measured by `examples/probe_rf.rs`, checked in tests).
pub const RECEPTIVE_FIELD_RADIUS: usize = 51;
/// Default halo: the radius rounded up to a multiple of 4, so `tile - 2·halo` stays a multiple of 8.
pub const DEFAULT_HALO: usize = 52;
