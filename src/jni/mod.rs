//! The Fiji door's native side: `org.deepcad.fiji.DeepCadNative`'s static methods. A thin
//! translation layer: Java strings, arrays and listeners in; engine calls; results or a
//! `DeepCadException` out. Every entry point runs through `failure::answer`: inside `with_env`,
//! which catches panics, resolved through `ThrowDeepCadException`, so bad input never takes the
//! JVM down.

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

// What the library changes in its host process, and nothing more: the allocator (`mallopt`) and
// signal handlers are left alone (the CLI, which owns its process, tunes the allocator itself).
// Three things are process-wide by nature and last for the JVM's life: the first denoise that
// asks for the tensor pool (the setting `tensor_pool`, off by default) installs it as libtorch's
// CPU allocator (`tensor_pool`; outside a run it passes every request to libtorch's own
// allocator); a thread count (`setThreads`, a block request's `threads`) sets libtorch's intra-op
// thread count for every caller in the process; and listing the devices makes the CUDA runtime
// create each GPU's primary context (`gpu_info`).
