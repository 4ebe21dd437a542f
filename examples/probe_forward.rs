//! Measures forward speed and peak RSS of one tile: `probe_forward T H W REPS [slab] [malloc]`.
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};
fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1024.0
}
fn main() {
    let args: Vec<i64> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (t, h, w, reps) = (args[0], args[1], args[2], args[3]);
    let slab = args.get(4).copied().unwrap_or(0);
    if args.get(5).copied().unwrap_or(0) == 1 {
        deepcad::device::tune_allocator_for_throughput();
    }
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = deepcad::model::UNet3d::new(&vs.root(), 16);
    let x = Tensor::randn([1, 1, t, h, w], (Kind::Float, Device::Cpu));
    let _g = tch::no_grad_guard();
    for r in 0..reps {
        let t0 = Instant::now();
        let y = if slab > 0 { net.forward_low_memory(&x, slab).unwrap() } else { net.forward(&x).unwrap() };
        let dt = t0.elapsed().as_secs_f64();
        println!(
            "rep {r}: {:.3}s  {:.2} Mvox/s  out {:?}  peakRSS {:.0} MB",
            dt,
            (t * h * w) as f64 / dt / 1e6,
            y.size(),
            peak_rss_mb()
        );
    }
}
