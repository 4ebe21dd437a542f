//! The Fiji door's native side: `org.deepcad.fiji.DeepCadNative`'s static methods. A thin
//! translation layer: Java strings, arrays and listeners in; engine calls; results or a
//! `DeepCadException` out. Every entry point runs inside `with_env`, which catches panics, and
//! resolves through `ThrowDeepCadException`, so bad input never takes the JVM down.

mod arguments;
mod denoise;
mod failure;
mod info;
mod java_planes;
mod java_progress;
mod pixels;
mod raw_layout;
mod train;

/// Process-wide engine tuning that only a door may do, once, before the first computation.
fn prepare_engine() {
    static PREPARED: std::sync::Once = std::sync::Once::new();
    PREPARED.call_once(crate::device::tune_allocator_for_throughput);
}
