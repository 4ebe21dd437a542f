//! Times one training step (forward, backward, Adam) at a given patch and batch: `probe_train_step P BATCH`.
use std::time::Instant;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Reduction, Tensor};
fn main() {
    let a: Vec<i64> = std::env::args().skip(1).map(|v| v.parse().unwrap()).collect();
    let (p, b) = (a[0], a[1]);
    let bf16 = a.get(2).copied().unwrap_or(0) == 1;
    deepcad::device::tune_allocator_for_throughput();
    tch::manual_seed(0);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = deepcad::model::UNet3d::new(&vs.root(), 16);
    if bf16 {
        vs.bfloat16();
    }
    let mut opt = nn::Adam { beta1: 0.5, beta2: 0.999, wd: 0.0, eps: 1e-8, amsgrad: false }.build(&vs, 5e-4).unwrap();
    let kind = if bf16 { Kind::BFloat16 } else { Kind::Float };
    let x = Tensor::randn([b, 1, p, p, p], (kind, Device::Cpu));
    let y = Tensor::randn([b, 1, p, p, p], (kind, Device::Cpu));
    for r in 0..4 {
        let t0 = Instant::now();
        let out = net.forward(&x).unwrap();
        let t1 = t0.elapsed().as_secs_f64();
        let loss = (out.l1_loss(&y, Reduction::Mean) + out.mse_loss(&y, Reduction::Mean)) * 0.5;
        opt.zero_grad();
        loss.backward();
        let t2 = t0.elapsed().as_secs_f64();
        opt.step();
        let t3 = t0.elapsed().as_secs_f64();
        println!(
            "rep {r}: forward {t1:.3}s backward {:.3}s step {:.3}s total {t3:.3}s per-sample {:.3}s",
            t2 - t1,
            t3 - t2,
            t3 / b as f64
        );
    }
}
