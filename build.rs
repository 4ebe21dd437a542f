//! Give every binary, test and the cdylib a run-time search path for libtorch, so nothing needs
//! LD_LIBRARY_PATH. `$ORIGIN` comes first (a CLI copied beside libtorch finds it); the Fiji
//! overlay's libdeepcad.so is given `$ORIGIN/deepcad` instead by fiji-plugin/elf_runpath.py.
//! The absolute development path follows, for `cargo run`, `cargo test` and CI.
//! Also compiles the tensor pool (`src/tensor_pool.cpp`), a libtorch CPU allocator, against the
//! same libtorch headers and C++ ABI as torch-sys.
fn main() {
    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys reports libtorch's lib folder");
    // Run paths are an ELF (Linux) and Mach-O (macOS, `@loader_path`) idea; Windows finds DLLs
    // beside the executable or on PATH instead.
    match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("linux") => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
        }
        Ok("macos") => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,@loader_path");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
        }
        _ => {}
    }
    let include = std::path::Path::new(&lib_dir).parent().expect("libtorch's lib folder has a parent").join("include");
    let cxx11_abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    let mut pool = cc::Build::new();
    pool.cpp(true).file("src/tensor_pool.cpp").include(&include);
    // MSVC spells the standard flag differently and has no libstdc++ ABI switch.
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("msvc") {
        pool.flag("/std:c++17");
    } else {
        pool.flag("-std=c++17").define("_GLIBCXX_USE_CXX11_ABI", cxx11_abi.as_str());
    }
    pool.compile("deepcad_tensor_pool");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/tensor_pool.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
}
