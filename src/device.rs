//! Device choice (CPU or a CUDA GPU) and run-time loading of libtorch's CUDA library.
//!
//! Rust links with `--as-needed`, which drops libtorch_cuda.so: a binary would then report no CUDA
//! even on a GPU machine. We `dlopen` it at start-up when it sits next to libtorch_cpu.so, so one
//! build runs on CPU-only machines (where it is absent or its CUDA dependencies are) and on GPUs.

use std::path::PathBuf;
use std::sync::OnceLock;

use tch::Device;

use crate::{Error, Result};

/// Outcome of trying to load libtorch_cuda once per process: Ok(path) or the reason it failed.
fn cuda_library() -> &'static std::result::Result<PathBuf, String> {
    static LOADED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    LOADED.get_or_init(|| {
        let dir = libtorch_directory().ok_or_else(|| "libtorch_cpu.so is not mapped in this process".to_string())?;
        let candidate = dir.join("libtorch_cuda.so");
        if !candidate.exists() {
            return Err(format!(
                "{} does not exist (a CPU-only libtorch; the GPU build needs the full CUDA libtorch)",
                candidate.display()
            ));
        }
        // SAFETY: loading libtorch's own CUDA part, built for the libtorch already loaded; its
        // static initialisers register the CUDA backend and nothing else runs.
        let library =
            unsafe { libloading::os::unix::Library::open(Some(&candidate), libc::RTLD_NOW | libc::RTLD_GLOBAL) }
                .map_err(|e| format!("{}: {e}", candidate.display()))?;
        std::mem::forget(library); // stays loaded for the life of the process
        Ok(candidate)
    })
}

/// Folder of the libtorch_cpu.so this process uses (read from /proc/self/maps).
pub fn libtorch_directory() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|p| PathBuf::from(p).parent().map(|d| d.to_path_buf()))
}

/// Whether a CUDA GPU can be used (loads libtorch_cuda first if present).
pub fn cuda_available() -> bool {
    cuda_library().is_ok() && tch::Cuda::is_available()
}

/// Why CUDA is not usable, for messages; None when it is.
pub fn cuda_unavailable_reason() -> Option<String> {
    match cuda_library() {
        Err(reason) => Some(format!("libtorch CUDA library not loaded: {reason}")),
        Ok(_) if !tch::Cuda::is_available() => {
            Some("libtorch_cuda is loaded but no CUDA device is visible (driver missing?)".into())
        }
        Ok(_) => None,
    }
}

/// Parses `auto`, `cpu`, `cuda` or `cuda:N`. `auto` picks the first GPU when usable.
pub fn parse_device(text: &str) -> Result<Device> {
    let text = text.trim().to_ascii_lowercase();
    let requested_gpu = match text.as_str() {
        "auto" => return Ok(if cuda_available() { Device::Cuda(0) } else { Device::Cpu }),
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => 0,
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => return Err(Error::usage(format!("device '{text}' is not one of auto, cpu, cuda, cuda:N"))),
        },
    };
    if let Some(reason) = cuda_unavailable_reason() {
        return Err(Error::usage(format!(
            "device '{text}' requested but CUDA is not usable: {reason}; choose the CPU device instead"
        )));
    }
    let count = tch::Cuda::device_count() as usize;
    if requested_gpu >= count {
        return Err(Error::usage(format!(
            "device 'cuda:{requested_gpu}' does not exist: {count} CUDA device(s) visible"
        )));
    }
    Ok(Device::Cuda(requested_gpu))
}

/// The device as `--device` spells it ("cpu", "cuda:0"), as bundles record where they were trained.
pub fn device_id(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The device for messages: its id, with libtorch's thread count on a CPU.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        other => device_id(other),
    }
}

/// One line per device, for `deepcad info --devices` and the Fiji settings: each GPU's name,
/// memory and compute capability, and why CUDA cannot be used when it cannot.
pub fn describe_devices() -> String {
    let mut lines = vec![format!("cpu: {} threads", tch::get_num_threads())];
    let gpus = crate::gpu_info::query_gpus();
    match (&gpus, cuda_unavailable_reason()) {
        (Ok(gpus), None) => lines.extend(gpus.iter().map(|g| g.to_string())),
        (Ok(gpus), Some(reason)) if !gpus.is_empty() => {
            lines.extend(gpus.iter().map(|g| format!("{g} — not usable here: {reason}")));
        }
        (Ok(_), Some(reason)) => lines.push(format!("cuda: unavailable (no CUDA device visible; {reason})")),
        (Err(runtime), reason) => lines.push(format!(
            "cuda: unavailable (the CUDA runtime says: {runtime}{})",
            reason.map(|r| format!("; {r}")).unwrap_or_default()
        )),
    }
    lines.join("\n")
}

/// Whether `device` computes bfloat16 natively: a CPU with AVX-512 BF16 or AMX-BF16 (oneDNN then
/// runs bf16 convolutions on those units; elsewhere it emulates them, slower than float32), or a
/// CUDA GPU of compute capability 8.0 or newer (Ampere on; older cards emulate bf16).
pub fn has_native_bfloat16(device: Device) -> bool {
    match device {
        Device::Cpu => cpu_has_native_bfloat16(),
        Device::Cuda(n) => crate::gpu_info::query_gpus()
            .map(|gpus| gpus.iter().any(|g| g.index == n && g.compute_capability.0 >= 8))
            .unwrap_or(false),
        _ => false,
    }
}

/// AVX-512 BF16 or AMX-BF16 among /proc/cpuinfo's flags (read once per process).
pub fn cpu_has_native_bfloat16() -> bool {
    static NATIVE: OnceLock<bool> = OnceLock::new();
    *NATIVE.get_or_init(|| {
        std::fs::read_to_string("/proc/cpuinfo")
            .map(|info| info.split_whitespace().any(|flag| flag == "avx512_bf16" || flag == "amx_bf16"))
            .unwrap_or(false)
    })
}

/// The CPU's bfloat16 units for messages and benchmarks: "AMX-BF16", "AVX512-BF16 (no AMX)" or "none".
pub fn cpu_bfloat16_units() -> &'static str {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |flag: &str| info.split_whitespace().any(|f| f == flag);
    match (has("amx_bf16"), has("avx512_bf16")) {
        (true, _) => "AMX-BF16",
        (false, true) => "AVX512-BF16 (no AMX)",
        _ => "none",
    }
}

/// Most a denoising run takes by default however much memory is free: beyond a few GB larger
/// tiles save little (400×160×160 runs in one tile at about 2 GB), and a shared machine keeps the rest.
pub const MEMORY_BUDGET_CEILING: usize = 8 << 30;

/// Least default budget: the fixed default before budgets followed the machine.
pub const MEMORY_BUDGET_FLOOR: usize = 1 << 30;

/// The default working-set budget of a denoising run on this machine: half the memory the kernel
/// reports available (MemAvailable, so page cache counts as free) when the process starts, within
/// [`MEMORY_BUDGET_FLOOR`]..=[`MEMORY_BUDGET_CEILING`]. Read once, so every default in one process
/// is the same number. The command line's `--max-memory auto`; Fiji passes its own setting.
pub fn machine_memory_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let available = available_memory_bytes().unwrap_or(0);
        (available / 2).clamp(MEMORY_BUDGET_FLOOR, MEMORY_BUDGET_CEILING)
    })
}

/// MemAvailable from /proc/meminfo, in bytes; None where there is no such file (not Linux).
fn available_memory_bytes() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Most CPU threads accepted: more than this many per core only adds contention (and thousands
/// of OpenMP threads can stall the process).
pub const MAX_THREADS_PER_CORE: usize = 4;

/// Checks a requested libtorch thread count against this machine: 1 to
/// [`MAX_THREADS_PER_CORE`] × its cores.
pub fn checked_thread_count(threads: usize) -> crate::Result<i32> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = MAX_THREADS_PER_CORE * cores;
    if threads == 0 || threads > most {
        return Err(crate::Error::usage(format!(
            "thread count {threads} is outside 1..={most} ({MAX_THREADS_PER_CORE} per core on this machine's {cores} cores); {cores} is usually best"
        )));
    }
    Ok(threads as i32)
}

/// Keeps freed activation buffers mapped instead of returning them to the kernel after every
/// layer; otherwise much of CPU inference time goes to zeroing fresh pages (docs/measurements.md).
/// Process-wide, so only the CLI calls it, once: a library inside another
/// process (Fiji's JVM) must not change that process's allocator.
/// glibc only: other C libraries (musl, macOS, Windows) have no `mallopt`, and the call is skipped.
pub fn tune_allocator_for_throughput() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc malloc thresholds.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_budget_lies_between_floor_and_ceiling_and_is_one_number_per_process() {
        let budget = machine_memory_budget();
        assert!((MEMORY_BUDGET_FLOOR..=MEMORY_BUDGET_CEILING).contains(&budget), "{budget} bytes");
        assert_eq!(machine_memory_budget(), budget);
        if let Some(available) = available_memory_bytes() {
            assert!(budget <= (available / 2).max(MEMORY_BUDGET_FLOOR), "{budget} of {available} available");
        }
    }
}
