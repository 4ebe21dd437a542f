//! Give every binary, test and the cdylib a run-time search path for libtorch, so nothing needs
//! LD_LIBRARY_PATH. `$ORIGIN` comes first: the Fiji overlay ships libtorch next to our library.
//! The absolute development path follows, for `cargo run`, `cargo test` and CI.
fn main() {
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
