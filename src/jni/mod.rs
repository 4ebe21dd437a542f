//! The Fiji door's native side: `org.deepcad.fiji.DeepCadNative`'s static methods. A thin
//! translation layer: Java strings, arrays and listeners in; engine calls; results or a
//! `DeepCadException` out. Every entry point runs inside `with_env`, which catches panics, and
//! resolves through `ThrowDeepCadException`, so bad input never takes the JVM down.

mod arguments;
mod blocks;
mod defaults;
mod denoise;
mod failure;
mod info;
mod java_planes;
mod java_progress;
mod live;
mod outputs;
mod pixels;
mod train;

// Deliberately nothing process-wide happens here: inside the JVM the library leaves the
// allocator (`mallopt`) and signal handlers alone; the CLI, which owns its process, tunes the
// allocator itself. The thread count changes only through the settings' `setThreads`.
