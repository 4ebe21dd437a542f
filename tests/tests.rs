//! One integration-test binary (links libtorch once); one module per concern.
mod util;
mod io_tests;
mod simulate_tests;
mod model_tests;
mod tiling_tests;
mod infer_tests;
mod train_tests;
mod pth_import_tests;
mod pth_reader_tests;
mod official_pipeline_tests;
mod export_tests;
mod cli_tests;
mod streaming_tests;
mod evaluation_tests;
mod hostile_inputs_tests;
mod gpu_tests;
mod module_cycles_tests;
