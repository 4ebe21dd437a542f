use tch::{nn, Device, Kind, Tensor};
fn main() {
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = deepcad::model::UNet3d::new(&vs.root(), 4);
    let n = 160i64;
    for c in [64i64, 65, 66, 67, 68, 69, 70, 71] {
        let x = Tensor::randn([1, 1, n, 8, 8], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = net.forward(&x).unwrap();
        let s = y.narrow(2, c, 1).sum(Kind::Float);
        s.backward();
        let g = x.grad().abs().sum_dim_intlist([0i64, 1, 3, 4].as_slice(), false, Kind::Float);
        let v: Vec<f32> = Vec::try_from(g).unwrap();
        let nz: Vec<usize> = v.iter().enumerate().filter(|(_, a)| **a > 0.0).map(|(i, _)| i).collect();
        println!(
            "out {c}: input range [{}, {}] -> left {} right {}",
            nz[0],
            nz[nz.len() - 1],
            c as usize - nz[0],
            nz[nz.len() - 1] - c as usize
        );
    }
}
