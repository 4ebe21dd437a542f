//! What the CUDA runtime says about this machine's GPUs (name, memory, compute capability), or
//! why it cannot use any, for `deepcad info --devices` and the Fiji device list. Asked through the
//! CUDA runtime that libtorch itself needs at load time (libcudart.so.13), so it adds no dependency
//! and answers on CPU-only machines too ("no CUDA driver", "no CUDA-capable device").

use std::ffi::{c_char, c_int, CStr};

use libloading::{Library, Symbol};

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
type GetDeviceFn = unsafe extern "C" fn(*mut c_int) -> c_int;
type SetDeviceFn = unsafe extern "C" fn(c_int) -> c_int;
type MemInfoFn = unsafe extern "C" fn(*mut usize, *mut usize) -> c_int;
type ErrorStringFn = unsafe extern "C" fn(c_int) -> *const c_char;

/// `cudaDevAttrComputeCapabilityMajor` / `Minor` (stable since CUDA 5).
const COMPUTE_CAPABILITY_MAJOR: c_int = 75;
const COMPUTE_CAPABILITY_MINOR: c_int = 76;
/// `cudaDeviceProp` starts with `char name[256]`; the rest of its (version-dependent) layout is
/// never read, only given room.
const PROPERTIES_BYTES: usize = 16 << 10;

/// The runtime calls used here, looked up by name with their C signatures as the symbols' types.
struct CudaRuntime<'lib> {
    count: Symbol<'lib, CountFn>,
    attribute: Symbol<'lib, AttributeFn>,
    properties: Symbol<'lib, PropertiesFn>,
    get_device: Symbol<'lib, GetDeviceFn>,
    set_device: Symbol<'lib, SetDeviceFn>,
    mem_info: Symbol<'lib, MemInfoFn>,
    error_string: Symbol<'lib, ErrorStringFn>,
}

impl<'lib> CudaRuntime<'lib> {
    fn bind(runtime: &'lib Library) -> Result<CudaRuntime<'lib>, String> {
        fn get<'lib, T>(runtime: &'lib Library, name: &[u8]) -> Result<Symbol<'lib, T>, String> {
            // SAFETY: each type above is the documented C signature of the symbol it is used for
            // (unchanged since CUDA 4).
            unsafe { runtime.get::<T>(name) }
                .map_err(|e| format!("the CUDA runtime lacks {}: {e}", String::from_utf8_lossy(name)))
        }
        Ok(CudaRuntime {
            count: get(runtime, b"cudaGetDeviceCount\0")?,
            attribute: get(runtime, b"cudaDeviceGetAttribute\0")?,
            properties: get(runtime, b"cudaGetDeviceProperties\0")?,
            get_device: get(runtime, b"cudaGetDevice\0")?,
            set_device: get(runtime, b"cudaSetDevice\0")?,
            mem_info: get(runtime, b"cudaMemGetInfo\0")?,
            error_string: get(runtime, b"cudaGetErrorString\0")?,
        })
    }

    fn explain(&self, code: c_int) -> String {
        // SAFETY: cudaGetErrorString returns a static string (or null) for any code.
        let text = unsafe { (self.error_string)(code) };
        if text.is_null() {
            format!("CUDA error {code}")
        } else {
            // SAFETY: non-null: a NUL-terminated static string.
            format!("{} (CUDA error {code})", unsafe { CStr::from_ptr(text) }.to_string_lossy())
        }
    }

    /// One GPU's name, compute capability and memory. Free memory is only reported for the
    /// calling thread's current device, so the device is switched for the question and switched
    /// back after it. cudaSetDevice creates that GPU's primary context in this process (a few
    /// hundred MB of GPU memory, kept until the process ends): in the JVM this happens once per GPU
    /// when Fiji lists its devices.
    fn describe(&self, index: c_int) -> Result<GpuInfo, String> {
        let mut props = vec![0u8; PROPERTIES_BYTES];
        let (mut major, mut minor, mut current) = (0, 0, 0);
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: every pointer is to a live local of the type the call writes; `props` has room
        // for any cudaDeviceProp.
        unsafe {
            let code = (self.properties)(props.as_mut_ptr(), index);
            if code != 0 {
                return Err(format!("cuda:{index}: {}", self.explain(code)));
            }
            (self.attribute)(&mut major, COMPUTE_CAPABILITY_MAJOR, index);
            (self.attribute)(&mut minor, COMPUTE_CAPABILITY_MINOR, index);
            let restore = (self.get_device)(&mut current) == 0;
            if (self.set_device)(index) == 0 {
                (self.mem_info)(&mut free, &mut total);
            }
            if restore {
                (self.set_device)(current);
            }
        }
        let name =
            CStr::from_bytes_until_nul(&props[..256]).map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(GpuInfo {
            index: index as usize,
            name,
            total_bytes: total,
            free_bytes: free,
            compute_capability: (major, minor),
        })
    }
}

/// The GPUs, or why there are none usable (the runtime's own words).
pub fn query_gpus() -> Result<Vec<GpuInfo>, String> {
    // SAFETY: loads the CUDA runtime libtorch already mapped (or fails if it is absent); loading
    // it runs no initialiser beyond the runtime's own.
    let library = unsafe { Library::new("libcudart.so.13") }
        .map_err(|e| format!("the CUDA 13 runtime is not installed ({e})"))?;
    let runtime = CudaRuntime::bind(&library)?;
    let mut n: c_int = 0;
    // SAFETY: writes one int.
    let code = unsafe { (runtime.count)(&mut n) };
    if code != 0 {
        return Err(runtime.explain(code));
    }
    (0..n).map(|index| runtime.describe(index)).collect()
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
