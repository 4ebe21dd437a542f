//! Large CPU tensors reused within an engine run instead of returned to the system.
//!
//! Each slab and tile of the forward allocates the same activation shapes again. glibc serves
//! blocks over its mmap threshold with fresh pages and unmaps its per-thread heaps as soon as they
//! empty, so every slab pays again for page faults and zeroing, which is what a library gets
//! inside Fiji's JVM. The CLI could tune glibc (`device::tune_allocator_for_throughput`); a library
//! must not change its host process's allocator. Instead the engine installs a pool as libtorch's
//! CPU allocator (`tensor_pool.cpp`; installed at the first run and kept for the process's life):
//! while a [`PoolRun`] is alive, freed blocks of 1 MB and more are kept (up to a limit the run
//! sets: its memory budget) and the smallest one large enough serves the next request. A larger
//! block costs no resident memory beyond the pages it already holds; before a new block is
//! allocated, idle blocks too small for the request are freed to make room, so the pool does not
//! raise the peak. When the last run ends the blocks go back to the system; outside runs every
//! request goes to libtorch's own allocation path. The page faults, CPU time and peak memory it
//! saves are in docs/measurements.md.

use std::os::raw::c_int;

extern "C" {
    fn deepcad_tensor_pool_begin(idle_limit: usize) -> c_int;
    fn deepcad_tensor_pool_end();
    fn deepcad_tensor_pool_idle_bytes() -> usize;
}

/// Large CPU tensors freed while this is alive are pooled for reuse; dropping the last one
/// returns the pool's blocks to the system. Runs may nest and overlap (threads).
#[must_use = "the pool is active only while the run is alive"]
pub struct PoolRun {
    active: bool,
}

impl PoolRun {
    /// A run that lets the pool keep up to `idle_limit` bytes of freed blocks (the smallest
    /// limit among the runs alive applies): memory the run's own plan allows for. Whether a run
    /// pools at all is a setting (`DenoiseSettings::tensor_pool`), not this module's to read.
    pub fn begin(idle_limit: usize) -> Self {
        // SAFETY: a C function taking a number; it catches every C++ exception.
        PoolRun { active: unsafe { deepcad_tensor_pool_begin(idle_limit) } == 0 }
    }
}

impl Drop for PoolRun {
    fn drop(&mut self) {
        if self.active {
            // SAFETY: pairs with the successful begin above.
            unsafe { deepcad_tensor_pool_end() }
        }
    }
}

/// Bytes of freed blocks the pool holds now (0 when no run is alive).
pub fn idle_bytes() -> usize {
    // SAFETY: reads a counter under the pool's lock.
    unsafe { deepcad_tensor_pool_idle_bytes() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    /// The pool is shared by the whole process: these tests take turns, so that one's idle
    /// blocks never serve the other's requests.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn block(values: i64) -> Tensor {
        Tensor::full([values], 1.5, (Kind::Float, Device::Cpu))
    }

    #[test]
    fn a_freed_large_block_is_reused_within_a_run_and_released_after_it() {
        // An odd size, so that no other test's tensors compete for the same block.
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let values = (3 << 20) / 4 + 1023;
        let run = PoolRun::begin(64 << 20);
        let first = block(values);
        let address = first.data_ptr() as usize;
        drop(first);
        assert!(idle_bytes() >= values as usize * 4, "the freed block is kept");
        let second = block(values);
        assert_eq!(second.data_ptr() as usize, address, "the same block serves the next request");
        assert_eq!(second.sum(Kind::Double).double_value(&[]), 1.5 * values as f64, "and holds the new values");
        // A tensor may outlive the run that allocated it.
        drop(run);
        assert_eq!(second.sum(Kind::Double).double_value(&[]), 1.5 * values as f64);
        drop(second);
        let after = block(values);
        assert_eq!(after.sum(Kind::Double).double_value(&[]), 1.5 * values as f64);
    }

    #[test]
    fn a_larger_idle_block_serves_a_smaller_request_and_a_miss_evicts_smaller_ones() {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let (large, small) = ((5 << 20) / 4 + 511, (3 << 20) / 4 + 509);
        let _run = PoolRun::begin(256 << 20);
        let first = block(large);
        let address = first.data_ptr() as usize;
        drop(first);
        let smaller = block(small);
        assert_eq!(smaller.data_ptr() as usize, address, "the idle larger block serves the smaller request");
        assert_eq!(smaller.sum(Kind::Double).double_value(&[]), 1.5 * small as f64);
        drop(smaller);
        // Nothing idle is large enough: the small idle block is freed, a new one allocated.
        let larger = block(large * 2);
        assert_eq!(larger.sum(Kind::Double).double_value(&[]), 3.0 * large as f64);
    }
}
