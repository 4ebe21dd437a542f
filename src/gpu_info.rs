//! What the CUDA runtime says about this machine's GPUs (name, memory, compute capability), or
//! why it cannot use any, for `deepcad info --devices` and the Fiji device list. Asked through the
//! CUDA runtime that libtorch itself needs at load time (libcudart.so.13), so it adds no dependency
//! and answers on CPU-only machines too ("no CUDA driver", "no CUDA-capable device").

use std::ffi::{c_char, c_int, CStr};

/// One GPU as the CUDA runtime sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuInfo {
    pub index: usize,
    pub name: String,
    pub total_bytes: usize,
    pub free_bytes: usize,
    pub compute_capability: (i32, i32),
}

type CountFn = unsafe extern "C" fn(*mut c_int) -> c_int;
type AttributeFn = unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int;
type PropertiesFn = unsafe extern "C" fn(*mut u8, c_int) -> c_int;
type SetDeviceFn = unsafe extern "C" fn(c_int) -> c_int;
type MemInfoFn = unsafe extern "C" fn(*mut usize, *mut usize) -> c_int;
type ErrorStringFn = unsafe extern "C" fn(c_int) -> *const c_char;

/// `cudaDevAttrComputeCapabilityMajor` / `Minor` (stable since CUDA 5).
const COMPUTE_CAPABILITY_MAJOR: c_int = 75;
const COMPUTE_CAPABILITY_MINOR: c_int = 76;
/// `cudaDeviceProp` starts with `char name[256]`; the rest of its (version-dependent) layout is
/// never read, only given room.
const PROPERTIES_BYTES: usize = 16 << 10;

/// The GPUs, or why there are none usable (the runtime's own words).
pub fn query_gpus() -> Result<Vec<GpuInfo>, String> {
    // SAFETY: loading the CUDA runtime libtorch already mapped (or nothing, if absent); the
    // symbols below have had these C signatures since CUDA 4 and are called as documented.
    unsafe {
        let runtime = libloading::Library::new("libcudart.so.13")
            .map_err(|e| format!("the CUDA 13 runtime is not installed ({e})"))?;
        let symbol = |name: &[u8]| -> Result<*const (), String> {
            runtime
                .get::<*const ()>(name)
                .map(|s| *s)
                .map_err(|e| format!("the CUDA runtime lacks {}: {e}", String::from_utf8_lossy(name)))
        };
        let count: CountFn = std::mem::transmute(symbol(b"cudaGetDeviceCount\0")?);
        let attribute: AttributeFn = std::mem::transmute(symbol(b"cudaDeviceGetAttribute\0")?);
        let properties: PropertiesFn = std::mem::transmute(symbol(b"cudaGetDeviceProperties\0")?);
        let set_device: SetDeviceFn = std::mem::transmute(symbol(b"cudaSetDevice\0")?);
        let mem_info: MemInfoFn = std::mem::transmute(symbol(b"cudaMemGetInfo\0")?);
        let error_string: ErrorStringFn = std::mem::transmute(symbol(b"cudaGetErrorString\0")?);
        let explain = |code: c_int| -> String {
            let text = error_string(code);
            if text.is_null() {
                format!("CUDA error {code}")
            } else {
                format!("{} (CUDA error {code})", CStr::from_ptr(text).to_string_lossy())
            }
        };
        let mut n: c_int = 0;
        let code = count(&mut n);
        if code != 0 {
            return Err(explain(code));
        }
        let mut gpus = Vec::new();
        for index in 0..n {
            let mut props = vec![0u8; PROPERTIES_BYTES];
            let code = properties(props.as_mut_ptr(), index);
            if code != 0 {
                return Err(format!("cuda:{index}: {}", explain(code)));
            }
            let name =
                CStr::from_bytes_until_nul(&props[..256]).map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
            let (mut major, mut minor) = (0, 0);
            attribute(&mut major, COMPUTE_CAPABILITY_MAJOR, index);
            attribute(&mut minor, COMPUTE_CAPABILITY_MINOR, index);
            let (mut free, mut total) = (0usize, 0usize);
            if set_device(index) == 0 {
                mem_info(&mut free, &mut total);
            }
            gpus.push(GpuInfo {
                index: index as usize,
                name,
                total_bytes: total,
                free_bytes: free,
                compute_capability: (major, minor),
            });
        }
        Ok(gpus)
    }
}

impl std::fmt::Display for GpuInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cuda:{}: {}, {:.1} GiB ({:.1} GiB free), compute capability {}.{}",
            self.index,
            self.name,
            self.total_bytes as f64 / (1u64 << 30) as f64,
            self.free_bytes as f64 / (1u64 << 30) as f64,
            self.compute_capability.0,
            self.compute_capability.1
        )
    }
}
