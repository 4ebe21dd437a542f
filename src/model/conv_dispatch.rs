//! How one 3-D convolution of the network runs: in the activations' precision, and on the CPU
//! kernel libtorch would not pick by itself where its choice is slow or thread-count dependent.

use std::cell::Cell;
use std::marker::PhantomData;

use tch::Tensor;

use super::channels_last::channels_last;
use crate::Result;

/// A stride-1 convolution with a cubic kernel and the same zero padding on every axis.
///
/// Runs in the input's precision, so mixed-precision training can feed bfloat16 activations to a
/// network whose (master) weights stay float32: the weights are cast differentiably per call and
/// their gradients arrive in float32. A float32 input takes the plain path unchanged.
pub(super) fn conv(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, padding: i64) -> Result<Tensor> {
    // Channels-last order in and out (`channels_last.rs`): the output keeps it for the next layer.
    let (x, weight) = (&channels_last(x)?, &channels_last(weight)?);
    if x.kind() == weight.kind() {
        if is_pointwise_inference_on_cpu(weight, x) {
            // libtorch sends a 1×1×1 convolution to oneDNN only when it runs on more than one
            // thread (`ConvParams::use_mkldnn`), so the head's sums, and the output's last bit,
            // would depend on the thread count: a 1-core block job would differ from a 2-core
            // whole-movie run. Always oneDNN at inference makes them agree bit for bit.
            return Ok(x.f_mkldnn_convolution(weight, bias, [0, 0, 0], [1, 1, 1], [1, 1, 1], 1)?);
        }
        if !LIBTORCH_DISPATCH.get() && runs_on_native_kernel(x, weight, padding) {
            return conv_as_batch_of_two(x, weight, bias, padding);
        }
        return Ok(x.f_conv3d(weight, bias, [1, 1, 1], [padding; 3], [1, 1, 1], 1)?);
    }
    if needs_float32(x) {
        let y = x.f_to_kind(weight.kind())?.f_conv3d(weight, bias, [1, 1, 1], [padding; 3], [1, 1, 1], 1)?;
        return Ok(y.f_to_kind(x.kind())?);
    }
    let cast_weight = weight.f_to_kind(x.kind())?;
    let cast_bias = bias.map(|b| b.f_to_kind(x.kind())).transpose()?;
    Ok(x.f_conv3d(&cast_weight, cast_bias.as_ref(), [1, 1, 1], [padding; 3], [1, 1, 1], 1)?)
}

/// Whether libtorch 2.11 would run this float32 3-D convolution on its native im2col kernel
/// instead of oneDNN: batch 1 with N·C·D·H ≤ 20480 (`ConvParams::use_mkldnn`), i.e. the deeper,
/// smaller levels of a 64³ training patch (every level below full resolution) and of inference tiles.
/// There the native kernel is several times slower than oneDNN on the same shapes
/// (docs/measurements.md). Pointwise kernels are left alone (nothing to gain), and so are outputs
/// narrower than two columns (nothing to split).
fn runs_on_native_kernel(x: &Tensor, weight: &Tensor, padding: i64) -> bool {
    let s = x.size();
    let kernel = weight.size()[4];
    x.kind() == tch::Kind::Float
        && x.device() == tch::Device::Cpu
        && s.len() == 5
        && s[0] == 1
        && s[0] * s[1] * s[2] * s[3] <= 20480
        && kernel > 1
        && s[4] + 2 * padding - kernel + 1 >= 2
}

/// A float32 1×1×1 convolution on the CPU outside autograd (the network's head at inference).
fn is_pointwise_inference_on_cpu(weight: &Tensor, x: &Tensor) -> bool {
    x.kind() == tch::Kind::Float
        && x.device() == tch::Device::Cpu
        && weight.size()[2..] == [1, 1, 1]
        // Activations carry no gradient only outside autograd (no-grad inference).
        && !x.requires_grad()
}

thread_local! {
    /// Set only while a [`LibtorchConvDispatch`] guard lives on this thread.
    static LIBTORCH_DISPATCH: Cell<bool> = const { Cell::new(false) };
}

/// While alive, convolutions run on the calling thread take libtorch's own dispatch instead of
/// being routed to oneDNN: only to measure that baseline (`benches/throughput.rs`). It is scoped to
/// one thread and one lifetime, so a library shared by many callers in one process (Fiji's JVM)
/// has no switch one caller could flip for the others; dropping it restores what was before.
#[must_use = "the libtorch dispatch lasts only while the guard lives"]
pub struct LibtorchConvDispatch {
    previous: bool,
    /// Not `Send`: the guard must be dropped on the thread whose setting it changed.
    _same_thread: PhantomData<*const ()>,
}

impl LibtorchConvDispatch {
    pub fn begin() -> Self {
        Self { previous: LIBTORCH_DISPATCH.replace(true), _same_thread: PhantomData }
    }
}

impl Drop for LibtorchConvDispatch {
    fn drop(&mut self) {
        LIBTORCH_DISPATCH.set(self.previous);
    }
}

/// The same convolution computed as a batch of two, so libtorch sends it to oneDNN (batch > 1),
/// forward and backward: the output's columns (last axis) are cut into two equal halves, each
/// computed from the padded input columns it reads; for an odd width the halves share the middle
/// column, which is kept once. Exact: every output voxel sees the same inputs; only the summation
/// order inside the kernel may differ.
fn conv_as_batch_of_two(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, padding: i64) -> Result<Tensor> {
    let kernel = weight.size()[4];
    let padded = if padding > 0 { x.f_constant_pad_nd([padding, padding])? } else { x.shallow_clone() };
    let width = padded.size()[4] - kernel + 1;
    let half = (width + 1) / 2;
    let second = width - half;
    let halves =
        Tensor::f_cat(&[padded.f_narrow(4, 0, half + kernel - 1)?, padded.f_narrow(4, second, half + kernel - 1)?], 0)?;
    let y = halves.f_conv3d(weight, bias, [1, 1, 1], [padding, padding, 0], [1, 1, 1], 1)?;
    let overlap = 2 * half - width;
    Ok(Tensor::f_cat(&[y.f_narrow(0, 0, 1)?, y.f_narrow(0, 1, 1)?.f_narrow(4, overlap, half - overlap)?], 4)?)
}

/// oneDNN's bfloat16 weight gradient of a 3×3×3 convolution is wrong when the input is 2 deep
/// (libtorch 2.11, AVX-512 BF16 kernel; what was tried is in docs/measurements.md): a 16-frame
/// patch is 2 deep at the bottom level and made training diverge. Volumes with an axis shorter
/// than the kernel are tiny, so they simply run in float32.
fn needs_float32(x: &Tensor) -> bool {
    x.size()[2..].iter().any(|&n| n < 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Output, input gradient and weight gradient of `f`, for a loss of the squared output.
    fn with_gradients(x: &Tensor, w: &Tensor, f: impl Fn() -> Tensor) -> [Tensor; 3] {
        let y = f();
        let loss = (&y * &y).sum(Kind::Float);
        let g = Tensor::run_backward(&[loss], &[x, w], false, false);
        [y, g[0].shallow_clone(), g[1].shallow_clone()]
    }

    #[test]
    fn the_libtorch_dispatch_lasts_only_while_its_guard_lives_and_only_on_its_thread() {
        assert!(!LIBTORCH_DISPATCH.get());
        {
            let _outer = LibtorchConvDispatch::begin();
            assert!(LIBTORCH_DISPATCH.get());
            assert!(!std::thread::spawn(|| LIBTORCH_DISPATCH.get()).join().unwrap(), "another thread is unaffected");
            drop(LibtorchConvDispatch::begin());
            assert!(LIBTORCH_DISPATCH.get(), "an inner guard restores the outer one's setting");
        }
        assert!(!LIBTORCH_DISPATCH.get());
    }

    #[test]
    fn a_convolution_run_as_a_batch_of_two_equals_the_plain_one_with_gradients() {
        // 3×3×3 padded (the encoder), 2×2×2 unpadded (the upsampled decoder path), odd and even widths.
        for (kernel, padding, width) in [(3, 1, 14), (3, 1, 13), (2, 0, 10), (2, 0, 9), (3, 1, 2)] {
            tch::manual_seed(1);
            let w = (Tensor::randn([64, 32, kernel, kernel, kernel], (Kind::Float, Device::Cpu)) * 0.05)
                .set_requires_grad(true);
            let b = Tensor::randn([64], (Kind::Float, Device::Cpu));
            let x = Tensor::randn([1, 32, 12, 10, width], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            assert!(runs_on_native_kernel(&x, &w, padding), "the test shape should be one libtorch runs natively");
            let plain = with_gradients(&x, &w, || x.conv3d(&w, Some(&b), [1, 1, 1], [padding; 3], [1, 1, 1], 1));
            let split = with_gradients(&x, &w, || conv_as_batch_of_two(&x, &w, Some(&b), padding).unwrap());
            assert_eq!(plain[0].size(), split[0].size());
            for ((a, b), what) in plain.iter().zip(&split).zip(["output", "input gradient", "weight gradient"]) {
                let error = (a - b).abs().max().double_value(&[]) / a.abs().max().double_value(&[]);
                assert!(error < 1e-5, "kernel {kernel}, width {width}, {what}: relative error {error}");
            }
        }
    }

    #[test]
    fn the_network_s_operations_keep_channels_last_order() {
        use crate::model::channels_last::is_channels_last;
        let x = channels_last(&Tensor::randn([1, 4, 6, 6, 6], (Kind::Float, Device::Cpu))).unwrap();
        let w = Tensor::randn([8, 4, 3, 3, 3], (Kind::Float, Device::Cpu));
        for kind in [Kind::Float, Kind::BFloat16] {
            let (x, w) = (x.to_kind(kind), w.to_kind(kind));
            // Through the network's own dispatch: libtorch's native kernel, which a batch-1 float32
            // convolution this small would take, writes NCDHW; `conv` hands back channels-last anyway.
            let y = conv(&x, &w, None, 1).unwrap().relu();
            assert!(is_channels_last(&y).unwrap(), "{kind:?} convolution");
            let pooled = y.max_pool3d([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false);
            assert!(is_channels_last(&pooled).unwrap(), "{kind:?} max pooling");
            let joined = Tensor::cat(&[&y, &y], 1).constant_pad_nd([1, 1, 0, 0, 0, 0]);
            assert!(is_channels_last(&joined).unwrap(), "{kind:?} concatenation and padding");
        }
    }
}
